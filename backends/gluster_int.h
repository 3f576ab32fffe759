/*
 * gluster_int.h - what the files of the gluster backend share, and nothing
 * outside them includes (in the way of QEMU's block/qcow2.h):
 *   gluster.c        the ops (be_gluster_*) and the lease renewer thread
 *   gluster_engine.c the glfs_t handles and the job engine every gfapi call
 *                    runs on, with its caps and back-off (pure, unit tested)
 *   gluster_jobs.c   the gfapi helpers and the volume jobs
 *   gluster_copy.c   copies of volumes (-o from=VOLUME)
 *   gluster_hold.c   holder and user records, the decisions on them (pure,
 *                    unit tested), quota and fencing through glusterd's CLI
 *   gluster_lock.c   the fence lock: auth.reject edits one host at a time
 *   gl_reject.c      the auth.reject string editing of the fence (pure)
 *
 * A job function (gl_op_*, run through gl_run) runs on a worker thread with
 * the handle's glfs_t; it reads job->in, leaves its result in job->out and
 * job->flag and its message in job->err, and returns 0 or -errno. A call
 * stuck in gfapi cannot be cancelled: once its request gave up waiting
 * (gl_gave_up), the job makes no further change to the volume, and undoes
 * one it made that the request was told did not happen.
 */
#ifndef BALLAST_GLUSTER_INT_H
#define BALLAST_GLUSTER_INT_H

#include <glusterfs/api/glfs.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "errors.h"
#include "validate.h"

#define GL_PORT 24007
#define GL_SERVERS_MAX 8
#define GL_META ".ballast"
#define GL_TRASH ".ballast/trash"
#define GL_USERS ".ballast/users"
#define GL_META_MAX (64 * 1024)
#define GL_DEFAULT_SOCK "/run/glusterd.socket"
#define GL_LOG_LEVEL 4 /* GF_LOG_WARNING */
#define GL_PATH_MAX 1024
#define GL_DIR_MAX 260 /* [gluster] dir */
#define GL_SUB_MAX (GL_DIR_MAX + 16)

/* The job engine's caps (gluster_engine.c). A hung brick keeps each call
 * stuck until Gluster's own timeouts (ping 42 s, frames 30 min). */
#define GL_WORKERS_MAX 16	 /* job threads alive; more calls queue (bounded) */
#define GL_STUCK_MAX 8		 /* calls whose request gave up, still in gfapi */
#define GL_HANDLES_MAX 4	 /* glfs_t alive: current, hung ones, closing ones */
#define GL_BACKOFF_FIRST_MS 1000 /* after a connection hung, doubling */
#define GL_BACKOFF_MAX_MS 30000

enum gl_hstate { GLH_OPENING, GLH_READY, GLH_BROKEN };

/* One glfs_t. refs and state are under gl_ctx.mu; the context holds a
 * reference while the handle is current, every running job one more. */
struct gl_handle {
	glfs_t *fs;
	enum gl_hstate state;
	int refs;
	long opened_ms;
	struct gl_ctx *gc;
	struct gl_handle *next; /* every live handle, in gl_ctx.handles */
};

struct gl_job;

/* A name in a small list (volumes mounted here). */
struct gl_name {
	char name[VOLUME_NAME_MAX + 1];
	int exclusive;
	/* Exclusive, and its hold was found gone or another host's: not
	 * renewed any more; the next Mount here takes it again or is
	 * refused. */
	int lost;
	/* Exclusive, found mounted at start, its hold not yet seen to be
	 * this host's (by a renewal or a Mount): while ballastd was down it
	 * may have been taken over, the mount fenced. Not handed out as it
	 * is: the next Mount goes through the backend. */
	int unverified;
	unsigned long gen; /* counts the Mounts that took it: a renewal that
			    * started before the last one cannot mark it lost */
	struct gl_name *next;
};

struct gl_ctx {
	int configured;
	atomic_ulong lease_renewals; /* for be_gluster_counters */
	char servers_buf[GL_PATH_MAX];
	const char *servers[GL_SERVERS_MAX];
	int nservers;
	char volume[256];
	char dir[GL_DIR_MAX]; /* "/ballast": absolute in the volume, no trailing '/' */
	char log[PATH_MAX];
	char sock[PATH_MAX];
	char host_id[256];
	char addr[64];				     /* local_addr's answer, once found (under mu) */
	char mounts[PATH_MAX - VOLUME_NAME_MAX - 2]; /* <state_dir>/mounts */
	int timeout_s;
	int lease_s;
	int takeover; /* may a dead holder's volume be taken after its lease */
	struct helper helper;

