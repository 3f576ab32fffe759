/* catalog.c - the crash-safe volume catalog (see catalog.h). */
#define LOG_TAG "catalog"
#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "fsutil.h"
#include "log.h"

#define CATALOG_BUCKETS 4096
#define RECORD_SUFFIX ".json"

/* A volume's snapshot as JSON text, shared by reference: Get and List
 * read it without holding the table lock while they parse it. Text takes
 * a tenth of the memory of the parsed object. An answer rendered from it
 * alone may be kept beside it (catalog_keep_answer); a commit replaces
 * both. */
struct view_text {
	atomic_int refs;
	_Atomic(char *) answer;
	char json[];
};

/* Kept answers in all, in bytes, and their bound: about 4,000 volumes'
 * Get answers. Past it an answer is rendered each time, as before any was
 * kept, so that a catalog of many volumes, each asked for once, does not
 * grow ballastd by the size of all their answers. */
#define ANSWERS_MAX_BYTES (1u << 20)
static atomic_size_t answers_bytes;

static struct view_text *view_text_new(const json_t *view)
{
	char *json = view ? json_dumps(view, JSON_COMPACT) : NULL;
	size_t len = json ? strlen(json) : 0;
	struct view_text *t = json ? malloc(sizeof(*t) + len + 1) : NULL;

	if (t) {
		atomic_init(&t->refs, 1);
		atomic_init(&t->answer, NULL);
		memcpy(t->json, json, len + 1);
	}
	free(json);
	return t;
}

static struct view_text *view_text_ref(struct view_text *t)
{
	if (t)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

static void view_text_unref(struct view_text *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
		char *answer = atomic_load(&t->answer);

		if (answer) {
			atomic_fetch_sub(&answers_bytes, strlen(answer) + 1);
			free(answer);
		}
		free(t);
	}
}

static json_t *view_text_parse(const struct view_text *t)
{
	return t ? json_loads(t->json, 0, NULL) : NULL;
}

struct catalog {
	pthread_mutex_t table_lock;
	struct volume *buckets[CATALOG_BUCKETS];
	unsigned long gen; /* counts changes of any view; under table_lock */
	int dirfd;	   /* <state_dir>/catalog */
	char *path;	   /* its path, for messages */
	/* concurrent commits share the fsyncs of dirfd */
	struct group_sync dirsync;
	int loaded; /* catalog_load has run */
};

static const char *const state_names[] = {
	[VOL_NEW] = "new",	     [VOL_CREATING] = "creating", [VOL_READY] = "ready",
	[VOL_REMOVING] = "removing", [VOL_GONE] = "gone",	  [VOL_DAMAGED] = "damaged",
};

static unsigned bucket_of(const char *name)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % CATALOG_BUCKETS;
}

long volume_mount_count(const struct volume *vol)
{
	const char *id;
	json_t *n;
	long total = 0;

	json_object_foreach (vol->mounts, id, n)
		total += (long)json_integer_value(n);
	return total;
}

/* The empty object of every volume without options or mount IDs (see
 * volume_opts_w); made once, never freed, never changed. Its reference
 * count is jansson's mark of a static value (as json_null()'s): taking
 * and dropping references to it writes nothing, so that threads share it
 * without a race. */
static json_t *empty_object;
static pthread_once_t empty_once = PTHREAD_ONCE_INIT;

static void empty_make(void)
{
	empty_object = json_object();
	if (empty_object)
		empty_object->refcount = (size_t)-1;
}

static json_t *empty_shared(void)
{
	pthread_once(&empty_once, empty_make);
	return empty_object;
}

/* *obj, made the volume's own object first if it is the shared one. */
static json_t *own_object(json_t **obj)
{
	if (*obj == empty_object) {
		json_t *own = json_object();

		if (!own)
			return NULL;
		*obj = own;
	}
	return *obj;
}

/* *obj emptied: the shared empty object again. */
static void drop_object(json_t **obj)
{
	if (*obj != empty_object) {
		json_decref(*obj);
		*obj = empty_shared();
	}
}

json_t *volume_opts_w(struct volume *vol)
{
	return own_object(&vol->opts);
}

