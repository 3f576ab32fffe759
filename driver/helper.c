/* helper.c - run mount.ballast with a time bound (see helper.h). */
#define LOG_TAG "helper"
#include "helper.h"

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

#include "config.h"
#include "log.h"
#include "timeutil.h"

#define HELPER_ARGS_MAX 24
#define HELPER_EXIT_HAS_FS 3

extern char **environ;

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

int run_bounded(const char *const *argv, int timeout_s, int *status, char *line, size_t linelen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	char out[2048] = "";
	int pipefd[2] = { -1, -1 };
	size_t used = 0;
	int killed = 0, ret;
	long deadline;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	/* ballastd blocks SIGTERM and SIGINT (sigwait) and ignores SIGPIPE;
	 * a child must not inherit either, or it could not be stopped. */
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (ret != 0) {
		close(pipefd[0]);
		return -ret;
	}

	deadline = monotonic_ms() + timeout_s * 1000L;
	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		long left = deadline - monotonic_ms();
		char chunk[512];
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!pfd.revents)
			continue;
		n = read(pipefd[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* Keep the tail: the last line is the one that matters. */
		if ((size_t)n > sizeof(out) - 1 - used) {
			size_t drop = (size_t)n - (sizeof(out) - 1 - used);

			memmove(out, out + drop, used - drop);
			used -= drop;
		}
		memcpy(out + used, chunk, (size_t)n);
		used += (size_t)n;
		out[used] = '\0';
	}
	close(pipefd[0]);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	last_line(out, line, linelen);
	return killed ? -ETIMEDOUT : 0;
}

int helper_run(const struct helper *h, const char *const *args, struct berr *err)
{
	return helper_run_out(h, args, NULL, 0, err);
}

int helper_run_out(const struct helper *h, const char *const *args, char *out, size_t outlen, struct berr *err)
{
	const char *argv[HELPER_ARGS_MAX + 4];
	char line[BERR_MSG_MAX];
	int argc = 0, status = 0;
	int ret;

	argv[argc++] = h->path;
	argv[argc++] = "--state-dir";
	argv[argc++] = h->state_dir;
	for (int i = 0; args[i]; i++) {
		if (argc >= HELPER_ARGS_MAX + 3)
			return berr_set(err, -E2BIG, "internal error: too many helper arguments");
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;

	ret = run_bounded(argv, h->timeout_s, &status, line, sizeof(line));
	if (ret == -ETIMEDOUT) {
		log_errx("%s %s timed out after %d s", h->path, args[0], h->timeout_s);
		return berr_set(err, -ETIMEDOUT, "mount.ballast %s did not finish within %d s", args[0],
				h->timeout_s);
	}
	if (ret < 0)
		return berr_set(err, ret, "cannot run %s: %s", h->path, strerror(-ret));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (out)
			snprintf(out, outlen, "%s", line);
		return 0;
	}
	log_warnx("mount.ballast %s failed: %s", args[0], line[0] ? line : "(no message)");
	if (WIFEXITED(status) && WEXITSTATUS(status) == HELPER_EXIT_HAS_FS)
		return berr_set(err, -EEXIST, "%s", line);
	if (line[0])
		return berr_set(err, -EIO, "%s", line);
	if (WIFSIGNALED(status))
		return berr_set(err, -EIO, "mount.ballast %s was killed by signal %d", args[0],
				WTERMSIG(status));
	return berr_set(err, -EIO, "mount.ballast %s failed with status %d", args[0], WEXITSTATUS(status));
}

int helper_init(struct helper *h, const struct ballast_config *cfg, struct berr *err)
{
	const char *path = config_get(cfg, "ballast", "helper");
	unsigned long timeout;
	char self[4096];
	ssize_t n;
	int ret;

	ret = config_get_uint(cfg, "ballast", "helper_timeout", &timeout, err);
	if (ret < 0)
		return ret;
	h->timeout_s = (int)(timeout > 3600 ? 3600 : timeout);
	snprintf(h->state_dir, sizeof(h->state_dir), "%s", config_get(cfg, "ballast", "state_dir"));
	if (path) {
		snprintf(h->path, sizeof(h->path), "%s", path);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			snprintf(slash + 1, sizeof(self) - (size_t)(slash + 1 - self), "mount.ballast");
			if (access(self, X_OK) == 0) {
				snprintf(h->path, sizeof(h->path), "%s", self);
				return 0;
			}
		}
	}
	snprintf(h->path, sizeof(h->path), "/sbin/mount.ballast");
	return 0;
}
