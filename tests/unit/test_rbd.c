/*
 * Unit tests: what the rbd backend does without a cluster. init never
 * touches the network, options are checked before anything is made,
 * Status makes no cluster call, and with nothing listening a Create fails
 * within [rbd] timeout with a clear error. The cluster paths are covered
 * by tests/integration/rbd_docker.sh on a real one-node Ceph.
 */
#include "unit.h"

#include <time.h>

#include "backend.h"
#include "config.h"
#include "log.h"

#ifdef HAVE_RBD

struct fixture {
	char *dir;
	struct ballast_config cfg;
	const struct backend_ops *ops;
	void *ctx;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char conf[4096];

	log_threshold = LOG_LVL_ERROR;
	f->dir = tmpdir_new();
	assert_non_null(f->dir);
	/* A monitor address where nothing listens (the discard port on
	 * loopback), and no cephx, so that connect really waits for it. */
	write_text(f->dir, "ceph.conf",
		   "[global]\nmon host = [v2:127.0.0.1:9]\nauth cluster required = none\n"
		   "auth service required = none\nauth client required = none\n"
		   "log file = /dev/null\n");
	snprintf(conf, sizeof(conf), "%s/ceph.conf", f->dir);
	assert_int_equal(backend_config_keys(&f->cfg), 0);
	assert_int_equal(config_set(&f->cfg, "ballast", "state_dir", f->dir, NULL), 0);
	assert_int_equal(config_set(&f->cfg, "ballast", "helper", "/nonexistent/mount.ballast", NULL), 0);
	assert_int_equal(config_set(&f->cfg, "rbd", "conf", conf, NULL), 0);
	assert_int_equal(config_set(&f->cfg, "rbd", "timeout", "1", NULL), 0);
	assert_int_equal(config_finish(&f->cfg), 0);
	f->ops = backend_lookup("rbd");
	assert_non_null(f->ops);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	if (f->ctx)
		f->ops->fini(f->ctx);
	config_free(&f->cfg);
	tmpdir_free(f->dir);
	free(f);
	return 0;
}

#define NEED_FIXTURE(f)                                                                                                \
	do {                                                                                                           \
		if (!(f))                                                                                              \
			skip();                                                                                        \
	} while (0)

static void init_is_offline(void **state)
{
	struct fixture *f = *state;
	struct berr err = BERR_INIT;
	long t0;

	NEED_FIXTURE(f);
	t0 = now_ms();
	assert_int_equal(f->ops->init(&f->cfg, &f->ctx, &err), 0);
	assert_true(now_ms() - t0 < 200);
	assert_true(f->ops->caps & BE_CAP_GLOBAL);
}

/* Check opts (a JSON text) and return the result; err gets the message. */
static int check(struct fixture *f, const char *text, struct berr *err)
{
	json_t *opts = json_loads(text, 0, NULL);
	int ret;

	assert_non_null(opts);
	berr_clear(err);
	ret = f->ops->validate_opts(f->ctx, opts, err);
	json_decref(opts);
	return ret;
}

