/*
 * Unit tests: the request path from endpoint and body to the JSON answer,
 * with the catalog in a temp dir and the local backend (plain directories;
 * sized volumes need mount.ballast and are covered by the integration
 * tests).
 */
#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "backend.h"
#include "fsutil.h"
#include "log.h"

struct fixture {
	char *dir;
	struct ballast_config cfg;
	struct catalog *cat;
	struct api *api;
};

static void start(struct fixture *f)
{
	assert_int_equal(catalog_open(f->dir, &f->cat, NULL), 0);
	assert_int_equal(api_new(&f->cfg, f->cat, &f->api, NULL), 0);
	api_recover(f->api);
}

static void stop(struct fixture *f)
{
	api_free(f->api);
	catalog_close(f->cat);
	f->api = NULL;
	f->cat = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	log_threshold = LOG_LVL_ERROR; /* refusals are expected here */
	f->dir = tmpdir_new();
	assert_non_null(f->dir);
	assert_int_equal(backend_config_keys(&f->cfg), 0);
	assert_int_equal(config_set(&f->cfg, "ballast", "state_dir", f->dir, NULL), 0);
	/* mount.ballast is not needed here; a sized Create must fail
	 * cleanly without it. */
	assert_int_equal(config_set(&f->cfg, "ballast", "helper", "/nonexistent/mount.ballast", NULL), 0);
	assert_int_equal(config_finish(&f->cfg), 0);
	start(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stop(f);
	config_free(&f->cfg);
	tmpdir_free(f->dir);
	free(f);
	return 0;
}

/* Send body to path; returns the parsed answer (caller decrefs) after
 * checking the transport rules: HTTP 200, a JSON object, Err a string
 * of one line. */
static json_t *call(struct fixture *f, const char *path, const char *body)
{
	char *resp = NULL;
	json_t *j;
	int status;

	status = api_handle(f->api, path, body, body ? strlen(body) : 0, 0, &resp);
	assert_int_equal(status, 200);
	assert_non_null(resp);
	j = json_loads(resp, 0, NULL);
	assert_true(json_is_object(j));
	assert_true(json_is_string(json_object_get(j, "Err")));
	assert_null(strchr(json_string_value(json_object_get(j, "Err")), '\n'));
	free(resp);
	return j;
}

/* The Err of a call ("" on success), copied so the answer can be freed. */
static const char *err_of(struct fixture *f, const char *path, const char *body)
{
	static char buf[512];
	json_t *j = call(f, path, body);

	snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(j, "Err")));
	json_decref(j);
	return buf;
}

static char *list_text(struct fixture *f)
{
	json_t *j = call(f, "/Ballast.List", "{}");
	char *s = json_dumps(json_object_get(j, "Volumes"), JSON_SORT_KEYS);

	json_decref(j);
	return s;
}

/* A catalog record that cannot be read holds its name: no request acts on
 * it (a Create over it could replace the volume's data), each refusal says
 * why, and the data stays. Before, the name was simply forgotten. */
static void damaged_record_refuses_its_name(void **state)
{
	struct fixture *f = *state;
	char path[4096], catdir[4096];
	struct stat st;
	const char *e;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"d1\"}"), "");
	snprintf(path, sizeof(path), "%s/local/d1/keep", f->dir);
	write_text(f->dir, "local/d1/keep", "data");
	stop(f);
	snprintf(catdir, sizeof(catdir), "%s/catalog", f->dir);
	write_text(catdir, "d1.json", "{\"name\":\"d1\",");
	start(f);
	e = err_of(f, "/VolumeDriver.Create", "{\"Name\":\"d1\"}");
	assert_non_null(strstr(e, "volume d1: its catalog record is damaged"));
	e = err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"d1\",\"ID\":\"x\"}");
	assert_non_null(strstr(e, "damaged"));
	e = err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"d1\"}");
	assert_non_null(strstr(e, "damaged"));
	e = err_of(f, "/VolumeDriver.Get", "{\"Name\":\"d1\"}");
	assert_non_null(strstr(e, "damaged"));
	assert_int_equal(stat(path, &st), 0);
	/* control: another name works as usual */
	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"d2\"}"), "");
}

/* A Get of a volume and its Path, answered in another thread (the Err of
 * each, joined by "|"), for a check that they never wait. */
struct get_call {
	struct fixture *f;
	char err[1100];
};

