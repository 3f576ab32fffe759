/* Unit tests: the config file and its errors. */
#include "unit.h"

#include "backend.h"
#include "config.h"

/* A table as a backend hands it over: every type. */
static const char *const colours[] = { "red", "green", NULL };
static const struct config_key test_keys[] = {
	CONFIG_KEY_STR("test", "name", "x", "a string"),
	CONFIG_KEY_UINT("test", "count", "5", "a number", 1, 10),
	CONFIG_KEY_CHOICE("test", "colour", "red", "a choice", colours),
	CONFIG_KEY_SIZE("test", "size", "1G", "a size"),
	CONFIG_KEY_END,
};

static void defaults_without_file(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;

	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/ballast.conf", 0, &err), 0);
	assert_int_equal(config_finish(&cfg), 0);
	assert_string_equal(config_get(&cfg, "ballast", "socket"), "/run/docker/plugins/ballast.sock");
	assert_string_equal(config_get(&cfg, "ballast", "state_dir"), "/var/lib/ballast");
	assert_string_equal(config_get(&cfg, "ballast", "default_backend"), "local");
	assert_non_null(config_get(&cfg, "ballast", "host_id"));
	/* The core knows no backend's keys until they are added. */
	assert_null(config_get(&cfg, "rbd", "pool"));
	config_free(&cfg);
}

static void missing_named_file_is_an_error(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;

	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/ballast.conf", 1, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/ballast.conf"));
	config_free(&cfg);
}

static void values_and_backend_keys(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	char *dir = tmpdir_new(), path[4096];

	(void)state;
	assert_int_equal(backend_config_keys(&cfg), 0);
	write_text(dir, "c.conf", "# comment\n[ballast]\nstate_dir = /srv/b\nhost_id = host-a\n; another\n\n[local]\n");
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	assert_int_equal(config_load(&cfg, path, 1, &err), 0);
	assert_int_equal(config_finish(&cfg), 0);
	assert_string_equal(config_get(&cfg, "ballast", "state_dir"), "/srv/b");
	assert_string_equal(config_get(&cfg, "ballast", "host_id"), "host-a");
	/* local.root's default follows state_dir: the local backend computes it. */
	assert_null(config_get(&cfg, "local", "root"));
	assert_int_equal(config_section_given(&cfg, "local"), 0);
	/* Adding the same keys twice is refused. */
	assert_int_equal(backend_config_keys(&cfg), -EEXIST);
	config_free(&cfg);
	tmpdir_free(dir);
}

static void empty_value_means_default(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	char *dir = tmpdir_new(), path[4096], host[256] = "";

	(void)state;
	assert_int_equal(backend_config_keys(&cfg), 0);
	write_text(dir, "c.conf", "[ballast]\nhost_id =\nlog_level =\n[local]\nroot =\n");
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	assert_int_equal(config_load(&cfg, path, 1, &err), 0);
	assert_int_equal(config_finish(&cfg), 0);
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(config_get(&cfg, "ballast", "host_id"), host);
	assert_string_equal(config_get(&cfg, "ballast", "log_level"), "info");
	assert_null(config_get(&cfg, "local", "root"));
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
		/* out of range or of the wrong type: refused, never clamped */
		{ "[ballast]\nhelper_timeout = 3601\n",
		  ":2: [ballast] helper_timeout = 3601: expected a whole number from 1 to 3600" },
		{ "[ballast]\nhelper_timeout = 0\n", ":2: [ballast] helper_timeout = 0: expected a whole number" },
		{ "[ballast]\nrefresh_interval = -5\n",
		  ":2: [ballast] refresh_interval = -5: expected a whole number" },
		{ "[test]\nname = y\ncount = 11\n", ":3: [test] count = 11: expected a whole number from 1 to 10" },
		{ "[test]\ncount = 3x\n", ":2: [test] count = 3x: expected a whole number from 1 to 10" },
		{ "[test]\ncolour = blue\n", ":2: [test] colour = blue: use red or green" },
		{ "[test]\nsize = 10Q\n", ":2: [test] size = 10Q: " },
	};
	char *dir = tmpdir_new(), path[4096];

	(void)state;
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ballast_config cfg = CONFIG_INIT;
		struct berr err = BERR_INIT;

		assert_int_equal(config_add_keys(&cfg, test_keys), 0);
		write_text(dir, "c.conf", cases[i].text);
		assert_int_equal(config_load(&cfg, path, 1, &err), -EINVAL);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
		assert_non_null(strstr(err.msg, path));
		config_free(&cfg);
	}
	tmpdir_free(dir);
}

