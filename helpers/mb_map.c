/*
 * mb_map.c - mount.ballast's kernel mappers, krbd and rbd-nbd: map, unmap,
 * and which mappers this host can use.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mount_ballast.h"

/* --- Kernel mappers: krbd and rbd-nbd ------------------------------------ */

/*
 * map gives an RBD image a block device on this host, unmap takes it away,
 * mappers says which mappers this host can use. An image is always mapped
 * holding its exclusive lock for the life of the mapping (krbd -o
 * exclusive, rbd-nbd --exclusive): the lock, not ballastd's bookkeeping,
 * keeps a second host from writing. Pool, image and user names go into argv
 * only, after a whitelist, and the tools get the fixed environment of every
 * tool here, so a caller's CEPH_ARGS or CEPH_CONF never reaches them. The
 * error is the tool's own ("rbd: ..."), as it wrote it.
 */
#define RBD_NAME_CHARS LABEL_CHARS
/* Longest pool or image name (ballast volume names have 128 at most). */
#define RBD_NAME_LEN 128
/* Longest cephx user id (the part after "client."). */
#define RBD_ID_LEN 64
#define MAP_TIMEOUT_DEFAULT 30
#define MAP_TIMEOUT_MAX 3600
/* The FUSE mapper, built with mount.ballast (rbd_fuse.c). */
#define FUSE_MAPPER_BIN "ballast-rbd-map"

static const struct {
	const char *name;	/* as --mapper spells it */
	const char *tool;	/* the program that maps and unmaps */
	const char *err_prefix; /* how its own error lines start */
	const char *dev_prefix; /* its devices: this and a number */
} mappers[] = {
	[MAPPER_KRBD] = { "krbd", "rbd", "rbd: ", "/dev/rbd" },
	[MAPPER_NBD] = { "nbd", "rbd-nbd", "rbd-nbd: ", "/dev/nbd" },
};

/* krbd's ms_mode (messenger v2 against msgr2-only monitors). */
static const char *const ms_modes[] = { "legacy", "crc", "secure", "prefer-crc", "prefer-secure", NULL };

int parse_mapper(const char *s, enum mapper *m, char *why, size_t len)
{
	if (s && strcmp(s, "krbd") == 0)
		*m = MAPPER_KRBD;
	else if (s && strcmp(s, "nbd") == 0)
		*m = MAPPER_NBD;
	else
		return why_set(why, len, -EINVAL, "unknown mapper '%.64s' (expected krbd or nbd)", s ? s : "");
	return 0;
}

/*
 * A name starting with '-' would become an option of the tool; no '/' or
 * '@', which would change what a POOL/IMAGE spec means.
 */
int check_rbd_name(const char *what, const char *v, size_t max, char *why, size_t len)
{
	size_t n = strlen(v);

	if (n == 0 || n > max || v[0] == '-' || strspn(v, RBD_NAME_CHARS) != n || strcmp(v, ".") == 0 ||
	    strcmp(v, "..") == 0)
		return why_set(why, len, -EINVAL,
			       "invalid %s '%.64s' (1 to %zu characters of A-Z a-z 0-9 . _ -, not starting with -)",
			       what, v, max);
	return 0;
}

/* Check the value of a path option (--conf, --keyring): absolute. Pure. */
static int check_option_path(const char *opt, const char *v, char *why, size_t len)
{
	if (v[0] != '/')
		return why_set(why, len, -EINVAL, "%s %.256s is not an absolute path", opt, v);
	if (strlen(v) >= PATH_MAX)
		return why_set(why, len, -ENAMETOOLONG, "%s: path too long", opt);
	return 0;
}

int parse_timeout(const char *s, int *timeout_s, char *why, size_t len)
{
	unsigned long v;

	if (!s) {
		*timeout_s = MAP_TIMEOUT_DEFAULT;
		return 0;
	}
	if (parse_uint(s, &v) || v < 1 || v > MAP_TIMEOUT_MAX)
		return why_set(why, len, -EINVAL, "invalid --timeout '%.64s' (expected whole seconds from 1 to %d)", s,
			       MAP_TIMEOUT_MAX);
	*timeout_s = (int)v;
	return 0;
}

