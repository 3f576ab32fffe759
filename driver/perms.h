/*
 * perms.h - the owner and mode of a volume's root, from the Create options
 * uid, gid and mode that every backend takes.
 */
#ifndef BALLAST_PERMS_H
#define BALLAST_PERMS_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "errors.h"

#define VOL_DEFAULT_MODE 0755

struct vol_perms {
	uint32_t uid, gid;
	mode_t mode;
};

/* Parse options uid, gid and mode (defaults 0, 0, 0755) into *p. 0 or
 * -EINVAL with the reason. */
int parse_perms(const json_t *opts, struct vol_perms *p, struct berr *err);

/* Give dir that owner and mode. 0 or -errno with the reason. */
int apply_perms(const char *dir, const struct vol_perms *p, struct berr *err);

#endif
