/*
 * mb_map.c - mount.ballast's kernel mappers, krbd and rbd-nbd: map, unmap,
 * and which mappers this host can use.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mount_ballast.h"
#include "timeutil.h"

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
/* udev's control socket: there while a udev daemon serves this host. */
#define UDEV_CONTROL "/run/udev/control"
/* How long a mapped device's node may take to appear (and an unmapped
 * one to leave the kernel), in seconds. */
#define DEVICE_WAIT_S 10

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
 * krbd (noudev where no udev runs: rbd would wait for its events forever):
 *   rbd device map --device-type krbd -o exclusive[,ro][,ms_mode=M][,noudev]
 *       --id USER [--conf C] [--keyring K] -- POOL/IMAGE
 * nbd (rbd-nbd takes no "--"; the names cannot start with '-'; it does not
 * wait for udev):
 *   rbd-nbd map --exclusive [--read-only] --id USER [--conf C] [--keyring K]
 *       POOL/IMAGE
 */
int build_map_argv(const struct cmdline *cl, enum mapper m, const char *spec, bool noudev, struct arglist *al,
		   char *why, size_t len)
{
	static const char *const krbd[] = { "rbd", "device", "map", "--device-type", "krbd", "-o", NULL };
	static const char *const nbd[] = { "rbd-nbd", "map", "--exclusive", NULL };
	const char *const *a;
	char kopts[64];

	for (a = m == MAPPER_KRBD ? krbd : nbd; *a; a++)
		arglist_add(al, *a);
	if (m == MAPPER_KRBD) {
		snprintf(kopts, sizeof(kopts), "exclusive%s%s%s%s", cl->read_only ? ",ro" : "",
			 cl->ms_mode ? ",ms_mode=" : "", cl->ms_mode ? cl->ms_mode : "", noudev ? ",noudev" : "");
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
 * interleaved with their own error) out of the message. what is the
 * device, or POOL/IMAGE (both tools take either).
 *   rbd --conf /dev/null device unmap --device-type krbd [-o noudev] -- WHAT
 *   rbd-nbd --conf /dev/null unmap WHAT
 */
int build_unmap_argv(enum mapper m, const char *what, bool noudev, struct arglist *al, char *why, size_t len)
{
	static const char *const krbd[] = { "rbd",   "--conf",	      "/dev/null", "device",
					    "unmap", "--device-type", "krbd",	   NULL };
	static const char *const nbd[] = { "rbd-nbd", "--conf", "/dev/null", "unmap", NULL };
	const char *const *a;

	for (a = m == MAPPER_KRBD ? krbd : nbd; *a; a++)
		arglist_add(al, *a);
	if (m == MAPPER_KRBD && noudev) {
		arglist_add(al, "-o");
		arglist_add(al, "noudev");
	}
	if (m == MAPPER_KRBD)
		arglist_add(al, "--");
	arglist_add(al, what);
	return arglist_check(al, why, len);
}

int device_sysfs_path(enum mapper m, const char *dev, const char *attr, char *buf, size_t len)
{
	if (!is_mapper_device(m, dev))
		return -EINVAL;
	snprintf(buf, len, "/sys/block/%s%s%s", dev + strlen("/dev/"), attr[0] ? "/" : "", attr);
	return 0;
}

int parse_devnum(const char *s, dev_t *devno)
{
	size_t n = strcspn(s, "\n");
	unsigned long maj, min;
	char buf[32], *colon;

	if (n >= sizeof(buf) || (s[n] && s[n + 1]))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	colon = strchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (parse_uint(buf, &maj) || parse_uint(colon + 1, &min) || maj > 0xfff || min > 0xfffff)
		return -EINVAL;
	*devno = makedev(maj, min);
	return 0;
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

/* --- Where no udev runs -------------------------------------------------- */

/*
 * Whether a udev daemon serves this host: its control socket is there.
 * Where none runs (a container, a minimal guest), rbd is told not to wait
 * for udev's events (noudev), and the device node is waited for here.
 */
static bool udev_running(void)
{
	struct stat st;

	return stat(UDEV_CONTROL, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Whether dev is a block device node of the kernel's device (sysfs dev). */
static bool device_node_ready(enum mapper m, const char *dev)
{
	char path[PATH_MAX], line[32] = "";
	struct stat st;
	dev_t want;
	FILE *f;

	if (device_sysfs_path(m, dev, "dev", path, sizeof(path)) < 0 || !(f = fopen(path, "re")))
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	return parse_devnum(line, &want) == 0 && stat(dev, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == want;
}

/* Whether the kernel has let go of dev: krbd's device is gone, an nbd
 * device has no server (its pid attribute goes with the connection). */
static bool device_released(enum mapper m, const char *dev)
{
	char path[PATH_MAX];

	if (device_sysfs_path(m, dev, m == MAPPER_KRBD ? "" : "pid", path, sizeof(path)) < 0)
		return true;
	return access(path, F_OK) != 0 && errno == ENOENT;
}

/* Poll until done(m, dev), DEVICE_WAIT_S at most; whether it happened. */
static bool wait_device(bool (*done)(enum mapper, const char *), enum mapper m, const char *dev)
{
	long deadline = monotonic_ms() + DEVICE_WAIT_S * 1000L;

	while (!done(m, dev)) {
		if (monotonic_ms() >= deadline)
			return false;
		usleep(50 * 1000);
	}
	return true;
}

/*
 * Unmap what (a device or POOL/IMAGE) after a failure already recorded:
 * what goes wrong here is logged by the tool only, never recorded.
 */
static void unmap_after_failure(enum mapper m, const char *what, bool noudev, int timeout_s)
{
	struct tool_opts o = { .timeout_s = timeout_s, .err_prefix = mappers[m].err_prefix };
	struct arglist al = { .argc = 0 };
	char why[MB_MSG_MAX];

	if (build_unmap_argv(m, what, noudev, &al, why, sizeof(why)) == 0)
		run_tool_ex(&al, "cannot unmap again", &o);
}

/*
 * map: map POOL/IMAGE with krbd or rbd-nbd, holding its exclusive lock
 * (build_map_argv), wait for its device node (DEVICE_WAIT_S), and print
 * the device on stdout. The tool is killed after --timeout seconds.
 */
int cmd_map(const struct cmdline *cl)
{
	char spec[2 * RBD_NAME_LEN + 2], desc[sizeof(spec) + 64], out[512], why[MB_MSG_MAX];
	struct tool_opts o = { .out = out, .outlen = sizeof(out) };
	struct arglist al = { .argc = 0 };
	bool noudev = !udev_running();
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
	rc = build_map_argv(cl, m, spec, noudev, &al, why, sizeof(why));
	if (rc)
		return refuse(rc, why);

	o.err_prefix = mappers[m].err_prefix;
	rc = run_tool_ex(&al, desc, &o);
	if (rc)
		return rc;
	/* The tool prints the device it mapped, alone on a line. */
	dev = mapped_device(m, out);
	if (!dev) {
		rc = fail(EIO, EXIT_FAILED, "%s: %s succeeded but printed no %sN device; unmapping it", desc,
			  mappers[m].tool, mappers[m].dev_prefix);
		unmap_after_failure(m, spec, noudev, o.timeout_s);
		return rc;
	}
	if (!wait_device(device_node_ready, m, dev)) {
		rc = fail(ETIMEDOUT, EXIT_FAILED,
			  "mapped %s on %s, but no block device node %s appeared within %d s (%s); unmapping it", spec,
			  dev, dev, DEVICE_WAIT_S, noudev ? "no udev runs here" : "udev runs here");
		unmap_after_failure(m, spec, noudev, o.timeout_s);
		return rc;
	}
	printf("%s\n", dev);
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail(errno ? errno : EIO, EXIT_FAILED, "mapped %s on %s but cannot write its name: %s", spec,
			    dev, strerror(errno ? errno : EIO));
	return 0;
}

/*
 * unmap: unmap DEVICE, which must be the mapper's own kind of device
 * (build_unmap_argv), and wait (DEVICE_WAIT_S) until the kernel has let
 * go of it.
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
	rc = build_unmap_argv(m, dev, !udev_running(), &al, why, sizeof(why));
	if (rc)
		return refuse(rc, why);
	o.err_prefix = mappers[m].err_prefix;
	rc = run_tool_ex(&al, desc, &o);
	if (rc == 0 && !wait_device(device_released, m, dev))
		rc = fail(ETIMEDOUT, EXIT_FAILED, "%s: %s exited, but the kernel still had %s %d s later", desc,
			  mappers[m].tool, dev, DEVICE_WAIT_S);
	return rc;
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
