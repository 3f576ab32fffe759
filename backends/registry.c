/* registry.c - the backends compiled into this daemon. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "config.h"

extern const struct backend_ops be_local_ops;
#ifdef HAVE_RBD
extern const struct backend_ops be_rbd_ops;
#endif
#ifdef HAVE_GLUSTER
extern const struct backend_ops be_gluster_ops;
#endif

static const struct backend_ops *const registry[] = {
	&be_local_ops,
#ifdef HAVE_RBD
	&be_rbd_ops,
#endif
#ifdef HAVE_GLUSTER
	&be_gluster_ops,
#endif
	NULL,
};

const struct backend_ops *backend_lookup(const char *name)
{
	for (const struct backend_ops *const *b = registry; *b; b++)
		if (strcmp((*b)->name, name) == 0)
			return *b;
	return NULL;
}

/* Until the rbd and gluster families carry their own tables. */
#ifdef HAVE_RBD
static const char *const rbd_fstypes[] = { "ext4", "xfs", NULL };
static const char *const rbd_mappers[] = { "auto", "krbd", "nbd", "fuse", NULL };
static const char *const rbd_ms_modes[] = { "legacy", "crc", "secure", "prefer-crc", "prefer-secure", NULL };
static const char *const takeovers[] = { "after-lease", "never", NULL };
static const struct config_key rbd_keys[] = {
	CONFIG_KEY_STR("rbd", "conf", "/etc/ceph/ceph.conf", "Ceph config file of the cluster"),
	CONFIG_KEY_STR("rbd", "user", "admin", "cephx id (client.<user>)"),
	CONFIG_KEY_STR("rbd", "keyring", NULL, "keyring file (default: what the Ceph config says)"),
	CONFIG_KEY_STR("rbd", "pool", "rbd", "pool for volumes that name none"),
	CONFIG_KEY_UINT("rbd", "timeout", "10", "seconds; bounds every Ceph call", 1, 600),
	CONFIG_KEY_SIZE("rbd", "default_size", "10G", "size of volumes created without -o size"),
	CONFIG_KEY_CHOICE("rbd", "default_fstype", "ext4", "ext4 or xfs", rbd_fstypes),
	CONFIG_KEY_CHOICE("rbd", "mapper", "auto", "auto, krbd, nbd or fuse: how images become block devices",
			  rbd_mappers),
	CONFIG_KEY_CHOICE(
		"rbd", "ms_mode", NULL,
		"krbd's messenger mode (legacy, crc, secure, prefer-crc, prefer-secure); msgr2-only monitors need one",
		rbd_ms_modes),
	CONFIG_KEY_UINT(
		"rbd", "lease", "30",
		"seconds a holder keeps a volume without renewing; then another host may fence it and take over", 1,
		3600),
	CONFIG_KEY_CHOICE("rbd", "takeover", "after-lease",
			  "after-lease or never: may another host take a dead holder's volume", takeovers),
	CONFIG_KEY_END,
};
#endif
#ifdef HAVE_GLUSTER
static const char *const gl_takeovers[] = { "after-lease", "never", NULL };
static const struct config_key gluster_keys[] = {
	CONFIG_KEY_STR("gluster", "servers", NULL, "volfile servers, comma-separated; the first reachable is used"),
	CONFIG_KEY_STR("gluster", "volume", NULL, "the Gluster volume that holds ballast volumes"),
	CONFIG_KEY_STR("gluster", "dir", "/ballast", "directory inside the Gluster volume for ballast volumes"),
	CONFIG_KEY_UINT("gluster", "timeout", "10", "seconds; bounds every Gluster call", 1, 3600),
	CONFIG_KEY_STR("gluster", "log", NULL, "gfapi log file (default: none)"),
	CONFIG_KEY_STR("gluster", "glusterd_socket", NULL,
		       "glusterd CLI socket, for quota (default: /run/glusterd.socket)"),
	CONFIG_KEY_UINT("gluster", "lease", "30", "seconds a holder of an exclusive volume keeps it without renewing",
			1, 86400),
	CONFIG_KEY_CHOICE("gluster", "takeover", "after-lease",
			  "after-lease or never: may another host take a dead holder's volume", gl_takeovers),
	CONFIG_KEY_END,
};
#endif

int backend_config_keys(struct ballast_config *cfg)
{
#ifdef HAVE_RBD
	if (!backend_lookup("rbd")->config_keys && config_add_keys(cfg, rbd_keys) < 0)
		return -EEXIST;
#endif
#ifdef HAVE_GLUSTER
	if (!backend_lookup("gluster")->config_keys && config_add_keys(cfg, gluster_keys) < 0)
		return -EEXIST;
#endif
	for (const struct backend_ops *const *b = registry; *b; b++) {
		int ret = config_add_keys(cfg, (*b)->config_keys);

		if (ret < 0)
			return ret;
	}
	return 0;
}

const struct backend_ops *const *backend_all(void)
{
	return registry;
}

void backend_check_add(json_t *checks, const char *name, int ok, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "check", name, "ok", ok, "detail", detail));
}
