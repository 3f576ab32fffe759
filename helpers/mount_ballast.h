/*
 * mount_ballast.h - what the files of mount.ballast share (internal; the
 * program's interface is argv, see mount_ballast.c).
 *
 *   mount_ballast.c  main: sanitize, parse, run one command, report
 *   mb_cmdline.c     the commands and the command-line parser
 *   mb_proc.c        the one error line, process hygiene, running tools
 *   mb_opts.c        the whitelists of mkfs and mount options
 *   mb_paths.c       paths (the mounts directory) and the mount table
 *   mb_fs.c          block file systems: probing, mkfs, mount, umount, grow
 *   mb_gluster.c     GlusterFS (FUSE) mounts
 *   mb_map.c         kernel mappers: krbd and rbd-nbd
 *
 * Two kinds of function: checks that only decide (no I/O, no recorded
 * error: they write the reason to a caller's buffer, `why`, and return
 * -errno; the unit tests call them), and steps that act, which record
 * their reason with fail() and return -errno.
 */
#ifndef BALLAST_MOUNT_BALLAST_H
#define BALLAST_MOUNT_BALLAST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#define PROG "mount.ballast"
#define DEFAULT_STATE_DIR "/var/lib/ballast"
#define CHILD_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define MOUNTINFO "/proc/self/mountinfo"

/* The one error line, as fail() keeps it; size a `why` buffer so. */
#define MB_MSG_MAX 1024
/* Longest --options / --mkfs-options string accepted; real ones are short. */
#define OPTS_MAX 512
/* The characters of a filesystem label (and of pool, image, user names). */
#define LABEL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

enum exit_status {
	EXIT_OK = 0,
	EXIT_REFUSED = 1, /* bad usage or refused input */
	EXIT_FAILED = 2,  /* the operation failed */
	EXIT_HAS_FS = 3,  /* mkfs: source already holds something */
};

/* --- The command line, as parsed (mb_cmdline.c) -------------------------- */

enum {
	OPT_FSTYPE = 1u << 0,
	OPT_OPTIONS = 1u << 1,
	OPT_LOOP = 1u << 2,
	OPT_MKFS_OPTIONS = 1u << 3,
	OPT_LABEL = 1u << 4,
	OPT_STATE_DIR = 1u << 5,
	OPT_MAPPER = 1u << 6,
	OPT_POOL = 1u << 7,
	OPT_IMAGE = 1u << 8,
	OPT_ID = 1u << 9,
	OPT_CONF = 1u << 10,
	OPT_KEYRING = 1u << 11,
	OPT_READ_ONLY = 1u << 12,
	OPT_TIMEOUT = 1u << 13,
	OPT_MS_MODE = 1u << 14,
};

struct command;

/* Borrowed from argv: every string points into it (or is a default). */
struct cmdline {
	const char *state_dir;
	const struct command *cmd;
	const char *fstype;
	const char *options;
	const char *mkfs_options;
	const char *label;
	const char *mapper;
	const char *pool;
	const char *image;
	const char *id;
	const char *conf;
	const char *keyring;
	const char *timeout;
	const char *ms_mode;
	bool loop;
	bool read_only;
	bool help;
	const char *args[2];
	unsigned given;
};

struct command {
	const char *name;
	unsigned allowed;  /* OPT_* bits */
	unsigned required; /* OPT_* bits */
	int nargs;
	const char *usage;
	int (*run)(const struct cmdline *cl);
};

/*
 * Parse the whole command line into *cl: global options, the command, its
 * options and its positional arguments (options and arguments may mix;
 * "--" ends options). With --help or -h before the command, cl->help is
 * set and nothing else is looked at. Pure: returns 0 or -EINVAL with the
 * reason in why.
 */
int parse_cmdline(int argc, char **argv, struct cmdline *cl, char *why, size_t len);

/* Print the synopsis of every command (for --help). */
void print_usage(FILE *f);

/* --- The one error line (mb_proc.c) -------------------------------------- */

/*
 * Record the reason the user will read and the exit status that goes with
 * it, unless a reason is recorded already: the first failure is the most
 * precise one. Returns -abs(code) (never 0) so that callers can write
 * `return fail(...)`.
 */
