/*
 * Unit tests: editing auth.reject, the gluster backend's fence. A wrong
 * edit would either leave a fenced host able to write (its address lost)
 * or cut hosts nobody meant to fence (another entry changed), so every
 * case checks the whole value.
 */
#include "unit.h"

#include <errno.h>

#include "gl_reject.h"

static const char *edit(const char *val, const char *path, const char *addr, int add)
{
	static char out[512];

	assert_int_equal(gl_reject_edit(val, path, addr, add, out, sizeof(out)), 0);
	return out;
}

static void parse_cli_lines(void **state)
{
	char v[64];

	(void)state;
	assert_int_equal(gl_reject_parse("auth.reject                              (null) (DEFAULT)   ", v, sizeof(v)),
			 0);
	assert_string_equal(v, "");
	assert_int_equal(
		gl_reject_parse("auth.reject                              /ballast/x(10.0.0.1)     ", v, sizeof(v)), 0);
	assert_string_equal(v, "/ballast/x(10.0.0.1)");
	assert_int_equal(gl_reject_parse("auth.reject\t/b/x(1.1.1.1|2.2.2.2),/b/y(3.3.3.3)\n", v, sizeof(v)), 0);
	assert_string_equal(v, "/b/x(1.1.1.1|2.2.2.2),/b/y(3.3.3.3)");
	assert_int_equal(gl_reject_parse("auth.rejectx 1", v, sizeof(v)), -EINVAL);
	assert_int_equal(gl_reject_parse("volume get: failed: no such volume", v, sizeof(v)), -EINVAL);
	assert_int_equal(gl_reject_parse("auth.reject /ballast/a-long-name(10.0.0.1)", v, 8), -E2BIG);
}

static void add_and_find(void **state)
{
	(void)state;
	assert_string_equal(edit("", "/ballast/x", "10.0.0.1", 1), "/ballast/x(10.0.0.1)");
	assert_string_equal(edit("/ballast/x(10.0.0.1)", "/ballast/x", "10.0.0.2", 1), "/ballast/x(10.0.0.1|10.0.0.2)");
	/* adding what is there keeps one copy of it */
	assert_string_equal(edit("/ballast/x(10.0.0.1|10.0.0.2)", "/ballast/x", "10.0.0.1", 1),
			    "/ballast/x(10.0.0.2|10.0.0.1)");
	/* other entries stay */
	assert_string_equal(edit("/ballast/y(10.0.0.9),/ballast/x(10.0.0.1)", "/ballast/z", "10.0.0.3", 1),
			    "/ballast/y(10.0.0.9),/ballast/x(10.0.0.1),/ballast/z(10.0.0.3)");
	assert_true(gl_reject_has("/ballast/y(10.0.0.9),/ballast/x(10.0.0.1|10.0.0.2)", "/ballast/x", "10.0.0.2"));
	assert_true(gl_reject_has("/ballast/x(10.0.0.1)", "/ballast/x", "10.0.0.1"));
	assert_false(gl_reject_has("", "/ballast/x", "10.0.0.1"));
	assert_false(gl_reject_has("/ballast/y(10.0.0.1)", "/ballast/x", "10.0.0.1"));
}

static void prefixes_are_not_matches(void **state)
{
	(void)state;
	/* a longer name, a longer address, an address in another entry */
	assert_false(gl_reject_has("/ballast/xy(10.0.0.1)", "/ballast/x", "10.0.0.1"));
	assert_false(gl_reject_has("/ballast/x(10.0.0.10)", "/ballast/x", "10.0.0.1"));
	assert_false(gl_reject_has("/ballast/x(10.0.0.2),/ballast/y(10.0.0.1)", "/ballast/x", "10.0.0.1"));
	assert_string_equal(edit("/ballast/xy(10.0.0.1)", "/ballast/x", "10.0.0.1", 1),
			    "/ballast/xy(10.0.0.1),/ballast/x(10.0.0.1)");
	assert_string_equal(edit("/ballast/x(10.0.0.10)", "/ballast/x", "10.0.0.1", 0), "/ballast/x(10.0.0.10)");
}

static void lift(void **state)
{
	(void)state;
	assert_string_equal(edit("/ballast/x(10.0.0.1|10.0.0.2)", "/ballast/x", "10.0.0.1", 0), "/ballast/x(10.0.0.2)");
	/* the last address of an entry takes the entry with it */
	assert_string_equal(edit("/ballast/y(10.0.0.9),/ballast/x(10.0.0.1)", "/ballast/x", "10.0.0.1", 0),
			    "/ballast/y(10.0.0.9)");
	assert_string_equal(edit("/ballast/x(10.0.0.1)", "/ballast/x", "10.0.0.1", 0), "");
	/* lifting what is not there changes nothing */
	assert_string_equal(edit("/ballast/y(10.0.0.9)", "/ballast/x", "10.0.0.1", 0), "/ballast/y(10.0.0.9)");
	assert_string_equal(edit("", "/ballast/x", "10.0.0.1", 0), "");
}

static void too_long(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(gl_reject_edit("/ballast/y(10.0.0.9)", "/ballast/x", "10.0.0.1", 1, out, sizeof(out)), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_cli_lines),
		cmocka_unit_test(add_and_find),
		cmocka_unit_test(prefixes_are_not_matches),
		cmocka_unit_test(lift),
		cmocka_unit_test(too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
