/* run.c - run a program with a time bound (see run.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

extern char **environ;

/* How long a killed child gets to be reaped. */
#define RUN_REAP_GRACE_MS 5000

/* The last non-empty line of buf, trimmed, into out. */
static void last_line(const char *buf, char *out, size_t len)
{
	const char *end = buf + strlen(buf);
	const char *start;

	while (end > buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	start = end;
	while (start > buf && start[-1] != '\n')
		start--;
	snprintf(out, len, "%.*s", (int)(end - start), start);
}

/* Start argv in a process group of its own (so that its time bound can kill
 * whatever it started too), stdin from /dev/null, stdout and stderr into
 * outfd, with default signal dispositions and an empty mask (ballastd
 * blocks SIGTERM and SIGINT for sigwait and ignores SIGPIPE; a child must
 * inherit neither, or it could not be stopped). 0 or -errno. */
static int spawn_grouped(const char *const *argv, int infd, int outfd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	int ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, outfd, STDERR_FILENO);
	if (infd >= 0)
		posix_spawn_file_actions_adddup2(&fa, infd, STDIN_FILENO);
	else
		posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, STDOUT_FILENO);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	ret = posix_spawnp(pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -ret;
}

/* Append chunk to the tail kept in out (size outsz, *used bytes so far):
 * the last line is the one that matters. */
static void keep_tail(char *out, size_t outsz, size_t *used, const char *chunk, size_t n)
{
	if (n > outsz - 1) {
		chunk += n - (outsz - 1);
		n = outsz - 1;
	}
	if (n > outsz - 1 - *used) {
		size_t drop = n - (outsz - 1 - *used);

		memmove(out, out + drop, *used - drop);
		*used -= drop;
	}
	memcpy(out + *used, chunk, n);
	*used += n;
	out[*used] = '\0';
}

/* Read fd into out until EOF (or, with line_only, a newline) or the
 * deadline (CLOCK_MONOTONIC ms). Returns 1 when the deadline passed, else
 * 0. A line is read a byte at a time, so that nothing after it is taken. */
static int read_until(int fd, long deadline, char *out, size_t outsz, int line_only)
{
	size_t used = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - monotonic_ms();
		char chunk[512];
		ssize_t n;

		if (left <= 0)
			return 1;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (!pfd.revents)
			continue;
		n = read(fd, chunk, line_only ? 1 : sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		keep_tail(out, outsz, &used, chunk, (size_t)n);
		if (line_only && chunk[0] == '\n')
			return 0;
	}
}

/* Reap pid, waiting at most until deadline; past it, SIGKILL its whole
 * process group and wait RUN_REAP_GRACE_MS more. Returns 1 when it had to
 * kill, -ETIMEDOUT when even then it was not reaped (stuck in the kernel:
 * it stays our zombie), else 0. */
static int reap_bounded(pid_t pid, long deadline, int *status)
{
	int killed = 0;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return killed;
		if (r < 0 && errno != EINTR)
			return killed;
		if (monotonic_ms() >= deadline) {
			if (killed)
				return -ETIMEDOUT;
			kill(-pid, SIGKILL);
			killed = 1;
			deadline = monotonic_ms() + RUN_REAP_GRACE_MS;
		}
		usleep(10 * 1000);
	}
}

int run_bounded(const char *const *argv, int timeout_s, int *status, char *line, size_t linelen)
{
	char out[2048] = "";
	int pipefd[2] = { -1, -1 };
	long deadline;
	int late, ret;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	ret = spawn_grouped(argv, -1, pipefd[1], &pid);
	close(pipefd[1]);
	if (ret < 0) {
		close(pipefd[0]);
		return ret;
	}
	deadline = monotonic_ms() + timeout_s * 1000L;
	late = read_until(pipefd[0], deadline, out, sizeof(out), 0);
	if (late)
		kill(-pid, SIGKILL); /* the child and whatever it started */
	close(pipefd[0]);
	ret = reap_bounded(pid, late ? monotonic_ms() + RUN_REAP_GRACE_MS : deadline, status);
	last_line(out, line, linelen);
	if (late || ret != 0)
		return -ETIMEDOUT;
	return 0;
}

int run_start(const char *const *argv, int timeout_s, struct run_child *c, char *line, size_t linelen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char first[512] = "";
	int late, ret, status;

	c->pid = -1;
	c->in = c->out = -1;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out_close;
	}
	ret = spawn_grouped(argv, in[0], out[1], &c->pid);
	if (ret < 0)
		goto out_close;
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
	late = read_until(c->out, monotonic_ms() + timeout_s * 1000L, first, sizeof(first), 1);
	last_line(first, line, linelen);
	if (!late && strchr(first, '\n'))
		return 0;
	/* no first line: it failed (its last words in line) or hung */
	return run_finish(c, late ? 0 : timeout_s, &status, line[0] ? NULL : line, linelen) == 0 && !late ? -EIO
													  : -ETIMEDOUT;
out_close:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return ret;
}

int run_finish(struct run_child *c, int timeout_s, int *status, char *line, size_t linelen)
{
	char out[2048] = "";
	long deadline = monotonic_ms() + timeout_s * 1000L;
	int late, ret;

	close(c->in);
	c->in = -1;
	late = read_until(c->out, deadline, out, sizeof(out), 0);
	if (late)
		kill(-c->pid, SIGKILL);
	close(c->out);
	c->out = -1;
	ret = reap_bounded(c->pid, late ? monotonic_ms() + RUN_REAP_GRACE_MS : deadline, status);
	if (line)
		last_line(out, line, linelen);
	return late || ret != 0 ? -ETIMEDOUT : 0;
}