json_t *volume_mounts_w(struct volume *vol)
{
	return own_object(&vol->mounts);
}

/* Add the members of from to *obj (the shared empty object stays shared
 * when from has none). 0 or -1 (no memory). */
static int add_members(json_t **obj, json_t *from)
{
	return json_object_size(from) ? json_object_update(own_object(obj), from) : 0;
}

int volume_add_opts(struct volume *vol, json_t *opts)
{
	return add_members(&vol->opts, opts);
}

void volume_count_mount(struct volume *vol, const char *id, long delta)
{
	json_int_t n = json_integer_value(json_object_get(vol->mounts, id)) + delta;

	if (n > 0)
		json_object_set_new(volume_mounts_w(vol), id, json_integer(n));
	else if (json_object_get(vol->mounts, id))
		json_object_del(volume_mounts_w(vol), id);
}

void volume_drop_opts(struct volume *vol)
{
	drop_object(&vol->opts);
}

void volume_drop_mounts(struct volume *vol)
{
	drop_object(&vol->mounts);
}

static struct volume *volume_new(const char *name)
{
	size_t len = strnlen(name, VOLUME_NAME_MAX);
	struct volume *vol = calloc(1, sizeof(*vol) + len + 2);

	if (!vol)
		return NULL;
	vol->opts = empty_shared();
	vol->mounts = empty_shared();
	if (!vol->opts) {
		free(vol);
		return NULL;
	}
	memcpy(vol->names, name, len);
	vol->name = vol->names;
	vol->mountpoint = vol->names + len + 1;
	pthread_mutex_init(&vol->lock, NULL);
	return vol;
}

/* The "" stored after the name: the mountpoint until one is set. */
static char *no_mountpoint(struct volume *vol)
{
	return vol->names + strlen(vol->name) + 1;
}

/* The mountpoint's heap copy, if it has one. */
static char *mountpoint_heap(struct volume *vol)
{
	return vol->mountpoint == no_mountpoint(vol) ? NULL : vol->mountpoint;
}

static void volume_free(struct volume *vol)
{
	json_decref(vol->snapshots);
	json_decref(vol->opts);
	json_decref(vol->mounts);
	view_text_unref(vol->view);
	free(mountpoint_heap(vol));
	pthread_mutex_destroy(&vol->lock);
	free(vol);
}

int volume_set_mountpoint(struct volume *vol, const char *path)
{
	char *copy = path[0] ? strdup(path) : no_mountpoint(vol);

	if (!copy)
		return -ENOMEM;
	free(mountpoint_heap(vol));
	vol->mountpoint = copy;
	return 0;
}

/* The on-disk record: everything needed to rebuild the volume. */
static json_t *volume_record(const struct volume *vol)
{
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:s}", "name", vol->name, "backend", vol->backend,
				"created_at", vol->created_at, "state", state_names[vol->state], "options", vol->opts,
				"mount_ids", vol->mounts, "mountpoint", vol->mountpoint);

	if (rec && vol->resized_bytes)
		json_object_set_new(rec, "resized_bytes", json_integer((json_int_t)vol->resized_bytes));
	if (rec && json_array_size(vol->snapshots) > 0)
		json_object_set(rec, "snapshots", vol->snapshots);
	return rec;
}

/* The public view: what Get, List and `ballast ls --json` show. */
static json_t *volume_view(const struct volume *vol)
{
	const char *size = opt_get(vol->opts, "size");
	uint64_t bytes = 0;
	json_t *v = volume_record(vol);

	if (!v)
		return NULL;
	json_object_set_new(v, "mount_count", json_integer(volume_mount_count(vol)));
	json_object_del(v, "resized_bytes");
	if (vol->resized_bytes)
		json_object_set_new(v, "size_bytes", json_integer((json_int_t)vol->resized_bytes));
	else if (size && parse_size(size, &bytes, NULL) == 0)
		json_object_set_new(v, "size_bytes", json_integer((json_int_t)bytes));
	else
		json_object_set_new(v, "size_bytes", json_null());
	return v;
}

