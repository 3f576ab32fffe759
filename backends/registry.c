/*
 * registry.c - the backends this daemon has: local, always linked in, and
 * the shared backends (rbd, gluster), each a module of its own
 * (<dir>/rbd.so, <dir>/gluster.so) loaded with dlopen only when the
 * configuration uses it, so that a daemon without Ceph or Gluster never
 * maps their client libraries. A program that links a module's objects
 * itself (the unit tests) has it from the start.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "config.h"

#define REGISTRY_MAX 8

extern const struct backend_ops be_local_ops;
/* weak: set only where the module's objects are linked in */
extern const struct backend_ops be_rbd_ops __attribute__((weak));
extern const struct backend_ops be_gluster_ops __attribute__((weak));

static const struct {
	const char *name;
	const char *symbol;
	const struct backend_ops *linked;
	const char *implied_by; /* a file whose presence configures it */
} modules[] = {
	{ "rbd", "be_rbd_ops", &be_rbd_ops, RBD_DEFAULT_CEPH_CONF },
	{ "gluster", "be_gluster_ops", &be_gluster_ops, NULL },
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

/* Guarded by nothing: filled before the daemon starts a thread. */
static const struct backend_ops *registry[REGISTRY_MAX + 1];
static int nregistered;

static void registry_init(void)
{
	if (nregistered)
		return;
	registry[nregistered++] = &be_local_ops;
	for (size_t i = 0; i < NMODULES; i++)
		if (modules[i].linked)
			registry[nregistered++] = modules[i].linked;
}

const struct backend_ops *backend_lookup(const char *name)
{
	registry_init();
	for (const struct backend_ops *const *b = registry; *b; b++)
		if (strcmp((*b)->name, name) == 0)
			return *b;
	return NULL;
}

int backend_is_module(const char *name)
{
	for (size_t i = 0; i < NMODULES; i++)
		if (strcmp(modules[i].name, name) == 0)
			return 1;
	return 0;
}

/*
 * Where module file name lies: beside the program in backends/ (a build
 * tree: build/ballastd, build/backends/rbd.so), else in ../lib/ballast/
 * from the program's directory (an install: /usr/sbin/ballastd,
 * /usr/lib/ballast/rbd.so). 0, or -ENOENT when neither has it (out is
 * then the install's place).
 */
static int module_path(const char *file, char *out, size_t len)
{
	static const char *const below[] = { "backends", "../lib/ballast" };
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -ENOENT;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(below) / sizeof(below[0]); i++) {
		if ((size_t)snprintf(out, len, "%s/%s/%s", exe, below[i], file) >= len)
			continue;
		if (access(out, R_OK) == 0)
			return 0;
	}
	return -ENOENT; /* out holds the last place looked at */
}

int backend_load(const char *name, struct berr *err)
{
	char file[64], path[PATH_MAX];
	const struct backend_ops *ops;
	void *handle;
	size_t i;

	registry_init();
	if (backend_lookup(name))
		return 0;
	for (i = 0; i < NMODULES && strcmp(modules[i].name, name) != 0; i++)
		;
	if (i == NMODULES)
		return berr_set(err, -ENOENT, "no backend is called \"%.40s\"", name);
	if (nregistered == REGISTRY_MAX)
		return berr_set(err, -ENOSPC, "too many backends");
	snprintf(file, sizeof(file), "%s.so", name);
	if (module_path(file, path, sizeof(path)) < 0)
		return berr_set(err, -ENOENT, "the %s backend is not installed (no %s)", name, path);
	/* RTLD_NOW: a missing client library shows here, not at a request */
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		return berr_set(err, -ENOEXEC, "cannot load the %s backend: %s", name, dlerror());
	ops = dlsym(handle, modules[i].symbol);
	if (!ops || strcmp(ops->name, name) != 0) {
		dlclose(handle);
		return berr_set(err, -ENOEXEC, "%s is not ballast's %s backend", path, name);
	}
	registry[nregistered++] = ops; /* loaded for good: never dlclosed */
	return 0;
}

int backend_load_all(struct berr *err)
{
	int first = 0;

	for (size_t i = 0; i < NMODULES; i++) {
		struct berr one = BERR_INIT;
		int ret = backend_load(modules[i].name, &one);

		if (ret < 0 && !first) {
			first = ret;
			berr_set(err, ret, "%s", one.msg);
		}
	}
	return first;
}

int backend_load_configured(int (*given)(const char *section, void *arg), void *arg, struct berr *err)
{
	for (size_t i = 0; i < NMODULES; i++) {
		int ret;

		if (!given(modules[i].name, arg) &&
		    !(modules[i].implied_by && access(modules[i].implied_by, F_OK) == 0))
			continue;
		ret = backend_load(modules[i].name, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int backend_config_keys(struct ballast_config *cfg)
{
	registry_init();
	for (const struct backend_ops *const *b = registry; *b; b++) {
		int ret = config_add_keys(cfg, (*b)->config_keys);

		if (ret < 0)
			return ret;
	}
	return 0;
}

const struct backend_ops *const *backend_all(void)
{
	registry_init();
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