	pthread_mutex_t mu;
	/* Held across one renewal and across a release, so that a renewal
	 * already under way cannot write back a hold just released. */
	pthread_mutex_t renew_mu;
	pthread_cond_t cv; /* any job finished, a handle opened, or stopping */
	struct gl_handle *cur;
	struct gl_handle *handles; /* all live ones: current, hung, closing */
	struct gl_name *mounted;   /* volumes mounted here: leases to renew */
	struct gl_job *jobs;	   /* every job with a thread, running or stuck */
	int workers;		   /* job threads alive (the length of jobs) */
	int nhandles;		   /* glfs_t alive: in handles, or closing */
	int fails;		   /* connections that hung, in a row */
	long backoff_until;	   /* no new connection before (monotonic ms) */
	char last_fail[200];	   /* how the last one hung (for messages) */
	int stopping;
	int renewer_started;
	pthread_t renewer;
};

/* One operation run on a worker thread. Shared by the waiting request and
 * the worker; the last to let go frees it (refs under gl_ctx.mu). */
struct gl_job {
	struct gl_ctx *gc;
	int (*fn)(struct gl_job *job, glfs_t *fs);
	char name[VOLUME_NAME_MAX + 1];
	json_t *in;  /* op input (owned) */
	json_t *out; /* op result (owned) */
	int flag;    /* op-specific result bit */
	int refs;
	int done;
	atomic_int abandoned; /* the request stopped waiting (timeout) */
	int background;	      /* nobody waits for it */
	long started_ms;
	int ret;
	struct berr err;
	struct gl_handle *h;
	struct gl_job *next; /* in gl_ctx.jobs while its thread runs */
};

/* The options stored for a volume, from its facts record (borrowed). */
static inline json_t *gl_meta_opts(json_t *meta)
{
	return json_object_get(meta, "options");
}

/* --- gluster_engine.c: caps and back-off (pure) --------------------------- */

/* What a new call finds (gl_admit_decide's input). */
struct gl_load {
	int workers;	 /* job threads alive */
	int stuck;	 /* of them, calls whose request gave up */
	int stuck_name;	 /* of those, calls on the same volume */
	int need_handle; /* no connection is current or opening: one is needed */
	int handles;	 /* glfs_t alive (current, hung, closing) */
	long backoff_ms; /* until another connection may be opened; 0: now */
	long wait_ms;	 /* how long the request waits; 0: background */
};

enum gl_admit {
	GL_ADMIT_RUN,	      /* start its thread */
	GL_ADMIT_WAIT,	      /* every worker busy: wait for one (bounded) */
	GL_ADMIT_STUCK_NAME,  /* an earlier call on this volume is stuck: refuse */
	GL_ADMIT_STUCK_MAX,   /* GL_STUCK_MAX calls stuck: refuse */
	GL_ADMIT_HANDLES_MAX, /* a connection is needed, GL_HANDLES_MAX alive: refuse */
	GL_ADMIT_BACKOFF,     /* a connection is needed, not before the wait ends: refuse */
};

/* May a call start now (l borrowed)? Refusals come first, so that a stuck
 * cluster is answered at once rather than queued for. */
enum gl_admit gl_admit_decide(const struct gl_load *l);

/* How long to wait before opening a connection after fails hangs in a
 * row: 0 for none, then GL_BACKOFF_FIRST_MS doubling up to
 * GL_BACKOFF_MAX_MS. */
long gl_backoff_ms(int fails);

/* --- gluster_engine.c: the job engine ------------------------------------- */

/*
 * Run fn for name (NULL: a call on no volume) on a worker thread and wait
 * at most the timeout, or what is left of the request's deadline when that
 * is less (bounded), or not at all (background work: the call returns at
 * once). in is borrowed (copied); *out, when given, gets the job's result
 * (a new reference, or NULL). *flag gets job->flag. Returns the job's
 * result; -ETIMEDOUT after the wait (after a full timeout the handle is
 * replaced), also when every worker stayed busy; -EAGAIN at once when the
 * engine's caps or back-off refuse the call (gl_admit_decide; a background
 * job is then not run); or -ECANCELED when the daemon stops.
 */
