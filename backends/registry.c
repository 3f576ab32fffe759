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

int backend_config_keys(struct ballast_config *cfg)
{
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
