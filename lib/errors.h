/*
 * errors.h - the error buffer every layer fills for the user.
 *
 * Functions return 0 or -errno; a message a user may read goes into a
 * caller-supplied struct berr and becomes the Err that dockerd shows. The
 * first message set wins: lower layers say what failed, upper layers do not
 * overwrite it with something vaguer.
 */
#ifndef BALLAST_ERRORS_H
#define BALLAST_ERRORS_H

#include <stdarg.h>

#define BERR_MSG_MAX 256

struct berr {
	char msg[BERR_MSG_MAX];
};

/* An empty error buffer: `struct berr err = BERR_INIT;`. */
#define BERR_INIT                                                                                                      \
	{                                                                                                              \
		{                                                                                                      \
			0                                                                                              \
		}                                                                                                      \
	}

/* Set err's message unless one is set already; always returns -abs(code)
 * so callers can write `return berr_set(err, -EINVAL, "...")`. err may be
 * NULL. The message is made one line of printable ASCII: newlines become
 * spaces, other control and non-ASCII bytes '?'; one cut to fit
 * BERR_MSG_MAX ends with "...". */
int berr_set(struct berr *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Carry the message of an inner call's buffer up into err (unless err has
 * one already) and return -abs(code): `return berr_propagate(err, ret,
 * &inner);`. An empty from gives strerror(code). */
int berr_propagate(struct berr *err, int code, const struct berr *from);

/* Clear err so that it can be reused. */
void berr_clear(struct berr *err);

#endif