int gl_run(struct gl_ctx *gc, int (*fn)(struct gl_job *, glfs_t *), const char *name, json_t *in, int background,
	   json_t **out, int *flag, struct berr *err);

/* The servers, comma-separated, into buf (for messages). */
void gl_servers_str(const struct gl_ctx *gc, char *buf, size_t len);

/* Set err to the timeout message naming the volume and its servers. */
void gl_timeout_msg(struct gl_ctx *gc, struct berr *err);

/* Calls whose request gave up, still running, and glfs_t alive (for
 * status and doctor). Takes gc->mu. */
void gl_engine_load(struct gl_ctx *gc, int *stuck, int *handles);

/*
 * 1 when the request that job (running on this thread) belongs to gave up
 * waiting for it, else 0. A job checks it before each change it makes to
 * the volume and stops (-ETIMEDOUT); gl_publish_new, gl_replace and
 * gl_break_record check it themselves for the job running on the calling
 * thread. Undoing what the job did is not a change to stop.
 */
int gl_gave_up(struct gl_job *job);

/* gl_gave_up for the job running on the calling thread (0 outside one). */
int gl_this_job_gave_up(void);

/* --- gluster_jobs.c: gfapi helpers (worker threads only) ------------------ */

/*
 * Paths in the volume, into buf: <dir>/<name>, <dir>/.ballast/<name>.<ext>
 * and <dir>/<sub> (sub being GL_META, GL_TRASH or GL_USERS). 0, or
 * -ENAMETOOLONG when buf is too small (never with GL_PATH_MAX: names are
 * at most VOLUME_NAME_MAX and dir at most GL_DIR_MAX).
 */
int gl_vol_path(const struct gl_ctx *gc, const char *name, char *buf, size_t len);
int gl_meta_path(const struct gl_ctx *gc, const char *name, const char *ext, char *buf, size_t len);
int gl_sub_path(const struct gl_ctx *gc, const char *sub, char *buf, size_t len);

/* mkdir -p through gfapi; path is absolute in the volume. 0 or -errno. */
int gl_mkdir_p(glfs_t *fs, const char *path, mode_t mode);

/* Read a small file into a JSON value (*out: a new reference). 0, -ENOENT
 * when absent, -EBADMSG when it is not JSON, or -errno. */
int gl_read_json(glfs_t *fs, const char *path, json_t **out);

/* Publish v (borrowed) at path only if nothing is there (link is atomic
 * and never replaces): 0, -EEXIST when another writer was first, -errno;
 * -ETIMEDOUT, doing nothing, in a job whose request gave up. */
int gl_publish_new(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v);

/* Replace path with v (borrowed) atomically. 0 or -errno; -ETIMEDOUT,
 * doing nothing, in a job whose request gave up. */
int gl_replace(struct gl_ctx *gc, glfs_t *fs, const char *path, json_t *v);

/* --- gluster_jobs.c: volume jobs (for gl_run) ----------------------------- */

/*
 * Create job. in: {"options", "created_at", "uid", "gid", "mode"}.
 * Claims the name by publishing the facts record (atomic: one host wins),
 * then makes the directory. A record with the same options is an existing
 * volume (success, job->flag = 0: nothing made here); other options are
 * refused. out: the record; job->flag = 1 when this call published it.
 */
int gl_op_create(struct gl_job *job, glfs_t *fs);

/* Mark job->name's record complete (in: the record). */
int gl_op_complete(struct gl_job *job, glfs_t *fs);

/*
 * Remove job: refuse while another host holds or mounts it; move the data
 * aside into the trash (fast whatever its size), then drop the records.
 * in: {"check_only"} to stop after the checks. out: the facts record if
 * there was one; job->flag = 1 when data went to the trash.
 */
int gl_op_remove(struct gl_job *job, glfs_t *fs);

/* Background job: delete everything in the trash. */
int gl_op_purge(struct gl_job *job, glfs_t *fs);

/* List job: every complete volume's facts record, as an array of
 * {"name","options","created_at","created_by"} in out. */