int fail(int code, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Record why (from a check) as a refusal, exit status 1: fail()'s rules. */
int refuse(int code, const char *why);

/*
 * Write the recorded reason (or "<what> failed: <strerror(-rc)>" if none)
 * as the single stderr line and return the exit status.
 */
int report_failure(const char *what, int rc);

/* Write a reason to why (len bytes) for a check; returns -abs(code). */
int why_set(char *why, size_t len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Append printf output to buf (len bytes, *used of them used), silently
 * truncating: these build help lists for error messages, where a cut-off
 * list is better than none.
 */
void appendf(char *buf, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* --- Process hygiene (mb_proc.c) ----------------------------------------- */

/*
 * Make the process predictable whatever its parent left behind: fds 0-2
 * open, nothing else inherited, default signals, umask 022, an empty
 * environment but PATH=CHILD_PATH and LANG=C. Returns 0 or -errno.
 */
int sanitize_process(void);

/* --- Running tools (mb_proc.c) ------------------------------------------- */

#define ARGLIST_MAX 48

/*
 * An argv under construction; the strings live in arena. Start from
 * `struct arglist al = { .argc = 0 };`. An argument that does not fit sets
 * overflow and is dropped, as is every one after it.
 */
struct arglist {
	const char *argv[ARGLIST_MAX + 1];
	int argc;
	char arena[2 * PATH_MAX];
	size_t used;
	bool overflow;
};

/* Append a copy of s to al (pure; see overflow). */
void arglist_add(struct arglist *al, const char *s);

/* Pure: 0, or -E2BIG with the reason in why when an argument was dropped. */
int arglist_check(const struct arglist *al, char *why, size_t len);

/* Append s to al; 0, or -E2BIG recorded as a refusal. */
int arg_add(struct arglist *al, const char *s);

/*
 * Look tool up in the fixed CHILD_PATH directories and write its absolute
 * path to path. Never the caller's PATH: we run as root on its behalf.
 * Returns whether it is there (nothing recorded).
 */
bool lookup_tool(const char *tool, char *path, size_t len);

/*
 * The error a tool printed, as one line; points into buf, which it
 * modifies (pure). See mb_proc.c for how the line is chosen.
 */
char *tool_message(char *buf);

/*
 * The error of a tool that writes its own errors under its name ("rbd:
 * ..."): every line of buf starting with prefix, in order, joined with
 * "; ", written to out; tool_message's line when there is none. Modifies
 * buf (pure otherwise).
 */
void tool_errors(char *buf, const char *prefix, char *out, size_t len);

/* How run_tool_ex runs a tool and reads what it says. */
struct tool_opts {
	int timeout_s; /* SIGKILL it after this many seconds; 0: wait */
	char *out;     /* its stdout (NUL-terminated), or NULL: /dev/null */
	size_t outlen;
	const char *err_prefix; /* its own error lines start so (tool_errors) */
};

/*
 * Run the tool named by al->argv[0] as o says and wait for it. Its stderr
 * is captured; if it fails, the reason is "<desc>: <its error>". Returns 0
 * if it exited 0, else -EIO (or -ETIMEDOUT, or -errno of our own failure),
 * reason recorded.
 */
int run_tool_ex(const struct arglist *al, const char *desc, const struct tool_opts *o);

/* run_tool_ex without a time bound (ballastd bounds us) or stdout. */
int run_tool(const struct arglist *al, const char *desc);

/*
 * Run a tool that leaves a daemon behind (mount.glusterfs), all its output
 * to /dev/null, without a time bound. Returns 0 if it exited 0, else -EIO
 * without a reason recorded (the caller knows where its real error is),
 * or -errno of our own failure, recorded.
 */
int run_tool_quiet(const struct arglist *al, const char *desc);

/* --- Whitelists (mb_opts.c) ---------------------------------------------- */

enum fs_bits {
	FS_EXT4 = 1u << 0,
	FS_XFS = 1u << 1,
	FS_ANY = FS_EXT4 | FS_XFS,
};

/* The name of one FS_* bit, as mkfs, mount and the user spell it. */
const char *fs_name(unsigned fs);

/* Parse --fstype (ext4 or xfs) into *fs. Pure: 0 or -EINVAL (why). */
int parse_fstype(const char *s, unsigned *fs, char *why, size_t len);

/*
 * Parse a decimal number of at most 10 digits (no sign, no spaces, no
 * 0x) into *out. Returns 0 or -EINVAL.
 */
int parse_uint(const char *s, unsigned long *out);

/*
 * The whole mkfs argv for fs into al: the tool, its quiet flags, the
 * checked --mkfs-options opts (NULL: none), -L label when label is given
 * (checked), then source. Pure: 0, or -EINVAL / -E2BIG with the reason in
 * why naming the option.
 */
int build_mkfs_argv(unsigned fs, const char *opts, const char *label, const char *source, struct arglist *al, char *why,
		    size_t len);

/*
 * Check the --options string opts (NULL: none) for fs and write the
 * complete option string for libmount to out: the user's options, "loop"
 * if asked for, and always nosuid,nodev (last, so nothing can override
 * them). Pure: 0 or -EINVAL with the reason in why naming the option.
 */
int build_mount_options(unsigned fs, const char *opts, bool loop, char *out, size_t len, char *why, size_t whylen);

/* --- Paths and the mount table (mb_paths.c) ------------------------------ */

/* <state-dir>/mounts, resolved, and the filesystem it lives on. */
struct mounts_root {
	char path[PATH_MAX];
	dev_t dev;
};

enum target_mode {
	TARGET_EXISTING,       /* must exist */
	TARGET_CREATE,	       /* created (one level, mode 0755) when missing */
	TARGET_MAY_BE_MISSING, /* a missing one is reported, not refused */
};

enum target_found {
	TARGET_FOUND,
	TARGET_CREATED,
	TARGET_MISSING,
};

/* Pure: target is absolute and shorter than PATH_MAX; else -errno (why). */
int check_target_path(const char *target, char *why, size_t len);

/*
 * Split an absolute path (shorter than PATH_MAX) into the directory that
 * holds it (dir, PATH_MAX bytes; "/" for "/x") and its last component
 * (base, NAME_MAX + 1 bytes), ignoring trailing slashes. Pure: 0,
 * -ENAMETOOLONG (base longer than NAME_MAX) or -EINVAL (no name: "/",
 * ".", "..").
 */
int split_target(const char *target, char *dir, char *base);

/* Pure: whether the resolved path real lies strictly under root. */
bool path_under_root(const char *root, const char *real);

/*
 * Pure: whether a source of file type mode (st_mode) is what want asks
 * for: S_IFREG, S_IFBLK or 0 for either. 0 or -EINVAL (why).
 */
int check_source_mode(const char *source, mode_t want, bool loop, mode_t mode, char *why, size_t len);

/*
 * Find <state_dir>/mounts (resolved; itself a real directory), the only
 * directory under which anything is mounted, unmounted or grown. Returns
 * 0 or -errno (reason recorded).
 */
int find_mounts_root(const char *state_dir, struct mounts_root *root);

/*
 * Check that the resolved path real lies strictly under root and that its
 * parent is on root's own filesystem. Returns 0 or -EPERM (recorded,
 * naming target as the user gave it).
 */
int check_under_root(const struct mounts_root *root, const char *target, const char *real);

/*
 * Resolve the user's target to the real directory it names (out, PATH_MAX
 * bytes), check that it is strictly under root, create it or accept its
 * absence as mode says; *found says which happened. Returns 0 or -errno
 * (reason recorded; refusals exit 1).
 */
int resolve_target(const struct mounts_root *root, const char *target, enum target_mode mode, char *out,
		   enum target_found *found);

/* find_mounts_root of state_dir, then resolve_target there (root filled). */
int find_target(const char *state_dir, const char *target, enum target_mode mode, struct mounts_root *root, char *out,
		enum target_found *found);

/*
 * Check that source is an absolute path to an existing regular file or
 * block device as want says (see check_source_mode); fill *st. Symlinks
 * are followed. Returns 0 or -errno (reason recorded).
 */
int check_source(const char *source, mode_t want, bool loop, struct stat *st);

struct libmnt_fs;
struct libmnt_table;

/*
 * Read the first line of sysfs attribute attr of block device devno into
 * buf. -ENOENT means there is no such attribute. Returns 0 or -errno.
 */
int read_blockdev_attr(dev_t devno, const char *attr, char *buf, size_t len);

/* Whether devno is an attached loop device. */
bool is_loop(dev_t devno);

/* Parse /proc/self/mountinfo into *tb (caller unrefs). 0 or -errno (recorded). */
int load_mount_table(struct libmnt_table **tb);

/* The topmost mount on target (a resolved path) in tb (borrowed), or NULL. */
struct libmnt_fs *find_mount(struct libmnt_table *tb, const char *target);

/*
 * Open the device of mount table entry fs, checking that the path the
 * table names really is that device. Writes the fd to *fd (caller
 * closes). Returns 0 or -ENODEV/-errno (nothing recorded).
 */
int open_mounted_device(struct libmnt_fs *fs, int flags, int *fd);

/*
 * Whether mount table entry fs is a mount of the source stat'ed in *src:
 * the same block device or, with loop, a loop device whose backing file is
 * source. Returns 1, 0 or -errno (nothing recorded).
 */
int mount_is_of(struct libmnt_fs *fs, const struct stat *src, bool loop);

/*
 * Describe the source of mount table entry fs: for messages, the device
 * (and a loop device's file); for status (file_only), what `mount` was
 * given.
 */
void describe_source(struct libmnt_fs *fs, bool file_only, char *buf, size_t len);

/* --- Block file systems (mb_fs.c) ---------------------------------------- */

/* What libblkid found on a device. */
struct signature {
	char type[64];	/* TYPE or PTTYPE as libblkid names it */
	char uuid[64];	/* may be empty */
	char usage[32]; /* filesystem, raid, crypto, other, or empty */
	bool partition_table;
	bool ambiguous; /* several signatures that contradict */
};

/* "an" before ext4, xfs; "a" before btrfs, dos (good enough for fs names). */
const char *article(const char *word);

/* Pure: why mkfs refuses source that holds sig, into why; returns -EEXIST. */
int existing_data_message(const char *source, const struct signature *sig, char *why, size_t len);

/* The commands on block file systems (and glusterfs, for mount and umount):
 * 0 or -errno with the reason recorded. */
int cmd_mkfs(const struct cmdline *cl);
int cmd_mount(const struct cmdline *cl);
int cmd_umount(const struct cmdline *cl);
int cmd_grow(const struct cmdline *cl);
int cmd_freeze(const struct cmdline *cl);
int cmd_status(const struct cmdline *cl);

/* --- GlusterFS (mb_gluster.c) -------------------------------------------- */

/* Whether --fstype names glusterfs. */
bool is_gluster(const char *fstype);

/* Pure: SOURCE is HOST:/VOLUME[/DIR...], no "..", no empty component. */
int check_gluster_source(const char *src, char *why, size_t len);

/*
 * Pure: the -o list for mount.glusterfs into out: log-file=log, then the
 * user's one allowed option (backup-volfile-servers=H1:H2), then always
 * nosuid,nodev (last, as for the block file systems). 0, -EINVAL or
 * -E2BIG (why).
 */
int build_gluster_options(const char *opts, const char *log, char *out, size_t len, char *why, size_t whylen);

/*
 * Pure: the message of one line of the Gluster client's log when it is an
 * error line ("[time] E [...] msg"), pointing into line (modified), else
 * NULL.
 */
char *gluster_log_message(char *line);

/* mount for --fstype glusterfs: 0 or -errno (recorded). */
int cmd_mount_gluster(const struct cmdline *cl);

/*
 * If target is a glusterfs FUSE mount, unmount it without looking at the
 * target itself; *done says whether it was one. 0 or -errno (recorded).
 */
int umount_gluster(const struct mounts_root *root, const char *target, bool *done);

/* --- Kernel mappers (mb_map.c) ------------------------------------------- */

enum mapper {
	MAPPER_KRBD,
	MAPPER_NBD,
};

/* Pure: parse --mapper (krbd or nbd). 0 or -EINVAL (why). */
int parse_mapper(const char *s, enum mapper *m, char *why, size_t len);

/*
 * Pure: check a pool, image or user name (what names it in why): 1 to max
 * characters of [A-Za-z0-9._-], not starting with '-', not "." or "..".
 */
int check_rbd_name(const char *what, const char *v, size_t max, char *why, size_t len);

/* Pure: parse --timeout (NULL: the default, 30) in whole seconds, 1-3600. */
int parse_timeout(const char *s, int *timeout_s, char *why, size_t len);

/* Pure: whether dev names one of mapper m's devices: /dev/rbdN or /dev/nbdN. */
bool is_mapper_device(enum mapper m, const char *dev);

/*
 * Pure: check every option of map (cl) in the order the user reads about
 * them; *m and *timeout_s are set. 0 or -errno (why).
 */
int check_map_args(const struct cmdline *cl, enum mapper *m, int *timeout_s, char *why, size_t len);

/*
 * Pure: the argv of map (cl checked) for mapper m and POOL/IMAGE spec;
 * noudev where no udev runs (krbd would wait for it forever).
 */
int build_map_argv(const struct cmdline *cl, enum mapper m, const char *spec, bool noudev, struct arglist *al,
		   char *why, size_t len);

/* Pure: the argv of unmap for mapper m and what (a device or POOL/IMAGE). */
int build_unmap_argv(enum mapper m, const char *what, bool noudev, struct arglist *al, char *why, size_t len);

/*
 * Pure: the sysfs path of attribute attr ("" for the device's own
 * directory) of mapper m's device dev (/dev/rbdN: /sys/block/rbdN/attr)
 * into buf. 0, or -EINVAL when dev is not one of the mapper's devices.
 */
int device_sysfs_path(enum mapper m, const char *dev, const char *attr, char *buf, size_t len);

/* Pure: parse a sysfs dev attribute ("MAJOR:MINOR", a newline allowed). 0 or -EINVAL. */
int parse_devnum(const char *s, dev_t *devno);

/*
 * Pure: the device mapper m's tool printed in out (alone on a line),
 * pointing into out (modified), or NULL.
 */
char *mapped_device(enum mapper m, char *out);

/* The mapper commands: 0 or -errno (recorded). */
int cmd_map(const struct cmdline *cl);
int cmd_unmap(const struct cmdline *cl);
int cmd_mappers(const struct cmdline *cl);

#endif
