/* Unit tests: the catalog's persistence and crash safety. */
#include "unit.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fsutil.h"

struct fixture {
	char *dir;
	struct catalog *cat;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = tmpdir_new();
	assert_non_null(f->dir);
	assert_int_equal(catalog_open(f->dir, &f->cat, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	catalog_close(f->cat);
	tmpdir_free(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	catalog_close(f->cat);
	f->cat = NULL;
	assert_int_equal(catalog_open(f->dir, &f->cat, NULL), 0);
}

/* Create a ready volume with one option and one mount ID counted twice. */
static void add_ready(struct fixture *f, const char *name)
{
	struct volume *vol = catalog_acquire(f->cat, name, 1);

	assert_non_null(vol);
	assert_int_equal(vol->state, VOL_NEW);
	strcpy(vol->backend, "local");
	strcpy(vol->created_at, "2026-11-27T10:00:00Z");
	json_object_set_new(volume_opts_w(vol), "uid", json_string("999"));
	json_object_set_new(volume_mounts_w(vol), "id1", json_integer(2));
	vol->state = VOL_READY;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
}

static void survives_reopen(void **state)
{
	struct fixture *f = *state;
	struct volume *vol;

	add_ready(f, "v1");
	reopen(f);
	vol = catalog_acquire(f->cat, "v1", 0);
	assert_non_null(vol);
	assert_int_equal(vol->state, VOL_READY);
	assert_string_equal(vol->backend, "local");
	assert_string_equal(json_string_value(json_object_get(vol->opts, "uid")), "999");
	assert_int_equal(volume_mount_count(vol), 2);
	catalog_release(f->cat, vol);
}

static void crash_between_write_and_rename(void **state)
{
	struct fixture *f = *state;
	char catdir[4096], tmp[4096];
	struct volume *vol;
	struct stat st;

	add_ready(f, "v1");
	/* What a crash after writing the temp file and before the rename
	 * leaves: a half-written temp file beside the old record. */
	snprintf(catdir, sizeof(catdir), "%s/catalog", f->dir);
	write_text(catdir, "v1.json.tmp", "{\"name\":\"v1\",\"backend\":\"loc");
	write_text(catdir, "v2.json.tmp", "{\"name\":\"v2\"");
	reopen(f);
	vol = catalog_acquire(f->cat, "v1", 0);
	assert_non_null(vol);
	assert_int_equal(volume_mount_count(vol), 2);
	catalog_release(f->cat, vol);
	assert_null(catalog_acquire(f->cat, "v2", 0));
	snprintf(tmp, sizeof(tmp), "%s/v1.json.tmp", catdir);
	assert_int_equal(stat(tmp, &st), -1);
}

static void damaged_record_kept_aside(void **state)
{
	struct fixture *f = *state;
	char catdir[4096], aside[4096];
	struct stat st;

	snprintf(catdir, sizeof(catdir), "%s/catalog", f->dir);
	write_text(catdir, "bad.json", "not json at all");
	write_text(catdir, "evil.json",
		   "{\"name\":\"../x\",\"backend\":\"local\",\"created_at\":\"x\",\"state\":\"ready\","
		   "\"options\":{},\"mount_ids\":{}}");
	add_ready(f, "good"); /* control: a whole record loads as ready */
	reopen(f);
	{
		json_t *names = catalog_names(f->cat);
		json_t *list = catalog_list(f->cat);

		/* Both names are held (damaged), neither is listed. */
		assert_int_equal(json_array_size(names), 3);
		assert_int_equal(json_array_size(list), 1);
		json_decref(names);
		json_decref(list);
	}
	assert_null(catalog_view(f->cat, "bad"));
	{
		json_t *good = catalog_view(f->cat, "good");

		assert_non_null(good);
		json_decref(good);
	}
	/* The name stays taken: a Create (acquire with create) finds the
	 * damaged entry, not a fresh one, and it is never written back. */
	{
		struct volume *vol = catalog_acquire(f->cat, "bad", 1);

		assert_non_null(vol);
		assert_int_equal(vol->state, VOL_DAMAGED);
		assert_int_equal(catalog_commit(f->cat, vol, NULL), -EIO);
		catalog_release(f->cat, vol);
		vol = catalog_acquire(f->cat, "evil", 0);
		assert_non_null(vol);
		assert_int_equal(vol->state, VOL_DAMAGED);
		catalog_release(f->cat, vol);
	}
	snprintf(aside, sizeof(aside), "%s/bad.json.corrupt", catdir);
	assert_int_equal(stat(aside, &st), 0);
	snprintf(aside, sizeof(aside), "%s/bad.json", catdir);
	assert_int_equal(stat(aside, &st), -1);
}

static void gone_and_new_are_not_listed(void **state)
{
	struct fixture *f = *state;
	struct volume *vol, *fresh;
	json_t *list;

	add_ready(f, "b");
	add_ready(f, "a");
	add_ready(f, "c");
	fresh = catalog_acquire(f->cat, "d", 1); /* a Create in progress */
	assert_null(catalog_view(f->cat, "d"));
	vol = catalog_acquire(f->cat, "b", 0);
	vol->state = VOL_GONE;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	list = catalog_list(f->cat);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "a");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")), "c");
	json_decref(list);
	catalog_release(f->cat, fresh);
	assert_null(catalog_acquire(f->cat, "d", 0));
	reopen(f);
	assert_null(catalog_acquire(f->cat, "b", 0));
	list = catalog_list(f->cat);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
}

static void view_has_the_documented_keys(void **state)
{
	static const char *const keys[] = { "name",	   "backend",	"options",    "size_bytes", "mountpoint",
					    "mount_count", "mount_ids", "created_at", "state" };
	struct fixture *f = *state;
	struct volume *vol;
	json_t *view;

	add_ready(f, "v1");
	vol = catalog_acquire(f->cat, "v1", 0);
	json_object_set_new(volume_opts_w(vol), "size", json_string("64M"));
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	view = catalog_view(f->cat, "v1");
	assert_non_null(view);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(json_object_get(view, keys[i]));
	assert_int_equal(json_integer_value(json_object_get(view, "size_bytes")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(view, "mount_count")), 2);
	json_decref(view);
}

/* Issue 19: a volume's snapshots recorded by a snapshot change are kept
 * across a restart and shown in its view; none is no key at all (10,000
 * volumes' views stay small); clearing the entry drops them. */
static void snapshots_recorded(void **state)
{
	struct fixture *f = *state;
	struct volume *vol;
	json_t *view;

	add_ready(f, "v1");
	view = catalog_view(f->cat, "v1");
	assert_null(json_object_get(view, "snapshots"));
	json_decref(view);
	vol = catalog_acquire(f->cat, "v1", 0);
	vol->snapshots = json_pack("[s, s]", "s1", "s2");
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	reopen(f);
	view = catalog_view(f->cat, "v1");
	assert_int_equal(json_array_size(json_object_get(view, "snapshots")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(view, "snapshots"), 1)), "s2");
	json_decref(view);
	vol = catalog_acquire(f->cat, "v1", 0);
	assert_int_equal(json_array_size(vol->snapshots), 2);
	volume_clear(vol);
	assert_null(vol->snapshots);
	catalog_release(f->cat, vol);
}

#define COMMITTERS 16
#define COMMITS_EACH 25

struct committer {
	struct fixture *f;
	int index, failed;
};

static void *commit_many(void *arg)
{
	struct committer *c = arg;
	char name[64];

	for (int i = 0; i < COMMITS_EACH; i++) {
		struct volume *vol;

		snprintf(name, sizeof(name), "c%d-%d", c->index, i);
		vol = catalog_acquire(c->f->cat, name, 1);
		if (!vol) {
			c->failed++;
			continue;
		}
		strcpy(vol->backend, "local");
		strcpy(vol->created_at, "2026-12-02T10:00:00Z");
		vol->state = VOL_READY;
		c->failed += catalog_commit(c->f->cat, vol, NULL) != 0;
		catalog_release(c->f->cat, vol);
	}
	return NULL;
}

/* Commits from many threads at once share their directory fsyncs; every
 * one of them is on disk when it returns (all there after a reopen). */
static void concurrent_commits_all_kept(void **state)
{
	struct fixture *f = *state;
	struct committer c[COMMITTERS];
	pthread_t t[COMMITTERS];
	json_t *all;

	for (int i = 0; i < COMMITTERS; i++) {
		c[i] = (struct committer){ .f = f, .index = i };
		assert_int_equal(pthread_create(&t[i], NULL, commit_many, &c[i]), 0);
	}
	for (int i = 0; i < COMMITTERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].failed, 0);
	}
	reopen(f);
	all = catalog_list(f->cat);
	assert_int_equal(json_array_size(all), COMMITTERS * COMMITS_EACH);
	json_decref(all);
}