static void typed_values_in_range(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	char *dir = tmpdir_new(), path[4096];
	unsigned long v;

	(void)state;
	assert_int_equal(config_add_keys(&cfg, test_keys), 0);
	write_text(dir, "c.conf", "[test]\ncount = 10\ncolour = green\nsize = 20M\n");
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	assert_int_equal(config_load(&cfg, path, 1, &err), 0);
	assert_int_equal(config_get_uint(&cfg, "test", "count", &v, &err), 0);
	assert_int_equal(v, 10);
	assert_string_equal(config_get(&cfg, "test", "colour"), "green");
	assert_string_equal(config_get(&cfg, "test", "size"), "20M");
	assert_int_equal(config_section_given(&cfg, "test"), 1);
	config_free(&cfg);
	tmpdir_free(dir);
}

static void skip_unknown_sections_for_the_cli(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	char *dir = tmpdir_new(), path[4096];

	(void)state;
	cfg.skip_unknown = 1;
	write_text(dir, "c.conf", "[rbd]\npool = x\n[ballast]\nsocket = /s.sock\n");
	snprintf(path, sizeof(path), "%s/c.conf", dir);
	assert_int_equal(config_load(&cfg, path, 1, &err), 0);
	assert_string_equal(config_get(&cfg, "ballast", "socket"), "/s.sock");
	config_free(&cfg);
	/* ...but a bad [ballast] key is still an error, and without the flag
	 * the unknown section is one too (positive control). */
	cfg.skip_unknown = 1;
	write_text(dir, "c.conf", "[rbd]\npool = x\n[ballast]\nsockett = /s.sock\n");
	assert_int_equal(config_load(&cfg, path, 1, &err), -EINVAL);
	config_free(&cfg);
	cfg.skip_unknown = 0;
	berr_clear(&err);
	write_text(dir, "c.conf", "[rbd]\npool = x\n");
	assert_int_equal(config_load(&cfg, path, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown section [rbd]"));
	config_free(&cfg);
	tmpdir_free(dir);
}

static void uint_values(void **state)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	unsigned long v;

	(void)state;
	assert_int_equal(config_get_uint(&cfg, "ballast", "helper_timeout", &v, &err), 0);
	assert_int_equal(v, 110);
	/* A flag's value is checked like the file's. */
	assert_int_equal(config_set(&cfg, "ballast", "helper_timeout", "-5", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "helper_timeout"));
	assert_int_equal(config_get_uint(&cfg, "ballast", "helper_timeout", &v, &err), 0);
	assert_int_equal(v, 110);
	assert_int_equal(config_set(&cfg, "nowhere", "x", "1", NULL), -EINVAL);
	/* a minimum of 0 is 0 (orphan_grace = 0: off); 1 stays the least
	 * of a key whose minimum is 1 */
	assert_int_equal(config_set(&cfg, "ballast", "orphan_grace", "0", &err), 0);
	assert_int_equal(config_get_uint(&cfg, "ballast", "orphan_grace", &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_set(&cfg, "ballast", "helper_timeout", "0", &err), -EINVAL);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_without_file),     cmocka_unit_test(missing_named_file_is_an_error),
		cmocka_unit_test(values_and_backend_keys),   cmocka_unit_test(errors_name_file_and_line),
		cmocka_unit_test(typed_values_in_range),     cmocka_unit_test(skip_unknown_sections_for_the_cli),
		cmocka_unit_test(empty_value_means_default), cmocka_unit_test(uint_values),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