bool is_mapper_device(enum mapper m, const char *dev)
{
	size_t plen = strlen(mappers[m].dev_prefix), n;

	if (strncmp(dev, mappers[m].dev_prefix, plen) != 0)
		return false;
	n = strlen(dev + plen);
	return n >= 1 && n <= 6 && strspn(dev + plen, "0123456789") == n;
}

/* Check --ms-mode (NULL: not given) for mapper m. Pure: 0 or -EINVAL (why). */
static int check_ms_mode(enum mapper m, const char *mode, char *why, size_t len)
{
	const char *const *c;

	if (!mode)
		return 0;
	if (m != MAPPER_KRBD)
		return why_set(why, len, -EINVAL, "--ms-mode is for krbd only (rbd-nbd uses librbd's own messenger)");
	for (c = ms_modes; *c; c++)
		if (strcmp(*c, mode) == 0)
			return 0;
	return why_set(why, len, -EINVAL,
		       "invalid --ms-mode '%.64s' (expected legacy, crc, secure, prefer-crc or prefer-secure)", mode);
}

int check_map_args(const struct cmdline *cl, enum mapper *m, int *timeout_s, char *why, size_t len)
{
	int rc;

	rc = parse_mapper(cl->mapper, m, why, len);
	if (!rc)
		rc = check_rbd_name("pool name", cl->pool, RBD_NAME_LEN, why, len);
	if (!rc)
		rc = check_rbd_name("image name", cl->image, RBD_NAME_LEN, why, len);
	if (!rc)
		rc = check_rbd_name("user id", cl->id, RBD_ID_LEN, why, len);
	if (!rc && cl->conf)
		rc = check_option_path("--conf", cl->conf, why, len);
	if (!rc && cl->keyring)
		rc = check_option_path("--keyring", cl->keyring, why, len);
	if (!rc)
		rc = parse_timeout(cl->timeout, timeout_s, why, len);
	if (!rc)
		rc = check_ms_mode(*m, cl->ms_mode, why, len);
	return rc;
}

/*
 * krbd:
 *   rbd device map --device-type krbd -o exclusive[,ro][,ms_mode=M]
 *       --id USER [--conf C] [--keyring K] -- POOL/IMAGE
 * nbd (rbd-nbd takes no "--"; the names cannot start with '-'):
 *   rbd-nbd map --exclusive [--read-only] --id USER [--conf C] [--keyring K]
 *       POOL/IMAGE
 */
int build_map_argv(const struct cmdline *cl, enum mapper m, const char *spec, struct arglist *al, char *why, size_t len)
{
	static const char *const krbd[] = { "rbd", "device", "map", "--device-type", "krbd", "-o", NULL };
	static const char *const nbd[] = { "rbd-nbd", "map", "--exclusive", NULL };
	const char *const *a;
	char kopts[64];

	for (a = m == MAPPER_KRBD ? krbd : nbd; *a; a++)
		arglist_add(al, *a);
	if (m == MAPPER_KRBD) {
		snprintf(kopts, sizeof(kopts), "exclusive%s%s%s", cl->read_only ? ",ro" : "",
			 cl->ms_mode ? ",ms_mode=" : "", cl->ms_mode ? cl->ms_mode : "");
		arglist_add(al, kopts);
	} else if (cl->read_only) {
		arglist_add(al, "--read-only");
	}
	arglist_add(al, "--id");
	arglist_add(al, cl->id);
	if (cl->conf) {
		arglist_add(al, "--conf");
		arglist_add(al, cl->conf);
	}
	if (cl->keyring) {
		arglist_add(al, "--keyring");
		arglist_add(al, cl->keyring);
	}
	if (m == MAPPER_KRBD)
		arglist_add(al, "--");
	arglist_add(al, spec);
	return arglist_check(al, why, len);
}

/*
 * Unmapping needs no cluster, hence no Ceph config: an empty one keeps the
 * tools' "can't open ceph.conf" log lines (written by another thread,
 * interleaved with their own error) out of the message.
 *   rbd --conf /dev/null device unmap --device-type krbd -- /dev/rbdN
 *   rbd-nbd --conf /dev/null unmap /dev/nbdN
 */