struct syncer {
	struct group_sync *g;
	int fd, ret;
};

static void *sync_once(void *arg)
{
	struct syncer *s = arg;

	s->ret = group_fsync(s->g, s->fd);
	return NULL;
}

/* A shared fsync's result reaches every thread of its batch: the error of
 * one that fails (a bad descriptor), and success after it. */
static void group_fsync_reports_to_all(void **state)
{
	struct fixture *f = *state;
	struct group_sync g = GROUP_SYNC_INIT;
	struct syncer s[8];
	pthread_t t[8];
	int fd = open(f->dir, O_RDONLY | O_DIRECTORY);

	assert_true(fd >= 0);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 8; i++) {
			s[i] = (struct syncer){ .g = &g, .fd = pass == 0 ? -1 : fd, .ret = 1 };
			assert_int_equal(pthread_create(&t[i], NULL, sync_once, &s[i]), 0);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(s[i].ret, pass == 0 ? -EBADF : 0);
		}
	}
	assert_int_equal(group_fsync(NULL, -1), -EBADF);
	group_sync_destroy(&g);
	close(fd);
}

static void unfinished_states_survive_reopen(void **state)
{
	struct fixture *f = *state;
	struct volume *vol = catalog_acquire(f->cat, "half", 1);

	strcpy(vol->backend, "local");
	vol->state = VOL_CREATING;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	reopen(f);
	/* Not ready, so not shown, but there for recovery to roll back. */
	assert_null(catalog_view(f->cat, "half"));
	vol = catalog_acquire(f->cat, "half", 0);
	assert_non_null(vol);
	assert_int_equal(vol->state, VOL_CREATING);
	catalog_release(f->cat, vol);
}

