/* Unit tests: names, mount IDs, sizes, uid/gid/mode, option keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "validate.h"

static void names_accepted(void **state)
{
	static const char *const good[] = {
		"v1",	   "pgdata", "a",
		"A.b-c_d", "0abc",   "4f3c2b1a0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a", /* anonymous */
	};
	char longest[VOLUME_NAME_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(validate_name(good[i], NULL), 0);
	memset(longest, 'x', VOLUME_NAME_MAX);
	longest[VOLUME_NAME_MAX] = '\0';
	assert_int_equal(validate_name(longest, NULL), 0);
}

static void names_refused(void **state)
{
	static const char *const bad[] = {
		"",	"/", "a/b",	  "..",	 "../etc", ".hidden", "-x", "_x",   "a b",
		"a\tb", "é", "a\xc3\xa9", "a:b", "a@b",	   "a\\b",    "a*", "$(x)",
	};
	char toolong[VOLUME_NAME_MAX + 2];
	struct berr err = BERR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		berr_clear(&err);
		assert_int_equal(validate_name(bad[i], &err), -EINVAL);
		assert_true(strlen(err.msg) > 0);
		assert_null(strchr(err.msg, '\n'));
	}
	assert_int_equal(validate_name(NULL, NULL), -EINVAL);
	memset(toolong, 'x', VOLUME_NAME_MAX + 1);
	toolong[VOLUME_NAME_MAX + 1] = '\0';
	berr_clear(&err);
	assert_int_equal(validate_name(toolong, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "129"));
}

static void sizes(void **state)
{
	static const struct {
		const char *in;
		uint64_t want;
	} ok[] = {
		{ "1", 1 },
		{ "4096", 4096 },
		{ "512M", 512ULL << 20 },
		{ "512m", 512ULL << 20 },
		{ "10G", 10ULL << 30 },
		{ "10GiB", 10ULL << 30 },
		{ "10gb", 10ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "2K", 2048 },
		{ "1P", 1ULL << 50 },
		{ "16383P", 16383ULL << 50 },
	};
	static const char *const bad[] = {
		"",
		"0",
		"0G",
		"-1",
		"-1G",
		"1.5G",
		"1e30",
		"10Q",
		"G",
		" 1G",
		"1G ",
		"1 G",
		"1GG",
		"1Gi",
		"18446744073709551616",
		"16384P",
		"99999999999999999999G",
		"0x10",
		"+5",
	};
	struct berr err = BERR_INIT;
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse_size(ok[i].in, &v, NULL), 0);
		assert_true(v == ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		berr_clear(&err);
		assert_true(parse_size(bad[i], &v, &err) < 0);
		assert_true(strlen(err.msg) > 0);
	}
}

static void ids_and_modes(void **state)
{
	uint32_t id;
	mode_t m;

	(void)state;
	assert_int_equal(parse_id("uid", "999", &id, NULL), 0);
	assert_int_equal(id, 999);
	assert_int_equal(parse_id("uid", "0", &id, NULL), 0);
	assert_int_equal(parse_id("uid", "2147483647", &id, NULL), 0);
	assert_int_equal(parse_id("uid", "2147483648", &id, NULL), -EINVAL);
	assert_int_equal(parse_id("uid", "-1", &id, NULL), -EINVAL);
	assert_int_equal(parse_id("gid", "abc", &id, NULL), -EINVAL);
	assert_int_equal(parse_id("gid", "", &id, NULL), -EINVAL);
	assert_int_equal(parse_id("gid", "99999999999", &id, NULL), -EINVAL);
	assert_int_equal(parse_mode("0700", &m, NULL), 0);
	assert_int_equal(m, 0700);
	assert_int_equal(parse_mode("755", &m, NULL), 0);
	assert_int_equal(m, 0755);
	assert_int_equal(parse_mode("07777", &m, NULL), 0);
	assert_int_equal(parse_mode("8", &m, NULL), -EINVAL);
	assert_int_equal(parse_mode("017777", &m, NULL), -EINVAL);
	assert_int_equal(parse_mode("", &m, NULL), -EINVAL);
	assert_int_equal(parse_mode("rwx", &m, NULL), -EINVAL);
}

