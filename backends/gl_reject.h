/*
 * gl_reject.h - editing the value of a Gluster volume's auth.reject, by
 * which the gluster backend fences one host from one directory:
 *   "/ballast/pgdata(10.0.0.5|10.0.0.6),/ballast/other(10.0.0.7)"
 * Pure string functions (no gfapi), so that the unit tests cover them.
 */
#ifndef BALLAST_GL_REJECT_H
#define BALLAST_GL_REJECT_H

#include <stddef.h>

/*
 * The value from `gluster volume get VOL auth.reject`'s last line,
 * "auth.reject   VALUE   " ("(null) (DEFAULT)" when unset: ""), into val.
 * 0, -EINVAL when the line is not that, -E2BIG when val is too small.
 */
int gl_reject_parse(const char *line, char *val, size_t len);

/* 1 when addr is in the list of path's entry of val, else 0. */
int gl_reject_has(const char *val, const char *path, const char *addr);

/*
 * val with addr added to (add) or taken from path's entry, into out; an
 * entry left with no address goes, the other entries stay as they are.
 * 0, or -E2BIG when out is too small.
 */
int gl_reject_edit(const char *val, const char *path, const char *addr, int add, char *out, size_t len);

#endif