static int state_parse(const char *s, enum vol_state *out)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (s && strcmp(s, state_names[i]) == 0) {
			*out = (enum vol_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Insert vol into the table; caller holds table_lock. */
static void table_insert(struct catalog *cat, struct volume *vol)
{
	unsigned b = bucket_of(vol->name);

	vol->next = cat->buckets[b];
	cat->buckets[b] = vol;
}

/* table_insert at start, where records load in several threads */
static void table_add(struct catalog *cat, struct volume *vol)
{
	pthread_mutex_lock(&cat->table_lock);
	table_insert(cat, vol);
	pthread_mutex_unlock(&cat->table_lock);
}

static struct volume *table_find(struct catalog *cat, const char *name)
{
	for (struct volume *v = cat->buckets[bucket_of(name)]; v; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static void table_unlink(struct catalog *cat, struct volume *vol)
{
	struct volume **pp = &cat->buckets[bucket_of(vol->name)];

	while (*pp && *pp != vol)
		pp = &(*pp)->next;
	if (*pp)
		*pp = vol->next;
}

/* A record that could not be read: kept aside (renamed *.corrupt) so that
 * nothing is silently lost, and its name held by a VOL_DAMAGED entry so
 * that no request (a Create that would replace the volume's data, above
 * all) acts on that name until an operator has looked. */
static void keep_damaged(struct catalog *cat, const char *file, const char *why)
{
	char aside[VOLUME_NAME_MAX + 64], name[VOLUME_NAME_MAX + 1];
	size_t n = strlen(file) - strlen(RECORD_SUFFIX);
	struct volume *vol;

	snprintf(aside, sizeof(aside), "%s.corrupt", file);
	if (renameat(cat->dirfd, file, cat->dirfd, aside) < 0)
		log_err("catalog record %s is damaged (%s) and cannot be kept aside", file, why);
	else
		log_errx("catalog record %s is damaged (%s); kept aside as %s; volume refused until it is repaired",
			 file, why, aside);
	if (n > VOLUME_NAME_MAX)
		return;
	snprintf(name, sizeof(name), "%.*s", (int)n, file);
	if (validate_name(name, NULL) < 0)
		return;
	vol = volume_new(name);
	if (!vol)
		return;
	vol->state = VOL_DAMAGED;
	vol->shown = VOL_DAMAGED;
	table_add(cat, vol);
}

/* Load one record file; one that cannot be read or parsed is kept aside
 * (keep_damaged). */
static int load_record(struct catalog *cat, const char *file)
{
	json_error_t jerr;
	struct volume *vol = NULL;
	const char *name = NULL, *backend = NULL, *created = NULL, *state = NULL, *mp = "";
	json_t *opts = NULL, *mounts = NULL;
	json_t *rec = NULL;
	char *text = NULL;
	size_t len = 0;
	int ret;

	ret = read_file_at(cat->dirfd, file, 1 << 20, &text, &len);
	if (ret < 0) {
		keep_damaged(cat, file, strerror(-ret));
		goto out;
	}
	rec = json_loadb(text, len, 0, &jerr);
	if (!rec ||
	    json_unpack(rec, "{s:s, s:s, s:s, s:s, s:o, s:o, s?s}", "name", &name, "backend", &backend, "created_at",
			&created, "state", &state, "options", &opts, "mount_ids", &mounts, "mountpoint", &mp) != 0 ||
	    validate_name(name, NULL) < 0 || !json_is_object(opts) || !json_is_object(mounts)) {
		keep_damaged(cat, file, rec ? "fields missing or invalid" : "not JSON");
		ret = -EINVAL;
		goto out;
	}
	vol = volume_new(name);
	if (!vol) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(vol->backend, sizeof(vol->backend), "%s", backend);
	snprintf(vol->created_at, sizeof(vol->created_at), "%s", created);
	if (volume_set_mountpoint(vol, mp) < 0) {
		volume_free(vol);
		ret = -ENOMEM;
		goto out;
	}
	vol->resized_bytes = (uint64_t)json_integer_value(json_object_get(rec, "resized_bytes"));
	if (json_array_size(json_object_get(rec, "snapshots")) > 0)
		vol->snapshots = json_incref(json_object_get(rec, "snapshots"));
	if (state_parse(state, &vol->state) < 0)
		vol->state = VOL_CREATING; /* unknown: treat as unfinished */
	add_members(&vol->opts, opts);
	add_members(&vol->mounts, mounts);
	if (vol->state == VOL_READY) {
		json_t *view = volume_view(vol);

		vol->view = view_text_new(view);
		json_decref(view);
	}
	vol->shown = vol->state;
	vol->shown_mounts = volume_mount_count(vol);
	table_add(cat, vol);
	ret = 0;
out:
	json_decref(rec);
	free(text);
	return ret;
}

/* The record files found at start, loaded by up to CATALOG_LOADERS
 * threads: each record is independent, and 10,000 of them (open, read,
 * parse, the snapshot's text) took ~250 ms on one core. */
#define CATALOG_LOADERS 4
#define CATALOG_LOAD_BATCH 64

struct loader {
	struct catalog *cat;
	char **files;
	size_t n;
	atomic_size_t next;
};

static void *load_some(void *arg)
{
	struct loader *l = arg;
	size_t i, end;

	while ((i = atomic_fetch_add(&l->next, CATALOG_LOAD_BATCH)) < l->n) {
		end = i + CATALOG_LOAD_BATCH < l->n ? i + CATALOG_LOAD_BATCH : l->n;
		for (; i < end; i++)
			load_record(l->cat, l->files[i]);
	}
	return NULL;
}

static void load_all(struct catalog *cat, char **files, size_t n)
{
	struct loader l = { .cat = cat, .files = files, .n = n };
	pthread_t t[CATALOG_LOADERS - 1];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int helpers = 0, want;

	want = n < 4 * CATALOG_LOAD_BATCH ? 0 : (int)(cpus > CATALOG_LOADERS ? CATALOG_LOADERS : cpus) - 1;
	while (helpers < want && pthread_create(&t[helpers], NULL, load_some, &l) == 0)
		helpers++;
	load_some(&l);
	while (helpers > 0)
		pthread_join(t[--helpers], NULL);
}

int catalog_open_unloaded(const char *state_dir, struct catalog **out, struct berr *err)
{
	struct catalog *cat;
	char path[PATH_MAX];
	int ret;

	cat = calloc(1, sizeof(*cat));
	if (!cat)
		return berr_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&cat->table_lock, NULL);
	cat->dirsync = (struct group_sync)GROUP_SYNC_INIT;
	cat->dirfd = -1;
	snprintf(path, sizeof(path), "%s/catalog", state_dir);
	ret = mkdir_p(path, 0700);
	if (ret < 0) {
		berr_set(err, ret, "cannot create %s: %s", path, strerror(-ret));
		goto out_free;
	}
	cat->path = strdup(path);
	if (!cat->path) {
		ret = berr_set(err, -ENOMEM, "out of memory");
		goto out_free;
	}
	cat->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cat->dirfd < 0) {
		ret = berr_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
		goto out_free;
	}
	*out = cat;
	return 0;
out_free:
	catalog_close(cat);
	return ret;
}

int catalog_load(struct catalog *cat, struct berr *err)
{
	char **files = NULL;
	size_t nfiles = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int fd, ret = 0;

	if (cat->loaded)
		return 0;
	CRASH_POINT("catalog.load");
	fd = dup(cat->dirfd);
	dir = fd < 0 ? NULL : fdopendir(fd);
	if (!dir) {
		ret = berr_set(err, -errno, "cannot read the catalog %s: %s", cat->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while ((de = readdir(dir))) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
			/* A crash between write and rename: the old record
			 * (if any) is still whole; the temp file is garbage. */
			unlinkat(cat->dirfd, de->d_name, 0);
			continue;
		}
		if (n <= strlen(RECORD_SUFFIX) || strcmp(de->d_name + n - strlen(RECORD_SUFFIX), RECORD_SUFFIX))
			continue;
		if (nfiles == cap) {
			char **grown = realloc(files, (cap ? cap * 2 : 256) * sizeof(*files));

			if (!grown) {
				ret = berr_set(err, -ENOMEM, "out of memory");
				break;
			}
			files = grown;
			cap = cap ? cap * 2 : 256;
		}
		if (!(files[nfiles] = strdup(de->d_name))) {
			ret = berr_set(err, -ENOMEM, "out of memory");
			break;
		}
		nfiles++;
	}
	closedir(dir);
	if (ret == 0) {
		load_all(cat, files, nfiles);
		cat->loaded = 1;
	}
	while (nfiles > 0)
		free(files[--nfiles]);
	free(files);
	return ret;
}

int catalog_loaded(const struct catalog *cat)
{
	return cat->loaded;
}

int catalog_open(const char *state_dir, struct catalog **out, struct berr *err)
{
	struct catalog *cat;
	int ret;

	ret = catalog_open_unloaded(state_dir, &cat, err);
	if (ret < 0)
		return ret;
	ret = catalog_load(cat, err);
	if (ret < 0) {
		catalog_close(cat);
		return ret;
	}
	*out = cat;
	return 0;
}

void catalog_close(struct catalog *cat)
{
	if (!cat)
		return;
	for (int b = 0; b < CATALOG_BUCKETS; b++) {
		struct volume *v = cat->buckets[b];

		while (v) {
			struct volume *next = v->next;

			volume_free(v);
			v = next;
		}
	}
	if (cat->dirfd >= 0)
		close(cat->dirfd);
	pthread_mutex_destroy(&cat->table_lock);
	group_sync_destroy(&cat->dirsync);
	free(cat->path);
	free(cat);
}

struct volume *catalog_acquire(struct catalog *cat, const char *name, int create)
{
	struct volume *vol;

	pthread_mutex_lock(&cat->table_lock);
	vol = table_find(cat, name);
	if (!vol && create) {
		vol = volume_new(name);
		if (vol)
			table_insert(cat, vol);
	}
	if (vol)
		vol->refs++;
	pthread_mutex_unlock(&cat->table_lock);
	if (!vol)
		return NULL;
	pthread_mutex_lock(&vol->lock);
	/* Removed, or not yet created, while we waited for it: behave as if
	 * it was never found. */
	if (!create && (vol->state == VOL_GONE || vol->state == VOL_NEW)) {
		catalog_release(cat, vol);
		return NULL;
	}
	if (vol->state == VOL_GONE)
		volume_clear(vol);
	return vol;
}

void volume_clear(struct volume *vol)
{
	vol->state = VOL_NEW;
	volume_drop_opts(vol);
	volume_drop_mounts(vol);
	vol->mountpoint[0] = '\0';
	vol->resized_bytes = 0;
	json_decref(vol->snapshots);
	vol->snapshots = NULL;
}

void catalog_release(struct catalog *cat, struct volume *vol)
{
	int drop;

	pthread_mutex_unlock(&vol->lock);
	pthread_mutex_lock(&cat->table_lock);
	drop = --vol->refs == 0 && (vol->state == VOL_GONE || vol->state == VOL_NEW);
	if (drop)
		table_unlink(cat, vol);
	pthread_mutex_unlock(&cat->table_lock);
	if (drop)
		volume_free(vol);
}

/*
 * A record that fits in one sector is stored padded to it (spaces, then a
 * newline: the same JSON), so that its next versions overwrite it in place
 * (overwrite_at): a Create's result, a Mount, an Unmount and a Remove's
 * intent cost one write and one fdatasync, not a new file, a rename and
 * two fsyncs, and need no free space. A larger record, the first
 * version of any, and one found not to be a sector-long file (an older
 * ballast's, a symlink), replaces the file.
 */
static int write_record(struct catalog *cat, const char *file, const char *text)
{
	char sector[FS_SECTOR];
	size_t len = strlen(text);
	int ret;

	if (len >= sizeof(sector))
		return atomic_write_group(cat->dirfd, &cat->dirsync, file, text, len);
	memcpy(sector, text, len);
	memset(sector + len, ' ', sizeof(sector) - 1 - len);
	sector[sizeof(sector) - 1] = '\n';
	ret = overwrite_at(cat->dirfd, file, sector, sizeof(sector));
	if (ret == -ENOENT || ret == -ESTALE || ret == -ELOOP)
		ret = atomic_write_group(cat->dirfd, &cat->dirsync, file, sector, sizeof(sector));
	return ret;
}

int catalog_commit(struct catalog *cat, struct volume *vol, struct berr *err)
{
	char file[VOLUME_NAME_MAX + sizeof(RECORD_SUFFIX)];
	struct view_text *view = NULL;
	char *text = NULL;
	int ret = 0;

	snprintf(file, sizeof(file), "%s%s", vol->name, RECORD_SUFFIX);
	if (json_object_size(empty_object) != 0) {
		/* a change that did not go through volume_opts_w: every
		 * volume's options or mounts; never let it reach a record */
		log_errx("the empty options of volumes were changed; stopping");
		abort();
	}
	if (json_object_size(vol->mounts) == 0)
		volume_drop_mounts(vol);
	if (vol->state == VOL_DAMAGED)
		return berr_set(err, -EIO, "the catalog record of volume %s is damaged; refusing to write it",
				vol->name);
	if (vol->state == VOL_GONE || vol->state == VOL_NEW) {
		if (unlinkat(cat->dirfd, file, 0) < 0 && errno != ENOENT)
			ret = berr_set(err, -errno, "cannot delete the catalog record of %s: %s", vol->name,
				       strerror(errno));
		else if ((ret = group_fsync(&cat->dirsync, cat->dirfd)) < 0)
			berr_set(err, ret, "fsync of the catalog failed: %s", strerror(-ret));
	} else {
		json_t *rec = volume_record(vol);

		text = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(rec);
		if (!text) {
			ret = berr_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		ret = write_record(cat, file, text);
		if (ret < 0) {
			berr_set(err, ret, "cannot save the catalog record of %s: %s", vol->name, strerror(-ret));
			goto out;
		}
		if (vol->state == VOL_READY) {
			json_t *v = volume_view(vol);

			view = view_text_new(v);
			json_decref(v);
		}
	}
	if (ret == 0) {
		struct view_text *old;

		pthread_mutex_lock(&cat->table_lock);
		old = vol->view;
		vol->view = view;
		view = NULL;
		vol->shown = vol->state;
		vol->shown_mounts = volume_mount_count(vol);
		cat->gen++;
		pthread_mutex_unlock(&cat->table_lock);
		view_text_unref(old);
	}
out:
	view_text_unref(view);
	free(text);
	return ret;
}

json_t *catalog_view(struct catalog *cat, const char *name)
{
	return catalog_view_state(cat, name, NULL);
}

json_t *catalog_view_state(struct catalog *cat, const char *name, enum vol_state *shown)
{
	return catalog_view_cached(cat, name, shown, NULL, NULL);
}

json_t *catalog_view_cached(struct catalog *cat, const char *name, enum vol_state *shown, char **answer,
			    struct view_text **snap)
{
	struct view_text *t = NULL;
	struct volume *vol;
	json_t *view;

	pthread_mutex_lock(&cat->table_lock);
	vol = table_find(cat, name);
	if (vol)
		t = view_text_ref(vol->view);
	if (shown)
		*shown = vol && vol->shown != VOL_GONE ? vol->shown : VOL_NEW;
	pthread_mutex_unlock(&cat->table_lock);
	if (answer && t && atomic_load(&t->answer)) {
		*answer = strdup(atomic_load(&t->answer));
		if (*answer) {
			view_text_unref(t);
			return NULL;
		}
	}
	view = view_text_parse(t);
	if (snap && view)
		*snap = t;
	else
		view_text_unref(t);
	return view;
}

void catalog_keep_answer(struct view_text *snap, const char *answer)
{
	size_t len = answer ? strlen(answer) + 1 : 0;
	char *copy, *none = NULL;

	if (snap && answer && !atomic_load(&snap->answer)) {
		if (atomic_fetch_add(&answers_bytes, len) + len > ANSWERS_MAX_BYTES || !(copy = strdup(answer))) {
			atomic_fetch_sub(&answers_bytes, len);
		} else if (!atomic_compare_exchange_strong(&snap->answer, &none, copy)) {
			atomic_fetch_sub(&answers_bytes, len);
			free(copy);
		}
	}
	view_text_unref(snap);
}

struct named_view {
	const char *name; /* the volume's; only for the sort under the lock */
	struct view_text *text;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct named_view *)a)->name, ((const struct named_view *)b)->name);
}

