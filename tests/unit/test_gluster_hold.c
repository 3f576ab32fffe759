/*
 * Unit tests: the gluster backend's decisions on holder and user records
 * (backends/gluster_hold.c), which need no cluster. A wrong answer lets
 * two hosts write one exclusive volume (a fresh lease taken, or a lease
 * read as fresh forever), or a Remove go ahead while another host has the
 * volume mounted, so every edge of the lease is checked: exactly at
 * expiry, missing fields, garbage, and a record of this host.
 */
#include "unit.h"

#include <errno.h>
#include <jansson.h>

#ifdef HAVE_GLUSTER

#include "gluster_int.h"

#define SELF "host-a"

/* A record parsed from its text; the JSON value is kept in *keep (the
 * holder's strings point into it). */
static struct gl_holder parsed(const char *text, json_t **keep, int want)
{
	struct gl_holder h;

	*keep = json_loads(text, JSON_DECODE_ANY, NULL);
	assert_non_null(*keep);
	assert_int_equal(gl_holder_parse(*keep, &h), want);
	return h;
}

/* A well-formed record of host, expiring at expires. */
static struct gl_holder rec_of(const char *host, long long expires)
{
	struct gl_holder h = { .host = host, .since = "s", .expires = "e", .addr = "10.0.0.1" };

	h.expires_unix = expires;
	return h;
}

static void parse_full_record(void **state)
{
	json_t *v;
	struct gl_holder h;

	(void)state;
	h = parsed("{\"host\": \"host-b\", \"since\": \"2026-01-01T00:00:00Z\", \"expires\": "
		   "\"2026-01-01T00:00:30Z\", \"expires_unix\": 1767225630, \"lease\": 30, \"addr\": \"10.0.0.2\"}",
		   &v, 0);
	assert_string_equal(h.host, "host-b");
	assert_string_equal(h.since, "2026-01-01T00:00:00Z");
	assert_string_equal(h.expires, "2026-01-01T00:00:30Z");
	assert_string_equal(h.addr, "10.0.0.2");
	assert_int_equal(h.expires_unix, 1767225630LL);
	json_decref(v);
}

static void parse_missing_fields_and_garbage(void **state)
{
	struct gl_holder h;
	json_t *v;

	(void)state;
	/* no host: not anyone's, and refused as malformed */
	h = parsed("{\"expires_unix\": 100}", &v, -EBADMSG);
	assert_null(h.host);
	assert_int_equal(h.expires_unix, 100);
	json_decref(v);
	/* no expiry: reads as expired long ago (what the backend always did) */
	h = parsed("{\"host\": \"host-b\", \"since\": \"x\"}", &v, -EBADMSG);
	assert_string_equal(h.host, "host-b");
	assert_int_equal(h.expires_unix, 0);
	assert_true(gl_holder_expired(&h, 1));
	assert_null(h.addr);
	json_decref(v);
	/* fields of the wrong type count as missing */
	h = parsed("{\"host\": 7, \"expires_unix\": \"1767225630\", \"addr\": null}", &v, -EBADMSG);
	assert_null(h.host);
	assert_null(h.addr);
	assert_int_equal(h.expires_unix, 0);
	json_decref(v);
	/* not an object at all */
	h = parsed("[\"host-b\", 100]", &v, -EBADMSG);
	assert_null(h.host);
	assert_null(h.since);
	assert_int_equal(h.expires_unix, 0);
	json_decref(v);
	h = parsed("\"host-b\"", &v, -EBADMSG);
	assert_null(h.host);
	json_decref(v);
	assert_int_equal(gl_holder_parse(NULL, &h), -EBADMSG);
	assert_null(h.host);
}

static void expiry_edges(void **state)
{
	struct gl_holder h = rec_of("host-b", 100);

	(void)state;
	assert_false(gl_holder_expired(&h, 99));
	assert_false(gl_holder_expired(&h, 100)); /* exactly at expiry: still fresh */
	assert_true(gl_holder_expired(&h, 101));
	h.expires_unix = 0;
	assert_true(gl_holder_expired(&h, 1));
}

static void mine_or_not(void **state)
{
	struct gl_holder h = rec_of(SELF, 100);

	(void)state;
	assert_true(gl_holder_mine(&h, SELF));
	assert_false(gl_holder_mine(&h, SELF "x")); /* a prefix is another host */
	h.host = "host-a2";
	assert_false(gl_holder_mine(&h, SELF));
	h.host = "";
	assert_false(gl_holder_mine(&h, SELF));
	h.host = NULL;
	assert_false(gl_holder_mine(&h, SELF));
}

