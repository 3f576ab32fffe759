/* config.c - INI configuration via libinih (see config.h). */
#define LOG_TAG "config"
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "validate.h"

/* The core's keys. Backends own theirs (backend_ops.config_keys). */
static const struct config_key core_keys[] = {
	CONFIG_KEY_STR("ballast", "socket", "/run/docker/plugins/ballast.sock", "unix socket dockerd connects to"),
	CONFIG_KEY_STR("ballast", "state_dir", "/var/lib/ballast", "catalog, mountpoints and local volumes"),
	CONFIG_KEY_STR("ballast", "host_id", NULL, "this host's name in holder records (default: hostname)"),
	CONFIG_KEY_STR("ballast", "default_backend", "local", "backend used when Create names none"),
	CONFIG_KEY_STR("ballast", "log_level", "info", "error, warn, info or debug"),
	CONFIG_KEY_STR("ballast", "helper", NULL,
		       "path of mount.ballast (default: next to ballastd, else /sbin/mount.ballast)"),
	CONFIG_KEY_UINT("ballast", "helper_timeout", "110", "seconds a mount.ballast run may take", 1, 3600),
	CONFIG_KEY_UINT("ballast", "mount_deadline", "110",
			"seconds a Create or Mount may take in all (dockerd gives up at 120)", 1, 110),
	CONFIG_KEY_UINT("ballast", "request_deadline", "55",
			"seconds any other request may take in all (dockerd gives up at 60)", 1, 55),
	CONFIG_KEY_STR("ballast", "metrics", NULL,
		       "Prometheus listener: unix:/path.sock or ADDRESS:PORT (default: off)"),
	CONFIG_KEY_UINT("ballast", "refresh_interval", "15",
			"seconds between refreshes of shared backends' volume lists", 1, 86400),
	CONFIG_KEY_UINT("ballast", "orphan_grace", "120",
			"seconds a mounted volume no container uses (in no mount namespace of this host) keeps "
			"its mount before ballastd unmounts it, as dockerd would have (0: never)",
			0, 86400),
	CONFIG_KEY_END,
};

const struct config_key *config_core_keys(void)
{
	return core_keys;
}

/* The key with index i (core first, then the added tables), or NULL. */
static const struct config_key *key_at(const struct ballast_config *cfg, int i)
{
	const struct config_key *t = core_keys;
	int table = -1;

	for (;;) {
		for (const struct config_key *k = t; k->section; k++)
			if (i-- == 0)
				return k;
		if (++table >= cfg->ntables)
			return NULL;
		t = cfg->tables[table];
	}
}

static int key_index(const struct ballast_config *cfg, const char *section, const char *key)
{
	const struct config_key *k;

	for (int i = 0; (k = key_at(cfg, i)); i++)
		if (strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0)
			return i;
	return -1;
}

static int section_known(const struct ballast_config *cfg, const char *section)
{
	const struct config_key *k;

	for (int i = 0; (k = key_at(cfg, i)); i++)
		if (strcmp(k->section, section) == 0)
			return 1;
	return 0;
}

int config_add_keys(struct ballast_config *cfg, const struct config_key *table)
{
	int n = 0;

	if (!table)
		return 0;
	if (cfg->ntables >= CONFIG_TABLES_MAX)
		return -ENOSPC;
	while (key_at(cfg, n))
		n++;
	for (const struct config_key *k = table; k->section; k++, n++) {
		if (key_index(cfg, k->section, k->key) >= 0)
			return -EEXIST;
		if (n >= CONFIG_KEYS_MAX)
			return -ENOSPC;
	}
	cfg->tables[cfg->ntables++] = table;
	return 0;
}

void config_each_key(const struct ballast_config *cfg, void (*fn)(const struct config_key *k, void *arg), void *arg)
{
	const struct config_key *k;

	for (int i = 0; (k = key_at(cfg, i)); i++)
		fn(k, arg);
}

/* Is v a whole number from min to max? (max 0: no upper bound.) */
static int check_uint(const struct config_key *k, const char *v, unsigned long *out, struct berr *err)
{
	unsigned long min = k->min, max = k->max ? k->max : ULONG_MAX;
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || v[0] == '+' || n < min || n > max) {
		if (max == ULONG_MAX)
			return berr_set(err, -EINVAL, "[%s] %s = %s: expected a positive whole number", k->section,
					k->key, v);
		return berr_set(err, -EINVAL, "[%s] %s = %s: expected a whole number from %lu to %lu", k->section,
				k->key, v, min, max);
	}
	if (out)
		*out = n;
	return 0;
}

/* Does v fit k's type and range? The reason goes into err. */
static int check_value(const struct config_key *k, const char *v, struct berr *err)
{
	struct berr inner = BERR_INIT;
	uint64_t bytes;

	switch (k->type) {
	case CONFIG_UINT:
		return check_uint(k, v, NULL, err);
	case CONFIG_CHOICE:
		return check_choice(k->section, k->key, v, k->choices, err);
	case CONFIG_SIZE:
		if (parse_size(v, &bytes, &inner) < 0)
			return berr_set(err, -EINVAL, "[%s] %s = %s: %s", k->section, k->key, v, inner.msg);
		return 0;
	case CONFIG_STRING:
		break;
	}
	return 0;
}