unsigned long catalog_gen(struct catalog *cat)
{
	unsigned long gen;

	pthread_mutex_lock(&cat->table_lock);
	gen = cat->gen;
	pthread_mutex_unlock(&cat->table_lock);
	return gen;
}

json_t *catalog_list(struct catalog *cat)
{
	return catalog_list_gen(cat, NULL);
}

int catalog_each_view(struct catalog *cat, unsigned long *gen, int (*fn)(json_t *view, void *arg), void *arg)
{
	struct named_view *items = NULL;
	size_t n = 0, cap = 0, i;
	int ret = 0;

	pthread_mutex_lock(&cat->table_lock);
	if (gen)
		*gen = cat->gen;
	for (int b = 0; b < CATALOG_BUCKETS && ret == 0; b++) {
		for (struct volume *v = cat->buckets[b]; v && ret == 0; v = v->next) {
			if (!v->view)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct named_view *grown = realloc(items, ncap * sizeof(*items));

				if (!grown) {
					ret = -ENOMEM;
					break;
				}
				items = grown;
				cap = ncap;
			}
			items[n++] = (struct named_view){ v->name, view_text_ref(v->view) };
		}
	}
	/* sorted while the names are held: a volume may go once unlocked */
	if (n)
		qsort(items, n, sizeof(*items), by_name);
	pthread_mutex_unlock(&cat->table_lock);
	/* one snapshot parsed at a time: never all of them at once */
	for (i = 0; i < n; i++) {
		json_t *view = ret == 0 ? view_text_parse(items[i].text) : NULL;

		if (ret == 0)
			ret = view ? fn(view, arg) : -ENOMEM;
		json_decref(view);
		view_text_unref(items[i].text);
	}
	free(items);
	return ret;
}