int build_unmap_argv(enum mapper m, const char *dev, struct arglist *al, char *why, size_t len)
{
	static const char *const krbd[] = { "rbd",	     "--conf", "/dev/null", "device", "unmap",
					    "--device-type", "krbd",   "--",	    NULL };
	static const char *const nbd[] = { "rbd-nbd", "--conf", "/dev/null", "unmap", NULL };
	const char *const *a;

	for (a = m == MAPPER_KRBD ? krbd : nbd; *a; a++)
		arglist_add(al, *a);
	arglist_add(al, dev);
	return arglist_check(al, why, len);
}

char *mapped_device(enum mapper m, char *out)
{
	char *line, *save;

	for (line = strtok_r(out, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		line += strspn(line, " \t");
		line[strcspn(line, " \t")] = '\0';
		if (is_mapper_device(m, line))
			return line;
	}
	return NULL;
}

/*
 * Find the program of mapper m, or record that it is not installed (desc
 * says what could not be done). Returns 0 or -ENOENT.
 */
static int find_mapper_tool(enum mapper m, const char *desc)
{
	char path[PATH_MAX];

	if (lookup_tool(mappers[m].tool, path, sizeof(path)))
		return 0;
	return fail(ENOENT, EXIT_FAILED, "%s: %s is not installed (not found in %s)", desc, mappers[m].tool,
		    CHILD_PATH);
}

/*
 * map: map POOL/IMAGE with krbd or rbd-nbd, holding its exclusive lock
 * (build_map_argv), and print the device on stdout. Killed after
 * --timeout seconds.
 */
int cmd_map(const struct cmdline *cl)
{
	char spec[2 * RBD_NAME_LEN + 2], desc[sizeof(spec) + 64], out[512], why[MB_MSG_MAX];
	struct tool_opts o = { .out = out, .outlen = sizeof(out) };
	struct arglist al = { .argc = 0 };
	const char *dev;
	enum mapper m;
	int rc;

	rc = check_map_args(cl, &m, &o.timeout_s, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	snprintf(spec, sizeof(spec), "%s/%s", cl->pool, cl->image);
	snprintf(desc, sizeof(desc), "cannot map %s with %s", spec, mappers[m].name);
	rc = find_mapper_tool(m, desc);
	if (rc)
		return rc;
	rc = build_map_argv(cl, m, spec, &al, why, sizeof(why));
	if (rc)
		return refuse(rc, why);

	o.err_prefix = mappers[m].err_prefix;
	rc = run_tool_ex(&al, desc, &o);
	if (rc)
		return rc;
	/* The tool prints the device it mapped, alone on a line. */
	dev = mapped_device(m, out);
	if (!dev)
		return fail(EIO, EXIT_FAILED, "%s: %s succeeded but printed no %sN device", desc, mappers[m].tool,
			    mappers[m].dev_prefix);
	printf("%s\n", dev);
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail(errno ? errno : EIO, EXIT_FAILED, "mapped %s on %s but cannot write its name: %s", spec,
			    dev, strerror(errno ? errno : EIO));
	return 0;
}

/*
 * unmap: unmap DEVICE, which must be the mapper's own kind of device
 * (build_unmap_argv).
 */
int cmd_unmap(const struct cmdline *cl)
{
	const char *dev = cl->args[0];
	struct tool_opts o = { .timeout_s = 0 };
	struct arglist al = { .argc = 0 };
	char desc[PATH_MAX + 64], why[MB_MSG_MAX];
	enum mapper m;
	int rc;

	rc = parse_mapper(cl->mapper, &m, why, sizeof(why));
	if (!rc)
		rc = parse_timeout(cl->timeout, &o.timeout_s, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	if (!is_mapper_device(m, dev))
		return fail(EINVAL, EXIT_REFUSED, "refusing to unmap %.256s: not a %s device (%sN)", dev,
			    mappers[m].name, mappers[m].dev_prefix);
	snprintf(desc, sizeof(desc), "cannot unmap %s with %s", dev, mappers[m].name);
	rc = find_mapper_tool(m, desc);
	if (rc)
		return rc;
	rc = build_unmap_argv(m, dev, &al, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	o.err_prefix = mappers[m].err_prefix;
	return run_tool_ex(&al, desc, &o);
}

/*
 * Whether the running kernel has module name as a loadable module (listed
 * in its modules.dep). Built-in modules show in /sys instead.
 */
static bool have_kernel_module(const char *name)
{
	char path[PATH_MAX], line[4096], want[64], *colon, *base;
	struct utsname uts;
	bool found = false;
	size_t wlen;
	FILE *f;

	if (uname(&uts) != 0)
		return false;
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", uts.release);
	f = fopen(path, "re");
	if (!f)
		return false;
	wlen = (size_t)snprintf(want, sizeof(want), "%s.ko", name);
	while (!found && fgets(line, sizeof(line), f)) {
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		base = strrchr(line, '/');
		base = base ? base + 1 : line;
		found = strncmp(base, want, wlen) == 0 && (!base[wlen] || base[wlen] == '.');
	}
	fclose(f);
	return found;
}

/*
 * Whether the kernel can serve a mapper: sysfs shows the driver (sys), or
 * its module can be loaded (the tool runs modprobe). why says which, or
 * what is missing.
 */
static bool kernel_supports(const char *sys, const char *module, char *why, size_t len)
{
	char path[PATH_MAX];
	struct utsname uts;

	if (access(sys, F_OK) == 0) {
		snprintf(why, len, "%s", sys);
		return true;
	}
	if (have_kernel_module(module)) {
		if (lookup_tool("modprobe", path, sizeof(path))) {
			snprintf(why, len, "%s module not loaded yet; loaded at map", module);
			return true;
		}
		snprintf(why, len, "%s missing; %s module present but modprobe not installed", sys, module);
		return false;
	}
	if (uname(&uts) != 0)
		snprintf(uts.release, sizeof(uts.release), "unknown");
	snprintf(why, len, "%s missing, no %s module for kernel %s", sys, module, uts.release);
	return false;
}

/* Whether krbd or rbd-nbd (m) can map here; why says why (not). */
static bool mapper_supported(enum mapper m, char *why, size_t len)
{
	char path[PATH_MAX];
	bool ok;

	if (m == MAPPER_KRBD)
		ok = kernel_supports("/sys/bus/rbd", "rbd", why, len);
	else
		ok = kernel_supports("/sys/block/nbd0", "nbd", why, len);
	if (ok && !lookup_tool(mappers[m].tool, path, sizeof(path))) {
		snprintf(why, len, "%s not installed", mappers[m].tool);
		ok = false;
	}
	return ok;
}

/*
 * Whether the FUSE mapper can map here: /dev/fuse, and ballast-rbd-map
 * next to mount.ballast or in CHILD_PATH (as ballastd looks for it).
 */
static bool fuse_supported(char *why, size_t len)
{
	char path[PATH_MAX], *slash;
	struct stat st;
	ssize_t n;

	if (stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
		snprintf(why, len, "/dev/fuse missing");
		return false;
	}
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = '\0';
		slash = strrchr(path, '/');
		if (slash && (size_t)(slash + 1 - path) + sizeof(FUSE_MAPPER_BIN) <= sizeof(path)) {
			strcpy(slash + 1, FUSE_MAPPER_BIN);
			if (access(path, X_OK) == 0) {
				snprintf(why, len, "/dev/fuse, %s", path);
				return true;
			}
		}
	}
	if (lookup_tool(FUSE_MAPPER_BIN, path, sizeof(path))) {
		snprintf(why, len, "/dev/fuse, %s", path);
		return true;
	}
	snprintf(why, len, FUSE_MAPPER_BIN " not found next to " PROG " nor in %s", CHILD_PATH);
	return false;
}

/*
 * mappers: one line per mapper, best first: "NAME yes|no (REASON)".
 */
int cmd_mappers(const struct cmdline *cl)
{
	char why[PATH_MAX + 64];
	bool ok;

	(void)cl;
	ok = mapper_supported(MAPPER_KRBD, why, sizeof(why));
	printf("krbd %s (%s)\n", ok ? "yes" : "no", why);
	ok = mapper_supported(MAPPER_NBD, why, sizeof(why));
	printf("nbd %s (%s)\n", ok ? "yes" : "no", why);
	ok = fuse_supported(why, sizeof(why));
	printf("fuse %s (%s)\n", ok ? "yes" : "no", why);
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail(errno ? errno : EIO, EXIT_FAILED, "cannot write the mappers: %s",
			    strerror(errno ? errno : EIO));
	return 0;
}