static void *get_and_path(void *arg)
{
	struct get_call *g = arg;
	char get[512];

	snprintf(get, sizeof(get), "%s", err_of(g->f, "/VolumeDriver.Get", "{\"Name\":\"r1\"}"));
	snprintf(g->err, sizeof(g->err), "%s|%s", get, err_of(g->f, "/VolumeDriver.Path", "{\"Name\":\"r1\"}"));
	return NULL;
}

/* Get and Path answer at once while a slow backend call works on the
 * volume (an interrupted Remove finished by the refresh, whose cluster
 * waits out a dead client's watch): before, they waited for the volume's
 * lock, past dockerd's timeout, and the answer never came. */
static void get_never_waits_for_a_busy_volume(void **state)
{
	struct fixture *f = *state;
	struct get_call g = { .f = f };
	struct timespec until;
	struct volume *vol;
	pthread_t t;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"r1\"}"), "");
	vol = catalog_acquire(f->cat, "r1", 0);
	assert_non_null(vol);
	vol->state = VOL_REMOVING; /* held from here on, as a remove under way holds it */
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, get_and_path, &g), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	if (pthread_timedjoin_np(t, NULL, &until) != 0) {
		vol->state = VOL_READY; /* let the waiting thread go, then fail */
		catalog_release(f->cat, vol);
		pthread_join(t, NULL);
		fail_msg("Get or Path of a volume being removed waited for the remove");
	}
	assert_string_equal(g.err, "volume r1 is not ready: it is being removed (or an interrupted Remove "
				   "finished); try again shortly|volume r1 is not ready: it is being removed (or "
				   "an interrupted Remove finished); try again shortly");
	/* control: once the volume is ready again, both find it */
	vol->state = VOL_READY;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	get_and_path(&g);
	assert_string_equal(g.err, "|");
}

static void handshake(void **state)
{
	struct fixture *f = *state;
	json_t *j;

	/* An empty catalog lists nothing (and sorts nothing). */
	j = call(f, "/VolumeDriver.List", "{}");
	assert_int_equal(json_array_size(json_object_get(j, "Volumes")), 0);
	json_decref(j);

	j = call(f, "/Plugin.Activate", NULL);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Implements"), 0)), "VolumeDriver");
	json_decref(j);
	j = call(f, "/VolumeDriver.Capabilities", "{}\n");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "Capabilities"), "Scope")), "local");
	json_decref(j);
}

static void create_get_list_remove(void **state)
{
	struct fixture *f = *state;
	char dir[4096];
	struct stat st;
	json_t *j, *vol;

	assert_string_equal(err_of(f, "/VolumeDriver.Create",
				   "{\"Name\":\"v1\",\"Opts\":{\"uid\":\"999\",\"gid\":\"998\",\"mode\":\"0700\"}}\n"),
			    "");
	snprintf(dir, sizeof(dir), "%s/local/v1", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_uid, 999);
	assert_int_equal(st.st_gid, 998);
	assert_int_equal(st.st_mode & 07777, 0700);

	j = call(f, "/VolumeDriver.Get", "{\"Name\":\"v1\"}");
	vol = json_object_get(j, "Volume");
	assert_string_equal(json_string_value(json_object_get(vol, "Name")), "v1");
	/* RFC 3339, never "" (dockerd cannot decode an empty CreatedAt). */
	assert_int_equal(json_string_length(json_object_get(vol, "CreatedAt")), 20);
	assert_string_equal(json_string_value(json_object_get(json_object_get(vol, "Status"), "backend")), "local");
	json_decref(j);

	j = call(f, "/VolumeDriver.List", "{}");
	assert_int_equal(json_array_size(json_object_get(j, "Volumes")), 1);
	json_decref(j);

	assert_string_equal(err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"v1\"}"), "");
	assert_int_equal(stat(dir, &st), -1);
	assert_string_equal(err_of(f, "/VolumeDriver.Get", "{\"Name\":\"v1\"}"), "volume v1 not found");
}

/* The List answers are kept between changes: each follows every Create,
 * Mount, Unmount and Remove, and Docker's and ballast's both. */
