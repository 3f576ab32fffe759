/* Shared bits of the unit tests: cmocka's includes and a temp dir. */
#ifndef BALLAST_UNIT_H
#define BALLAST_UNIT_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"

/* A fresh directory under $TMPDIR (or /tmp), removed by tmpdir_free. */
static inline char *tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;

	if (asprintf(&path, "%s/ballast-unit-XXXXXX", base && *base ? base : "/tmp") < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static inline void tmpdir_free(char *path)
{
	if (path)
		rm_rf(path);
	free(path);
}

/* Write text to dir/name. */
static inline void write_text(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#endif