int gl_op_list(struct gl_job *job, glfs_t *fs);

/* Lookup job: job->name's facts, as gl_op_list gives them, into job->out
 * (NULL when there is no complete volume of that name). */
int gl_op_lookup(struct gl_job *job, glfs_t *fs);

/* Stat the volumes' directory: the cheapest call that needs every layer. */
int gl_op_ping(struct gl_job *job, glfs_t *fs);

/* Move path (in the volume) into the trash, named after job->name, if it
 * is there. 0 or -errno with job->err set. */
int gl_discard(struct gl_job *job, glfs_t *fs, const char *path);

/* --- gluster_copy.c: copies (-o from=VOLUME) ------------------------------ */

/* The jobs of a copy (see there). */
int gl_op_copy_entry(struct gl_job *job, glfs_t *fs);
int gl_op_copy_attrs(struct gl_job *job, glfs_t *fs);
int gl_op_copy_place(struct gl_job *job, glfs_t *fs);
int gl_op_discard(struct gl_job *job, glfs_t *fs);

/* Copy volume from's directory into volume name's: made aside under
 * .ballast/copy-<name>, then put in place of name's (empty) directory.
 * Each step is a job bounded by the timeout and the request's deadline;
 * on failure what was copied goes to the trash. */
int gl_copy_volume(struct gl_ctx *gc, const char *name, const char *from, struct berr *err);

/* --- gluster_hold.c: holder records, the decisions (pure) ----------------- */

/*
 * A holder record (<dir>/.ballast/<name>.holder) or user record
 * (<dir>/.ballast/users/<name>@<host>), as written by gl_holder_make:
 * {"host", "since", "expires", "expires_unix", "lease", "addr"}. The
 * strings are borrowed from the parsed JSON value (NULL when missing).
 */
struct gl_holder {
	const char *host;
	const char *since;
	const char *expires;
	const char *addr;
	long long expires_unix; /* 0 when missing: long expired */
};

/*
 * Parse rec (borrowed; h's strings point into it) into *h. h is filled
 * whatever rec is: a field that is missing or of another type is NULL (or
 * 0), so a malformed record reads as held by no known host and expired
 * long ago. Returns 0 when rec is an object naming a host and an expiry,
 * else -EBADMSG.
 */
int gl_holder_parse(const json_t *rec, struct gl_holder *h);

/* 1 when h's lease ran out before now (a lease expiring at now is still
 * fresh), else 0. */
int gl_holder_expired(const struct gl_holder *h, long long now);

/* 1 when h names self as its host, else 0. */
int gl_holder_mine(const struct gl_holder *h, const char *self);

/* 1 when holder records a and b (borrowed) are the same hold, perhaps
 * renewed in between (the same host since the same time), else 0; a
 * malformed record is the same as nothing. */
int gl_holder_same(const json_t *a, const json_t *b);

/*
 * A record for host holding for lease_s seconds from now, since since
 * (NULL: now), reachable at addr ("" when unknown): a new reference, or
 * NULL without memory.
 */
json_t *gl_holder_make(const char *host, const char *since, long long now, int lease_s, const char *addr);

/* What this host may do about an exclusive volume's holder record. */
enum gl_take {
	GL_TAKE_FREE,  /* no record: publish ours */
	GL_TAKE_MINE,  /* ours (this daemon restarted): renew it */
	GL_TAKE_BUSY,  /* another host's fresh lease: refuse, naming it */
	GL_TAKE_NEVER, /* another host's lease ran out, but takeover is off */
	GL_TAKE_FENCE, /* another host's lease ran out: fence it, then take */
};

/* The decision for holder h (NULL: no record) when self wants the volume
 * at now; takeover is the volume's policy (gl_takeover_policy). */
enum gl_take gl_take_decide(const struct gl_holder *h, const char *self, int takeover, long long now);

/* What a renewal of this host's hold finds (gl_renew_decide). */
enum gl_renew {
	GL_RENEW_OK,	 /* ours, and no fence note names this host: write it again */
	GL_RENEW_GONE,	 /* no record: released by hand */
	GL_RENEW_OTHER,	 /* another host's: taken over */
	GL_RENEW_FENCED, /* ours, but a fence note names this host: lost */
};

