/*
 * mount_ballast.c - mount.ballast, the only code in ballast that formats,
 * mounts, unmounts and grows filesystems, and maps RBD images to devices.
 *
 *   mount.ballast [--state-dir DIR] mkfs --fstype ext4|xfs [--mkfs-options OPTS] [--label L] SOURCE
 *   mount.ballast [--state-dir DIR] mount --fstype ext4|xfs [--options OPTS] [--loop] SOURCE TARGET
 *   mount.ballast [--state-dir DIR] umount TARGET
 *   mount.ballast [--state-dir DIR] grow --fstype ext4|xfs TARGET
 *   mount.ballast [--state-dir DIR] status TARGET
 *   mount.ballast map --mapper krbd|nbd --pool POOL --image IMAGE --id USER [--conf PATH]
 *                     [--keyring PATH] [--read-only] [--ms-mode MODE] [--timeout S]
 *   mount.ballast unmap --mapper krbd|nbd [--timeout S] DEVICE
 *   mount.ballast mappers
 *
 * ballastd runs it by fork/exec with an argv (never through a shell) and
 * reads back the exit status and, on failure, the one line written to
 * stderr, which becomes the error the user sees. Keeping these operations
 * in a short-lived process keeps libmount, libblkid and the mkfs tools out
 * of the daemon's threads, and keeps everything that can destroy data or
 * change the mount table in one file that can be audited on its own: every
 * input is checked against a whitelist before anything is touched.
 *
 * Exit status:
 *   0  success; nothing on stderr (status, map and mappers print their
 *      answer on stdout)
 *   1  bad usage, or input refused by a check (option, path, fstype)
 *   2  the operation itself failed (the tool's or the kernel's message)
 *   3  mkfs refused: SOURCE already holds a filesystem or other signature
 * On failure stderr holds exactly one line: "mount.ballast: <reason>".
 */
#include <blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "mount.ballast"
#define DEFAULT_STATE_DIR "/var/lib/ballast"
#define CHILD_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define MOUNTINFO "/proc/self/mountinfo"

/* Longest --options / --mkfs-options string accepted; real ones are short. */
#define OPTS_MAX 512
/* How much of a tool's stderr is kept: enough for its last line. */
#define TOOL_OUTPUT_MAX 8192
/* How long umount waits for an autoclear loop device to go away. */
#define LOOP_DETACH_WAIT_MS 5000
/* Stacked mounts umount removes before giving up. */
#define UMOUNT_MAX_LAYERS 8

enum exit_status {
	EXIT_OK = 0,
	EXIT_REFUSED = 1, /* bad usage or refused input */
	EXIT_FAILED = 2,  /* the operation failed */
	EXIT_HAS_FS = 3,  /* mkfs: source already holds something */
};

/* ------------------------------------------------------------------------
 * The one error line
 */

static struct {
	char msg[1024];
	int status;
} mb_error;

/*
 * Record the reason the user will read and the exit status that goes with
 * it, unless a reason is recorded already: the first failure is the most
 * precise one. Returns -abs(code) (never 0) so that callers can write
 * `return fail(...)`.
 */