static void list_follows_every_change(void **state)
{
	struct fixture *f = *state;
	json_t *j, *vols;
	char *before;

	j = call(f, "/VolumeDriver.List", "{}");
	assert_int_equal(json_array_size(json_object_get(j, "Volumes")), 0);
	json_decref(j);
	before = list_text(f);
	assert_string_equal(before, "[]");
	free(before);

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"l1\"}"), "");
	j = call(f, "/VolumeDriver.List", "{}");
	vols = json_object_get(j, "Volumes");
	assert_int_equal(json_array_size(vols), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 0), "Mountpoint")), "");
	json_decref(j);
	/* the same answer twice, from the kept text */
	before = list_text(f);
	assert_non_null(strstr(before, "\"mount_count\": 0"));
	free(before);
	before = list_text(f);
	assert_non_null(strstr(before, "\"mount_count\": 0"));
	free(before);

	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"l1\",\"ID\":\"a\"}"), "");
	j = call(f, "/VolumeDriver.List", "{}");
	vols = json_object_get(j, "Volumes");
	assert_int_not_equal(json_string_length(json_object_get(json_array_get(vols, 0), "Mountpoint")), 0);
	json_decref(j);
	before = list_text(f);
	assert_non_null(strstr(before, "\"mount_count\": 1"));
	free(before);

	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"l1\",\"ID\":\"a\"}"), "");
	before = list_text(f);
	assert_non_null(strstr(before, "\"mount_count\": 0"));
	free(before);
	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"l0\"}"), "");
	j = call(f, "/VolumeDriver.List", "{}");
	vols = json_object_get(j, "Volumes");
	assert_int_equal(json_array_size(vols), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vols, 0), "Name")), "l0");
	json_decref(j);

	assert_string_equal(err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"l0\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"l1\"}"), "");
	j = call(f, "/VolumeDriver.List", "{}");
	assert_int_equal(json_array_size(json_object_get(j, "Volumes")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Err")), "");
	json_decref(j);
	before = list_text(f);
	assert_string_equal(before, "[]");
	free(before);
}

/* The Get answer of a local volume is kept until the volume changes: each
 * Mount, Unmount, Remove and Create shows in the next Get, and a Get that
 * changed nothing answers the same text. */
static char *get_text(struct fixture *f, const char *name)
{
	char body[128];
	json_t *j;
	char *s;

	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	j = call(f, "/VolumeDriver.Get", body);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	return s;
}

static void get_follows_every_change(void **state)
{
	struct fixture *f = *state;
	char *a, *b;
	json_t *j, *v;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"g1\"}"), "");
	a = get_text(f, "g1");
	b = get_text(f, "g1");
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "\"Mountpoint\":\"\""));
	assert_non_null(strstr(a, "\"mount_count\":0"));
	assert_non_null(strstr(a, "\"Err\":\"\""));
	free(a);
	free(b);

	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"g1\",\"ID\":\"a\"}"), "");
	j = call(f, "/VolumeDriver.Get", "{\"Name\":\"g1\"}");
	v = json_object_get(j, "Volume");
	assert_int_not_equal(json_string_length(json_object_get(v, "Mountpoint")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "Status"), "mount_count")), 1);
	json_decref(j);
	a = get_text(f, "g1");
	b = get_text(f, "g1");
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "\"mount_count\":1"));
	free(a);
	free(b);

	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"g1\",\"ID\":\"a\"}"), "");
	a = get_text(f, "g1");
	assert_non_null(strstr(a, "\"Mountpoint\":\"\""));
	assert_non_null(strstr(a, "\"mount_count\":0"));
	free(a);

	assert_string_equal(err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"g1\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Get", "{\"Name\":\"g1\"}"), "volume g1 not found");
	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"g1\",\"Opts\":{\"mode\":\"0750\"}}"), "");
	a = get_text(f, "g1");
	assert_non_null(strstr(a, "\"mode\":\"0750\""));
	free(a);
	a = get_text(f, "g1");
	assert_non_null(strstr(a, "\"mode\":\"0750\""));
	free(a);
}

struct getter {
	struct fixture *f;
	atomic_int *stop;
	int answered, failed;
};

static void *get_until_stopped(void *arg)
{
	struct getter *g = arg;

	while (!atomic_load(g->stop)) {
		static const char body[] = "{\"Name\":\"r1\"}";
		char *resp = NULL;

		api_handle(g->f->api, "/VolumeDriver.Get", body, sizeof(body) - 1, 0, &resp);
		if (resp && strstr(resp, "\"Err\":\"\"") && strstr(resp, "\"Name\":\"r1\""))
			g->answered++;
		else
			g->failed++;
		free(resp);
	}
	return NULL;
}

/* Gets racing Mounts and Unmounts (run under SANITIZE=thread too): every
 * Get answered, and the last answer shows the last commit. */
