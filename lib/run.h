/*
 * run.h - the bounded runner: start a program (argv only, never a shell),
 * keep its last line of output, and kill it when its time is up.
 */
#ifndef BALLAST_RUN_H
#define BALLAST_RUN_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Run argv (argv[0] searched in PATH unless it has a slash), stdin from
 * /dev/null, in a process group of its own, and wait at most timeout_s
 * seconds in all (its output and its exit), then SIGKILL the whole group:
 * what it started dies with it (mkfs under a helper, mount.glusterfs). A
 * process that closes its output but keeps running is bounded too. Its
 * last non-empty line of output goes into line. Returns 0 when it ran
 * (*status as from waitpid), -ETIMEDOUT when it was killed, or -errno
 * when it could not be started.
 */
int run_bounded(const char *const *argv, int timeout_s, int *status, char *line, size_t linelen);

/* A program started by run_start, still running. */
struct run_child {
	pid_t pid;
	int in;	 /* its stdin, a pipe: closing it is the program's cue */
	int out; /* its stdout and stderr */
};

/*
 * Start argv as run_bounded does, but with stdin a pipe kept open, and
 * wait at most timeout_s for its first line of output (a helper saying it
 * is ready), which goes into line. 0: started and it said so; -EIO: it
 * exited first (its last line in line); -ETIMEDOUT: it said nothing in
 * time (killed); -errno when it could not be started. Unless 0, nothing
 * is left running.
 */
int run_start(const char *const *argv, int timeout_s, struct run_child *c, char *line, size_t linelen);

/* Close c's stdin and reap it within timeout_s (then SIGKILL, as
 * run_bounded); its last line of output after the first into line (when
 * not NULL). 0 (*status as from waitpid) or -ETIMEDOUT. */
int run_finish(struct run_child *c, int timeout_s, int *status, char *line, size_t linelen);

#endif