int config_set(struct ballast_config *cfg, const char *section, const char *key, const char *value, struct berr *err)
{
	int i = key_index(cfg, section, key);
	char *dup;
	int ret;

	if (i < 0)
		return berr_set(err, -EINVAL, "unknown key \"%s\" in section [%s]", key, section);
	ret = check_value(key_at(cfg, i), value, err);
	if (ret < 0)
		return ret;
	dup = strdup(value);
	if (!dup)
		return berr_set(err, -ENOMEM, "out of memory");
	free(cfg->values[i]);
	cfg->values[i] = dup;
	return 0;
}

struct parse_state {
	struct ballast_config *cfg;
	struct berr *err;
};

/* inih handler: returns 0 (error) for anything unknown or invalid so that
 * ini_parse reports the line. The reason goes to the error buffer. */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	int i;

	if (!section_known(ps->cfg, section)) {
		if (ps->cfg->skip_unknown && section[0])
			return 1;
		berr_set(ps->err, -EINVAL, "unknown section [%s]", section);
		return 0;
	}
	if (!name) /* the start of a known section */
		return 1;
	i = key_index(ps->cfg, section, name);
	if (i < 0) {
		berr_set(ps->err, -EINVAL, "unknown key \"%s\" in section [%s]", name, section);
		return 0;
	}
	if (!*value) {
		/* "key =" means the default, as if the line were not there. */
		free(ps->cfg->values[i]);
		ps->cfg->values[i] = NULL;
		return 1;
	}
	return config_set(ps->cfg, section, name, value, ps->err) == 0;
}

int config_load(struct ballast_config *cfg, const char *path, int required, struct berr *err)
{
	struct parse_state ps = { .cfg = cfg, .err = NULL };
	struct berr inner = BERR_INIT;
	FILE *f;
	int line;
	int ret = 0;

	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT && !required)
			return 0;
		return berr_set(err, -errno, "cannot read config file %s: %s", path, strerror(errno));
	}
	ps.err = &inner;
	line = ini_parse_file(f, on_entry, &ps);
	fclose(f);
	if (line != 0) {
		ret = berr_set(err, -EINVAL, "%s:%d: %s", path, line,
			       inner.msg[0] ? inner.msg : "syntax error (expected [section] or key = value)");
		goto out;
	}
	cfg->path = strdup(path);
	if (!cfg->path)
		ret = berr_set(err, -ENOMEM, "out of memory");
out:
	return ret;
}

int config_finish(struct ballast_config *cfg)
{
	char buf[HOST_NAME_MAX + 1] = "";

	if (config_get(cfg, "ballast", "host_id"))
		return 0;
	if (gethostname(buf, sizeof(buf) - 1) < 0 || !buf[0])
		strcpy(buf, "localhost");
	return config_set(cfg, "ballast", "host_id", buf, NULL);
}

const char *config_get(const struct ballast_config *cfg, const char *section, const char *key)
{
	int i = key_index(cfg, section, key);

	if (i < 0)
		return NULL;
	return cfg->values[i] ? cfg->values[i] : key_at(cfg, i)->def;
}

int config_section_given(const struct ballast_config *cfg, const char *section)
{
	const struct config_key *k;

	for (int i = 0; (k = key_at(cfg, i)); i++)
		if (strcmp(k->section, section) == 0 && cfg->values[i])
			return 1;
	return 0;
}

struct section_scan {
	const char *section;
	int found;
};

static int scan_key(void *arg, const char *section, const char *name, const char *value)
{
	struct section_scan *s = arg;

	(void)name;
	(void)value;
	if (strcmp(section, s->section) == 0)
		s->found = 1;
	return 1;
}

int config_file_sets(const char *path, const char *section)
{
	struct section_scan s = { section, 0 };

	if (path && *path)
		(void)ini_parse(path, scan_key, &s);
	return s.found;
}

int config_get_uint(const struct ballast_config *cfg, const char *section, const char *key, unsigned long *out,
		    struct berr *err)
{
	int i = key_index(cfg, section, key);
	const char *v;

	if (i < 0)
		return berr_set(err, -EINVAL, "unknown key \"%s\" in section [%s]", key, section);
	v = config_get(cfg, section, key);
	if (!v)
		return berr_set(err, -EINVAL, "[%s] %s is not set", section, key);
	return check_uint(key_at(cfg, i), v, out, err);
}

void config_free(struct ballast_config *cfg)
{
	for (size_t i = 0; i < sizeof(cfg->values) / sizeof(cfg->values[0]); i++) {
		free(cfg->values[i]);
		cfg->values[i] = NULL;
	}
	free(cfg->path);
	cfg->path = NULL;
}
