/* registry.c - the backends compiled into this daemon. */
#include <string.h>

#include "backend.h"

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

const struct backend_ops *const *backend_all(void)
{
	return registry;
}