static void take_decisions(void **state)
{
	struct gl_holder other = rec_of("host-b", 100), mine = rec_of(SELF, 100), noname = rec_of(NULL, 100);

	(void)state;
	assert_int_equal(gl_take_decide(NULL, SELF, 1, 50), GL_TAKE_FREE);
	assert_int_equal(gl_take_decide(NULL, SELF, 0, 50), GL_TAKE_FREE);
	/* our own record is renewed, fresh or not, whatever the policy */
	assert_int_equal(gl_take_decide(&mine, SELF, 1, 50), GL_TAKE_MINE);
	assert_int_equal(gl_take_decide(&mine, SELF, 0, 500), GL_TAKE_MINE);
	/* another host's fresh lease is never taken, up to its last second */
	assert_int_equal(gl_take_decide(&other, SELF, 1, 50), GL_TAKE_BUSY);
	assert_int_equal(gl_take_decide(&other, SELF, 1, 100), GL_TAKE_BUSY);
	assert_int_equal(gl_take_decide(&other, SELF, 0, 100), GL_TAKE_BUSY);
	/* expired: fenced and taken, unless the policy is never */
	assert_int_equal(gl_take_decide(&other, SELF, 1, 101), GL_TAKE_FENCE);
	assert_int_equal(gl_take_decide(&other, SELF, 0, 101), GL_TAKE_NEVER);
	/* a record naming no host is nobody's: like another host's */
	assert_int_equal(gl_take_decide(&noname, SELF, 1, 100), GL_TAKE_BUSY);
	assert_int_equal(gl_take_decide(&noname, SELF, 1, 101), GL_TAKE_FENCE);
}

/* A renewal never writes the hold of a host that a fence note names (a
 * taker may be fencing it: a stuck volume otherwise); our own record is
 * renewed even when its lease ran out (a restarted daemon). */
static void renew_decisions(void **state)
{
	struct gl_holder other = rec_of("host-b", 100), mine = rec_of(SELF, 100), noname = rec_of(NULL, 100);

	(void)state;
	assert_int_equal(gl_renew_decide(NULL, SELF, 0), GL_RENEW_GONE);
	assert_int_equal(gl_renew_decide(NULL, SELF, 1), GL_RENEW_GONE);
	assert_int_equal(gl_renew_decide(&other, SELF, 0), GL_RENEW_OTHER);
	assert_int_equal(gl_renew_decide(&other, SELF, 1), GL_RENEW_OTHER);
	assert_int_equal(gl_renew_decide(&noname, SELF, 0), GL_RENEW_OTHER);
	assert_int_equal(gl_renew_decide(&mine, SELF, 0), GL_RENEW_OK);
	assert_int_equal(gl_renew_decide(&mine, SELF, 1), GL_RENEW_FENCED);
	mine.host = SELF "x"; /* a prefix is another host */
	assert_int_equal(gl_renew_decide(&mine, SELF, 1), GL_RENEW_OTHER);
}

static void take_decisions_from_text(void **state)
{
	struct gl_holder h;
	json_t *v;

	(void)state;
	h = parsed("{\"host\": \"" SELF "\", \"expires_unix\": 10}", &v, 0);
	assert_int_equal(gl_take_decide(&h, SELF, 0, 1000), GL_TAKE_MINE);
	json_decref(v);
	/* garbage reads as expired: fenced first (which needs an address,
	 * so gl_fence_host refuses it), never taken outright */
	h = parsed("{}", &v, -EBADMSG);
	assert_int_equal(gl_take_decide(&h, SELF, 1, 1000), GL_TAKE_FENCE);
	assert_int_equal(gl_take_decide(&h, SELF, 0, 1000), GL_TAKE_NEVER);
	assert_null(h.addr);
	json_decref(v);
}

static void release_decisions(void **state)
{
	struct gl_holder other = rec_of("host-b", 100), mine = rec_of(SELF, 100);

	(void)state;
	/* ours and mounted here: unmount instead, even forced or expired */
	assert_int_equal(gl_release_decide(&mine, SELF, 1, 0, 50), GL_RELEASE_MOUNTED_HERE);
	assert_int_equal(gl_release_decide(&mine, SELF, 1, 1, 500), GL_RELEASE_MOUNTED_HERE);
	/* ours, left by a crash: dropped once expired or forced, never fenced */
	assert_int_equal(gl_release_decide(&mine, SELF, 0, 0, 100), GL_RELEASE_FRESH);
	assert_int_equal(gl_release_decide(&mine, SELF, 0, 0, 101), GL_RELEASE_DROP);
	assert_int_equal(gl_release_decide(&mine, SELF, 0, 1, 50), GL_RELEASE_DROP);
	/* another host's: a fresh lease needs force; then it is fenced */
	assert_int_equal(gl_release_decide(&other, SELF, 0, 0, 100), GL_RELEASE_FRESH);
	assert_int_equal(gl_release_decide(&other, SELF, 0, 1, 100), GL_RELEASE_FENCE);
	assert_int_equal(gl_release_decide(&other, SELF, 0, 0, 101), GL_RELEASE_FENCE);
	/* mounted here under another host's record (it took over): fenced */
	assert_int_equal(gl_release_decide(&other, SELF, 1, 0, 101), GL_RELEASE_FENCE);
}

