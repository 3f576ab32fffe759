/* config.c - INI configuration via libinih (see config.h). */
#define LOG_TAG "config"
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Defaults that depend on other keys (local.root follows state_dir) are
 * computed in config_get; their def here is NULL and help says so. */
static const struct config_key keys[] = {
	{ "ballast", "socket", "/run/docker/plugins/ballast.sock", "unix socket dockerd connects to" },
	{ "ballast", "state_dir", "/var/lib/ballast", "catalog, mountpoints and local volumes" },
	{ "ballast", "host_id", NULL, "this host's name in holder records (default: hostname)" },
	{ "ballast", "default_backend", "local", "backend used when Create names none" },
	{ "ballast", "log_level", "info", "error, warn, info or debug" },
	{ "ballast", "helper", NULL, "path of mount.ballast (default: next to ballastd, else /sbin/mount.ballast)" },
	{ "ballast", "helper_timeout", "110", "seconds a mount.ballast run may take" },
	{ "ballast", "metrics", NULL, "Prometheus listener: unix:/path.sock or ADDRESS:PORT (default: off)" },
	{ "ballast", "refresh_interval", "15", "seconds between refreshes of shared backends' volume lists" },
	{ "local", "root", NULL, "where local volumes live (default: <state_dir>/local)" },
	{ "gluster", "servers", NULL, "volfile servers, comma-separated; the first reachable is used" },
	{ "gluster", "volume", NULL, "the Gluster volume that holds ballast volumes" },
	{ "gluster", "dir", "/ballast", "directory inside the Gluster volume for ballast volumes" },
	{ "gluster", "timeout", "10", "seconds; bounds every Gluster call" },
	{ "gluster", "log", NULL, "gfapi log file (default: none)" },
	{ "gluster", "glusterd_socket", NULL, "glusterd CLI socket, for quota (default: /run/glusterd.socket)" },
	{ "gluster", "lease", "30", "seconds a holder of an exclusive volume keeps it without renewing" },
	{ "gluster", "takeover", "after-lease", "after-lease or never: may another host take a dead holder's volume" },
	{ "rbd", "conf", "/etc/ceph/ceph.conf", "Ceph config file of the cluster" },
	{ "rbd", "user", "admin", "cephx id (client.<user>)" },
	{ "rbd", "keyring", NULL, "keyring file (default: what the Ceph config says)" },
	{ "rbd", "pool", "rbd", "pool for volumes that name none" },
	{ "rbd", "timeout", "10", "seconds; bounds every Ceph call" },
	{ "rbd", "default_size", "10G", "size of volumes created without -o size" },
	{ "rbd", "default_fstype", "ext4", "ext4 or xfs" },
	{ "rbd", "mapper", "auto", "auto, krbd, nbd or fuse: how images become block devices" },
	{ "rbd", "ms_mode", NULL,
	  "krbd's messenger mode (legacy, crc, secure, prefer-crc, prefer-secure); msgr2-only monitors need one" },
	{ "rbd", "lease", "30",
	  "seconds a holder keeps a volume without renewing; then another host may fence it and take over" },
	{ "rbd", "takeover", "after-lease", "after-lease or never: may another host take a dead holder's volume" },
	{ NULL, NULL, NULL, NULL },
};

const struct config_key *config_keys(void)
{
	return keys;
}

static int key_index(const char *section, const char *key)
{
	for (int i = 0; keys[i].section; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
			return i;
	return -1;
}

static int section_known(const char *section)
{
	for (int i = 0; keys[i].section; i++)
		if (strcmp(keys[i].section, section) == 0)
			return 1;
	return 0;
}

int config_set(struct ballast_config *cfg, const char *section, const char *key, const char *value)
{
	int i = key_index(section, key);
	char *dup;

	if (i < 0)
		return -EINVAL;
	dup = strdup(value);
	if (!dup)
		return -ENOMEM;
	free(cfg->values[i]);
	cfg->values[i] = dup;
	return 0;
}

struct parse_state {
	struct ballast_config *cfg;
	struct berr *err;
	int lineno;
};

/* inih handler: returns 0 (error) for anything unknown so that ini_parse
 * reports the line. The reason goes to the error buffer. */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;

	if (!section_known(section)) {
		berr_set(ps->err, -EINVAL, "unknown section [%s]", section);
		return 0;
	}
	if (!name) /* the start of a known section */
		return 1;
	if (key_index(section, name) < 0) {
		berr_set(ps->err, -EINVAL, "unknown key \"%s\" in section [%s]", name, section);
		return 0;
	}
	if (!*value) {
		/* "key =" means the default, as if the line were not there. */
		int i = key_index(section, name);

		free(ps->cfg->values[i]);
		ps->cfg->values[i] = NULL;
		return 1;
	}
	if (config_set(ps->cfg, section, name, value) < 0) {
		berr_set(ps->err, -ENOMEM, "out of memory");
		return 0;
	}
	return 1;
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
	char buf[PATH_MAX] = "";
	int ret = 0;

	if (!config_get(cfg, "local", "root")) {
		snprintf(buf, sizeof(buf), "%s/local", config_get(cfg, "ballast", "state_dir"));
		ret = config_set(cfg, "local", "root", buf);
	}
	if (!ret && !config_get(cfg, "ballast", "host_id")) {
		if (gethostname(buf, sizeof(buf) - 1) < 0 || !buf[0])
			strcpy(buf, "localhost");
		ret = config_set(cfg, "ballast", "host_id", buf);
	}
	return ret;
}

const char *config_get(const struct ballast_config *cfg, const char *section, const char *key)
{
	int i = key_index(section, key);

	if (i < 0)
		return NULL;
	return cfg->values[i] ? cfg->values[i] : keys[i].def;
}

int config_section_given(const struct ballast_config *cfg, const char *section)
{
	for (int i = 0; keys[i].section; i++)
		if (strcmp(keys[i].section, section) == 0 && cfg->values[i])
			return 1;
	return 0;
}

int config_get_uint(const struct ballast_config *cfg, const char *section, const char *key, unsigned long *out,
		    struct berr *err)
{
	const char *v = config_get(cfg, section, key);
	char *end;

	if (!v)
		return berr_set(err, -EINVAL, "[%s] %s is not set", section, key);
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (errno || end == v || *end || *out == 0 || v[0] == '-')
		return berr_set(err, -EINVAL, "[%s] %s = %s: expected a positive whole number", section, key, v);
	return 0;
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