/*
 * The decision for a renewal by self of holder h (NULL: no record),
 * fenced_here 1 when the volume's fence note names this host. A taker
 * writes that note before it fences this host and before it checks that
 * the hold it read is still there: a renewal in between would leave this
 * host fenced but holding a fresh record that refuses the taker, every
 * period again (a stuck volume). So a note naming this host means the hold
 * is lost, even when the taker died before its fence. Our own record is
 * renewed whatever its lease says (a restarted daemon picks up its
 * mounts); only a Mount takes a lost hold again.
 */
enum gl_renew gl_renew_decide(const struct gl_holder *h, const char *self, int fenced_here);

/* What `ballast release` may do about a holder record. */
enum gl_release {
	GL_RELEASE_MOUNTED_HERE, /* ours and mounted here: refuse (unmount instead) */
	GL_RELEASE_FRESH,	 /* a fresh lease and no force: refuse */
	GL_RELEASE_DROP,	 /* ours but not mounted here: drop it */
	GL_RELEASE_FENCE,	 /* another host's: fence it, then drop it */
};

/* The decision for holder h (not NULL) asked of self at now, with the
 * volume mounted here or not, with --force or not. */
enum gl_release gl_release_decide(const struct gl_holder *h, const char *self, int mounted_here, int force,
				  long long now);

/* May another host's expired hold be taken over: the volume's -o takeover
 * (opt, NULL when not given), else the configured default. 1 or 0. */
int gl_takeover_policy(const char *opt, int configured);

/* In the user records' directory, entry names another host's user record
 * of volume name (not self's, not a temporary file): its host (pointing
 * into entry), else NULL. */
const char *gl_user_entry_host(const char *entry, const char *name, const char *self);

/* In the facts directory, entry is the facts record <name>.json of a valid
 * volume name: the name into buf (size len) and 0, else -EINVAL. */
int gl_meta_entry_name(const char *entry, char *buf, size_t len);

/* --- gluster_hold.c: holder and user records (worker threads only) -------- */

/* Set job->err to "volume is in use on host H since S" for holder record
 * rec (borrowed) and return -EBUSY. */
int gl_in_use_msg(struct gl_job *job, const json_t *rec);

/* <dir>/.ballast/users/<name>@<host> into buf. 0 or -ENAMETOOLONG. */
int gl_user_path(const struct gl_ctx *gc, const char *name, const char *host, char *buf, size_t len);

/* The first live user record of job->name by another host, as a refusal
 * (-EBUSY with job->err set); expired ones are deleted on the way. 0 when
 * there is none; -ESTALE when one was replaced while read (read again). */
int gl_user_check_others(struct gl_job *job, glfs_t *fs);

/*
 * Mount preparation job (in: {"exclusive", "takeover", "fenced"}): the
 * volume's directory must exist; an exclusive one is taken for this host
 * (job->flag = 1 when the hold was taken), and this host's user record is
 * written. A call that outlived its request's wait undoes both.
 */
int gl_op_prepare(struct gl_job *job, glfs_t *fs);

/* Renew this host's records of job->name (in: {"exclusive"});
 * job->flag = 1 (and -EBUSY) when the hold is lost: its record is gone or
 * another host's. A lost hold is never written back. */
int gl_op_renew(struct gl_job *job, glfs_t *fs);

/* Drop this host's records of job->name (in: {"exclusive"}); another
 * host's holder record is left alone. Nothing once its request gave up
 * (a Mount here since may have taken them again): they run out. */
int gl_op_release(struct gl_job *job, glfs_t *fs);

/*
 * Break the record at path (a holder record, or the fence lock) only if it
 * is still expect (borrowed; NULL: the record read as garbage), as same
 * says (gl_json_equal, gl_holder_same): it is renamed aside (only one host
 * can move a given file), read and compared, then deleted, or linked back
 * when another host wrote another one meanwhile (-EBUSY, that record in
 * *moved: a new reference the caller frees). 0 when broken, -ENOENT when
 * nothing was there, or -errno.
 */
int gl_break_record(struct gl_ctx *gc, glfs_t *fs, const char *path, const json_t *expect,
		    int (*same)(const json_t *, const json_t *), json_t **moved);

/* json_equal(a, b), as a gl_break_record comparison. */
int gl_json_equal(const json_t *a, const json_t *b);

