/*
 * helper.h - run mount.ballast: argv only (no shell), a time bound, and its
 * one stderr line carried back as the user's error.
 */
#ifndef BALLAST_HELPER_H
#define BALLAST_HELPER_H

#include <stddef.h>

#include "errors.h"

struct helper {
	char path[4096];      /* mount.ballast */
	char state_dir[4096]; /* passed as --state-dir */
	int timeout_s;
};

/*
 * Run `<path> --state-dir <state_dir> args...` (args NULL-terminated).
 * Returns 0 on exit status 0; otherwise -EIO (or -ETIMEDOUT when killed
 * after timeout_s, -EEXIST for exit status 3: the source holds a file
 * system) with the helper's last stderr line in err.
 */
int helper_run(const struct helper *h, const char *const *args, struct berr *err);

/* helper_run, and on success its last line of output into out (the
 * device `mount.ballast map` printed). */
int helper_run_out(const struct helper *h, const char *const *args, char *out, size_t outlen, struct berr *err);



/*
 * Run argv (argv[0] searched in PATH unless it has a slash), stdin from
 * /dev/null, and wait at most timeout_s seconds, then SIGKILL it. Its last
 * non-empty line of output goes into line. Returns 0 when it ran (*status
 * as from waitpid), -ETIMEDOUT when it was killed, or -errno when it could
 * not be started.
 */
int run_bounded(const char *const *argv, int timeout_s, int *status, char *line, size_t linelen);

struct ballast_config;

/* Fill h from the config: [ballast] helper (default: mount.ballast next to
 * the running ballastd, else /sbin/mount.ballast), state_dir and
 * helper_timeout. */
int helper_init(struct helper *h, const struct ballast_config *cfg, struct berr *err);

#endif
