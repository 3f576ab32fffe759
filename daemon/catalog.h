/*
 * catalog.h - the volume catalog: every volume's name, backend, options,
 * creation time and mount counts per mount ID.
 *
 * Persisted crash-safely, one JSON file per volume under
 * <state_dir>/catalog/ (write a temp file, fsync, rename, fsync the
 * directory). Get and List are answered from memory, never by a backend.
 *
 * Locking: catalog_acquire returns a volume with its own mutex held, so a
 * slow backend call on one volume never blocks another volume, nor Get and
 * List (which read a snapshot kept under the table lock).
 */
#ifndef BALLAST_CATALOG_H
#define BALLAST_CATALOG_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "errors.h"
#include "timeutil.h"
#include "validate.h"

enum vol_state {
	VOL_NEW,      /* only in memory: a Create is deciding */
	VOL_CREATING, /* on disk: backend create under way; rolled back at start */
	VOL_READY,
	VOL_REMOVING, /* on disk: backend remove under way; finished at start */
	VOL_GONE,     /* removed: dropped from the table at release */
	VOL_DAMAGED,  /* only in memory: its record could not be read and was
		       * kept aside (<name>.json.corrupt); every request for
		       * the name is refused until an operator acts */
};

struct view_text;

struct volume {
	/* at most VOLUME_NAME_MAX bytes, stored after the struct: a
	 * VOLUME_NAME_MAX array was a fifth of a volume's memory */
	const char *name;
	char backend[32];
	char created_at[40]; /* RFC 3339, UTC */
	/* "" unless mounted; never NULL; cleared in place (mountpoint[0] =
	 * '\0'), set with volume_set_mountpoint. On the heap, as long as it
	 * is (a PATH_MAX array was most of a volume's memory); until then the
	 * "" stored after the name. */
	char *mountpoint;
	/* object of strings, and object mount ID -> count: read them here,
	 * change them only through volume_opts_w and volume_mounts_w */
	json_t *opts;
	json_t *mounts;
	/* the names of its snapshots as the last snapshot change here found
	 * them (NULL: none); owned */
	json_t *snapshots;
	enum vol_state state;
	uint64_t resized_bytes; /* size after `ballast resize`; 0: as created */
	/* CLOCK_MONOTONIC ms when this process created or adopted the volume;
	 * 0 for volumes loaded at start. A refresh that began earlier must
	 * not drop it. */
	long touched_ms;
	/* CLOCK_MONOTONIC ms of the last Mount, and of the first look after
	 * it that found no container using the mount (0: none); in memory
	 * only, for the sweep of mounts dockerd forgot */
	long mount_touched_ms;
	long unused_since_ms;

	/* private to catalog.c */
	pthread_mutex_t lock;
	int refs;
	struct view_text *view; /* snapshot for Get/List, under the table lock */
	enum vol_state shown;	/* state of the last commit (or load), under
				 * the table lock: what a Get says of a volume
				 * without a snapshot, without waiting */
	long shown_mounts;	/* its mount count then, likewise */
	struct volume *next;
	char names[]; /* the name, then the first mountpoint "" */
};

struct catalog;

/* Open (creating if needed) the catalog under state_dir and load every
 * record. Temp files left by a crash between write and rename are dropped.
 * *out is freed with catalog_close. */
int catalog_open(const char *state_dir, struct catalog **out, struct berr *err);

/* catalog_open in two steps, so that ballastd can answer Activate while
 * the records load: the catalog opened with no record loaded, then every
 * record loaded (once, before anything else uses the catalog). */
int catalog_open_unloaded(const char *state_dir, struct catalog **out, struct berr *err);
int catalog_load(struct catalog *cat, struct berr *err);
int catalog_loaded(const struct catalog *cat);
void catalog_close(struct catalog *cat);

/*
 * Find name and lock it. With create set, an absent name gets a new VOL_NEW
 * entry. Returns NULL if absent (and !create) or on allocation failure.
 * The result must be given back with catalog_release.
 */
struct volume *catalog_acquire(struct catalog *cat, const char *name, int create);
void catalog_release(struct catalog *cat, struct volume *vol);

/* Persist vol's current state (delete its record for VOL_GONE and VOL_NEW)
 * and refresh the snapshot Get and List read. Caller holds vol. */
int catalog_commit(struct catalog *cat, struct volume *vol, struct berr *err);

/* Make a held volume a fresh VOL_NEW entry (nothing on disk changes): for
 * a name whose leftover was just removed. */