static void gets_race_commits(void **state)
{
	struct fixture *f = *state;
	struct getter g[4];
	pthread_t t[4];
	atomic_int stop = 0;
	char *a;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"r1\"}"), "");
	for (int i = 0; i < 4; i++) {
		g[i] = (struct getter){ f, &stop, 0, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, get_until_stopped, &g[i]), 0);
	}
	for (int i = 0; i < 30; i++) {
		assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"r1\",\"ID\":\"a\"}"), "");
		assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"r1\",\"ID\":\"a\"}"), "");
	}
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"r1\",\"ID\":\"b\"}"), "");
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(g[i].failed, 0);
		assert_true(g[i].answered > 0);
	}
	a = get_text(f, "r1");
	assert_non_null(strstr(a, "\"mount_count\":1"));
	assert_non_null(strstr(a, "\"mount_ids\":{\"b\":1}"));
	free(a);
}

static void create_is_idempotent(void **state)
{
	struct fixture *f = *state;
	const char *body = "{\"Name\":\"v1\",\"Opts\":{\"mode\":\"0750\"}}";

	assert_string_equal(err_of(f, "/VolumeDriver.Create", body), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Create", body), "");
	/* Naming the backend: it is not kept among the options, and a
	 * resent Create still compares equal. */
	body = "{\"Name\":\"v2\",\"Opts\":{\"backend\":\"local\",\"mode\":\"0750\"}}";
	assert_string_equal(err_of(f, "/VolumeDriver.Create", body), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Create", body), "");
	body = "{\"Name\":\"v1\",\"Opts\":{\"mode\":\"0750\"}}";
	/* Implicit create (docker run -v) of an existing volume. */
	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"v1\",\"Opts\":null}"), "");
	assert_non_null(strstr(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"v1\",\"Opts\":{\"mode\":\"0700\"}}"),
			       "already exists with other options"));
}

static void mount_counts_per_id(void **state)
{
	struct fixture *f = *state;
	json_t *j;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"v1\"}"), "");
	j = call(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}");
	assert_non_null(strstr(json_string_value(json_object_get(j, "Mountpoint")), "/local/v1"));
	json_decref(j);
	/* docker cp mounts the same ID again. */
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"bbb\"}"), "");
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count")), 3);
	json_decref(j);
	assert_non_null(strstr(err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"v1\"}"), "in use"));
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}"), "");
	/* Never below zero. */
	assert_non_null(
		strstr(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}"), "no mount with ID aaa"));
	j = call(f, "/VolumeDriver.Path", "{\"Name\":\"v1\"}");
	assert_true(json_string_length(json_object_get(j, "Mountpoint")) > 0);
	json_decref(j);
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"bbb\"}"), "");
	j = call(f, "/VolumeDriver.Path", "{\"Name\":\"v1\"}");
	assert_string_equal(json_string_value(json_object_get(j, "Mountpoint")), "");
	json_decref(j);
	assert_string_equal(err_of(f, "/VolumeDriver.Remove", "{\"Name\":\"v1\"}"), "");
}

/* The sweep of mounts dockerd forgot: a mount is undone only when two looks
 * at least confirm apart found it unused, no Mount came since the first,
 * and the last Mount is a grace old. */
static void orphan_decisions(void **state)
{
	(void)state;
	/* in use, or its path not found: never */
	assert_int_equal(api_orphan_decide(100, 0, 1, 1000, 500, 50), 0);
	assert_int_equal(api_orphan_decide(100, 200, 2, 5000, 500, 50), 0);
	assert_int_equal(api_orphan_decide(100, 200, -1, 5000, 500, 50), 0);
	/* the first look that finds it unused: not yet, however old the Mount */
	assert_int_equal(api_orphan_decide(100, 0, 0, 9000, 500, 50), 9000);
	/* a second look: too soon after the first, or the Mount too young */
	assert_int_equal(api_orphan_decide(100, 9000, 0, 9049, 500, 50), 9000);
	assert_int_equal(api_orphan_decide(1000, 1100, 0, 1499, 500, 50), 1100);
	/* both: unmount */
	assert_int_equal(api_orphan_decide(100, 9000, 0, 9050, 500, 50), -1);
	assert_int_equal(api_orphan_decide(1000, 1100, 0, 1500, 500, 50), -1);
	/* a Mount during the look, or since the first look, starts over */
	assert_int_equal(api_orphan_decide(1500, 1000, 0, 1500, 500, 50), 0);
	assert_int_equal(api_orphan_decide(1200, 1000, 0, 1600, 500, 50), 1600);
	assert_int_equal(api_orphan_decide(1000, 1000, 0, 9000, 500, 50), 9000);
}