static void takeover_policy(void **state)
{
	(void)state;
	assert_true(gl_takeover_policy(NULL, 1));
	assert_false(gl_takeover_policy(NULL, 0));
	assert_true(gl_takeover_policy("after-lease", 0));
	assert_false(gl_takeover_policy("never", 1));
	assert_false(gl_takeover_policy("", 1));
}

static void make_then_parse(void **state)
{
	json_t *v = gl_holder_make(SELF, NULL, 1000, 30, "10.0.0.1");
	struct gl_holder h;

	(void)state;
	assert_non_null(v);
	assert_int_equal(gl_holder_parse(v, &h), 0);
	assert_string_equal(h.host, SELF);
	assert_string_equal(h.since, "1970-01-01T00:16:40Z");
	assert_string_equal(h.expires, "1970-01-01T00:17:10Z");
	assert_string_equal(h.addr, "10.0.0.1");
	assert_int_equal(h.expires_unix, 1030);
	assert_int_equal(json_integer_value(json_object_get(v, "lease")), 30);
	assert_false(gl_holder_expired(&h, 1030));
	assert_true(gl_holder_expired(&h, 1031));
	json_decref(v);
	/* a renewal keeps since; an unknown address is "" */
	v = gl_holder_make(SELF, "2026-01-01T00:00:00Z", 1000, 30, "");
	assert_int_equal(gl_holder_parse(v, &h), 0);
	assert_string_equal(h.since, "2026-01-01T00:00:00Z");
	assert_string_equal(h.addr, "");
	json_decref(v);
}

static void user_entries(void **state)
{
	(void)state;
	assert_string_equal(gl_user_entry_host("pg@host-b", "pg", SELF), "host-b");
	assert_null(gl_user_entry_host("pg@" SELF, "pg", SELF)); /* our own */
	assert_string_equal(gl_user_entry_host("pg@" SELF "2", "pg", SELF), SELF "2");
	/* another volume whose name starts with this one's */
	assert_null(gl_user_entry_host("pgdata@host-b", "pg", SELF));
	assert_null(gl_user_entry_host("p@host-b", "pg", SELF));
	assert_null(gl_user_entry_host("pg", "pg", SELF));
	/* a record being written */
	assert_null(gl_user_entry_host(".pg@host-b.tmp.host-b.42.7f00", "pg", SELF));
	/* A volume or host whose name holds ".tmp." is a record like any
	 * other: before, another host's mount of db.tmp.1 went unseen and a
	 * Remove deleted the volume under it. */
	assert_string_equal(gl_user_entry_host("db.tmp.1@host-b", "db.tmp.1", SELF), "host-b");
	assert_string_equal(gl_user_entry_host("pg@b.tmp.x", "pg", SELF), "b.tmp.x");
	assert_null(gl_user_entry_host(".", "pg", SELF));
}

static void meta_entries(void **state)
{
	char name[VOLUME_NAME_MAX + 1], longest[VOLUME_NAME_MAX + 8];

	(void)state;
	assert_int_equal(gl_meta_entry_name("pg.json", name, sizeof(name)), 0);
	assert_string_equal(name, "pg");
	assert_int_equal(gl_meta_entry_name("a.b.json", name, sizeof(name)), 0);
	assert_string_equal(name, "a.b");
	/* other records, temporary files, the subdirectories */
	assert_int_equal(gl_meta_entry_name("pg.holder", name, sizeof(name)), -EINVAL);
	assert_int_equal(gl_meta_entry_name("pg.fence", name, sizeof(name)), -EINVAL);
	assert_int_equal(gl_meta_entry_name("pg.json.tmp.host-a.1.2", name, sizeof(name)), -EINVAL);
	assert_int_equal(gl_meta_entry_name("trash", name, sizeof(name)), -EINVAL);
	assert_int_equal(gl_meta_entry_name(".json", name, sizeof(name)), -EINVAL);
	assert_int_equal(gl_meta_entry_name("-x.json", name, sizeof(name)), -EINVAL);
	/* the longest name fits; one more does not, nor a short buffer */
	memset(longest, 'a', VOLUME_NAME_MAX);
	strcpy(longest + VOLUME_NAME_MAX, ".json");
	assert_int_equal(gl_meta_entry_name(longest, name, sizeof(name)), 0);
	assert_int_equal(strlen(name), VOLUME_NAME_MAX);
	assert_int_equal(gl_meta_entry_name(longest, name, 8), -EINVAL);
	memset(longest, 'a', VOLUME_NAME_MAX + 1);
	strcpy(longest + VOLUME_NAME_MAX + 1, ".json");
	assert_int_equal(gl_meta_entry_name(longest, name, sizeof(name)), -EINVAL);
}