static int fail(int code, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(int code, int status, const char *fmt, ...)
{
	va_list ap;

	if (code > 0)
		code = -code;
	if (code == 0)
		code = -EIO;
	if (mb_error.msg[0])
		return code;
	va_start(ap, fmt);
	vsnprintf(mb_error.msg, sizeof(mb_error.msg), fmt, ap);
	va_end(ap);
	mb_error.status = status;
	return code;
}

/*
 * Write the recorded reason as the single stderr line and return the exit
 * status. Control characters (from a tool's output or a user's option) are
 * folded into spaces so that the line stays one line.
 */
static int report_failure(const char *what, int rc)
{
	char *p;

	if (!mb_error.msg[0])
		fail(rc, EXIT_FAILED, "%s failed: %s", what ? what : "command", strerror(-rc));
	for (p = mb_error.msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	fprintf(stderr, PROG ": %s\n", mb_error.msg);
	fflush(stderr);
	return mb_error.status ? mb_error.status : EXIT_FAILED;
}

/* ------------------------------------------------------------------------
 * Process hygiene
 */

/*
 * Close every fd above 2. ballastd is threaded and may leak an fd into the
 * fork; neither we nor mkfs should hold its sockets or lock files.
 */
static void close_inherited_fds(void)
{
	struct rlimit rl;
	unsigned long fd, max = 65536;

	if (close_range(3, ~0U, 0) == 0)
		return;
	/* close_range(2) needs Linux 5.9; fall back to closing them all. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
		max = rl.rlim_cur;
	for (fd = 3; fd < max; fd++)
		close((int)fd);
}

/*
 * Make the process predictable whatever its parent left behind: fds 0-2
 * open (so that no file we open becomes "stderr" and receives the error
 * line), nothing else inherited, default signal handling (an inherited
 * SIG_IGN for SIGCHLD would make waitpid on mkfs fail), a known umask, and
 * an environment with nothing libmount, libblkid or the tools would read
 * (LIBMOUNT_DEBUG, LIBMOUNT_FSTAB, BLKID_CONF, MKE2FS_CONFIG, ...).
 * Returns 0 or -errno.
 */
static int sanitize_process(void)
{
	sigset_t none;
	int fd, sig;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free fd is this one: the lower ones are open. */
		if (open("/dev/null", O_RDWR) != fd)
			return -EBADF;
	}
	close_inherited_fds();
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* fails harmlessly for KILL, STOP, RT */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(022);
	if (clearenv() != 0 || setenv("PATH", CHILD_PATH, 1) != 0 || setenv("LANG", "C", 1) != 0)
		return -ENOMEM;
	return 0;
}

/* ------------------------------------------------------------------------
 * Running tools (mkfs.*, resize2fs, xfs_growfs, rbd, rbd-nbd)
 */

#define ARGLIST_MAX 48

/* An argv under construction; the strings live in arena. */
struct arglist {
	const char *argv[ARGLIST_MAX + 1];
	int argc;
	char arena[2 * PATH_MAX];
	size_t used;
};

/* Append the first n bytes of s. Returns 0 or -E2BIG. */
static int arg_addn(struct arglist *al, const char *s, size_t n)
{
	char *copy;

	if (al->argc >= ARGLIST_MAX || n + 1 > sizeof(al->arena) - al->used)
		return fail(E2BIG, EXIT_REFUSED, "too many or too long arguments for %s",
			    al->argc ? al->argv[0] : "tool");
	copy = al->arena + al->used;
	memcpy(copy, s, n);
	copy[n] = '\0';
	al->used += n + 1;
	al->argv[al->argc++] = copy;
	al->argv[al->argc] = NULL;
	return 0;
}

/* Append the string s. Returns 0 or -E2BIG. */
static int arg_add(struct arglist *al, const char *s)
{
	return arg_addn(al, s, strlen(s));
}

/*
 * Look tool up in the fixed CHILD_PATH directories and write its absolute
 * path to path. Never the caller's PATH: we run as root on its behalf.
 * Returns whether it is there (nothing recorded).
 */
static bool lookup_tool(const char *tool, char *path, size_t len)
{
	static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };
	struct stat st;
	size_t i;
	int n;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		n = snprintf(path, len, "%s/%s", dirs[i], tool);
		if (n < 0 || (size_t)n >= len)
			continue;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/*
 * Find tool as lookup_tool does. Returns 0 or -ENOENT (reason recorded).
 */
static int find_tool(const char *tool, char *path, size_t len)
{
	if (lookup_tool(tool, path, len))
		return 0;
	return fail(ENOENT, EXIT_FAILED, "%s not found in %s", tool, CHILD_PATH);
}

/*
 * The error a tool printed, as one line; points into buf, which it
 * modifies. Tools print their error last (after banners such as
 * resize2fs's version line), but some follow it with a usage text
 * (mkfs.xfs) or wrap it onto indented continuation lines (mke2fs). So:
 * drop a usage text and what follows it, take the last line that starts
 * in column 0 together with its continuation lines, and fold all
 * whitespace runs, newlines included, into single spaces.
 */
static char *tool_message(char *buf)
{
	char *line, *nl, *start = NULL, *first = NULL, *src, *dst;

	for (src = buf; *src; src++)
		if (*src == '\r')
			*src = '\n';
	for (line = buf; *line; line = nl + 1) {
		if (strncasecmp(line, "usage:", 6) == 0) {
			*line = '\0';
			break;
		}
		if (line[0] && !isspace((unsigned char)line[0]))
			start = line;
		if (!first && line[strspn(line, " \t\n")] != '\0')
			first = line;
		nl = strchr(line, '\n');
		if (!nl)
			break;
	}
	if (!start)
		start = first ? first : buf;
	for (src = dst = start; *src; src++) {
		if ((unsigned char)*src < 0x20 || *src == 0x7f || *src == ' ') {
			if (dst > start && dst[-1] != ' ')
				*dst++ = ' ';
		} else {
			*dst++ = *src;
		}
	}
	while (dst > start && dst[-1] == ' ')
		dst--;
	*dst = '\0';
	return start;
}

/*
 * The error of a tool that writes its own errors under its name ("rbd:
 * ..."): every such line, in order, joined with "; ", written to out.
 * rbd follows its real reason with a generic one ("rbd: failed to load
 * rbd kernel module (1)", then "rbd: map failed: (2) No such file or
 * directory") and mixes in Ceph log lines and what the programs it runs
 * say (modprobe), so its last line alone says too little. A tool that
 * wrote no such line gets tool_message's. Modifies buf.
 */
static void tool_errors(char *buf, const char *prefix, char *out, size_t len)
{
	size_t plen = strlen(prefix), used = 0;
	char *line, *nl;
	int n;

	out[0] = '\0';
	for (line = buf; line && *line; line = nl) {
		nl = strpbrk(line, "\r\n");
		if (nl)
			*nl++ = '\0';
		if (strncmp(line, prefix, plen) == 0 && used < len) {
			n = snprintf(out + used, len - used, "%s%s", used ? "; " : "", line);
			used = n < 0 ? len : used + (size_t)n;
		}
		if (nl)
			nl[-1] = '\n';
	}
	if (!used)
		snprintf(out, len, "%s", tool_message(buf));
}

/*
 * In the child: wire stdin to /dev/null and stdout and stderr to outfd and
 * errfd, then exec. The environment is fixed, not inherited. With
 * own_group, the tool leads a process group of its own, so that killing
 * it at its time bound kills what it started too (rbd runs modprobe).
 * Never returns.
 */
static void exec_child(const char *path, const struct arglist *al, int devnull, int outfd, int errfd, bool own_group)
{
	static char *const env[] = { "PATH=" CHILD_PATH, "LANG=C", NULL };

	if (dup2(devnull, 0) < 0 || dup2(outfd, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(127);
	if (own_group && setpgid(0, 0) < 0)
		_exit(127);
	execve(path, (char *const *)al->argv, env);
	dprintf(2, "cannot execute %s: %s\n", path, strerror(errno));
	_exit(127);
}

/* How run_tool_ex runs a tool and reads what it says. */
struct tool_opts {
	int timeout_s; /* SIGKILL it after this many seconds; 0: wait */
	char *out;     /* its stdout (NUL-terminated), or NULL: /dev/null */
	size_t outlen;
	const char *err_prefix; /* its own error lines start so (tool_errors) */
};

/* A pipe from the tool and what was read from it (the tail, if long). */
struct capture {
	int fd;
	char *buf;
	size_t len, used;
};

/* One read from c->fd, which is readable; closes it at end of file. */
static void capture_read(struct capture *c)
{
	ssize_t n;

	n = read(c->fd, c->buf + c->used, c->len - 1 - c->used);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->used += (size_t)n;
	if (c->used == c->len - 1) {
		/* Keep the tail: the error is at the end. */
		memmove(c->buf, c->buf + c->used / 2, c->used - c->used / 2);
		c->used -= c->used / 2;
	}
	c->buf[c->used] = '\0';
}

/*
 * Wait up to wait_ms (-1: no bound) for output from the tool and read what
 * came. Returns 0, or -errno when poll itself failed.
 */
static int capture_poll(struct capture *caps, int ncaps, int wait_ms)
{
	struct pollfd pfd[2];
	int idx[2], n = 0, i;

	for (i = 0; i < ncaps && n < 2; i++) {
		if (caps[i].fd < 0)
			continue;
		pfd[n].fd = caps[i].fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		idx[n++] = i;
	}
	if (poll(pfd, (nfds_t)n, wait_ms) < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++)
		if (pfd[i].revents)
			capture_read(&caps[idx[i]]);
	return 0;
}

/*
 * Read what the tool left in c's pipe once it has exited; not more than a
 * few reads, as a daemon it started may still be writing there.
 */
static void capture_drain(struct capture *c)
{
	struct pollfd pfd;
	int k;

	for (k = 0; k < 64 && c->fd >= 0; k++) {
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) <= 0 || !pfd.revents)
			break;
		capture_read(c);
	}
}

/* Milliseconds on the monotonic clock. */
static long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How often a bounded run looks whether the tool itself has exited. */
#define TOOL_POLL_MS 50
/* How long a tool killed at its time bound is waited for. */
#define TOOL_REAP_MS 2000

/*
 * Wait for the tool pid, reading its output into caps, at most until
 * deadline (monotonic ms; 0: no bound), then SIGKILL it. A bounded run
 * watches the tool itself, not only its pipes: a daemon it leaves behind
 * (rbd-nbd) may hold them open. Returns 0 with *status set, -ETIMEDOUT
 * when it was killed, or -errno.
 */
static int wait_tool(pid_t pid, struct capture *caps, int ncaps, long deadline, int *status)
{
	long left;
	int i, rc;
	pid_t w;

	for (;;) {
		left = deadline ? deadline - monotonic_ms() : -1;
		if (deadline && left <= 0)
			break;
		if (!deadline && caps[0].fd < 0 && (ncaps < 2 || caps[1].fd < 0))
			break; /* unbounded: both pipes closed, block in waitpid */
		if (left > TOOL_POLL_MS)
			left = TOOL_POLL_MS;
		rc = capture_poll(caps, ncaps, (int)left);
		if (rc)
			break;
		w = waitpid(pid, status, WNOHANG);
		if (w == pid) {
			for (i = 0; i < ncaps; i++)
				capture_drain(&caps[i]);
			return 0;
		}
		if (w < 0 && errno != EINTR)
			return -errno;
	}
	if (!deadline) {
		while (waitpid(pid, status, 0) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	/* Its own process group (exec_child): take its helpers with it. */
	if (kill(-pid, SIGKILL) < 0)
		kill(pid, SIGKILL);
	/* Stuck in the kernel (a sysfs write), it may not die at once. */
	for (left = TOOL_REAP_MS; left > 0 && waitpid(pid, status, WNOHANG) == 0; left -= 10)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	return -ETIMEDOUT;
}

/*
 * Run the tool named by al->argv[0] as o says and wait for it. Its stderr
 * is captured; if it fails, the reason is "<desc>: <its error>" (see
 * tool_message and tool_errors). Returns 0 if it exited 0, else -EIO (or
 * -ETIMEDOUT, or -errno of our own failure).
 */
static int run_tool_ex(const struct arglist *al, const char *desc, const struct tool_opts *o)
{
	char path[PATH_MAX], err[TOOL_OUTPUT_MAX], msg[sizeof(mb_error.msg)];
	struct capture caps[2] = { { .fd = -1 }, { .fd = -1 } };
	int epfd[2] = { -1, -1 }, opfd[2] = { -1, -1 };
	int devnull, status = 0, rc, i;
	pid_t pid;

	rc = find_tool(al->argv[0], path, sizeof(path));
	if (rc)
		return rc;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return fail(errno, EXIT_FAILED, "cannot open /dev/null: %s", strerror(errno));
	if (pipe2(epfd, O_CLOEXEC) < 0 || (o->out && pipe2(opfd, O_CLOEXEC) < 0)) {
		rc = fail(errno, EXIT_FAILED, "cannot create a pipe: %s", strerror(errno));
		goto out_close;
	}
	pid = fork();
	if (pid < 0) {
		rc = fail(errno, EXIT_FAILED, "cannot fork for %s: %s", al->argv[0], strerror(errno));
		goto out_close;
	}
	if (pid == 0)
		exec_child(path, al, devnull, o->out ? opfd[1] : devnull, epfd[1], o->timeout_s > 0);
	close(epfd[1]);
	epfd[1] = -1;
	caps[0] = (struct capture){ .fd = epfd[0], .buf = err, .len = sizeof(err) };
	epfd[0] = -1;
	err[0] = '\0';
	if (o->out) {
		close(opfd[1]);
		opfd[1] = -1;
		caps[1] = (struct capture){ .fd = opfd[0], .buf = o->out, .len = o->outlen };
		opfd[0] = -1;
		o->out[0] = '\0';
	}

	rc = wait_tool(pid, caps, o->out ? 2 : 1, o->timeout_s > 0 ? monotonic_ms() + o->timeout_s * 1000L : 0,
		       &status);
	if (rc == -ETIMEDOUT) {
		rc = fail(ETIMEDOUT, EXIT_FAILED, "%s: %s did not finish within %d s", desc, al->argv[0], o->timeout_s);
		goto out_close;
	}
	if (rc) {
		rc = fail(rc, EXIT_FAILED, "cannot wait for %s: %s", al->argv[0], strerror(-rc));
		goto out_close;
	}
	if (o->err_prefix)
		tool_errors(err, o->err_prefix, msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "%s", tool_message(err));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else if (WIFEXITED(status) && *msg)
		rc = fail(EIO, EXIT_FAILED, "%s: %s", desc, msg);
	else if (WIFEXITED(status))
		rc = fail(EIO, EXIT_FAILED, "%s: %s exited with status %d", desc, al->argv[0], WEXITSTATUS(status));
	else
		rc = fail(EIO, EXIT_FAILED, "%s: %s was killed by signal %d", desc, al->argv[0],
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out_close:
	for (i = 0; i < 2; i++) {
		if (epfd[i] >= 0)
			close(epfd[i]);
		if (opfd[i] >= 0)
			close(opfd[i]);
		if (caps[i].fd >= 0)
			close(caps[i].fd);
	}
	close(devnull);
	return rc;
}

/*
 * Run the tool named by al->argv[0] and wait for it, without a time bound
 * (ballastd bounds us); see run_tool_ex.
 */
static int run_tool(const struct arglist *al, const char *desc)
{
	static const struct tool_opts plain = { .timeout_s = 0 };

	return run_tool_ex(al, desc, &plain);
}

/*
 * Run a tool that leaves a daemon behind (mount.glusterfs starts the FUSE
 * client): its output goes to /dev/null, since a daemon holding our stderr
 * would keep ballastd waiting on the pipe long after we exit. Returns 0 if
 * it exited 0, else -EIO without a reason recorded: the caller knows where
 * the tool writes its real error.
 */
static int run_tool_quiet(const struct arglist *al, const char *desc)
{
	char path[PATH_MAX];
	int devnull, status, rc;
	pid_t pid;

	rc = find_tool(al->argv[0], path, sizeof(path));
	if (rc)
		return rc;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return fail(errno, EXIT_FAILED, "cannot open /dev/null: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		rc = fail(errno, EXIT_FAILED, "%s: cannot fork: %s", desc, strerror(errno));
		goto out_close_devnull;
	}
	if (pid == 0)
		exec_child(path, al, devnull, devnull, devnull, false);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = fail(errno, EXIT_FAILED, "%s: cannot wait for %s: %s", desc, al->argv[0], strerror(errno));
			goto out_close_devnull;
		}
	}
	rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
out_close_devnull:
	close(devnull);
	return rc;
}

/* ------------------------------------------------------------------------
 * Whitelists
 *
 * Everything the user can pass through to mkfs or to the kernel is matched
 * against these tables, by exact name; values are checked by kind. What is
 * not listed is refused, so a new option is a conscious addition here.
 *
 * mkfs options (--mkfs-options): tokens separated by spaces or commas. A
 * token starting with '-' is a flag; the tokens after a flag that do not
 * start with '-' are its value, joined with commas (so "-O a,b", "-O a b"
 * and "-m crc=1,reflink=0" all work; no value starts with '-').
 *   ext4: -m N (reserved %, 0-50)        -i N (bytes per inode, 1024-64Mi)
 *         -I N (inode size, 2^n, 128-4096) -b N (block size, 2^n, 1024-65536)
 *         -N N (inode count, 1-2^32-1)
 *         -E lazy_itable_init=0|1,lazy_journal_init=0|1,discard,nodiscard
 *         -O [^]feature,...  (feature: [a-z0-9_], up to 32 characters)
 *   xfs:  -b size=N (2^n, 512-65536)       -i size=N (2^n, 256-2048)
 *         -m crc|reflink|finobt|rmapbt|bigtime|inobtcount=0|1,...
 *         -K (do not discard)
 *
 * mount options (--options): a comma list of
 *   both: ro rw noatime relatime nodiratime strictatime lazytime sync async
 *         dirsync noexec exec discard nodiscard usrquota grpquota prjquota
 *         noquota
 *   ext4: barrier nobarrier data=ordered|journal|writeback
 *         errors=remount-ro|continue commit=N (0-86400)
 *   xfs:  inode64 nouuid largeio logbsize=16k..256k (or the byte count)
 * nosuid,nodev are always added; suid and dev can never be given.
 */

/* The characters of an ext4 feature name and of a filesystem label. */
#define FEATURE_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"
#define LABEL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

/* Every character a whitelisted mkfs option or value can contain. */
#define MKFS_TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=.:^-"

enum fs_bits {
	FS_EXT4 = 1u << 0,
	FS_XFS = 1u << 1,
	FS_ANY = FS_EXT4 | FS_XFS,
};

enum val_kind {
	V_NONE,	    /* a bare flag or option: no value */
	V_UINT,	    /* decimal number in [min, max] */
	V_POW2,	    /* power of two in [min, max] */
	V_BOOL,	    /* 0 or 1 */
	V_CHOICE,   /* one of choices */
	V_FEATURES, /* comma list of [^]name, name of [a-z0-9_] */
	V_SUBOPTS,  /* comma list of name[=value], checked against subopts */
};

struct rule {
	const char *name;
	unsigned fs;
	enum val_kind kind;
	unsigned long min, max;
	const char *const *choices; /* V_CHOICE, NULL-terminated */
	const struct rule *subopts; /* V_SUBOPTS, ended by a NULL name */
};

#define R_FLAG(n, f)                                                                                                   \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_NONE                                                                 \
	}
#define R_UINT(n, f, lo, hi)                                                                                           \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_UINT, .min = (lo), .max = (hi)                                       \
	}
#define R_POW2(n, f, lo, hi)                                                                                           \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_POW2, .min = (lo), .max = (hi)                                       \
	}
#define R_BOOL(n, f)                                                                                                   \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_BOOL                                                                 \
	}
#define R_CHOICE(n, f, c)                                                                                              \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_CHOICE, .choices = (c)                                               \
	}
#define R_FEATURES(n, f)                                                                                               \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_FEATURES                                                             \
	}
#define R_SUB(n, f, s)                                                                                                 \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_SUBOPTS, .subopts = (s)                                              \
	}
#define R_END                                                                                                          \
	{                                                                                                              \
		.name = NULL                                                                                           \
	}

static const struct rule ext4_extended_opts[] = {
	R_BOOL("lazy_itable_init", FS_EXT4),
	R_BOOL("lazy_journal_init", FS_EXT4),
	R_FLAG("discard", FS_EXT4),
	R_FLAG("nodiscard", FS_EXT4),
	R_END,
};

static const struct rule xfs_block_opts[] = {
	R_POW2("size", FS_XFS, 512, 65536),
	R_END,
};

static const struct rule xfs_inode_opts[] = {
	R_POW2("size", FS_XFS, 256, 2048),
	R_END,
};

static const struct rule xfs_meta_opts[] = {
	R_BOOL("crc", FS_XFS),
	R_BOOL("reflink", FS_XFS),
	R_BOOL("finobt", FS_XFS),
	R_BOOL("rmapbt", FS_XFS),
	R_BOOL("bigtime", FS_XFS),
	R_BOOL("inobtcount", FS_XFS),
	R_END,
};

static const struct rule mkfs_rules[] = {
	R_UINT("-m", FS_EXT4, 0, 50),
	R_UINT("-i", FS_EXT4, 1024, 67108864),
	R_POW2("-I", FS_EXT4, 128, 4096),
	R_POW2("-b", FS_EXT4, 1024, 65536),
	R_UINT("-N", FS_EXT4, 1, 4294967295UL),
	R_SUB("-E", FS_EXT4, ext4_extended_opts),
	R_FEATURES("-O", FS_EXT4),
	R_SUB("-b", FS_XFS, xfs_block_opts),
	R_SUB("-i", FS_XFS, xfs_inode_opts),
	R_SUB("-m", FS_XFS, xfs_meta_opts),
	R_FLAG("-K", FS_XFS),
	R_END,
};

static const char *const ext4_data_modes[] = { "ordered", "journal", "writeback", NULL };
/* errors=panic is left out: a volume must not be able to crash the host. */
static const char *const ext4_error_modes[] = { "remount-ro", "continue", NULL };
static const char *const xfs_logbsizes[] = { "16k",   "32k",   "64k",	 "128k",   "256k", "16384",
					     "32768", "65536", "131072", "262144", NULL };