/* A catalog large enough to be loaded by several threads comes back
 * whole: every ready volume with its snapshot, a removing one without, and
 * a damaged record kept aside while the rest load. */
#define MANY 1500
static void many_records_load_whole(void **state)
{
	struct fixture *f = *state;
	char name[32], catdir[4096];
	struct volume *vol;
	json_t *all;

	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		add_ready(f, name);
	}
	vol = catalog_acquire(f->cat, "m7", 0);
	vol->state = VOL_REMOVING;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	snprintf(catdir, sizeof(catdir), "%s/catalog", f->dir);
	write_text(catdir, "m9.json", "{\"name\":");
	reopen(f);
	all = catalog_list(f->cat);
	assert_int_equal(json_array_size(all), MANY - 2);
	json_decref(all);
	for (int i = 0; i < MANY; i++) {
		json_t *view;

		snprintf(name, sizeof(name), "m%d", i);
		view = catalog_view(f->cat, name);
		if (i == 7 || i == 9) {
			assert_null(view);
			continue;
		}
		assert_non_null(view);
		assert_string_equal(json_string_value(json_object_get(view, "name")), name);
		assert_int_equal(json_integer_value(json_object_get(view, "mount_count")), 2);
		json_decref(view);
	}
	vol = catalog_acquire(f->cat, "m7", 0);
	assert_non_null(vol);
	assert_int_equal(vol->state, VOL_REMOVING);
	catalog_release(f->cat, vol);
	vol = catalog_acquire(f->cat, "m9", 0);
	assert_non_null(vol);
	assert_int_equal(vol->state, VOL_DAMAGED);
	catalog_release(f->cat, vol);
	snprintf(catdir, sizeof(catdir), "%s/catalog/m9.json.corrupt", f->dir);
	assert_int_equal(access(catdir, F_OK), 0);
}

