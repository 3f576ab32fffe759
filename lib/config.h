/*
 * config.h - ballastd's configuration: an INI file plus command-line flags.
 *
 * The core knows only [ballast]; every backend owns the keys of its own
 * section (types, defaults, ranges) in a table next to its code and hands
 * it over with config_add_keys before the file is read. An unknown section
 * or key, or a value of the wrong type or out of range, is an error naming
 * the file and line: values are refused, never clamped. Values are strings;
 * typed accessors read them.
 */
#ifndef BALLAST_CONFIG_H
#define BALLAST_CONFIG_H

#include <stddef.h>

#include "errors.h"

#define CONFIG_DEFAULT_PATH "/etc/ballast/ballast.conf"
#define CONFIG_TABLES_MAX 8
#define CONFIG_KEYS_MAX 96

/* What a value must look like; checked when it is read or set. */
enum config_type {
	CONFIG_STRING = 0, /* anything */
	CONFIG_UINT,	   /* a whole number from min to max */
	CONFIG_CHOICE,	   /* one of choices */
	CONFIG_SIZE,	   /* a size such as 10G (parse_size) */
};

struct config_key {
	const char *section;
	const char *key;
	const char *def; /* default; NULL = unset (or computed by its owner) */
	const char *help;
	enum config_type type;
	unsigned long min, max;	    /* CONFIG_UINT */
	const char *const *choices; /* CONFIG_CHOICE: NULL-terminated */
};

/* Table entries, one macro per type. */
#define CONFIG_KEY_STR(sec, key, def, help)                                                                            \
	{                                                                                                              \
		sec, key, def, help, CONFIG_STRING, 0, 0, NULL                                                         \
	}
#define CONFIG_KEY_UINT(sec, key, def, help, min, max)                                                                 \
	{                                                                                                              \
		sec, key, def, help, CONFIG_UINT, min, max, NULL                                                       \
	}
#define CONFIG_KEY_CHOICE(sec, key, def, help, choices)                                                                \
	{                                                                                                              \
		sec, key, def, help, CONFIG_CHOICE, 0, 0, choices                                                      \
	}
#define CONFIG_KEY_SIZE(sec, key, def, help)                                                                           \
	{                                                                                                              \
		sec, key, def, help, CONFIG_SIZE, 0, 0, NULL                                                           \
	}
#define CONFIG_KEY_END                                                                                                 \
	{                                                                                                              \
		NULL, NULL, NULL, NULL, CONFIG_STRING, 0, 0, NULL                                                      \
	}

/* Zero-initialise (CONFIG_INIT): the [ballast] keys are always known. */
struct ballast_config {
	const struct config_key *tables[CONFIG_TABLES_MAX]; /* added tables */
	int ntables;
	char *values[CONFIG_KEYS_MAX]; /* by key index (core, then tables); NULL = default */
	char *path;		       /* the file read, or NULL */
	int skip_unknown;	       /* skip sections no table names (the CLI) */
};

#define CONFIG_INIT                                                                                                    \
	{                                                                                                              \
		{ NULL }, 0, { NULL }, NULL, 0                                                                         \
	}

/* The core table ([ballast]), ended by a zeroed entry. */
const struct config_key *config_core_keys(void);

/* Make the keys of table (ended by a zeroed entry) known, before
 * config_load. A key known already is -EEXIST; -ENOSPC when full. */
int config_add_keys(struct ballast_config *cfg, const struct config_key *table);

/* Call fn for every known key, core first. */
void config_each_key(const struct ballast_config *cfg, void (*fn)(const struct config_key *k, void *arg), void *arg);

/* Read path into cfg. A missing file at the default path (required == 0)
 * means all defaults; a missing file named by the user (required == 1) is
 * an error. Errors name the file and the line. */
int config_load(struct ballast_config *cfg, const char *path, int required, struct berr *err);

/* Set a value (from a command-line flag), checked like a value in the file.
 * Returns 0, -EINVAL for an unknown key or a bad value (reason in err, which
 * may be NULL), -ENOMEM. */
int config_set(struct ballast_config *cfg, const char *section, const char *key, const char *value, struct berr *err);

/* Compute the defaults that depend on the host (host_id is the hostname).
 * Call once, after flags are applied. */
int config_finish(struct ballast_config *cfg);

/* The value of section.key: the file's, else the default. Never NULL for
 * keys whose default is set; NULL for unset optional keys and unknown keys. */
const char *config_get(const struct ballast_config *cfg, const char *section, const char *key);

/* Was any key of section set (in the file or by a flag)? */
int config_section_given(const struct ballast_config *cfg, const char *section);

/* Does the file at path set any key of section? Read before the keys are
 * known (to choose the backends to load); a file that is missing or does
 * not parse says no here, and config_load reports it. */
int config_file_sets(const char *path, const char *section);

/* Parse a positive whole number value of section.key into *out (within the
 * key's range when it has one). */
int config_get_uint(const struct ballast_config *cfg, const char *section, const char *key, unsigned long *out,
		    struct berr *err);

void config_free(struct ballast_config *cfg);

#endif