static int append_view(json_t *view, void *arr)
{
	return json_array_append(arr, view) == 0 ? 0 : -ENOMEM;
}

json_t *catalog_list_gen(struct catalog *cat, unsigned long *gen)
{
	json_t *arr = json_array();

	if (arr && catalog_each_view(cat, gen, append_view, arr) < 0) {
		json_decref(arr);
		arr = NULL;
	}
	return arr;
}

static int filter_keeps(const struct catalog_filter *f, const struct volume *v)
{
	if (!(f->states & (1u << v->shown)))
		return 0;
	if (f->mounted >= 0 && (v->shown_mounts > 0) != f->mounted)
		return 0;
	return !f->backend || strcmp(v->backend, f->backend) == 0;
}

json_t *catalog_names_where(struct catalog *cat, const struct catalog_filter *f)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&cat->table_lock);
	for (int b = 0; b < CATALOG_BUCKETS && arr; b++)
		for (struct volume *v = cat->buckets[b]; v; v = v->next)
			if (filter_keeps(f, v))
				json_array_append_new(arr, json_string(v->name));
	pthread_mutex_unlock(&cat->table_lock);
	return arr;
}

int catalog_has(struct catalog *cat, const char *name, const char *backend)
{
	struct volume *v;
	int has;

	pthread_mutex_lock(&cat->table_lock);
	v = table_find(cat, name);
	has = v && v->shown != VOL_NEW && v->shown != VOL_GONE && strcmp(v->backend, backend) == 0;
	pthread_mutex_unlock(&cat->table_lock);
	return has;
}

json_t *catalog_names(struct catalog *cat)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&cat->table_lock);
	for (int b = 0; b < CATALOG_BUCKETS && arr; b++)
		for (struct volume *v = cat->buckets[b]; v; v = v->next)
			json_array_append_new(arr, json_string(v->name));
	pthread_mutex_unlock(&cat->table_lock);
	return arr;
}