/* The refresh and the sweep find their few volumes among many by what the
 * last commit recorded, without each volume's lock: the filter keeps
 * exactly the states, mount counts and backend asked for. */
static void names_where_filters_by_last_commit(void **state)
{
	struct fixture *f = *state;
	const struct catalog_filter mounted = { 1u << VOL_READY, 1, NULL },
				    idle_local = { 1u << VOL_READY, 0, "local" },
				    idle_rbd = { 1u << VOL_READY, 0, "rbd" },
				    unfinished = { (1u << VOL_CREATING) | (1u << VOL_REMOVING), -1, NULL };
	struct volume *vol;
	json_t *names;

	add_ready(f, "busy"); /* one mount ID, counted twice */
	add_ready(f, "idle");
	add_ready(f, "going");
	vol = catalog_acquire(f->cat, "idle", 0);
	volume_drop_mounts(vol);
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	vol = catalog_acquire(f->cat, "going", 0);
	vol->state = VOL_REMOVING;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	/* held, changed, not committed: the filter shows the last commit */
	volume_drop_mounts(vol);
	names = catalog_names_where(f->cat, &mounted);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "busy");
	assert_int_equal(json_array_size(names), 1);
	json_decref(names);
	names = catalog_names_where(f->cat, &unfinished);
	assert_int_equal(json_array_size(names), 1);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "going");
	json_decref(names);
	catalog_release(f->cat, vol);
	names = catalog_names_where(f->cat, &idle_local);
	assert_int_equal(json_array_size(names), 1);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "idle");
	json_decref(names);
	names = catalog_names_where(f->cat, &idle_rbd);
	assert_int_equal(json_array_size(names), 0);
	json_decref(names);
	assert_true(catalog_has(f->cat, "idle", "local"));
	assert_true(catalog_has(f->cat, "going", "local"));
	assert_false(catalog_has(f->cat, "idle", "rbd"));
	assert_false(catalog_has(f->cat, "nowhere", "local"));
	/* the same after a restart, from the records */
	reopen(f);
	names = catalog_names_where(f->cat, &mounted);
	assert_int_equal(json_array_size(names), 1);
	json_decref(names);
	names = catalog_names_where(f->cat, &unfinished);
	assert_int_equal(json_array_size(names), 1);
	json_decref(names);
}

/* A load that cannot read the catalog directory (here: no descriptor left
 * for it) fails with a message that names the directory, and loads nothing. */
static void load_failure_names_the_catalog(void **state)
{
	struct fixture *f = *state;
	struct catalog *cat = NULL;
	struct rlimit old, low;
	struct berr err = BERR_INIT;
	char want[PATH_MAX + 32];
	json_t *view;
	int fd, ret;

	add_ready(f, "kept");
	assert_int_equal(catalog_open_unloaded(f->dir, &cat, NULL), 0);
	/* the lowest free descriptor is the limit: nothing more can be opened */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)fd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	ret = catalog_load(cat, &err);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(ret, -EMFILE);
	snprintf(want, sizeof(want), "cannot read the catalog %s/catalog: ", f->dir);
	assert_non_null(strstr(err.msg, want));
	assert_false(catalog_loaded(cat));
	assert_null(catalog_view(cat, "kept"));
	/* positive control: the same catalog loads once descriptors are free */
	assert_int_equal(catalog_load(cat, NULL), 0);
	view = catalog_view(cat, "kept");
	assert_non_null(json_object_get(view, "name"));
	json_decref(view);
	catalog_close(cat);
}