/* The holder record of job->name into job->out (none: NULL). */
int gl_op_holder(struct gl_job *job, glfs_t *fs);

/* Drop the holder record of job->name, but only if it is still the hold
 * in job->in "expect", perhaps renewed since (gl_holder_same; moved aside,
 * compared, then deleted or put back: -EBUSY naming the new holder). */
int gl_op_unhold(struct gl_job *job, glfs_t *fs);

/* --- gluster_lock.c: the fence lock, across hosts -------------------------- */

/*
 * auth.reject is one string per Gluster volume, edited by reading, editing
 * and writing it back: two hosts doing that at once would drop one's entry.
 * Every edit is made under one lock object in the Gluster volume,
 * <dir>/.ballast/fence.lock: {"host", "token", "since", "expires_unix"},
 * published with link (one host wins) and with a short lease of its own,
 * past which another host may break it (its holder died mid-edit).
 */

/* What a host may do about the fence lock record rec (NULL: none). */
enum gl_lock_state {
	GL_LOCK_FREE,  /* no lock: publish ours */
	GL_LOCK_MINE,  /* ours (the same token) */
	GL_LOCK_HELD,  /* another's, its lease not run out: wait */
	GL_LOCK_STALE, /* another's past its lease, or malformed: break it */
};

/* The decision for rec (borrowed, NULL: no lock) when the caller's lock
 * token is token, at now (pure). A lease ending at now is still held. */
enum gl_lock_state gl_lock_decide(const json_t *rec, const char *token, long long now);

/* A lock record for host with token, leased for lease_s seconds from now:
 * a new reference, or NULL without memory (pure). */
json_t *gl_lock_make(const char *host, const char *token, long long now, int lease_s);

/*
 * Take the fence lock for an edit of auth.reject on behalf of volume name
 * (for messages), waiting while another host holds it, breaking it once
 * its lease ran out; bounded by that lease plus the timeout. *lock gets
 * our lock record (a new reference; its "expires_unix" is when the edit
 * must be over), for gl_fence_unlock. 0 or -errno with err set.
 */
int gl_fence_lock(struct gl_ctx *gc, const char *name, json_t **lock, struct berr *err);

/* Drop the fence lock taken as lock (borrowed), if it is still ours
 * (best effort: a lock left behind runs out with its lease). */
void gl_fence_unlock(struct gl_ctx *gc, const char *name, const json_t *lock);

/* --- gluster_hold.c: quota and fencing (glusterd's CLI) ------------------- */

/* Set (or, with bytes == 0, remove) the quota of name's directory through
 * glusterd's CLI, bounded by the timeout. 0 or -errno with err set. */
int gl_set_quota(struct gl_ctx *gc, const char *name, uint64_t bytes, struct berr *err);

/*
 * Fence the host of holder record rec (borrowed) from volume name: its
 * address goes into auth.reject for the volume's directory, so that its
 * Gluster client is cut at once and can never write there again, and a
 * note of it into <dir>/.ballast/<name>.fence, so that the host lifts its
 * own fence once it holds the volume again. 0, or -EBUSY when rec names
 * no address, or -errno; err set either way.
 */
int gl_fence_host(struct gl_ctx *gc, const char *name, json_t *rec, struct berr *err);

/*
 * Before an exclusive volume held by another host is taken over: read its
 * holder record; if that host's lease expired and takeover (the volume's
 * policy) allows it, fence it (gl_fence_host) and put the fenced record
 * into in["fenced"] (in: gl_op_prepare's input, changed), the only record
 * gl_op_prepare will then break. A fresh or absent record needs nothing
 * here (gl_op_prepare refuses or takes it). 0 or -errno with err set.
 */
int gl_fence_expired(struct gl_ctx *gc, const char *name, int takeover, json_t *in, struct berr *err);

/*
 * This host holds name now: if it was fenced from it earlier (its address
 * in the fence note), lift that fence before mounting. Its old client is
 * gone by then (the volume is not mounted here). 0 or -errno with err set.
 */
int gl_unfence_self(struct gl_ctx *gc, const char *name, struct berr *err);

/* A removed volume's fences go with it (a new volume of the same name
 * starts with none). Best effort: what is left is logged. */
void gl_unfence_all(struct gl_ctx *gc, const char *name);

#endif