static void options(void **state)
{
	struct fixture *f = *state;
	struct berr err = BERR_INIT;

	NEED_FIXTURE(f);
	assert_int_equal(f->ops->init(&f->cfg, &f->ctx, &err), 0);
	assert_int_equal(check(f, "{}", &err), 0);
	assert_int_equal(check(f,
			       "{\"size\":\"1G\",\"fstype\":\"xfs\",\"uid\":\"999\",\"gid\":\"999\","
			       "\"mode\":\"0750\",\"pool\":\"db\",\"data-pool\":\"ec_data\","
			       "\"features\":\"layering,exclusive-lock,object-map\",\"shared\":\"ro\","
			       "\"mkfs-options\":\"-m 0\",\"mount-options\":\"noatime,discard\"}",
			       &err),
			 0);
	assert_int_equal(check(f, "{\"colour\":\"blue\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "colour"));
	assert_int_equal(check(f, "{\"size\":\"12Q\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"size\":\"1M\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"size\":\"100M\",\"fstype\":\"xfs\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "300 MiB"));
	assert_int_equal(check(f, "{\"fstype\":\"ntfs\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"features\":\"layering\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "exclusive-lock"));
	assert_int_equal(check(f, "{\"features\":\"warp-drive\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"pool\":\"../etc\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"pool\":\"-x\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"data-pool\":\"a b\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"mount-options\":\"noatime;reboot\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"mkfs-options\":\"-m 0 $(id)\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"shared\":\"rw\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"uid\":\"-1\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"mode\":\"99999\"}", &err), -EINVAL);
	/* clones: a snapshot to start from; what the parent decides is not
	 * asked again */
	assert_int_equal(check(f, "{\"from\":\"db@s1\"}", &err), 0);
	assert_int_equal(check(f, "{\"from\":\"db@s1\",\"flatten\":\"true\",\"pool\":\"x\"}", &err), 0);
	assert_int_equal(check(f, "{\"from\":\"db\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "from=VOLUME@SNAPSHOT"));
	assert_int_equal(check(f, "{\"from\":\"db@-x\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "invalid volume or snapshot name"));
	assert_int_equal(check(f, "{\"from\":\"@s1\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"from\":\"db@s1\",\"size\":\"1G\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "size cannot be given with from="));
	assert_int_equal(check(f, "{\"from\":\"db@s1\",\"fstype\":\"ext4\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"from\":\"db@s1\",\"flatten\":\"yes\"}", &err), -EINVAL);
	assert_int_equal(check(f, "{\"flatten\":\"true\"}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "only for a clone"));
}

static void status_needs_no_cluster(void **state)
{
	struct fixture *f = *state;
	struct berr err = BERR_INIT;
	json_t *opts = json_pack("{s:s}", "pool", "db");
	struct be_volume vol = { .name = "v1", .opts = opts };
	json_t *st;
	long t0;

	NEED_FIXTURE(f);
	assert_int_equal(f->ops->init(&f->cfg, &f->ctx, &err), 0);
	t0 = now_ms();
	st = f->ops->status(f->ctx, &vol);
	assert_true(now_ms() - t0 < 50);
	assert_non_null(st);
	assert_string_equal(json_string_value(json_object_get(st, "mapper")), "fuse");
	assert_string_equal(json_string_value(json_object_get(st, "pool")), "db");
	assert_string_equal(json_string_value(json_object_get(st, "image")), "v1");
	assert_int_equal(f->ops->is_mounted(f->ctx, &vol), 0);
	json_decref(st);
	json_decref(opts);
}

static void create_fails_within_timeout(void **state)
{
	struct fixture *f = *state;
	struct berr err = BERR_INIT;
	json_t *opts = json_pack("{s:s}", "size", "1G");
	struct be_volume vol = { .name = "v1", .opts = opts };
	long t0, dt;

	NEED_FIXTURE(f);
	assert_int_equal(f->ops->init(&f->cfg, &f->ctx, &err), 0);
	for (int i = 0; i < 2; i++) { /* the failed connect is retried, not cached */
		berr_clear(&err);
		t0 = now_ms();
		assert_true(f->ops->create(f->ctx, &vol, &err) < 0);
		dt = now_ms() - t0;
		/* [rbd] timeout = 1 s; without the bound librados waits 300 s
		 * (client_mount_timeout). 20 s leaves room for valgrind, where
		 * this took over 3 s and failed make check. */
		assert_true(dt < 20000);
		assert_non_null(strstr(err.msg, "cannot connect to the Ceph cluster"));
	}
	json_decref(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(init_is_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(options, setup, teardown),
		cmocka_unit_test_setup_teardown(status_needs_no_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(create_fails_within_timeout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !HAVE_RBD */

static void rbd_not_built(void **state)
{
	(void)state;
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rbd_not_built),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
