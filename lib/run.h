/*
 * run.h - the bounded runner: start a program (argv only, never a shell),
 * keep its last line of output, and kill it when its time is up.
 */
#ifndef BALLAST_RUN_H
#define BALLAST_RUN_H

#include <stddef.h>

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

#endif