void volume_clear(struct volume *vol);

/* vol->opts and vol->mounts, to change. Until a volume has options or
 * mount IDs both are one empty object that every volume shares and that
 * never changes (two empty objects were a third of a volume's memory);
 * these give the volume an object of its own first. NULL when out of
 * memory (the jansson calls given NULL then fail). */
json_t *volume_opts_w(struct volume *vol);
json_t *volume_mounts_w(struct volume *vol);

/* Add delta to the count of mount ID id of vol; at 0 the ID goes. Counted
 * per ID, never as a set: docker cp mounts an ID twice. */
void volume_count_mount(struct volume *vol, const char *id, long delta);

/* Add opts (an object of strings) to vol->opts. 0 or -1 (no memory). */
int volume_add_opts(struct volume *vol, json_t *opts);

/* Empty vol->opts or vol->mounts (the shared empty object again): only
 * where no one holds the old object. */
void volume_drop_opts(struct volume *vol);
void volume_drop_mounts(struct volume *vol);

/* Set vol's mountpoint to a copy of path. 0 or -ENOMEM (unchanged). */
int volume_set_mountpoint(struct volume *vol, const char *path);

/* Total of all mount ID counts. */
long volume_mount_count(const struct volume *vol);

/* The snapshot of one volume (new reference), or NULL if there is no ready
 * volume of that name. Does not wait for the volume's lock. */
json_t *catalog_view(struct catalog *cat, const char *name);

/* catalog_view, and in *shown the state of the name's last commit (or
 * load) when there is no snapshot: VOL_CREATING, VOL_REMOVING or
 * VOL_DAMAGED for a volume a request (or the recovery) is working on or
 * that is damaged; VOL_NEW when the name is not in the table, or not yet
 * committed. Never waits for the volume's lock: a Get stays quick while a
 * slow backend call finishes an interrupted Remove. */
json_t *catalog_view_state(struct catalog *cat, const char *name, enum vol_state *shown);

/*
 * catalog_view_state, for an answer rendered from the snapshot alone
 * (dockerd's Get of a volume whose status needs no live state). When an
 * answer is kept with the current snapshot, *answer gets a copy of it (to
 * free) and NULL is returned, the view unparsed. Otherwise, with a view,
 * *snap gets a reference to that snapshot, for catalog_keep_answer.
 */
json_t *catalog_view_cached(struct catalog *cat, const char *name, enum vol_state *shown, char **answer,
			    struct view_text **snap);

/* Keep a copy of answer (when not NULL, no answer is kept yet, and the
 * answers kept in all stay within 1 MiB) with snap until a commit replaces
 * the snapshot; release snap. */
void catalog_keep_answer(struct view_text *snap, const char *answer);

/* Snapshots of every ready volume, sorted by name (new reference). */
json_t *catalog_list(struct catalog *cat);

/* fn(snapshot, arg) for every ready volume in name order, each snapshot
 * made for the call and freed after it, so that no more than one is built
 * at a time; the generation shown in *gen (when not NULL). Stops at fn's
 * first negative return and returns it; else 0 (-ENOMEM). */
int catalog_each_view(struct catalog *cat, unsigned long *gen, int (*fn)(json_t *view, void *arg), void *arg);

/* catalog_list, and in *gen the catalog's generation it shows. The
 * generation (catalog_gen) changes whenever any snapshot does: an answer
 * built from a list stays true while the generation is the same. */
json_t *catalog_list_gen(struct catalog *cat, unsigned long *gen);
unsigned long catalog_gen(struct catalog *cat);

/* Names of every volume in the table, any state (new reference), for the
 * start-up reconciliation. */
json_t *catalog_names(struct catalog *cat);

/* Which volumes catalog_names_where gives, by what their last commit (or
 * load) recorded; read under the table lock only, so that the background
 * work on 10,000 volumes does not take 10,000 volume locks to find the
 * few it is about. The caller still acquires each and checks again. */
struct catalog_filter {
	unsigned states;     /* (1u << VOL_x) for every state wanted */
	int mounted;	     /* 1: only mounted (a mount count), 0: only not, -1: either */
	const char *backend; /* only this backend's volumes; NULL: any */
};
json_t *catalog_names_where(struct catalog *cat, const struct catalog_filter *f);

/* Is name in the table as a volume of backend (by its last commit, in any
 * state but new or gone)? For the refresh, which skips what it knows. */
int catalog_has(struct catalog *cat, const char *name, const char *backend);

#endif