/* A mount ID no container uses (here: nothing at all mounts the volume's
 * directory anywhere) is dropped once the grace has passed, and the volume
 * unmounted as dockerd's Unmount would have. Where this process cannot see
 * the host's processes the sweep is off, and the mount stays. */
static void sweep_undoes_unused_mount(void **state)
{
	struct fixture *f = *state;
	json_t *j;
	long n;

	stop(f);
	assert_int_equal(config_set(&f->cfg, "ballast", "orphan_grace", "1", NULL), 0);
	start(f);
	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"v1\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"lost\"}"), "");
	usleep(10 * 1000);	   /* a look begun in the Mount's own millisecond counts it as during the look */
	api_sweep_orphans(f->api); /* the first look: the grace starts */
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count")), 1);
	json_decref(j);
	usleep(1100 * 1000);
	api_sweep_orphans(f->api);
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	n = (long)json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count"));
	json_decref(j);
	if (!sees_host_pids()) {
		assert_int_equal(n, 1);
		return;
	}
	assert_int_equal(n, 0);
	assert_non_null(strstr(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"lost\"}"),
			       "no mount with ID lost"));
	/* a fresh Mount restarts the grace: the next look keeps it */
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"new\"}"), "");
	api_sweep_orphans(f->api);
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count")), 1);
	json_decref(j);
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"new\"}"), "");

	/* An Unmount that leaves only IDs nobody uses, the last Mount a
	 * grace old: they are dropped with it, and the volume is free. */
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"lost2\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"live\"}"), "");
	/* the control: the last Mount is young, so the lost ID stays */
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"live\"}"), "");
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count")), 1);
	json_decref(j);
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"live\"}"), "");
	usleep(1100 * 1000);
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"live\"}"), "");
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count")), 0);
	json_decref(j);
	j = call(f, "/VolumeDriver.Path", "{\"Name\":\"v1\"}");
	assert_string_equal(json_string_value(json_object_get(j, "Mountpoint")), "");
	json_decref(j);
}

static void counts_survive_restart(void **state)
{
	struct fixture *f = *state;
	json_t *j;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"v1\"}"), "");
	assert_string_equal(err_of(f, "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}"), "");
	stop(f);
	start(f);
	j = call(f, "/Ballast.Inspect", "{\"Name\":\"v1\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "Volume"), "mount_count")), 1);
	json_decref(j);
	assert_string_equal(err_of(f, "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"aaa\"}"), "");
}