/* An answer kept with a volume's snapshot is handed out instead of the
 * view until the next commit replaces the snapshot; a reference taken
 * before that commit cannot attach an answer to the new snapshot. */
static void kept_answer_lasts_until_the_next_commit(void **state)
{
	struct fixture *f = *state;
	struct view_text *snap = NULL, *old = NULL;
	struct volume *vol;
	enum vol_state shown;
	char *answer = NULL;
	json_t *view;

	add_ready(f, "k1");
	/* nothing kept yet: the view, and the snapshot it came from */
	view = catalog_view_cached(f->cat, "k1", &shown, &answer, &snap);
	assert_non_null(view);
	assert_null(answer);
	assert_non_null(snap);
	assert_int_equal(shown, VOL_READY);
	json_decref(view);
	catalog_keep_answer(snap, "{\"kept\":1}");
	/* kept: the answer, not the view */
	snap = NULL;
	view = catalog_view_cached(f->cat, "k1", &shown, &answer, &snap);
	assert_null(view);
	assert_null(snap);
	assert_non_null(answer);
	assert_string_equal(answer, "{\"kept\":1}");
	free(answer);
	answer = NULL;
	/* a second answer for the same snapshot does not replace the first */
	view = catalog_view_cached(f->cat, "k1", &shown, NULL, &old);
	assert_non_null(view);
	json_decref(view);
	catalog_keep_answer(old, "{\"kept\":2}");
	view = catalog_view_cached(f->cat, "k1", &shown, &answer, &snap);
	assert_null(view);
	assert_string_equal(answer, "{\"kept\":1}");
	free(answer);
	answer = NULL;
	/* a reference to a snapshot with no answer yet, taken before a
	 * commit ... */
	vol = catalog_acquire(f->cat, "k1", 0);
	json_object_set_new(volume_mounts_w(vol), "id3", json_integer(1));
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	old = NULL;
	view = catalog_view_cached(f->cat, "k1", &shown, NULL, &old);
	assert_non_null(old);
	json_decref(view);
	vol = catalog_acquire(f->cat, "k1", 0);
	json_object_set_new(volume_mounts_w(vol), "id2", json_integer(1));
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	/* ... keeps its answer with the old snapshot only */
	catalog_keep_answer(old, "{\"stale\":1}");
	snap = NULL;
	view = catalog_view_cached(f->cat, "k1", &shown, &answer, &snap);
	assert_null(answer);
	assert_non_null(view);
	assert_int_equal(json_integer_value(json_object_get(view, "mount_count")), 4);
	json_decref(view);
	catalog_keep_answer(snap, NULL);
	/* gone: no answer, no view */
	vol = catalog_acquire(f->cat, "k1", 0);
	vol->state = VOL_GONE;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	snap = NULL;
	assert_null(catalog_view_cached(f->cat, "k1", &shown, &answer, &snap));
	assert_null(answer);
	assert_null(snap);
}

/* The answer kept for (cached view of) name, or NULL; freed by the caller. */
static char *kept_answer(struct fixture *f, const char *name)
{
	struct view_text *snap = NULL;
	enum vol_state shown;
	char *answer = NULL;
	json_t *view = catalog_view_cached(f->cat, name, &shown, &answer, &snap);

	json_decref(view);
	catalog_keep_answer(snap, NULL);
	return answer;
}

static void keep(struct fixture *f, const char *name, const char *answer)
{
	struct view_text *snap = NULL;
	enum vol_state shown;
	json_t *view = catalog_view_cached(f->cat, name, &shown, NULL, &snap);

	assert_non_null(view);
	json_decref(view);
	catalog_keep_answer(snap, answer);
}

/* Answers are kept up to 1 MiB in all; an answer dropped with its
 * snapshot gives its room back. */
