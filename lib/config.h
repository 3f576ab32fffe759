/*
 * config.h - ballastd's configuration: an INI file plus command-line flags.
 *
 * Every key ballast knows is listed once, in config.c's key table, with its
 * section and default; an unknown section or key is an error naming the
 * file and line. Values are strings; typed accessors parse them.
 */
#ifndef BALLAST_CONFIG_H
#define BALLAST_CONFIG_H

#include <stddef.h>

#include "errors.h"

#define CONFIG_DEFAULT_PATH "/etc/ballast/ballast.conf"

struct config_key {
	const char *section;
	const char *key;
	const char *def; /* default; NULL = unset */
	const char *help;
};

struct ballast_config {
	char *values[64]; /* parallel to config_keys(); NULL = default */
	char *path;	  /* the file read, or NULL */
};

/* The table of known keys, ended by a zeroed entry. */
const struct config_key *config_keys(void);

/* Fill cfg with defaults, then read path. A missing file at the default
 * path (required == 0) means all defaults; a missing file named by the user
 * (required == 1) is an error. Errors name the file and the line. */
int config_load(struct ballast_config *cfg, const char *path, int required, struct berr *err);

/* Override a value (from a command-line flag). Returns 0 or -EINVAL for an
 * unknown key, -ENOMEM. */
int config_set(struct ballast_config *cfg, const char *section, const char *key, const char *value);

/* Compute the defaults that depend on other keys (local.root follows
 * state_dir; host_id is the hostname). Call once, after flags are applied. */
int config_finish(struct ballast_config *cfg);

/* The value of section.key: the file's, else the computed default. Never
 * NULL for keys whose default is set; NULL for unset optional keys. */
const char *config_get(const struct ballast_config *cfg, const char *section, const char *key);

/* Was any key of section set (in the file or by a flag)? */
int config_section_given(const struct ballast_config *cfg, const char *section);

/* Parse a positive whole number value of section.key into *out. */
int config_get_uint(const struct ballast_config *cfg, const char *section, const char *key, unsigned long *out,
		    struct berr *err);

void config_free(struct ballast_config *cfg);

#endif