static void mount_ids(void **state)
{
	(void)state;
	assert_int_equal(validate_mount_id("4f3c2b1a0d9e", NULL), 0);
	assert_int_equal(validate_mount_id("", NULL), -EINVAL);
	assert_int_equal(validate_mount_id("a b", NULL), -EINVAL);
	assert_int_equal(validate_mount_id("a\nb", NULL), -EINVAL);
}

static void option_keys(void **state)
{
	static const char *const valid[] = { "backend", "size", "uid", NULL };
	struct berr err = BERR_INIT;
	json_t *o;

	(void)state;
	o = json_pack("{s:s, s:s}", "size", "1G", "uid", "1");
	assert_int_equal(validate_opt_keys(o, "local", valid, &err), 0);
	json_decref(o);

	o = json_pack("{s:s}", "foo", "bar");
	assert_int_equal(validate_opt_keys(o, "local", valid, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"foo\""));
	assert_non_null(strstr(err.msg, "backend, size, uid"));
	json_decref(o);

	berr_clear(&err);
	o = json_pack("{s:i}", "size", 5);
	assert_int_equal(validate_opt_keys(o, "local", valid, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "must be a string"));
	json_decref(o);
}

static void choices(void **state)
{
	static const char *const two[] = { "ro", "no", NULL };
	static const char *const four[] = { "auto", "krbd", "nbd", "fuse", NULL };
	struct berr err = BERR_INIT;

	(void)state;
	assert_int_equal(check_choice(NULL, "shared", "ro", two, &err), 0);
	assert_int_equal(check_choice("rbd", "mapper", "fuse", four, &err), 0);
	assert_int_equal(check_choice(NULL, "shared", "rw", two, &err), -EINVAL);
	assert_string_equal(err.msg, "invalid shared \"rw\": use ro or no");
	memset(&err, 0, sizeof(err)); /* a berr keeps its first message */
	assert_int_equal(check_choice("rbd", "mapper", "sloppy", four, &err), -EINVAL);
	assert_string_equal(err.msg, "[rbd] mapper = sloppy: use auto, krbd, nbd or fuse");
	memset(&err, 0, sizeof(err));
	assert_int_equal(check_choice(NULL, "takeover", "", takeover_choices, &err), -EINVAL);
	assert_string_equal(err.msg, "invalid takeover \"\": use after-lease or never");
}

static void errors_are_one_ascii_line(void **state)
{
	struct berr err = BERR_INIT;

	(void)state;
	assert_int_equal(berr_set(&err, EIO, "a\nb\r\x01\xc3\xa9"), -EIO);
	assert_string_equal(err.msg, "a b ???");
	/* The first message wins. */
	berr_set(&err, -EINVAL, "second");
	assert_string_equal(err.msg, "a b ???");
}

/* A message cut to fit says so, so that a list cut in the middle of a
 * word is not read as whole; one that fits is left as it is. */
static void cut_errors_end_with_dots(void **state)
{
	char word[BERR_MSG_MAX + 64];
	struct berr err = BERR_INIT;

	(void)state;
	memset(word, 'x', sizeof(word) - 1);
	word[sizeof(word) - 1] = '\0';
	berr_set(&err, EINVAL, "allowed: %s", word);
	assert_int_equal(strlen(err.msg), BERR_MSG_MAX - 1);
	assert_string_equal(err.msg + BERR_MSG_MAX - 4, "...");
	assert_memory_equal(err.msg, "allowed: xxx", 12);
	/* exactly full: not cut */
	berr_clear(&err);
	word[BERR_MSG_MAX - 1] = '\0';
	berr_set(&err, EINVAL, "%s", word);
	assert_string_equal(err.msg, word);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_accepted),
		cmocka_unit_test(names_refused),
		cmocka_unit_test(sizes),
		cmocka_unit_test(ids_and_modes),
		cmocka_unit_test(mount_ids),
		cmocka_unit_test(option_keys),
		cmocka_unit_test(choices),
		cmocka_unit_test(errors_are_one_ascii_line),
		cmocka_unit_test(cut_errors_end_with_dots),
	};

	return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