static const struct rule mount_rules[] = {
	R_FLAG("ro", FS_ANY),
	R_FLAG("rw", FS_ANY),
	R_FLAG("noatime", FS_ANY),
	R_FLAG("relatime", FS_ANY),
	R_FLAG("nodiratime", FS_ANY),
	R_FLAG("strictatime", FS_ANY),
	R_FLAG("lazytime", FS_ANY),
	R_FLAG("sync", FS_ANY),
	R_FLAG("async", FS_ANY),
	R_FLAG("dirsync", FS_ANY),
	R_FLAG("noexec", FS_ANY),
	R_FLAG("exec", FS_ANY),
	R_FLAG("discard", FS_ANY),
	R_FLAG("nodiscard", FS_ANY),
	R_FLAG("usrquota", FS_ANY),
	R_FLAG("grpquota", FS_ANY),
	R_FLAG("prjquota", FS_ANY),
	R_FLAG("noquota", FS_ANY),
	R_FLAG("barrier", FS_EXT4),
	R_FLAG("nobarrier", FS_EXT4),
	R_FLAG("noload", FS_EXT4),
	R_FLAG("norecovery", FS_XFS),
	R_CHOICE("data", FS_EXT4, ext4_data_modes),
	R_CHOICE("errors", FS_EXT4, ext4_error_modes),
	R_UINT("commit", FS_EXT4, 0, 86400),
	R_FLAG("inode64", FS_XFS),
	R_FLAG("nouuid", FS_XFS),
	R_FLAG("largeio", FS_XFS),
	R_CHOICE("logbsize", FS_XFS, xfs_logbsizes),
	R_END,
};

/* The name of one FS_* bit, as mkfs, mount and the user spell it. */
static const char *fs_name(unsigned fs)
{
	return fs == FS_EXT4 ? "ext4" : "xfs";
}

/* Parse --fstype. Returns 0 or -EINVAL (reason recorded). */
static int parse_fstype(const char *s, unsigned *fs)
{
	if (s && strcmp(s, "ext4") == 0)
		*fs = FS_EXT4;
	else if (s && strcmp(s, "xfs") == 0)
		*fs = FS_XFS;
	else
		return fail(EINVAL, EXIT_REFUSED, "unsupported filesystem type '%.64s' (expected ext4 or xfs)",
			    s ? s : "");
	return 0;
}

/* The rule called name that applies to fs, or NULL. */
static const struct rule *find_rule(const struct rule *rules, unsigned fs, const char *name, size_t len)
{
	for (; rules->name; rules++)
		if ((rules->fs & fs) && strlen(rules->name) == len && strncmp(rules->name, name, len) == 0)
			return rules;
	return NULL;
}

/*
 * Append printf output to buf (len bytes, *used of them used), silently
 * truncating: these build help lists for error messages, where a cut-off
 * list is better than none.
 */