static void kept_answers_are_bounded(void **state)
{
	struct fixture *f = *state;
	size_t big = 400u << 10;
	char *text = malloc(big), *got;
	struct volume *vol;

	memset(text, 'a', big - 1);
	text[big - 1] = '\0';
	add_ready(f, "b1");
	add_ready(f, "b2");
	add_ready(f, "b3");
	keep(f, "b1", text);
	keep(f, "b2", text);
	keep(f, "b3", text);
	got = kept_answer(f, "b1");
	assert_non_null(got);
	free(got);
	got = kept_answer(f, "b2");
	assert_non_null(got);
	free(got);
	/* 3 x 400 KiB: past the bound */
	assert_null(kept_answer(f, "b3"));
	/* b1 changes: its answer is dropped, and b3's fits */
	vol = catalog_acquire(f->cat, "b1", 0);
	json_object_set_new(volume_mounts_w(vol), "id9", json_integer(1));
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	assert_null(kept_answer(f, "b1"));
	keep(f, "b3", text);
	got = kept_answer(f, "b3");
	assert_non_null(got);
	assert_int_equal(strlen(got), big - 1);
	free(got);
	free(text);
}

/* A volume that has no options or mount IDs shares one empty object with
 * every other (they were a third of a volume's memory): what one volume
 * is given never shows in another, before or after a reopen, and an
 * emptied volume shares again. Names of every length and mountpoints
 * live beside the volume. */
static void empty_options_and_mounts_are_shared_not_mixed(void **state)
{
	struct fixture *f = *state;
	char longname[VOLUME_NAME_MAX + 1];
	struct volume *a, *b, *c;
	json_t *opts = json_pack("{s:s}", "size", "1G");

	memset(longname, 'n', VOLUME_NAME_MAX);
	longname[VOLUME_NAME_MAX] = '\0';
	a = catalog_acquire(f->cat, "a", 1);
	b = catalog_acquire(f->cat, longname, 1);
	assert_ptr_equal(a->opts, b->opts);
	assert_ptr_equal(a->mounts, b->opts);
	assert_string_equal(b->name, longname);
	assert_string_equal(b->mountpoint, "");
	json_object_set_new(volume_opts_w(a), "uid", json_string("7"));
	volume_count_mount(a, "id1", 1);
	volume_count_mount(a, "id1", 1);
	volume_count_mount(a, "id1", -1);
	assert_int_equal(volume_set_mountpoint(a, "/mnt/a"), 0);
	assert_int_equal(json_object_size(b->opts), 0);
	assert_int_equal(json_object_size(b->mounts), 0);
	assert_int_equal(volume_add_opts(b, opts), 0);
	assert_null(json_object_get(a->opts, "size"));
	assert_int_equal(json_object_size(a->opts), 1);
	strcpy(a->backend, "local");
	strcpy(b->backend, "local");
	a->state = b->state = VOL_READY;
	assert_int_equal(catalog_commit(f->cat, a, NULL), 0);
	assert_int_equal(catalog_commit(f->cat, b, NULL), 0);
	catalog_release(f->cat, a);
	catalog_release(f->cat, b);
	reopen(f);
	a = catalog_acquire(f->cat, "a", 0);
	b = catalog_acquire(f->cat, longname, 0);
	c = catalog_acquire(f->cat, "c", 1);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(a->opts, "uid")), "7");
	assert_null(json_object_get(a->opts, "size"));
	assert_int_equal(volume_mount_count(a), 1);
	assert_string_equal(a->mountpoint, "/mnt/a");
	assert_string_equal(json_string_value(json_object_get(b->opts, "size")), "1G");
	assert_null(json_object_get(b->opts, "uid"));
	assert_int_equal(volume_mount_count(b), 0);
	assert_string_equal(b->name, longname);
	assert_int_equal(json_object_size(c->opts), 0);
	assert_int_equal(json_object_size(c->mounts), 0);
	/* a's last mount ID goes: a shares the empty object again */
	volume_count_mount(a, "id1", -1);
	volume_count_mount(a, "id2", -1); /* never mounted: nothing */
	assert_int_equal(volume_set_mountpoint(a, ""), 0);
	assert_int_equal(catalog_commit(f->cat, a, NULL), 0);
	assert_ptr_equal(a->mounts, c->mounts);
	assert_string_equal(a->mountpoint, "");
	catalog_release(f->cat, c);
	catalog_release(f->cat, b);
	catalog_release(f->cat, a);
	json_decref(opts);
}

