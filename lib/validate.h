/*
 * validate.h - checks on everything a request carries before anything is
 * made: volume names, mount IDs, sizes, uid/gid/mode and option maps.
 */
#ifndef BALLAST_VALIDATE_H
#define BALLAST_VALIDATE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "errors.h"

#define VOLUME_NAME_MAX 128
#define MOUNT_ID_MAX 128

/* Names match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$; this admits dockerd's
 * 64-hex anonymous names and keeps every name a safe file name. */
int validate_name(const char *name, struct berr *err);

/* Mount IDs are opaque to dockerd but end up as JSON keys and in logs:
 * 1..128 printable ASCII characters. */
int validate_mount_id(const char *id, struct berr *err);

/* Parse a size: bytes, or a whole number with K, M, G, T or P (powers of
 * 1024; an optional trailing "B" or "iB" is accepted, any case). Zero,
 * negatives, fractions, exponents and overflow are refused. */
int parse_size(const char *s, uint64_t *out, struct berr *err);

/* Parse option `what` (uid or gid) as a whole number below 2^31. */
int parse_id(const char *what, const char *s, uint32_t *out, struct berr *err);

/* Parse an octal permission mode (e.g. 0700, 755), at most 07777. */
int parse_mode(const char *s, mode_t *out, struct berr *err);

/*
 * Check that opts is a JSON object of strings whose keys are all in the
 * NULL-terminated list valid. The error names the first unknown option and
 * lists the valid ones.
 */
int validate_opt_keys(const json_t *opts, const char *backend, const char *const *valid, struct berr *err);

/* takeover = / -o takeover=: may another host take a dead holder's volume. */
extern const char *const takeover_choices[];

/*
 * Is v one of the NULL-terminated choices? 0 when it is; else -EINVAL,
 * with "invalid WHAT \"V\": use A, B or C" (an option) or, when section
 * is given, "[SECTION] WHAT = V: use A, B or C" (a config key).
 */
int check_choice(const char *section, const char *what, const char *v, const char *const *choices, struct berr *err);

/* The string value of option key, or NULL when it is not given. */
const char *opt_get(const json_t *opts, const char *key);

#endif