static void appendf(char *buf, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void appendf(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*used += (size_t)n;
	if (*used >= len)
		*used = len;
}

/* Write the choices of rule r as "a|b|c" into buf. */
static void list_choices(const struct rule *r, char *buf, size_t len)
{
	const char *const *c;
	size_t used = 0;

	buf[0] = '\0';
	for (c = r->choices; *c; c++)
		appendf(buf, len, &used, "%s%s", c == r->choices ? "" : "|", *c);
}

/*
 * Write "name, name=0|1, ..." for the rules that apply to fs into buf, for
 * an error that tells the user what they may write instead; sep goes
 * between a name and its value ("=" for mount options, " " for flags).
 */
static void list_rules(const struct rule *rules, unsigned fs, const char *sep, char *buf, size_t len)
{
	char choices[256];
	size_t used = 0;

	buf[0] = '\0';
	for (; rules->name; rules++) {
		if (!(rules->fs & fs))
			continue;
		appendf(buf, len, &used, "%s%s", used ? ", " : "", rules->name);
		switch (rules->kind) {
		case V_UINT:
		case V_POW2:
			appendf(buf, len, &used, "%sN", sep);
			break;
		case V_BOOL:
			appendf(buf, len, &used, "%s0|1", sep);
			break;
		case V_FEATURES:
			appendf(buf, len, &used, "%sFEATURES", sep);
			break;
		case V_SUBOPTS:
			appendf(buf, len, &used, "%sSUBOPTIONS", sep);
			break;
		case V_CHOICE:
			list_choices(rules, choices, sizeof(choices));
			appendf(buf, len, &used, "%s%s", sep, choices);
			break;
		case V_NONE:
			break;
		}
	}
}

/*
 * Parse a decimal number of at most 10 digits (no sign, no spaces, no
 * 0x) into *out. Returns 0 or -EINVAL.
 */
static int parse_uint(const char *s, unsigned long *out)
{
	size_t len = strlen(s);

	if (len == 0 || len > 10 || strspn(s, "0123456789") != len)
		return -EINVAL;
	*out = strtoul(s, NULL, 10);
	return 0;
}

/*
 * Check value (NULL: none was given) against rule r. Returns 0, or -EINVAL
 * with what was expected written to why.
 */
static int check_value(const struct rule *r, const char *value, char *why, size_t len)
{
	char buf[OPTS_MAX + 1], list[512], *item, *save, *eq;
	const struct rule *sub;
	const char *const *c;
	unsigned long v;
	size_t n;

	if (r->kind == V_NONE) {
		if (!value)
			return 0;
		snprintf(why, len, "takes no value");
		return -EINVAL;
	}
	if (!value || !*value) {
		snprintf(why, len, "needs a value");
		return -EINVAL;
	}
	switch (r->kind) {
	case V_UINT:
	case V_POW2:
		if (parse_uint(value, &v) || v < r->min || v > r->max || (r->kind == V_POW2 && (v & (v - 1)))) {
			snprintf(why, len, "expected %s from %lu to %lu",
				 r->kind == V_POW2 ? "a power of two" : "a whole number", r->min, r->max);
			return -EINVAL;
		}
		return 0;
	case V_BOOL:
		if (strcmp(value, "0") && strcmp(value, "1")) {
			snprintf(why, len, "expected 0 or 1");
			return -EINVAL;
		}
		return 0;
	case V_CHOICE:
		for (c = r->choices; *c; c++)
			if (strcmp(*c, value) == 0)
				return 0;
		list_choices(r, list, sizeof(list));
		snprintf(why, len, "expected one of %s", list);
		return -EINVAL;
	case V_FEATURES:
	case V_SUBOPTS:
		break;
	default:
		snprintf(why, len, "unknown rule");
		return -EINVAL;
	}

	if (strlen(value) >= sizeof(buf)) {
		snprintf(why, len, "value too long");
		return -EINVAL;
	}
	strcpy(buf, value);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (r->kind == V_FEATURES) {
			n = strlen(item + (item[0] == '^'));
			if (n == 0 || n > 32 || strspn(item + (item[0] == '^'), FEATURE_CHARS) != n) {
				snprintf(why, len, "'%.64s' is not a feature name ([^]name, name of a-z 0-9 _)", item);
				return -EINVAL;
			}
			continue;
		}
		eq = strchr(item, '=');
		sub = find_rule(r->subopts, r->fs, item, eq ? (size_t)(eq - item) : strlen(item));
		if (!sub) {
			list_rules(r->subopts, r->fs, "=", list, sizeof(list));
			snprintf(why, len, "unknown sub-option '%.64s' (allowed: %s)", item, list);
			return -EINVAL;
		}
		if (check_value(sub, eq ? eq + 1 : NULL, list, sizeof(list))) {
			snprintf(why, len, "sub-option '%.64s': %s", item, list);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Check the --mkfs-options string opts (grammar above) for fs and append
 * the resulting arguments to al. Returns 0 or -EINVAL naming the token.
 */
static int add_mkfs_options(unsigned fs, const char *opts, struct arglist *al)
{
	char buf[OPTS_MAX + 1], value[OPTS_MAX + 1], why[512], list[256];
	char *tok[OPTS_MAX / 2 + 1], *save, *t;
	const struct rule *r;
	size_t ntok = 0, i, used;
	int rc, n;

	if (!opts || !*opts)
		return 0;
	if (strlen(opts) > OPTS_MAX)
		return fail(EINVAL, EXIT_REFUSED, "mkfs options are too long (at most %d characters)", OPTS_MAX);
	strcpy(buf, opts);
	for (t = strtok_r(buf, " \t\n,", &save); t; t = strtok_r(NULL, " \t\n,", &save)) {
		if (strspn(t, MKFS_TOKEN_CHARS) != strlen(t))
			return fail(
				EINVAL, EXIT_REFUSED,
				"mkfs option '%.64s' is not allowed (only letters, digits and _ = . : ^ - may appear)",
				t);
		tok[ntok++] = t;
	}

	for (i = 0; i < ntok; i++) {
		if (tok[i][0] != '-')
			return fail(EINVAL, EXIT_REFUSED,
				    "unexpected mkfs option '%.64s' (values follow their flag, e.g. -m 1)", tok[i]);
		r = find_rule(mkfs_rules, fs, tok[i], strlen(tok[i]));
		if (!r) {
			list_rules(mkfs_rules, fs, " ", list, sizeof(list));
			return fail(EINVAL, EXIT_REFUSED, "mkfs option '%.64s' is not allowed for %s (allowed: %s)",
				    tok[i], fs_name(fs), list);
		}
		/* Gather the value: the following tokens up to the next flag. */
		used = 0;
		value[0] = '\0';
		while (i + 1 < ntok && tok[i + 1][0] != '-') {
			i++;
			/* Cannot overflow: the joined value is no longer than opts. */
			n = snprintf(value + used, sizeof(value) - used, "%s%s", used ? "," : "", tok[i]);
			if (n < 0 || (size_t)n >= sizeof(value) - used)
				return fail(EINVAL, EXIT_REFUSED, "mkfs options are too long");
			used += (size_t)n;
		}
		if (check_value(r, used ? value : NULL, why, sizeof(why)))
			return fail(EINVAL, EXIT_REFUSED, "mkfs option '%s%s%.64s' for %s: %s", r->name,
				    used ? " " : "", value, fs_name(fs), why);
		rc = arg_add(al, r->name);
		if (!rc && used)
			rc = arg_add(al, value);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Check the --options string opts for fs and write the complete option
 * string for libmount to out: the user's options, "loop" if asked for, and
 * always nosuid,nodev (last, so nothing can override them). Returns 0 or
 * -EINVAL naming the option.
 */
static int build_mount_options(unsigned fs, const char *opts, bool loop, char *out, size_t len)
{
	char buf[OPTS_MAX + 1], why[512], list[640], *item, *rest, *eq;
	const struct rule *r;
	size_t used = 0, nlen;
	int n;

	out[0] = '\0';
	if (opts && strlen(opts) > OPTS_MAX)
		return fail(EINVAL, EXIT_REFUSED, "mount options are too long (at most %d characters)", OPTS_MAX);
	if (opts && *opts) {
		strcpy(buf, opts);
		rest = buf;
		while ((item = strsep(&rest, ",")) != NULL) {
			if (!*item)
				return fail(EINVAL, EXIT_REFUSED, "empty mount option in '%.128s'", opts);
			eq = strchr(item, '=');
			nlen = eq ? (size_t)(eq - item) : strlen(item);
			r = find_rule(mount_rules, fs, item, nlen);
			if (!r && find_rule(mount_rules, FS_ANY, item, nlen))
				return fail(EINVAL, EXIT_REFUSED, "mount option '%.64s' is not valid for %s", item,
					    fs_name(fs));
			if (!r) {
				list_rules(mount_rules, fs, "=", list, sizeof(list));
				return fail(EINVAL, EXIT_REFUSED, "mount option '%.64s' is not allowed (allowed: %s)",
					    item, list);
			}
			if (check_value(r, eq ? eq + 1 : NULL, why, sizeof(why)))
				return fail(EINVAL, EXIT_REFUSED, "mount option '%.64s': %s", item, why);
			n = snprintf(out + used, len - used, "%s,", item);
			if (n < 0 || (size_t)n >= len - used)
				return fail(EINVAL, EXIT_REFUSED, "mount options are too long");
			used += (size_t)n;
		}
	}
	n = snprintf(out + used, len - used, "%snosuid,nodev", loop ? "loop," : "");
	if (n < 0 || (size_t)n >= len - used)
		return fail(EINVAL, EXIT_REFUSED, "mount options are too long");
	return 0;
}

/*
 * Check a filesystem label: 1 to 16 (ext4) or 12 (xfs) characters of
 * [A-Za-z0-9._-], not starting with '-'. Longer labels would be truncated
 * or refused by mkfs with a less clear message.
 */
static int check_label(unsigned fs, const char *label)
{
	size_t max = fs == FS_EXT4 ? 16 : 12, len = strlen(label);

	if (len == 0 || len > max || label[0] == '-' || strspn(label, LABEL_CHARS) != len)
		return fail(EINVAL, EXIT_REFUSED,
			    "invalid %s label '%.64s' (1 to %zu characters of A-Z a-z 0-9 . _ -, not starting with -)",
			    fs_name(fs), label, max);
	return 0;
}

/* ------------------------------------------------------------------------
 * Paths
 */

/* <state-dir>/mounts, resolved, and the filesystem it lives on. */
struct mounts_root {
	char path[PATH_MAX];
	dev_t dev;
};

/*
 * Find <state_dir>/mounts, the only directory under which anything is
 * mounted, unmounted or grown. The state directory is resolved (it may be
 * a symlink: /var/lib/ballast -> /data/ballast); mounts itself must be a
 * real directory, so that no single symlink can redirect all targets.
 * ballastd creates it; we do not. Returns 0 or -errno (reason recorded).
 */
static int find_mounts_root(const char *state_dir, struct mounts_root *root)
{
	char real[PATH_MAX];
	struct stat st;
	int n, e;

	if (!realpath(state_dir, real)) {
		e = errno;
		return fail(e, EXIT_REFUSED, "state directory %s: %s", state_dir, strerror(e));
	}
	n = snprintf(root->path, sizeof(root->path), "%s/mounts", strcmp(real, "/") ? real : "");
	if (n < 0 || (size_t)n >= sizeof(root->path))
		return fail(ENAMETOOLONG, EXIT_REFUSED, "state directory %s: path too long", state_dir);
	if (lstat(root->path, &st) < 0) {
		e = errno;
		return fail(e, EXIT_REFUSED, "mounts directory %s: %s", root->path, strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		return fail(ENOTDIR, EXIT_REFUSED, "mounts directory %s is not a directory", root->path);
	root->dev = st.st_dev;
	return 0;
}

/*
 * Check that the resolved path real lies strictly under root, and that its
 * parent directory is on root's own filesystem. The second check matters
 * because directories inside a mounted volume are writable by containers:
 * a target there could be swapped for a symlink between our check and the
 * mount. Returns 0 or -EPERM (reason names target, as the user gave it).
 */
static int check_under_root(const struct mounts_root *root, const char *target, const char *real)
{
	size_t len = strlen(root->path);
	char parent[PATH_MAX];
	struct stat st;

	if (strncmp(real, root->path, len) != 0 || real[len] != '/' || real[len + 1] == '\0') {
		if (strcmp(real, target) == 0)
			return fail(EPERM, EXIT_REFUSED, "target %s is not under %s", target, root->path);
		return fail(EPERM, EXIT_REFUSED, "target %s (resolved to %s) is not under %s", target, real,
			    root->path);
	}
	strcpy(parent, real);
	*strrchr(parent, '/') = '\0';
	if (stat(parent, &st) < 0 || st.st_dev != root->dev)
		return fail(EPERM, EXIT_REFUSED, "target %s is inside another mounted filesystem, not directly in %s",
			    target, root->path);
	return 0;
}

/*
 * For a target that does not exist: resolve its parent (which must exist)
 * and write parent/basename to out. A basename that exists after all (a
 * dangling symlink) is refused: we never create through a symlink.
 * Returns 0 or -errno (reason recorded).
 */
static int resolve_missing(const char *target, char *out)
{
	char buf[PATH_MAX], parent[PATH_MAX], base[NAME_MAX + 1], *slash;
	struct stat st;
	size_t len;
	int n, e;

	strcpy(buf, target);
	len = strlen(buf);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	slash = strrchr(buf, '/');
	if (strlen(slash + 1) > NAME_MAX)
		return fail(ENAMETOOLONG, EXIT_REFUSED, "target %s: name too long", target);
	strcpy(base, slash + 1);
	if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return fail(EINVAL, EXIT_REFUSED, "target %s does not name a directory", target);
	/* Cut buf to the parent; for "/x" that is "/" itself. */
	slash[slash == buf] = '\0';
	if (!realpath(buf, parent)) {
		e = errno;
		return fail(e, EXIT_REFUSED, "parent directory of target %s: %s", target, strerror(e));
	}
	n = snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", base);
	if (n < 0 || n >= PATH_MAX)
		return fail(ENAMETOOLONG, EXIT_REFUSED, "target %s: path too long", target);
	if (lstat(out, &st) == 0)
		return fail(ELOOP, EXIT_REFUSED, "target %s is a dangling symlink", target);
	return 0;
}

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

/*
 * Resolve the user's target to the real directory it names (written to
 * out, PATH_MAX bytes) and check that it is strictly under root; create it
 * or accept its absence as mode says. *found says which happened, so that
 * a caller can remove a directory it created when the mount fails.
 * Returns 0 or -errno (reason recorded; refusals exit 1).
 */
static int resolve_target(const struct mounts_root *root, const char *target, enum target_mode mode, char *out,
			  enum target_found *found)
{
	struct stat st;
	bool exists;
	int rc, e;

	if (target[0] != '/')
		return fail(EINVAL, EXIT_REFUSED, "target %.256s is not an absolute path", target);
	if (strlen(target) >= PATH_MAX)
		return fail(ENAMETOOLONG, EXIT_REFUSED, "target path too long");
	exists = realpath(target, out) != NULL;
	if (!exists) {
		e = errno;
		if (e != ENOENT)
			return fail(e, EXIT_REFUSED, "target %s: %s", target, strerror(e));
		if (mode == TARGET_EXISTING)
			return fail(e, EXIT_REFUSED, "target %s does not exist", target);
		rc = resolve_missing(target, out);
		if (rc)
			return rc;
	}
	rc = check_under_root(root, target, out);
	if (rc)
		return rc;

	if (exists) {
		if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
			return fail(ENOTDIR, EXIT_REFUSED, "target %s is not a directory", target);
		*found = TARGET_FOUND;
		return 0;
	}
	if (mode == TARGET_MAY_BE_MISSING) {
		*found = TARGET_MISSING;
		return 0;
	}
	if (mkdir(out, 0755) == 0) {
		*found = TARGET_CREATED;
		return 0;
	}
	e = errno;
	/* Lost a race with another creator: fine if it made a directory. */
	if (e == EEXIST && lstat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		*found = TARGET_FOUND;
		return 0;
	}
	return fail(e, EXIT_FAILED, "cannot create target %s: %s", out, strerror(e));
}

/*
 * Check that source is an absolute path to an existing regular file (when
 * want is S_IFREG), block device (S_IFBLK), or either (0); fill *st.
 * Symlinks are followed: /dev/disk/by-id/... are symlinks.
 */
static int check_source(const char *source, mode_t want, bool loop, struct stat *st)
{
	int e;

	if (source[0] != '/')
		return fail(EINVAL, EXIT_REFUSED, "source %.256s is not an absolute path", source);
	if (stat(source, st) < 0) {
		e = errno;
		if (e == ENOENT)
			return fail(e, EXIT_REFUSED, "source %s does not exist", source);
		return fail(e, EXIT_REFUSED, "source %s: %s", source, strerror(e));
	}
	if (want == 0 && !S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return fail(EINVAL, EXIT_REFUSED, "source %s is neither a regular file nor a block device", source);
	if (want == S_IFREG && !S_ISREG(st->st_mode))
		return fail(EINVAL, EXIT_REFUSED, "source %s is not a regular file (%s)", source,
			    loop ? "--loop needs an image file" : "expected an image file");
	if (want == S_IFBLK && !S_ISBLK(st->st_mode))
		return fail(EINVAL, EXIT_REFUSED, "source %s is not a block device (use --loop for an image file)",
			    source);
	return 0;
}

/* ------------------------------------------------------------------------
 * Mount table and loop devices
 */

/*
 * Read the first line of sysfs attribute attr of block device devno into
 * buf. -ENOENT means there is no such attribute: for "loop/..." the device
 * is not an attached loop device. Returns 0 or -errno.
 */
static int read_blockdev_attr(dev_t devno, const char *attr, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", major(devno), minor(devno), attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		rc = -errno;
		goto out_close_fd;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
out_close_fd:
	close(fd);
	return rc;
}

/* Whether devno is an attached loop device. */
static bool is_loop(dev_t devno)
{
	char buf[PATH_MAX + 16];

	return devno && read_blockdev_attr(devno, "loop/backing_file", buf, sizeof(buf)) == 0;
}

/* Parse /proc/self/mountinfo into *tb. Returns 0 or -errno. */
static int load_mount_table(struct libmnt_table **tb)
{
	*tb = mnt_new_table_from_file(MOUNTINFO);
	if (!*tb)
		return fail(errno ? errno : ENOMEM, EXIT_FAILED, "cannot read %s", MOUNTINFO);
	return 0;
}

/*
 * The topmost mount on target (a resolved path) in tb, or NULL. Backward,
 * because when mounts are stacked the last one listed is the visible one.
 */
static struct libmnt_fs *find_mount(struct libmnt_table *tb, const char *target)
{
	return mnt_table_find_target(tb, target, MNT_ITER_BACKWARD);
}

/*
 * Open the device of mount table entry fs, checking that the path the table
 * names really is that device (it may not be: the table records the name
 * used at mount time). Writes the fd to *fd. Returns 0 or -ENODEV/-errno.
 */
static int open_mounted_device(struct libmnt_fs *fs, int flags, int *fd)
{
	const char *path = mnt_fs_get_srcpath(fs);
	struct stat st;
	int rc = 0;

	if (!path || path[0] != '/')
		return -ENODEV;
	*fd = open(path, flags | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != mnt_fs_get_devno(fs)) {
		rc = -ENODEV;
		goto out_close_fd;
	}
	return 0;
out_close_fd:
	close(*fd);
	*fd = -1;
	return rc;
}

/*
 * Whether mount table entry fs is a mount of the source stat'ed in *src:
 * the same block device or, with loop, a loop device whose backing file is
 * source. Device and inode numbers (LOOP_GET_STATUS64, as losetup does)
 * make the answer independent of how either path was spelled: symlinks,
 * bind mounts, /dev/mapper/x versus /dev/dm-N. Returns 1, 0 or -errno.
 */
static int mount_is_of(struct libmnt_fs *fs, const struct stat *src, bool loop)
{
	dev_t devno = mnt_fs_get_devno(fs);
	struct loop_info64 info;
	int fd, rc;

	if (!loop)
		return S_ISBLK(src->st_mode) && devno && src->st_rdev == devno;
	if (!is_loop(devno))
		return 0;
	rc = open_mounted_device(fs, O_RDONLY, &fd);
	if (rc)
		return rc == -ENODEV ? 0 : rc;
	if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0) {
		rc = errno == ENXIO ? 0 : -errno;
		goto out_close_fd;
	}
	rc = info.lo_device == src->st_dev && info.lo_inode == src->st_ino && info.lo_offset == 0;
out_close_fd:
	close(fd);
	return rc;
}

/*
 * Describe the source of mount table entry fs. For messages: the device,
 * and for a loop device the file behind it. For status (file_only): what
 * `mount` was given, i.e. the backing file of a loop device that mount
 * --loop attached (autoclear), the device otherwise.
 */
static void describe_source(struct libmnt_fs *fs, bool file_only, char *buf, size_t len)
{
	const char *src = mnt_fs_get_source(fs);
	dev_t devno = mnt_fs_get_devno(fs);
	char backing[PATH_MAX + 16], flag[8];

	if (!src)
		src = "none";
	if (read_blockdev_attr(devno, "loop/backing_file", backing, sizeof(backing)) != 0)
		snprintf(buf, len, "%s", src);
	else if (!file_only)
		snprintf(buf, len, "%s (loop device for %s)", src, backing);
	else if (read_blockdev_attr(devno, "loop/autoclear", flag, sizeof(flag)) == 0 && strcmp(flag, "1") == 0)
		snprintf(buf, len, "%s", backing);
	else
		snprintf(buf, len, "%s", src);
}

/* ------------------------------------------------------------------------
 * Probing
 */

struct signature {
	char type[64];	/* TYPE or PTTYPE as libblkid names it */
	char uuid[64];	/* may be empty */
	char usage[32]; /* filesystem, raid, crypto, other, or empty */
	bool partition_table;
	bool ambiguous; /* several signatures that contradict */
};

/*
 * Probe fd (path names it in messages) for filesystem and other superblocks
 * (LVM, RAID, LUKS, swap) and, with partitions, partition tables. Returns 1
 * when something was found (described in *sig), 0 when nothing was, or
 * -errno (reason recorded).
 */
static int probe_signatures(int fd, const char *path, bool partitions, struct signature *sig)
{
	const char *v;
	blkid_probe pr;
	int rc;

	memset(sig, 0, sizeof(*sig));
	pr = blkid_new_probe();
	if (!pr)
		return fail(ENOMEM, EXIT_FAILED, "cannot probe %s: out of memory", path);
	if (blkid_probe_set_device(pr, fd, 0, 0) != 0) {
		rc = fail(EIO, EXIT_FAILED, "cannot probe %s", path);
		goto out_free_probe;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, partitions);
	if (partitions)
		blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);

	rc = blkid_do_safeprobe(pr);
	if (rc == 1) {
		rc = 0;
	} else if (rc == -2) {
		sig->ambiguous = true;
		rc = 1;
	} else if (rc == 0) {
		if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0) {
			snprintf(sig->type, sizeof(sig->type), "%s", v);
		} else if (blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0) {
			snprintf(sig->type, sizeof(sig->type), "%s", v);
			sig->partition_table = true;
		} else {
			snprintf(sig->type, sizeof(sig->type), "unknown");
		}
		if (blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0)
			snprintf(sig->uuid, sizeof(sig->uuid), "%s", v);
		if (blkid_probe_lookup_value(pr, "USAGE", &v, NULL) == 0)
			snprintf(sig->usage, sizeof(sig->usage), "%s", v);
		rc = 1;
	} else {
		rc = fail(EIO, EXIT_FAILED, "cannot probe %s for existing data", path);
	}
out_free_probe:
	blkid_free_probe(pr);
	return rc;
}

/* "an" before ext4, xfs; "a" before btrfs, dos (good enough for fs names). */
static const char *article(const char *word)
{
	return strchr("aeiouxAEIOU", word[0]) && word[0] ? "an" : "a";
}

/*
 * Refuse to format source when sig describes something on it: the exit
 * status 3 and a message naming what was found. Never returns 0.
 */
static int refuse_existing(const char *source, const struct signature *sig)
{
	if (sig->ambiguous)
		return fail(EEXIST, EXIT_HAS_FS, "%s already holds several conflicting signatures; refusing to format",
			    source);
	if (sig->partition_table)
		return fail(EEXIST, EXIT_HAS_FS, "%s already holds %s %s partition table; refusing to format", source,
			    article(sig->type), sig->type);
	return fail(EEXIST, EXIT_HAS_FS, "%s already holds %s %s %s%s%s%s; refusing to format", source,
		    article(sig->type), sig->type, strcmp(sig->usage, "filesystem") == 0 ? "filesystem" : "signature",
		    sig->uuid[0] ? " (UUID " : "", sig->uuid, sig->uuid[0] ? ")" : "");
}

/*
 * Check that source holds a filesystem of type fstype before mounting it:
 * the kernel would only say "wrong fs type, bad option, bad superblock".
 * An inconclusive probe is left for the kernel to judge.
 */
static int check_source_fstype(const char *source, const char *fstype)
{
	struct signature sig;
	int fd, rc;

	fd = open(source, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, EXIT_FAILED, "cannot open %s: %s", source, strerror(errno));
	rc = probe_signatures(fd, source, false, &sig);
	if (rc < 0)
		goto out_close_fd;
	if (rc == 0)
		rc = fail(ENOENT, EXIT_FAILED, "%s holds no filesystem (expected %s)", source, fstype);
	else if (!sig.ambiguous && strcmp(sig.type, fstype) != 0)
		rc = fail(EINVAL, EXIT_FAILED, "%s holds %s %s %s, not %s", source, article(sig.type), sig.type,
			  strcmp(sig.usage, "filesystem") == 0 ? "filesystem" : "signature", fstype);
	else
		rc = 0;
out_close_fd:
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------------
 * libmount
 */

/*
 * A libmount context with the settings every operation wants: no
 * /sbin/mount.<type> or umount.<type> helpers (they would run as root but
 * outside our checks) and no utab writes (nothing needs them, and /run may
 * be read-only in a container). Returns NULL when out of memory.
 */
static struct libmnt_context *new_context(void)
{
	struct libmnt_context *cxt = mnt_new_context();

	if (!cxt)
		return NULL;
	if (mnt_context_disable_helpers(cxt, 1) != 0 || mnt_context_disable_mtab(cxt, 1) != 0) {
		mnt_free_context(cxt);
		return NULL;
	}
	return cxt;
}

/*
 * The errno and message for a failed libmount call rc on cxt: libmount's
 * explanation of what the kernel said (it names the device), else strerror.
 */
static int context_error(struct libmnt_context *cxt, int rc, char *msg, size_t len)
{
	int err;

	msg[0] = '\0';
	mnt_context_get_excode(cxt, rc, msg, len);
	err = mnt_context_get_syscall_errno(cxt);
	if (err <= 0)
		err = rc < 0 ? -rc : EIO;
	if (!msg[0])
		snprintf(msg, len, "%s", strerror(err));
	return err;
}

/*
 * Mount source on target with libmount; options are complete (validated,
 * with nosuid,nodev and loop added). With loop, libmount attaches a loop
 * device with autoclear, so that the kernel detaches it at umount.
 */
static int do_mount(const char *source, const char *target, const char *fstype, const char *options)
{
	struct libmnt_context *cxt;
	char msg[512];
	int rc, err;

	cxt = new_context();
	if (!cxt)
		return fail(ENOMEM, EXIT_FAILED, "cannot mount %s: out of memory", source);
	if (mnt_context_set_source(cxt, source) != 0 || mnt_context_set_target(cxt, target) != 0 ||
	    mnt_context_set_fstype(cxt, fstype) != 0 || mnt_context_set_options(cxt, options) != 0) {
		rc = fail(ENOMEM, EXIT_FAILED, "cannot mount %s: out of memory", source);
		goto out_free_ctx;
	}
	rc = mnt_context_mount(cxt);
	if (mnt_context_get_excode(cxt, rc, NULL, 0) == MNT_EX_SUCCESS) {
		rc = 0;
		goto out_free_ctx;
	}
	err = context_error(cxt, rc, msg, sizeof(msg));
	rc = fail(err, EXIT_FAILED, "cannot mount %s on %s: %s", source, target, msg);
out_free_ctx:
	mnt_free_context(cxt);
	return rc;
}

/* Unmount the topmost mount on target with libmount. */
static int do_umount(const char *target)
{
	struct libmnt_context *cxt;
	char msg[512];
	int rc, err;

	cxt = new_context();
	if (!cxt)
		return fail(ENOMEM, EXIT_FAILED, "cannot unmount %s: out of memory", target);
	if (mnt_context_set_target(cxt, target) != 0) {
		rc = fail(ENOMEM, EXIT_FAILED, "cannot unmount %s: out of memory", target);
		goto out_free_ctx;
	}
	rc = mnt_context_umount(cxt);
	if (mnt_context_get_excode(cxt, rc, NULL, 0) == MNT_EX_SUCCESS) {
		rc = 0;
		goto out_free_ctx;
	}
	err = context_error(cxt, rc, msg, sizeof(msg));
	rc = fail(err, EXIT_FAILED, "cannot unmount %s: %s", target, msg);
out_free_ctx:
	mnt_free_context(cxt);
	return rc;
}

/*
 * Wait until loop device devno, which had autoclear set, is detached. The
 * kernel detaches it when its last opener goes away, which can be a moment
 * after umount returns (udev probes the device after the change). ballastd
 * may delete the image next, so we wait rather than leave that to chance.
 * Gives up silently after LOOP_DETACH_WAIT_MS, as the detach is not ours
 * to force: whoever holds the device open triggers it when they close it.
 */
static void wait_loop_detached(dev_t devno)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	struct libmnt_table *tb;
	bool mounted;
	int waited;

	/* Still mounted elsewhere (another target): it stays, correctly. */
	tb = mnt_new_table_from_file(MOUNTINFO);
	if (!tb)
		return;
	mounted = mnt_table_find_devno(tb, devno, MNT_ITER_FORWARD) != NULL;
	mnt_unref_table(tb);
	if (mounted)
		return;
	for (waited = 0; waited < LOOP_DETACH_WAIT_MS && is_loop(devno); waited += 10)
		nanosleep(&tick, NULL);
}

/* ------------------------------------------------------------------------
 * Commands
 */

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
 * mkfs: format SOURCE, a regular file or block device that holds nothing
 * libblkid recognises. Never reformats: anything found is exit status 3.
 */
static int cmd_mkfs(const struct cmdline *cl)
{
	const char *source = cl->args[0];
	struct signature sig;
	struct arglist al;
	char desc[PATH_MAX + 64];
	struct stat st;
	unsigned fs;
	int fd, rc;

	al.argc = 0;
	al.used = 0;
	al.argv[0] = NULL;
	rc = parse_fstype(cl->fstype, &fs);
	if (rc)
		return rc;
	rc = check_source(source, 0, false, &st);
	if (rc)
		return rc;
	if (fs == FS_EXT4)
		rc = arg_add(&al, "mkfs.ext4") ?: arg_add(&al, "-q") ?: arg_add(&al, "-F");
	else
		rc = arg_add(&al, "mkfs.xfs") ?: arg_add(&al, "-q");
	if (!rc)
		rc = add_mkfs_options(fs, cl->mkfs_options, &al);
	if (!rc && cl->label)
		rc = check_label(fs, cl->label) ?: arg_add(&al, "-L") ?: arg_add(&al, cl->label);
	if (!rc)
		rc = arg_add(&al, source);
	if (rc)
		return rc;

	/*
	 * O_EXCL on a block device fails with EBUSY while it is mounted or
	 * held (by device-mapper, md, ...): in use, whether or not it carries
	 * a signature we would recognise.
	 */
	fd = open(source, O_RDONLY | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0));
	if (fd < 0) {
		if (errno == EBUSY)
			return fail(EBUSY, EXIT_FAILED,
				    "%s is in use (mounted or held by another device); refusing to format", source);
		return fail(errno, EXIT_FAILED, "cannot open %s: %s", source, strerror(errno));
	}
	rc = probe_signatures(fd, source, true, &sig);
	close(fd);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return refuse_existing(source, &sig);

	snprintf(desc, sizeof(desc), "cannot format %s as %s", source, fs_name(fs));
	return run_tool(&al, desc);
}

/*
 * mount: mount SOURCE (a block device, or with --loop an image file) on
 * TARGET. Already mounted there is success; something else there is not.
 */
/* ------------------------------------------------------------------------
 * GlusterFS (FUSE) mounts
 *
 * SOURCE is HOST:/VOLUME[/DIR...] from ballastd's gluster backend; the only
 * option is backup-volfile-servers=H1:H2. The Gluster client
 * (mount.glusterfs, then the glusterfs FUSE daemon) logs to
 * <mounts>/.<name>.glusterfs.log, whose last error line is the reason we
 * give when the mount fails. A FUSE mount whose server is gone hangs every
 * stat of its root, so unmounting one never looks at the target itself.
 */
#define GLUSTER_FSTYPE "fuse.glusterfs"
#define GLUSTER_SOURCE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:/"
#define GLUSTER_HOST_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:"
#define GLUSTER_BACKUP_OPT "backup-volfile-servers="

static bool is_gluster(const char *fstype)
{
	return fstype && strcmp(fstype, "glusterfs") == 0;
}

/* Check SOURCE: HOST:/VOLUME[/DIR...], no "..", no empty component. */
static int check_gluster_source(const char *src)
{
	const char *sep = strstr(src, ":/");

	if (!sep || sep == src || strspn(src, GLUSTER_SOURCE_CHARS) != strlen(src) ||
	    strspn(src, GLUSTER_HOST_CHARS) < (size_t)(sep - src) || strstr(sep + 1, "//") || strstr(sep + 1, "/../") ||
	    strstr(sep + 1, "/./") || !sep[2] || src[strlen(src) - 1] == '/' ||
	    (strlen(src) >= 3 && strcmp(src + strlen(src) - 3, "/..") == 0))
		return fail(EINVAL, EXIT_REFUSED, "invalid gluster source '%.128s' (expected HOST:/VOLUME/DIR)", src);
	return 0;
}

/* The -o list for mount.glusterfs: our log file, then the user's one
 * allowed option. */
static int build_gluster_options(const char *opts, const char *log, char *out, size_t len)
{
	size_t used = 0;

	appendf(out, len, &used, "log-file=%s", log);
	if (!opts || !*opts)
		return 0;
	if (strncmp(opts, GLUSTER_BACKUP_OPT, strlen(GLUSTER_BACKUP_OPT)) != 0 || !opts[strlen(GLUSTER_BACKUP_OPT)] ||
	    strspn(opts + strlen(GLUSTER_BACKUP_OPT), GLUSTER_HOST_CHARS) != strlen(opts + strlen(GLUSTER_BACKUP_OPT)))
		return fail(EINVAL, EXIT_REFUSED,
			    "mount option '%.128s' is not allowed for glusterfs (allowed: " GLUSTER_BACKUP_OPT
			    "HOST:HOST...)",
			    opts);
	appendf(out, len, &used, ",%s", opts);
	if (used >= len - 1)
		return fail(E2BIG, EXIT_REFUSED, "glusterfs mount options are too long");
	return 0;
}

/* The last error line of the Gluster client's log ("[time] E [...] msg"),
 * reduced to its message, into buf; "" if there is none. */
static void gluster_log_error(const char *log, char *buf, size_t len)
{
	char line[1024];
	FILE *f = fopen(log, "re");

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *msg;

		if (!strstr(line, "] E ["))
			continue;
		msg = strrchr(line, ']');
		msg = msg ? msg + 1 : line;
		msg += strspn(msg, " 0-");
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(buf, len, "%s", msg);
	}
	fclose(f);
}

static int cmd_mount_gluster(const struct cmdline *cl)
{
	const char *source = cl->args[0];
	char options[OPTS_MAX + PATH_MAX], target[PATH_MAX], log[PATH_MAX + 32], why[512];
	enum target_found found = TARGET_FOUND;
	struct arglist al = { .argc = 0 };
	struct libmnt_table *tb;
	struct mounts_root root;
	struct libmnt_fs *mnt;
	int rc;

	if (cl->loop)
		return fail(EINVAL, EXIT_REFUSED, "--loop does not apply to glusterfs");
	rc = check_gluster_source(source);
	if (rc)
		return rc;
	rc = find_mounts_root(cl->state_dir, &root);
	if (rc)
		return rc;
	rc = resolve_target(&root, cl->args[1], TARGET_CREATE, target, &found);
	if (rc)
		return rc;
	snprintf(log, sizeof(log), "%s/.%s.glusterfs.log", root.path, strrchr(target, '/') + 1);
	rc = build_gluster_options(cl->options, log, options, sizeof(options));
	if (rc)
		goto out_rmdir_target;
	rc = load_mount_table(&tb);
	if (rc)
		goto out_rmdir_target;
	mnt = find_mount(tb, target);
	if (mnt) {
		/* Mounted already: the same volume is success, anything else
		 * is in the way. */
		if (strcmp(mnt_fs_get_fstype(mnt) ?: "", GLUSTER_FSTYPE) == 0 &&
		    strcmp(mnt_fs_get_source(mnt) ?: "", source) == 0)
			rc = 0;
		else
			rc = fail(EBUSY, EXIT_FAILED, "%s is already a mountpoint of %s", target,
				  mnt_fs_get_source(mnt) ?: "something else");
		mnt_unref_table(tb);
		goto out_rmdir_target;
	}
	mnt_unref_table(tb);
	/* A fresh log, so that its last error is this mount's. */
	rc = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (rc >= 0)
		close(rc);
	rc = 0;
	if (arg_add(&al, "mount.glusterfs") || arg_add(&al, source) || arg_add(&al, target) || arg_add(&al, "-o") ||
	    arg_add(&al, options)) {
		rc = fail(E2BIG, EXIT_FAILED, "too many arguments for mount.glusterfs");
		goto out_rmdir_target;
	}
	rc = run_tool_quiet(&al, "mount.glusterfs");
	if (rc && rc != -EIO)
		goto out_rmdir_target;
	/* The client daemonizes: believe the mount table, not its status. */
	if (load_mount_table(&tb) == 0) {
		mnt = find_mount(tb, target);
		if (mnt && strcmp(mnt_fs_get_fstype(mnt) ?: "", GLUSTER_FSTYPE) == 0)
			rc = 0;
		else
			rc = -EIO;
		mnt_unref_table(tb);
	}
	if (rc) {
		gluster_log_error(log, why, sizeof(why));
		rc = fail(EIO, EXIT_FAILED, "cannot mount %s: %s", source,
			  why[0] ? why : "the glusterfs client failed without saying why");
	}
out_rmdir_target:
	if (rc && found == TARGET_CREATED)
		rmdir(target);
	return rc;
}

/*
 * If TARGET is a glusterfs FUSE mount, unmount it without ever looking at
 * the target itself (its root hangs when the server is gone): the parent
 * is resolved, the target is found by name in the mount table. *done says
 * whether it was one. Returns 0 or -errno (reason recorded).
 */
static int umount_gluster(const struct mounts_root *root, const char *target, bool *done)
{
	char buf[PATH_MAX], parent[PATH_MAX], cand[PATH_MAX];
	struct libmnt_table *tb;
	struct libmnt_fs *mnt;
	char *slash;
	bool is_fuse;
	int rc, e;

	*done = false;
	if (target[0] != '/' || strlen(target) >= sizeof(buf))
		return 0; /* resolve_target gives the reason */
	strcpy(buf, target);
	while (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
		buf[strlen(buf) - 1] = '\0';
	slash = strrchr(buf, '/');
	if (slash == buf || !slash[1] || strcmp(slash + 1, "..") == 0 || strcmp(slash + 1, ".") == 0)
		return 0;
	*slash = '\0';
	if (!realpath(buf, parent))
		return 0;
	if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", parent, slash + 1) >= sizeof(cand))
		return 0;
	rc = load_mount_table(&tb);
	if (rc)
		return rc;
	mnt = find_mount(tb, cand);
	is_fuse = mnt && strcmp(mnt_fs_get_fstype(mnt) ?: "", GLUSTER_FSTYPE) == 0;
	mnt_unref_table(tb);
	if (!is_fuse)
		return 0;
	rc = check_under_root(root, target, cand);
	if (rc)
		return rc;
	*done = true;
	if (umount2(cand, UMOUNT_NOFOLLOW) == 0)
		return 0;
	e = errno;
	if (e == EBUSY && umount2(cand, UMOUNT_NOFOLLOW | MNT_DETACH) == 0)
		return 0;
	return fail(e, EXIT_FAILED, "cannot unmount %s: %s", cand, strerror(e));
}

static int cmd_mount(const struct cmdline *cl)
{
	const char *source = cl->args[0];
	char options[OPTS_MAX + 64], target[PATH_MAX], what[PATH_MAX + 64];
	enum target_found found = TARGET_FOUND;
	struct libmnt_table *tb;
	struct mounts_root root;
	struct libmnt_fs *mnt;
	struct stat st;
	unsigned fs;
	int rc;

	if (is_gluster(cl->fstype))
		return cmd_mount_gluster(cl);
	rc = parse_fstype(cl->fstype, &fs);
	if (rc)
		return rc;
	rc = build_mount_options(fs, cl->options, cl->loop, options, sizeof(options));
	if (rc)
		return rc;
	rc = check_source(source, cl->loop ? S_IFREG : S_IFBLK, cl->loop, &st);
	if (rc)
		return rc;
	rc = find_mounts_root(cl->state_dir, &root);
	if (rc)
		return rc;
	rc = resolve_target(&root, cl->args[1], TARGET_CREATE, target, &found);
	if (rc)
		return rc;

	rc = load_mount_table(&tb);
	if (rc)
		goto out_rmdir_target;
	mnt = find_mount(tb, target);
	if (mnt) {
		rc = mount_is_of(mnt, &st, cl->loop);
		if (rc < 0) {
			rc = fail(rc, EXIT_FAILED, "cannot check what is mounted on %s: %s", target, strerror(-rc));
		} else if (rc == 0) {
			describe_source(mnt, false, what, sizeof(what));
			rc = fail(EBUSY, EXIT_FAILED, "%s is already a mountpoint of %s", target, what);
		} else {
			rc = 0;
		}
		goto out_free_table;
	}
	rc = check_source_fstype(source, cl->fstype);
	if (!rc)
		rc = do_mount(source, target, cl->fstype, options);
out_free_table:
	mnt_unref_table(tb);
out_rmdir_target:
	/* Leave no trace of a mount that did not happen. */
	if (rc && found == TARGET_CREATED)
		rmdir(target);
	return rc;
}

/*
 * umount: unmount TARGET, every layer if mounts are stacked; not mounted is
 * success. Loop devices that libmount attached (autoclear) are detached by
 * the kernel; we wait for that so that it is done when we exit.
 */
static int cmd_umount(const struct cmdline *cl)
{
	dev_t loops[UMOUNT_MAX_LAYERS];
	char target[PATH_MAX], flag[8];
	enum target_found found;
	struct libmnt_table *tb;
	struct mounts_root root;
	struct libmnt_fs *mnt;
	int rc, layer, nloops = 0, i;
	dev_t devno;

	bool done;

	rc = find_mounts_root(cl->state_dir, &root);
	if (rc)
		return rc;
	rc = umount_gluster(&root, cl->args[0], &done);
	if (rc || done)
		return rc;
	rc = resolve_target(&root, cl->args[0], TARGET_EXISTING, target, &found);
	if (rc)
		return rc;

	for (layer = 0; layer < UMOUNT_MAX_LAYERS; layer++) {
		rc = load_mount_table(&tb);
		if (rc)
			return rc;
		mnt = find_mount(tb, target);
		devno = mnt ? mnt_fs_get_devno(mnt) : 0;
		mnt_unref_table(tb);
		if (!mnt)
			break;
		/* Only loop devices set to go away by themselves are waited for. */
		if (read_blockdev_attr(devno, "loop/autoclear", flag, sizeof(flag)) == 0 && strcmp(flag, "1") == 0)
			loops[nloops++] = devno;
		rc = do_umount(target);
		if (rc)
			return rc;
	}
	if (layer == UMOUNT_MAX_LAYERS)
		return fail(EBUSY, EXIT_FAILED, "%s is still mounted after %d unmounts", target, UMOUNT_MAX_LAYERS);
	for (i = 0; i < nloops; i++)
		wait_loop_detached(loops[i]);
	return 0;
}

/*
 * Whether capability cap is in our effective set. When that cannot be
 * told, say yes and let the operation itself fail with its own message.
 */
static bool has_effective_cap(unsigned cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (cap >= 64 || syscall(SYS_capget, &hdr, data) < 0)
		return true;
	return data[cap / 32].effective & (1u << (cap % 32));
}

/*
 * grow: grow the filesystem mounted on TARGET to the size of its device.
 * For a loop mount the loop device is told first that its file grew.
 */
static int cmd_grow(const struct cmdline *cl)
{
	char target[PATH_MAX], desc[PATH_MAX + 64];
	enum target_found found;
	struct libmnt_table *tb;
	struct mounts_root root;
	struct libmnt_fs *mnt;
	struct arglist al;
	const char *type, *dev;
	unsigned fs;
	int rc, fd;

	al.argc = 0;
	al.used = 0;
	al.argv[0] = NULL;
	rc = parse_fstype(cl->fstype, &fs);
	if (rc)
		return rc;
	rc = find_mounts_root(cl->state_dir, &root);
	if (rc)
		return rc;
	rc = resolve_target(&root, cl->args[0], TARGET_EXISTING, target, &found);
	if (rc)
		return rc;
	rc = load_mount_table(&tb);
	if (rc)
		return rc;

	mnt = find_mount(tb, target);
	if (!mnt) {
		rc = fail(EINVAL, EXIT_FAILED, "%s is not mounted", target);
		goto out_free_table;
	}
	type = mnt_fs_get_fstype(mnt);
	if (!type || strcmp(type, fs_name(fs)) != 0) {
		rc = fail(EINVAL, EXIT_REFUSED, "%s is mounted as %s, not %s", target, type ? type : "unknown",
			  fs_name(fs));
		goto out_free_table;
	}
	/*
	 * The kernel refuses an online ext4 resize without CAP_SYS_RESOURCE
	 * (resize2fs then says only "Permission denied"); a plugin or
	 * container may well run without it. Check before touching anything.
	 */
	if (fs == FS_EXT4 && !has_effective_cap(CAP_SYS_RESOURCE)) {
		rc = fail(
			EPERM, EXIT_FAILED,
			"cannot grow the ext4 filesystem on %s: online ext4 resize needs CAP_SYS_RESOURCE, which this process lacks",
			target);
		goto out_free_table;
	}
	dev = mnt_fs_get_srcpath(mnt);
	if (is_loop(mnt_fs_get_devno(mnt)) || fs == FS_EXT4) {
		rc = open_mounted_device(mnt, O_RDONLY, &fd);
		if (rc) {
			rc = fail(rc, EXIT_FAILED, "cannot open the device of %s (%s): %s", target, dev ? dev : "none",
				  strerror(-rc));
			goto out_free_table;
		}
		/* The loop device keeps the file size it saw at attach time. */
		if (is_loop(mnt_fs_get_devno(mnt)) && ioctl(fd, LOOP_SET_CAPACITY, 0) < 0)
			rc = fail(errno, EXIT_FAILED, "cannot update the size of %s: %s", dev, strerror(errno));
		close(fd);
		if (rc)
			goto out_free_table;
	}

	if (fs == FS_EXT4) {
		/* resize2fs sees that dev is mounted and resizes online. */
		rc = arg_add(&al, "resize2fs") ?: arg_add(&al, dev);
		snprintf(desc, sizeof(desc), "cannot grow the ext4 filesystem on %s", target);
	} else {
		rc = arg_add(&al, "xfs_growfs") ?: arg_add(&al, "-d") ?: arg_add(&al, target);
		snprintf(desc, sizeof(desc), "cannot grow the xfs filesystem on %s", target);
	}
	if (!rc)
		rc = run_tool(&al, desc);
out_free_table:
	mnt_unref_table(tb);
	return rc;
}

/*
 * status: print "mounted SOURCE FSTYPE" or "not-mounted" on stdout. SOURCE
 * is the device, or for a loop device its backing file. A target that does
 * not exist (but would be under the mounts directory) is not mounted.
 */
static int cmd_status(const struct cmdline *cl)
{
	char target[PATH_MAX], source[PATH_MAX + 64];
	enum target_found found;
	struct libmnt_table *tb = NULL;
	struct mounts_root root;
	struct libmnt_fs *mnt = NULL;
	const char *type;
	int rc;

	rc = find_mounts_root(cl->state_dir, &root);
	if (rc)
		return rc;
	rc = resolve_target(&root, cl->args[0], TARGET_MAY_BE_MISSING, target, &found);
	if (rc)
		return rc;
	if (found != TARGET_MISSING) {
		rc = load_mount_table(&tb);
		if (rc)
			return rc;
		mnt = find_mount(tb, target);
	}
	if (mnt) {
		describe_source(mnt, true, source, sizeof(source));
		type = mnt_fs_get_fstype(mnt);
		printf("mounted %s %s\n", source, type ? type : "unknown");
	} else {
		printf("not-mounted\n");
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = fail(errno ? errno : EIO, EXIT_FAILED, "cannot write the status: %s",
			  strerror(errno ? errno : EIO));
	mnt_unref_table(tb);
	return rc;
}

/* ------------------------------------------------------------------------
 * Kernel mappers: krbd and rbd-nbd
 *
 * map gives an RBD image a block device on this host, unmap takes it away,
 * mappers says which mappers this host can use. An image is always mapped
 * holding its exclusive lock for the life of the mapping (krbd -o
 * exclusive, rbd-nbd --exclusive): the lock, not ballastd's bookkeeping,
 * keeps a second host from writing. Pool, image and user names go into argv
 * only, after a whitelist, and the tools get the fixed environment of every
 * tool here, so a caller's CEPH_ARGS or CEPH_CONF never reaches them. The
 * error is the tool's own ("rbd: ..."), as it wrote it.
 */
#define RBD_NAME_CHARS LABEL_CHARS
/* Longest pool or image name (ballast volume names have 128 at most). */
#define RBD_NAME_LEN 128
/* Longest cephx user id (the part after "client."). */
#define RBD_ID_LEN 64
#define MAP_TIMEOUT_DEFAULT 30
#define MAP_TIMEOUT_MAX 3600
/* The FUSE mapper, built with mount.ballast (rbd_fuse.c). */
#define FUSE_MAPPER_BIN "ballast-rbd-map"
/* The options of map. */
#define MAP_OPTS                                                                                                       \
	(OPT_MAPPER | OPT_POOL | OPT_IMAGE | OPT_ID | OPT_CONF | OPT_KEYRING | OPT_READ_ONLY | OPT_TIMEOUT |           \
	 OPT_MS_MODE)

enum mapper {
	MAPPER_KRBD,
	MAPPER_NBD,
};

static const struct {
	const char *name;	/* as --mapper spells it */
	const char *tool;	/* the program that maps and unmaps */
	const char *err_prefix; /* how its own error lines start */
	const char *dev_prefix; /* its devices: this and a number */
} mappers[] = {
	[MAPPER_KRBD] = { "krbd", "rbd", "rbd: ", "/dev/rbd" },
	[MAPPER_NBD] = { "nbd", "rbd-nbd", "rbd-nbd: ", "/dev/nbd" },
};

/* krbd's ms_mode (messenger v2 against msgr2-only monitors). */
static const char *const ms_modes[] = { "legacy", "crc", "secure", "prefer-crc", "prefer-secure", NULL };

/* Parse --mapper. Returns 0 or -EINVAL (reason recorded). */
static int parse_mapper(const char *s, enum mapper *m)
{
	if (s && strcmp(s, "krbd") == 0)
		*m = MAPPER_KRBD;
	else if (s && strcmp(s, "nbd") == 0)
		*m = MAPPER_NBD;
	else
		return fail(EINVAL, EXIT_REFUSED, "unknown mapper '%.64s' (expected krbd or nbd)", s ? s : "");
	return 0;
}

/*
 * Check a pool, image or user name: 1 to max characters of
 * [A-Za-z0-9._-], not starting with '-' (it would become an option of the
 * tool), not "." or "..". So no '/' or '@', which would change what a
 * POOL/IMAGE spec means.
 */
static int check_rbd_name(const char *what, const char *v, size_t max)
{
	size_t len = strlen(v);

	if (len == 0 || len > max || v[0] == '-' || strspn(v, RBD_NAME_CHARS) != len || strcmp(v, ".") == 0 ||
	    strcmp(v, "..") == 0)
		return fail(EINVAL, EXIT_REFUSED,
			    "invalid %s '%.64s' (1 to %zu characters of A-Z a-z 0-9 . _ -, not starting with -)", what,
			    v, max);
	return 0;
}

/* Check the value of a path option (--conf, --keyring): absolute. */
static int check_option_path(const char *opt, const char *v)
{
	if (v[0] != '/')
		return fail(EINVAL, EXIT_REFUSED, "%s %.256s is not an absolute path", opt, v);
	if (strlen(v) >= PATH_MAX)
		return fail(ENAMETOOLONG, EXIT_REFUSED, "%s: path too long", opt);
	return 0;
}

/* Parse --timeout (default MAP_TIMEOUT_DEFAULT). Returns 0 or -EINVAL. */
static int parse_timeout(const char *s, int *timeout_s)
{
	unsigned long v;

	if (!s) {
		*timeout_s = MAP_TIMEOUT_DEFAULT;
		return 0;
	}
	if (parse_uint(s, &v) || v < 1 || v > MAP_TIMEOUT_MAX)
		return fail(EINVAL, EXIT_REFUSED, "invalid --timeout '%.64s' (expected whole seconds from 1 to %d)", s,
			    MAP_TIMEOUT_MAX);
	*timeout_s = (int)v;
	return 0;
}

/* Whether dev names one of mapper m's devices: /dev/rbdN or /dev/nbdN. */
static bool is_mapper_device(enum mapper m, const char *dev)
{
	size_t plen = strlen(mappers[m].dev_prefix), n;

	if (strncmp(dev, mappers[m].dev_prefix, plen) != 0)
		return false;
	n = strlen(dev + plen);
	return n >= 1 && n <= 6 && strspn(dev + plen, "0123456789") == n;
}

/*
 * Find the program of mapper m, or record that it is not installed (desc
 * says what could not be done). Returns 0 or -ENOENT.
 */
static int find_mapper_tool(enum mapper m, const char *desc)
{
	char path[PATH_MAX];

	if (lookup_tool(mappers[m].tool, path, sizeof(path)))
		return 0;
	return fail(ENOENT, EXIT_FAILED, "%s: %s is not installed (not found in %s)", desc, mappers[m].tool,
		    CHILD_PATH);
}

/*
 * map: map POOL/IMAGE with krbd or rbd-nbd, holding its exclusive lock, and
 * print the device on stdout. krbd:
 *   rbd device map --device-type krbd -o exclusive[,ro][,ms_mode=M]
 *       --id USER [--conf C] [--keyring K] -- POOL/IMAGE
 * nbd (rbd-nbd takes no "--"; the names cannot start with '-'):
 *   rbd-nbd map --exclusive [--read-only] --id USER [--conf C] [--keyring K]
 *       POOL/IMAGE
 * Killed after --timeout seconds.
 */
static int cmd_map(const struct cmdline *cl)
{
	char spec[2 * RBD_NAME_LEN + 2], desc[sizeof(spec) + 64], out[512], kopts[64];
	struct tool_opts o = { .out = out, .outlen = sizeof(out) };
	struct arglist al = { .argc = 0 };
	const char *const *c;
	char *line, *save;
	enum mapper m;
	int rc;

	rc = parse_mapper(cl->mapper, &m);
	if (!rc)
		rc = check_rbd_name("pool name", cl->pool, RBD_NAME_LEN);
	if (!rc)
		rc = check_rbd_name("image name", cl->image, RBD_NAME_LEN);
	if (!rc)
		rc = check_rbd_name("user id", cl->id, RBD_ID_LEN);
	if (!rc && cl->conf)
		rc = check_option_path("--conf", cl->conf);
	if (!rc && cl->keyring)
		rc = check_option_path("--keyring", cl->keyring);
	if (!rc)
		rc = parse_timeout(cl->timeout, &o.timeout_s);
	if (rc)
		return rc;
	if (cl->ms_mode) {
		if (m != MAPPER_KRBD)
			return fail(EINVAL, EXIT_REFUSED,
				    "--ms-mode is for krbd only (rbd-nbd uses librbd's own messenger)");
		for (c = ms_modes; *c && strcmp(*c, cl->ms_mode) != 0; c++)
			;
		if (!*c)
			return fail(
				EINVAL, EXIT_REFUSED,
				"invalid --ms-mode '%.64s' (expected legacy, crc, secure, prefer-crc or prefer-secure)",
				cl->ms_mode);
	}
	snprintf(spec, sizeof(spec), "%s/%s", cl->pool, cl->image);
	snprintf(desc, sizeof(desc), "cannot map %s with %s", spec, mappers[m].name);
	rc = find_mapper_tool(m, desc);
	if (rc)
		return rc;

	if (m == MAPPER_KRBD) {
		snprintf(kopts, sizeof(kopts), "exclusive%s%s%s", cl->read_only ? ",ro" : "",
			 cl->ms_mode ? ",ms_mode=" : "", cl->ms_mode ? cl->ms_mode : "");
		rc = arg_add(&al, "rbd") ?: arg_add(&al, "device") ?: arg_add(&al, "map") ?:
		     arg_add(&al, "--device-type") ?: arg_add(&al, "krbd") ?:
		     arg_add(&al, "-o") ?: arg_add(&al, kopts);
	} else {
		rc = arg_add(&al, "rbd-nbd") ?: arg_add(&al, "map") ?: arg_add(&al, "--exclusive");
		if (!rc && cl->read_only)
			rc = arg_add(&al, "--read-only");
	}
	if (!rc)
		rc = arg_add(&al, "--id") ?: arg_add(&al, cl->id);
	if (!rc && cl->conf)
		rc = arg_add(&al, "--conf") ?: arg_add(&al, cl->conf);
	if (!rc && cl->keyring)
		rc = arg_add(&al, "--keyring") ?: arg_add(&al, cl->keyring);
	if (!rc && m == MAPPER_KRBD)
		rc = arg_add(&al, "--");
	if (!rc)
		rc = arg_add(&al, spec);
	if (rc)
		return rc;

	o.err_prefix = mappers[m].err_prefix;
	rc = run_tool_ex(&al, desc, &o);
	if (rc)
		return rc;
	/* The tool prints the device it mapped, alone on a line. */
	for (line = strtok_r(out, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		line += strspn(line, " \t");
		line[strcspn(line, " \t")] = '\0';
		if (!is_mapper_device(m, line))
			continue;
		printf("%s\n", line);
		if (fflush(stdout) != 0 || ferror(stdout))
			return fail(errno ? errno : EIO, EXIT_FAILED, "mapped %s on %s but cannot write its name: %s",
				    spec, line, strerror(errno ? errno : EIO));
		return 0;
	}
	return fail(EIO, EXIT_FAILED, "%s: %s succeeded but printed no %sN device", desc, mappers[m].tool,
		    mappers[m].dev_prefix);
}

/*
 * unmap: unmap DEVICE, which must be the mapper's own kind of device:
 *   rbd --conf /dev/null device unmap --device-type krbd -- /dev/rbdN
 *   rbd-nbd --conf /dev/null unmap /dev/nbdN
 */
static int cmd_unmap(const struct cmdline *cl)
{
	const char *dev = cl->args[0];
	struct tool_opts o = { .timeout_s = 0 };
	struct arglist al = { .argc = 0 };
	char desc[PATH_MAX + 64];
	enum mapper m;
	int rc;

	rc = parse_mapper(cl->mapper, &m);
	if (!rc)
		rc = parse_timeout(cl->timeout, &o.timeout_s);
	if (rc)
		return rc;
	if (!is_mapper_device(m, dev))
		return fail(EINVAL, EXIT_REFUSED, "refusing to unmap %.256s: not a %s device (%sN)", dev,
			    mappers[m].name, mappers[m].dev_prefix);
	snprintf(desc, sizeof(desc), "cannot unmap %s with %s", dev, mappers[m].name);
	rc = find_mapper_tool(m, desc);
	if (rc)
		return rc;
	/* Unmapping needs no cluster, hence no Ceph config: an empty one
	 * keeps the tools' "can't open ceph.conf" log lines (written by
	 * another thread, interleaved with their own error) out of the
	 * message. */
	if (m == MAPPER_KRBD)
		rc = arg_add(&al, "rbd") ?: arg_add(&al, "--conf") ?: arg_add(&al, "/dev/null") ?:
		     arg_add(&al, "device") ?: arg_add(&al, "unmap") ?: arg_add(&al, "--device-type") ?:
		     arg_add(&al, "krbd") ?: arg_add(&al, "--");
	else
		rc = arg_add(&al, "rbd-nbd") ?: arg_add(&al, "--conf") ?: arg_add(&al, "/dev/null") ?:
		     arg_add(&al, "unmap");
	if (!rc)
		rc = arg_add(&al, dev);
	if (rc)
		return rc;
	o.err_prefix = mappers[m].err_prefix;
	return run_tool_ex(&al, desc, &o);
}

/*
 * Whether the running kernel has module name as a loadable module (listed
 * in its modules.dep). Built-in modules show in /sys instead.
 */
static bool have_kernel_module(const char *name)
{
	char path[PATH_MAX], line[4096], want[64], *colon, *base;
	struct utsname uts;
	bool found = false;
	size_t wlen;
	FILE *f;

	if (uname(&uts) != 0)
		return false;
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", uts.release);
	f = fopen(path, "re");
	if (!f)
		return false;
	wlen = (size_t)snprintf(want, sizeof(want), "%s.ko", name);
	while (!found && fgets(line, sizeof(line), f)) {
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		base = strrchr(line, '/');
		base = base ? base + 1 : line;
		found = strncmp(base, want, wlen) == 0 && (!base[wlen] || base[wlen] == '.');
	}
	fclose(f);
	return found;
}

/*
 * Whether the kernel can serve a mapper: sysfs shows the driver (sys), or
 * its module can be loaded (the tool runs modprobe). why says which, or
 * what is missing.
 */
static bool kernel_supports(const char *sys, const char *module, char *why, size_t len)
{
	char path[PATH_MAX];
	struct utsname uts;

	if (access(sys, F_OK) == 0) {
		snprintf(why, len, "%s", sys);
		return true;
	}
	if (have_kernel_module(module)) {
		if (lookup_tool("modprobe", path, sizeof(path))) {
			snprintf(why, len, "%s module not loaded yet; loaded at map", module);
			return true;
		}
		snprintf(why, len, "%s missing; %s module present but modprobe not installed", sys, module);
		return false;
	}
	if (uname(&uts) != 0)
		snprintf(uts.release, sizeof(uts.release), "unknown");
	snprintf(why, len, "%s missing, no %s module for kernel %s", sys, module, uts.release);
	return false;
}

/* Whether krbd or rbd-nbd (m) can map here; why says why (not). */
static bool mapper_supported(enum mapper m, char *why, size_t len)
{
	char path[PATH_MAX];
	bool ok;

	if (m == MAPPER_KRBD)
		ok = kernel_supports("/sys/bus/rbd", "rbd", why, len);
	else
		ok = kernel_supports("/sys/block/nbd0", "nbd", why, len);
	if (ok && !lookup_tool(mappers[m].tool, path, sizeof(path))) {
		snprintf(why, len, "%s not installed", mappers[m].tool);
		ok = false;
	}
	return ok;
}

/*
 * Whether the FUSE mapper can map here: /dev/fuse, and ballast-rbd-map
 * next to mount.ballast or in CHILD_PATH (as ballastd looks for it).
 */
static bool fuse_supported(char *why, size_t len)
{
	char path[PATH_MAX], *slash;
	struct stat st;
	ssize_t n;

	if (stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
		snprintf(why, len, "/dev/fuse missing");
		return false;
	}
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = '\0';
		slash = strrchr(path, '/');
		if (slash && (size_t)(slash + 1 - path) + sizeof(FUSE_MAPPER_BIN) <= sizeof(path)) {
			strcpy(slash + 1, FUSE_MAPPER_BIN);
			if (access(path, X_OK) == 0) {
				snprintf(why, len, "/dev/fuse, %s", path);
				return true;
			}
		}
	}
	if (lookup_tool(FUSE_MAPPER_BIN, path, sizeof(path))) {
		snprintf(why, len, "/dev/fuse, %s", path);
		return true;
	}
	snprintf(why, len, FUSE_MAPPER_BIN " not found next to " PROG " nor in %s", CHILD_PATH);
	return false;
}

/*
 * mappers: one line per mapper, best first: "NAME yes|no (REASON)".
 */
static int cmd_mappers(const struct cmdline *cl)
{
	char why[PATH_MAX + 64];
	bool ok;

	(void)cl;
	ok = mapper_supported(MAPPER_KRBD, why, sizeof(why));
	printf("krbd %s (%s)\n", ok ? "yes" : "no", why);
	ok = mapper_supported(MAPPER_NBD, why, sizeof(why));
	printf("nbd %s (%s)\n", ok ? "yes" : "no", why);
	ok = fuse_supported(why, sizeof(why));
	printf("fuse %s (%s)\n", ok ? "yes" : "no", why);
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail(errno ? errno : EIO, EXIT_FAILED, "cannot write the mappers: %s",
			    strerror(errno ? errno : EIO));
	return 0;
}

static const struct command commands[] = {
	{ "mkfs", OPT_FSTYPE | OPT_MKFS_OPTIONS | OPT_LABEL, OPT_FSTYPE, 1,
	  "mkfs --fstype ext4|xfs [--mkfs-options OPTS] [--label L] SOURCE", cmd_mkfs },
	{ "mount", OPT_FSTYPE | OPT_OPTIONS | OPT_LOOP, OPT_FSTYPE, 2,
	  "mount --fstype ext4|xfs|glusterfs [--options OPTS] [--loop] SOURCE TARGET", cmd_mount },
	{ "umount", 0, 0, 1, "umount TARGET", cmd_umount },
	{ "grow", OPT_FSTYPE, OPT_FSTYPE, 1, "grow --fstype ext4|xfs TARGET", cmd_grow },
	{ "status", 0, 0, 1, "status TARGET", cmd_status },
	{ "map", MAP_OPTS, OPT_MAPPER | OPT_POOL | OPT_IMAGE | OPT_ID, 0,
	  "map --mapper krbd|nbd --pool POOL --image IMAGE --id USER [--conf PATH] [--keyring PATH]"
	  " [--read-only] [--ms-mode MODE] [--timeout S]",
	  cmd_map },
	{ "unmap", OPT_MAPPER | OPT_TIMEOUT, OPT_MAPPER, 1, "unmap --mapper krbd|nbd [--timeout S] DEVICE", cmd_unmap },
	{ "mappers", 0, 0, 0, "mappers", cmd_mappers },
};

#define COMMAND_NAMES "mkfs, mount, umount, grow, status, map, unmap or mappers"

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Print the synopsis of every command (for --help). */
static void print_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  " PROG " [--state-dir DIR] %s\n", commands[i].usage);
}

static const struct {
	const char *name;
	unsigned bit;
	bool has_value;
} option_names[] = {
	{ "--state-dir", OPT_STATE_DIR, true },
	{ "--fstype", OPT_FSTYPE, true },
	{ "--options", OPT_OPTIONS, true },
	{ "--loop", OPT_LOOP, false },
	{ "--mkfs-options", OPT_MKFS_OPTIONS, true },
	{ "--label", OPT_LABEL, true },
	{ "--mapper", OPT_MAPPER, true },
	{ "--pool", OPT_POOL, true },
	{ "--image", OPT_IMAGE, true },
	{ "--id", OPT_ID, true },
	{ "--conf", OPT_CONF, true },
	{ "--keyring", OPT_KEYRING, true },
	{ "--read-only", OPT_READ_ONLY, false },
	{ "--timeout", OPT_TIMEOUT, true },
	{ "--ms-mode", OPT_MS_MODE, true },
};

#define NOPTIONS (sizeof(option_names) / sizeof(option_names[0]))

/* Store the value of option bit in cl. */
static void set_option(struct cmdline *cl, unsigned bit, const char *value)
{
	switch (bit) {
	case OPT_STATE_DIR:
		cl->state_dir = value;
		break;
	case OPT_FSTYPE:
		cl->fstype = value;
		break;
	case OPT_OPTIONS:
		cl->options = value;
		break;
	case OPT_LOOP:
		cl->loop = true;
		break;
	case OPT_MKFS_OPTIONS:
		cl->mkfs_options = value;
		break;
	case OPT_LABEL:
		cl->label = value;
		break;
	case OPT_MAPPER:
		cl->mapper = value;
		break;
	case OPT_POOL:
		cl->pool = value;
		break;
	case OPT_IMAGE:
		cl->image = value;
		break;
	case OPT_ID:
		cl->id = value;
		break;
	case OPT_CONF:
		cl->conf = value;
		break;
	case OPT_KEYRING:
		cl->keyring = value;
		break;
	case OPT_READ_ONLY:
		cl->read_only = true;
		break;
	case OPT_TIMEOUT:
		cl->timeout = value;
		break;
	case OPT_MS_MODE:
		cl->ms_mode = value;
		break;
	}
}

/*
 * Parse argv[*i] as an option ("--name value" or "--name=value") allowed by
 * allowed, advancing *i past its value. Returns 0 or -EINVAL.
 */
static int parse_option(struct cmdline *cl, int argc, char **argv, int *i, unsigned allowed)
{
	const char *arg = argv[*i], *eq = strchr(arg, '='), *value = NULL;
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg), k;
	const char *where = cl->cmd ? cl->cmd->name : "mount.ballast";

	for (k = 0; k < NOPTIONS; k++)
		if (strlen(option_names[k].name) == len && strncmp(option_names[k].name, arg, len) == 0)
			break;
	if (k == NOPTIONS || !(option_names[k].bit & allowed))
		return fail(EINVAL, EXIT_REFUSED, "unknown option '%.64s' for %s", arg, where);
	if (cl->given & option_names[k].bit)
		return fail(EINVAL, EXIT_REFUSED, "option %s given twice", option_names[k].name);
	if (option_names[k].has_value) {
		if (eq)
			value = eq + 1;
		else if (*i + 1 < argc)
			value = argv[++*i];
		else
			return fail(EINVAL, EXIT_REFUSED, "option %s needs a value", option_names[k].name);
	} else if (eq) {
		return fail(EINVAL, EXIT_REFUSED, "option %s takes no value", option_names[k].name);
	}
	cl->given |= option_names[k].bit;
	set_option(cl, option_names[k].bit, value);
	return 0;
}

/*
 * Parse the whole command line into *cl: global options, the command, its
 * options and its positional arguments (options and arguments may mix;
 * "--" ends options). Returns 0 or -EINVAL (reason recorded).
 */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	bool only_args = false;
	int i, nargs = 0, rc;
	size_t k;

	memset(cl, 0, sizeof(*cl));
	cl->state_dir = DEFAULT_STATE_DIR;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cl->help = true;
			return 0;
		}
		rc = parse_option(cl, argc, argv, &i, OPT_STATE_DIR);
		if (rc)
			return rc;
	}
	if (i >= argc)
		return fail(EINVAL, EXIT_REFUSED, "no command given (expected " COMMAND_NAMES ")");
	for (k = 0; k < NCOMMANDS; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			cl->cmd = &commands[k];
	if (!cl->cmd)
		return fail(EINVAL, EXIT_REFUSED, "unknown command '%.64s' (expected " COMMAND_NAMES ")", argv[i]);

	for (i++; i < argc; i++) {
		if (!only_args && strcmp(argv[i], "--") == 0) {
			only_args = true;
		} else if (!only_args && argv[i][0] == '-' && argv[i][1]) {
			rc = parse_option(cl, argc, argv, &i, cl->cmd->allowed | OPT_STATE_DIR);
			if (rc)
				return rc;
		} else {
			if (nargs < 2)
				cl->args[nargs] = argv[i];
			nargs++;
		}
	}
	for (k = 0; k < NOPTIONS; k++)
		if ((cl->cmd->required & option_names[k].bit) && !(cl->given & option_names[k].bit))
			return fail(EINVAL, EXIT_REFUSED, "%s needs %s (usage: %s)", cl->cmd->name,
				    option_names[k].name, cl->cmd->usage);
	if (nargs != cl->cmd->nargs)
		return fail(EINVAL, EXIT_REFUSED, "%s takes %d argument%s, got %d (usage: %s)", cl->cmd->name,
			    cl->cmd->nargs, cl->cmd->nargs == 1 ? "" : "s", nargs, cl->cmd->usage);
	for (i = 0; i < nargs; i++)
		if (!cl->args[i][0])
			return fail(EINVAL, EXIT_REFUSED, "%s: empty argument", cl->cmd->name);
	return 0;
}

/*
 * Sanitize, parse, run one command; on failure print the one error line
 * and exit with its status (see the top of this file).
 */
int main(int argc, char **argv)
{
	struct cmdline cl;
	int rc;

	rc = sanitize_process();
	if (rc) {
		fprintf(stderr, PROG ": cannot set up the process: %s\n", strerror(-rc));
		return EXIT_FAILED;
	}
	rc = parse_cmdline(argc, argv, &cl);
	if (!rc && cl.help) {
		print_usage(stdout);
		return EXIT_OK;
	}
	if (!rc)
		rc = cl.cmd->run(&cl);
	if (!rc)
		return EXIT_OK;
	return report_failure(cl.cmd ? cl.cmd->name : NULL, rc);
}