/* ino and size of f's record of name */
static struct stat record_stat(struct fixture *f, const char *name)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/catalog/%s.json", f->dir, name);
	assert_int_equal(stat(path, &st), 0);
	return st;
}

/* A record that fits in a sector is padded to it and its next versions
 * overwrite it in place (the same file); one that outgrows it replaces
 * the file, at its own length, and shrinking pads it again. Every version
 * reads back after a reopen. */
static void small_records_are_rewritten_in_place(void **state)
{
	struct fixture *f = *state;
	char big[600], dir[4096];
	struct volume *vol;
	struct stat st;
	ino_t ino;
	int fd;

	add_ready(f, "v1");
	st = record_stat(f, "v1");
	assert_int_equal(st.st_size, FS_SECTOR);
	ino = st.st_ino;
	vol = catalog_acquire(f->cat, "v1", 0);
	volume_count_mount(vol, "id1", -2);
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	st = record_stat(f, "v1");
	assert_int_equal(st.st_ino, ino);
	assert_int_equal(st.st_size, FS_SECTOR);
	reopen(f);
	vol = catalog_acquire(f->cat, "v1", 0);
	assert_int_equal(volume_mount_count(vol), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(volume_opts_w(vol), "label", json_string(big));
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	st = record_stat(f, "v1");
	assert_true(st.st_ino != ino);
	assert_true(st.st_size > (off_t)sizeof(big));
	reopen(f);
	vol = catalog_acquire(f->cat, "v1", 0);
	assert_int_equal(strlen(json_string_value(json_object_get(vol->opts, "label"))), sizeof(big) - 1);
	json_object_del(volume_opts_w(vol), "label");
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	assert_int_equal(record_stat(f, "v1").st_size, FS_SECTOR);
	ino = record_stat(f, "v1").st_ino;
	vol->state = VOL_REMOVING;
	assert_int_equal(catalog_commit(f->cat, vol, NULL), 0);
	catalog_release(f->cat, vol);
	assert_int_equal(record_stat(f, "v1").st_ino, ino);
	reopen(f);
	vol = catalog_acquire(f->cat, "v1", 0);
	assert_int_equal(vol->state, VOL_REMOVING);
	assert_null(json_object_get(vol->opts, "label"));
	catalog_release(f->cat, vol);
	/* overwrite_at touches only a file of exactly the length it writes */
	snprintf(dir, sizeof(dir), "%s/catalog", f->dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	write_text(dir, "short.json", "{}");
	assert_int_equal(overwrite_at(fd, "short.json", big, FS_SECTOR), -ESTALE);
	assert_int_equal(overwrite_at(fd, "missing.json", big, FS_SECTOR), -ENOENT);
	assert_int_equal(overwrite_at(fd, "short.json", big, FS_SECTOR + 1), -EINVAL);
	/* a FIFO: refused at once, not an open that waits for a reader */
	assert_int_equal(mkfifoat(fd, "fifo.json", 0600), 0);
	assert_int_equal(overwrite_at(fd, "fifo.json", big, FS_SECTOR), -ESTALE);
	close(fd);
	assert_int_equal(record_stat(f, "short").st_size, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_between_write_and_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_record_kept_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(gone_and_new_are_not_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(view_has_the_documented_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshots_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(unfinished_states_survive_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_commits_all_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(group_fsync_reports_to_all, setup, teardown),
		cmocka_unit_test_setup_teardown(many_records_load_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(names_where_filters_by_last_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(load_failure_names_the_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(kept_answer_lasts_until_the_next_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(kept_answers_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_options_and_mounts_are_shared_not_mixed, setup, teardown),
		cmocka_unit_test_setup_teardown(small_records_are_rewritten_in_place, setup, teardown),
	};

	return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