static void bad_requests_change_nothing(void **state)
{
	static const struct {
		const char *path, *body, *want;
	} cases[] = {
		{ "/VolumeDriver.Create", "{", "invalid JSON" },
		{ "/VolumeDriver.Create", "", "body is empty" },
		{ "/VolumeDriver.Create", "[]", "must be a JSON object" },
		{ "/VolumeDriver.Create", "\"v1\"", "invalid JSON" },
		{ "/VolumeDriver.Create", "{}", "no Name" },
		{ "/VolumeDriver.Create", "{\"Name\":5}", "Name must be a string" },
		{ "/VolumeDriver.Create", "{\"Name\":\"\"}", "empty" },
		{ "/VolumeDriver.Create", "{\"Name\":\"a/b\"}", "invalid volume name" },
		{ "/VolumeDriver.Create", "{\"Name\":\"..\"}", "invalid volume name" },
		{ "/VolumeDriver.Create", "{\"Name\":\"a\\u0000b\"}", "invalid JSON" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Name\":\"w\"}", "invalid JSON" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"foo\":\"bar\"}}", "unknown option \"foo\"" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":\"0\"}}", "zero" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":\"-1\"}}", "invalid size" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":\"10Q\"}}", "invalid size" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":\"1e30\"}}", "invalid size" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":\"1M\"}}", "too small" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":5}}", "must be a string" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"fstype\":\"btrfs\",\"size\":\"1G\"}}",
		  "invalid fstype" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"fstype\":\"ext4\"}}", "needs option size" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"uid\":\"-1\"}}", "invalid uid" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"mode\":\"999\"}}", "invalid mode" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"backend\":\"nfs\"}}", "unknown backend" },
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":[]}", "Opts must be an object" },
		/* mount.ballast is missing here: a sized Create fails and
		 * must leave nothing behind. */
		{ "/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":{\"size\":\"64M\"}}", "mount.ballast" },
		{ "/VolumeDriver.Mount", "{\"Name\":\"nope\",\"ID\":\"x\"}", "not found" },
		{ "/VolumeDriver.Mount", "{\"Name\":\"v1\"}", "no ID" },
		{ "/VolumeDriver.Mount", "{\"Name\":\"v1\",\"ID\":\"\"}", "mount ID" },
		{ "/VolumeDriver.Unmount", "{\"Name\":\"v1\",\"ID\":\"never\"}", "no mount with ID never" },
		{ "/VolumeDriver.Remove", "{\"Name\":\"nope\"}", "not found" },
		{ "/Ballast.Resize", "{\"Name\":\"v1\",\"Size\":\"1G\"}", "plain directory: it has no size to grow" },
		{ "/Ballast.Resize", "{\"Name\":\"v1\",\"Size\":\"big\"}", "invalid size" },
		{ "/Ballast.Resize", "{\"Name\":\"v1\"}", "no Size" },
		{ "/VolumeDriver.Nope", "{}", "unknown endpoint" },
		{ "/", "", "unknown endpoint" },
	};
	struct fixture *f = *state;
	char *before, *after;

	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"v1\"}"), "");
	before = list_text(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = err_of(f, cases[i].path, cases[i].body);

		if (!strstr(got, cases[i].want))
			fail_msg("case %zu (%s %s): got \"%s\", want \"%s\"", i, cases[i].path, cases[i].body, got,
				 cases[i].want);
	}
	after = list_text(f);
	assert_string_equal(before, after);
	{
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/local/v", f->dir);
		assert_int_equal(stat(path, &st), -1);
		snprintf(path, sizeof(path), "%s/local/.images/v.img", f->dir);
		assert_int_equal(stat(path, &st), -1);
		snprintf(path, sizeof(path), "%s/catalog/v.json", f->dir);
		assert_int_equal(stat(path, &st), -1);
	}
	free(before);
	free(after);
}

static void too_large_body(void **state)
{
	struct fixture *f = *state;
	char *resp = NULL;
	json_t *j;

	assert_int_equal(api_handle(f->api, "/VolumeDriver.Create", NULL, 0, 1, &resp), 200);
	j = json_loads(resp, 0, NULL);
	assert_non_null(strstr(json_string_value(json_object_get(j, "Err")), "larger than 65536"));
	json_decref(j);
	free(resp);
}

static void unfinished_create_is_rolled_back(void **state)
{
	struct fixture *f = *state;
	char dir[4096];
	struct stat st;

	/* What a crash in the middle of a Create leaves: a record in state
	 * "creating" and the backend's half-made directory. */
	snprintf(dir, sizeof(dir), "%s/catalog", f->dir);
	write_text(dir, "half.json",
		   "{\"name\":\"half\",\"backend\":\"local\",\"created_at\":\"2026-11-27T10:00:00Z\","
		   "\"state\":\"creating\",\"options\":{},\"mount_ids\":{}}");
	snprintf(dir, sizeof(dir), "%s/local/half", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	stop(f);
	start(f);
	assert_int_equal(stat(dir, &st), -1);
	snprintf(dir, sizeof(dir), "%s/catalog/half.json", f->dir);
	assert_int_equal(stat(dir, &st), -1);
	assert_non_null(strstr(err_of(f, "/VolumeDriver.Get", "{\"Name\":\"half\"}"), "not found"));
	/* And the Create can be done again. */
	assert_string_equal(err_of(f, "/VolumeDriver.Create", "{\"Name\":\"half\"}"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_record_refuses_its_name, setup, teardown),
		cmocka_unit_test_setup_teardown(get_never_waits_for_a_busy_volume, setup, teardown),
		cmocka_unit_test_setup_teardown(create_get_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(get_follows_every_change, setup, teardown),
		cmocka_unit_test_setup_teardown(gets_race_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(list_follows_every_change, setup, teardown),
		cmocka_unit_test_setup_teardown(create_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(mount_counts_per_id, setup, teardown),
		cmocka_unit_test(orphan_decisions),
		cmocka_unit_test_setup_teardown(sweep_undoes_unused_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(counts_survive_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_requests_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(too_large_body, setup, teardown),
		cmocka_unit_test_setup_teardown(unfinished_create_is_rolled_back, setup, teardown),
	};

	return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
