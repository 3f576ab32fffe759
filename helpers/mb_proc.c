/*
 * mb_proc.c - mount.ballast's one error line, process hygiene, and
 * running the tools (mkfs.*, resize2fs, xfs_growfs, rbd, rbd-nbd,
 * mount.glusterfs) with a fixed environment and, where asked, a time bound.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mount_ballast.h"
#include "timeutil.h"

/* How much of a tool's stderr is kept: enough for its last line. */
#define TOOL_OUTPUT_MAX 8192

/* --- The one error line -------------------------------------------------- */

static struct {
	char msg[MB_MSG_MAX];
	int status;
} mb_error;

/* See mount_ballast.h. */
int fail(int code, int status, const char *fmt, ...)
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

int refuse(int code, const char *why)
{
	return fail(code, EXIT_REFUSED, "%s", why);
}

/*
 * Write the recorded reason as the single stderr line and return the exit
 * status. Control characters (from a tool's output or a user's option) are
 * folded into spaces so that the line stays one line.
 */
int report_failure(const char *what, int rc)
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

int why_set(char *why, size_t len, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return code > 0 ? -code : code;
}

void appendf(char *buf, size_t len, size_t *used, const char *fmt, ...)
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

/* --- Process hygiene ----------------------------------------------------- */

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

#ifdef BALLAST_CRASH_POINTS
/* BALLAST_CRASH_AT=<point>, kept across clearenv (crash tests only) */
static char crash_at[160];
#endif

/*
 * Make the process predictable whatever its parent left behind: fds 0-2
 * open (so that no file we open becomes "stderr" and receives the error
 * line), nothing else inherited, default signal handling (an inherited
 * SIG_IGN for SIGCHLD would make waitpid on mkfs fail), a known umask, and
 * an environment with nothing libmount, libblkid or the tools would read
 * (LIBMOUNT_DEBUG, LIBMOUNT_FSTAB, BLKID_CONF, MKE2FS_CONFIG, ...).
 * Returns 0 or -errno.
 */
int sanitize_process(void)
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
#ifdef BALLAST_CRASH_POINTS
	{
		/* crash tests only: the point to die at reaches this
		 * process (the tools it runs have no crash points; the FUSE
		 * mapper is started by ballastd itself) */
		const char *at = getenv("BALLAST_CRASH_AT");

		snprintf(crash_at, sizeof(crash_at), "BALLAST_CRASH_AT=%s", at ? at : "");
	}
#endif
	if (clearenv() != 0 || setenv("PATH", CHILD_PATH, 1) != 0 || setenv("LANG", "C", 1) != 0)
		return -ENOMEM;
#ifdef BALLAST_CRASH_POINTS
	if (putenv(crash_at) != 0)
		return -ENOMEM;
#endif
	return 0;
}

/* --- Running tools ------------------------------------------------------- */

void arglist_add(struct arglist *al, const char *s)
{
	size_t n = strlen(s);
	char *copy;

	if (al->overflow || al->argc >= ARGLIST_MAX || n + 1 > sizeof(al->arena) - al->used) {
		al->overflow = true;
		return;
	}
	copy = al->arena + al->used;
	memcpy(copy, s, n + 1);
	al->used += n + 1;
	al->argv[al->argc++] = copy;
	al->argv[al->argc] = NULL;
}

int arglist_check(const struct arglist *al, char *why, size_t len)
{
	if (!al->overflow)
		return 0;
	return why_set(why, len, -E2BIG, "too many or too long arguments for %s", al->argc ? al->argv[0] : "tool");
}

int arg_add(struct arglist *al, const char *s)
{
	char why[MB_MSG_MAX];
	int rc;

	arglist_add(al, s);
	rc = arglist_check(al, why, sizeof(why));
	return rc ? refuse(rc, why) : 0;
}

/* See mount_ballast.h. */
bool lookup_tool(const char *tool, char *path, size_t len)
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
char *tool_message(char *buf)
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
void tool_errors(char *buf, const char *prefix, char *out, size_t len)
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
 * Find the tool named by al->argv[0] (its path into path, PATH_MAX bytes)
 * and open /dev/null for it (*devnull, which the caller closes). Returns 0
 * or -errno (reason recorded).
 */
static int prepare_tool(const struct arglist *al, char *path, int *devnull)
{
	int rc;

	rc = find_tool(al->argv[0], path, PATH_MAX);
	if (rc)
		return rc;
	*devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (*devnull < 0)
		return fail(errno, EXIT_FAILED, "cannot open /dev/null: %s", strerror(errno));
	return 0;
}

/*
 * Run the tool named by al->argv[0] as o says and wait for it. Its stderr
 * is captured; if it fails, the reason is "<desc>: <its error>" (see
 * tool_message and tool_errors). Returns 0 if it exited 0, else -EIO (or
 * -ETIMEDOUT, or -errno of our own failure).
 */
int run_tool_ex(const struct arglist *al, const char *desc, const struct tool_opts *o)
{
	char path[PATH_MAX], err[TOOL_OUTPUT_MAX], msg[MB_MSG_MAX];
	struct capture caps[2] = { { .fd = -1 }, { .fd = -1 } };
	int epfd[2] = { -1, -1 }, opfd[2] = { -1, -1 };
	int devnull, status = 0, rc, i;
	pid_t pid;

	rc = prepare_tool(al, path, &devnull);
	if (rc)
		return rc;
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
int run_tool(const struct arglist *al, const char *desc)
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
int run_tool_quiet(const struct arglist *al, const char *desc)
{
	char path[PATH_MAX];
	int devnull, status, rc;
	pid_t pid;

	rc = prepare_tool(al, path, &devnull);
	if (rc)
		return rc;
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