/* A forced release breaks the hold it fenced even when its host renewed it
 * in between (the fence takes longer than a renewal period, more so under
 * the fence lock), but never a hold taken anew since (that host lifted its
 * fence to take it). */
static void same_hold(void **state)
{
	json_t *a = gl_holder_make("host-b", "2026-01-01T00:00:00Z", 100, 30, "10.0.0.2");
	json_t *renewed = gl_holder_make("host-b", "2026-01-01T00:00:00Z", 110, 30, "10.0.0.2");
	json_t *anew = gl_holder_make("host-b", "2026-01-01T00:00:09Z", 110, 30, "10.0.0.2");
	json_t *other = gl_holder_make("host-c", "2026-01-01T00:00:00Z", 100, 30, "10.0.0.3");
	json_t *nosince = json_pack("{s:s, s:I}", "host", "host-b", "expires_unix", (json_int_t)130);

	(void)state;
	assert_true(gl_holder_same(a, a));
	assert_true(gl_holder_same(a, renewed));
	assert_false(json_equal(a, renewed)); /* what the old comparison refused */
	assert_false(gl_holder_same(a, anew));
	assert_false(gl_holder_same(a, other));
	assert_false(gl_holder_same(a, nosince));
	assert_false(gl_holder_same(nosince, nosince));
	assert_false(gl_holder_same(a, NULL));
	json_decref(a);
	json_decref(renewed);
	json_decref(anew);
	json_decref(other);
	json_decref(nosince);
}

/* The fence lock (issue 13, item 2: two hosts editing auth.reject at once
 * dropped each other's fence). Wrong answers either let two edits run at
 * once (a fresh lock read as stale) or wedge every fence after a crash (a
 * dead holder's lock read as held forever). Fails when the fix is
 * reverted: gl_lock_decide does not exist (the file does not build). */
static void lock_decisions(void **state)
{
	json_t *mine = gl_lock_make("host-a", "host-a/1/0/5", 100, 22);
	json_t *other = gl_lock_make("host-b", "host-b/7/3/9", 100, 22);
	json_t *noexp = json_pack("{s:s, s:s}", "host", "host-b", "token", "t");
	json_t *strexp = json_pack("{s:s, s:s, s:s}", "host", "host-b", "token", "t", "expires_unix", "122");

	(void)state;
	assert_non_null(mine);
	assert_non_null(other);
	assert_int_equal(json_integer_value(json_object_get(mine, "expires_unix")), 122);
	assert_string_equal(json_string_value(json_object_get(mine, "host")), "host-a");
	assert_int_equal(gl_lock_decide(NULL, "host-a/1/0/5", 100), GL_LOCK_FREE);
	/* ours by token, whatever its lease says */
	assert_int_equal(gl_lock_decide(mine, "host-a/1/0/5", 100), GL_LOCK_MINE);
	assert_int_equal(gl_lock_decide(mine, "host-a/1/0/5", 500), GL_LOCK_MINE);
	/* the same host's other edit (another token) waits like any other */
	assert_int_equal(gl_lock_decide(mine, "host-a/1/1/6", 100), GL_LOCK_HELD);
	assert_int_equal(gl_lock_decide(other, "host-a/1/0/5", 100), GL_LOCK_HELD);
	assert_int_equal(gl_lock_decide(other, "host-a/1/0/5", 122), GL_LOCK_HELD); /* at expiry: held */
	assert_int_equal(gl_lock_decide(other, "host-a/1/0/5", 123), GL_LOCK_STALE);
	assert_int_equal(gl_lock_decide(other, NULL, 100), GL_LOCK_HELD);
	/* malformed: breakable, or one bad record would stop every fence */
	assert_int_equal(gl_lock_decide(noexp, "x", 100), GL_LOCK_STALE);
	assert_int_equal(gl_lock_decide(strexp, "x", 100), GL_LOCK_STALE);
	json_decref(mine);
	json_decref(other);
	json_decref(noexp);
	json_decref(strexp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lock_decisions),    cmocka_unit_test(same_hold),
		cmocka_unit_test(parse_full_record), cmocka_unit_test(parse_missing_fields_and_garbage),
		cmocka_unit_test(expiry_edges),	     cmocka_unit_test(mine_or_not),
		cmocka_unit_test(take_decisions),    cmocka_unit_test(take_decisions_from_text),
		cmocka_unit_test(release_decisions), cmocka_unit_test(takeover_policy),
		cmocka_unit_test(make_then_parse),   cmocka_unit_test(user_entries),
		cmocka_unit_test(meta_entries),	     cmocka_unit_test(renew_decisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !HAVE_GLUSTER */

static void gluster_not_built(void **state)
{
	(void)state;
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gluster_not_built),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
