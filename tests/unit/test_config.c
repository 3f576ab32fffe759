/* Unit tests: the config file and its errors. */
#include "unit.h"

#include "config.h"

static void defaults_without_file(void **state)
{
	struct ballast_config cfg = { { NULL }, NULL };
	struct berr err = BERR_INIT;

	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/ballast.conf", 0, &err), 0);
	assert_int_equal(config_finish(&cfg), 0);
	assert_string_equal(config_get(&cfg, "ballast", "socket"), "/run/docker/plugins/ballast.sock");
	assert_string_equal(config_get(&cfg, "ballast", "state_dir"), "/var/lib/ballast");
	assert_string_equal(config_get(&cfg, "ballast", "default_backend"), "local");
	assert_string_equal(config_get(&cfg, "local", "root"), "/var/lib/ballast/local");
	assert_non_null(config_get(&cfg, "ballast", "host_id"));
	config_free(&cfg);
}

static void missing_named_file_is_an_error(void **state)
{
	struct ballast_config cfg = { { NULL }, NULL };
	struct berr err = BERR_INIT;

	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/ballast.conf", 1, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/ballast.conf"));
	config_free(&cfg);
}

static void values_and_derived_defaults(void **state)
{
	struct ballast_config cfg = { { NULL }, NULL };
	struct berr err = BERR_INIT;
	char *dir = tmpdir_new(), path[4096];

	(void)state;
	write_text(dir, "c.conf", "# comment\n[ballast]\nstate_dir = /srv/b\nhost_id = host-a\n; another\n\n[local]\n");
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	assert_int_equal(config_load(&cfg, path, 1, &err), 0);
	assert_int_equal(config_finish(&cfg), 0);
	assert_string_equal(config_get(&cfg, "ballast", "state_dir"), "/srv/b");
	assert_string_equal(config_get(&cfg, "local", "root"), "/srv/b/local");
	assert_string_equal(config_get(&cfg, "ballast", "host_id"), "host-a");
	config_free(&cfg);
	tmpdir_free(dir);
}

static void empty_value_means_default(void **state)
{
	struct ballast_config cfg = { { NULL }, NULL };
	struct berr err = BERR_INIT;
	char *dir = tmpdir_new(), path[4096], host[256] = "";

	(void)state;
	write_text(dir, "c.conf", "[ballast]\nhost_id =\nlog_level =\n[local]\nroot =\n");
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	assert_int_equal(config_load(&cfg, path, 1, &err), 0);
	assert_int_equal(config_finish(&cfg), 0);
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(config_get(&cfg, "ballast", "host_id"), host);
	assert_string_equal(config_get(&cfg, "ballast", "log_level"), "info");
	assert_string_equal(config_get(&cfg, "local", "root"), "/var/lib/ballast/local");
	config_free(&cfg);
	tmpdir_free(dir);
}

static void errors_name_file_and_line(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "[ballast]\nsocket = /x\nbogus = 1\n", ":3: unknown key \"bogus\" in section [ballast]" },
		{ "[ballast]\n[nowhere]\nx = 1\n", ":3: unknown section [nowhere]" },
		{ "[ballast]\nthis line is wrong\n", ":2: syntax error" },
		{ "socket = /x\n", ":1: unknown section []" },
	};
	char *dir = tmpdir_new(), path[4096];

	(void)state;
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ballast_config cfg = { { NULL }, NULL };
		struct berr err = BERR_INIT;

		write_text(dir, "c.conf", cases[i].text);
		assert_int_equal(config_load(&cfg, path, 1, &err), -EINVAL);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
		assert_non_null(strstr(err.msg, path));
		config_free(&cfg);
	}
	tmpdir_free(dir);
}

static void uint_values(void **state)
{
	struct ballast_config cfg = { { NULL }, NULL };
	struct berr err = BERR_INIT;
	unsigned long v;

	(void)state;
	assert_int_equal(config_get_uint(&cfg, "ballast", "helper_timeout", &v, &err), 0);
	assert_int_equal(v, 110);
	assert_int_equal(config_set(&cfg, "ballast", "helper_timeout", "-5"), 0);
	assert_int_equal(config_get_uint(&cfg, "ballast", "helper_timeout", &v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "helper_timeout"));
	assert_int_equal(config_set(&cfg, "nowhere", "x", "1"), -EINVAL);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_without_file),       cmocka_unit_test(missing_named_file_is_an_error),
		cmocka_unit_test(values_and_derived_defaults), cmocka_unit_test(errors_name_file_and_line),
		cmocka_unit_test(empty_value_means_default),   cmocka_unit_test(uint_values),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
