/*
 * mb_opts.c - mount.ballast's whitelists: which mkfs and mount options a
 * user may pass through, and the mkfs argv and mount option string built
 * from them. Everything here only decides: no I/O, the reason goes to the
 * caller's why buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mount_ballast.h"

/* --- Whitelists ---------------------------------------------------------- */

/*
 * Everything the user can pass through to mkfs or to the kernel is matched
 * against these tables, by exact name; values are checked by kind. What is
 * not listed is refused, so a new option is a conscious addition here.
 *
 * mkfs options (--mkfs-options): tokens separated by spaces or commas. A
 * token starting with '-' is a flag; the tokens after a flag that do not
 * start with '-' are its value, joined with commas (so "-O a,b", "-O a b"
 * and "-m crc=1,reflink=0" all work; no value starts with '-').
 *   ext4: -m N (reserved %, 0-50)        -i N (bytes per inode, 1024-64Mi)
 *         -I N (inode size, 2^n, 128-4096) -b N (block size, 2^n, 1024-65536)
 *         -N N (inode count, 1-2^32-1)
 *         -E lazy_itable_init=0|1,lazy_journal_init=0|1,discard,nodiscard
 *         -O [^]feature,...  (feature: [a-z0-9_], up to 32 characters)
 *   xfs:  -b size=N (2^n, 512-65536)       -i size=N (2^n, 256-2048)
 *         -m crc|reflink|finobt|rmapbt|bigtime|inobtcount=0|1,...
 *         -K (do not discard)
 *
 * mount options (--options): a comma list of
 *   both: ro rw noatime relatime nodiratime strictatime lazytime sync async
 *         dirsync noexec exec discard nodiscard usrquota grpquota prjquota
 *         noquota
 *   ext4: barrier nobarrier data=ordered|journal|writeback
 *         errors=remount-ro|continue commit=N (0-86400)
 *   xfs:  inode64 nouuid largeio logbsize=16k..256k (or the byte count)
 * nosuid,nodev are always added; suid and dev can never be given.
 */

/* The characters of an ext4 feature name. */
#define FEATURE_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"

/* Every character a whitelisted mkfs option or value can contain. */
#define MKFS_TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=.:^-"

enum val_kind {
	V_NONE,	    /* a bare flag or option: no value */
	V_UINT,	    /* decimal number in [min, max] */
	V_POW2,	    /* power of two in [min, max] */
	V_BOOL,	    /* 0 or 1 */
	V_CHOICE,   /* one of choices */
	V_FEATURES, /* comma list of [^]name, name of [a-z0-9_] */
	V_SUBOPTS,  /* comma list of name[=value], checked against subopts */
};

struct rule {
	const char *name;
	unsigned fs;
	enum val_kind kind;
	unsigned long min, max;
	const char *const *choices; /* V_CHOICE, NULL-terminated */
	const struct rule *subopts; /* V_SUBOPTS, ended by a NULL name */
};

#define R_FLAG(n, f)                                                                                                   \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_NONE                                                                 \
	}
#define R_UINT(n, f, lo, hi)                                                                                           \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_UINT, .min = (lo), .max = (hi)                                       \
	}
#define R_POW2(n, f, lo, hi)                                                                                           \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_POW2, .min = (lo), .max = (hi)                                       \
	}
#define R_BOOL(n, f)                                                                                                   \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_BOOL                                                                 \
	}
#define R_CHOICE(n, f, c)                                                                                              \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_CHOICE, .choices = (c)                                               \
	}
#define R_FEATURES(n, f)                                                                                               \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_FEATURES                                                             \
	}
#define R_SUB(n, f, s)                                                                                                 \
	{                                                                                                              \
		.name = (n), .fs = (f), .kind = V_SUBOPTS, .subopts = (s)                                              \
	}
#define R_END                                                                                                          \
	{                                                                                                              \
		.name = NULL                                                                                           \
	}

static const struct rule ext4_extended_opts[] = {
	R_BOOL("lazy_itable_init", FS_EXT4),
	R_BOOL("lazy_journal_init", FS_EXT4),
	R_FLAG("discard", FS_EXT4),
	R_FLAG("nodiscard", FS_EXT4),
	R_END,
};

static const struct rule xfs_block_opts[] = {
	R_POW2("size", FS_XFS, 512, 65536),
	R_END,
};

static const struct rule xfs_inode_opts[] = {
	R_POW2("size", FS_XFS, 256, 2048),
	R_END,
};

static const struct rule xfs_meta_opts[] = {
	R_BOOL("crc", FS_XFS),
	R_BOOL("reflink", FS_XFS),
	R_BOOL("finobt", FS_XFS),
	R_BOOL("rmapbt", FS_XFS),
	R_BOOL("bigtime", FS_XFS),
	R_BOOL("inobtcount", FS_XFS),
	R_END,
};

static const struct rule mkfs_rules[] = {
	R_UINT("-m", FS_EXT4, 0, 50),
	R_UINT("-i", FS_EXT4, 1024, 67108864),
	R_POW2("-I", FS_EXT4, 128, 4096),
	R_POW2("-b", FS_EXT4, 1024, 65536),
	R_UINT("-N", FS_EXT4, 1, 4294967295UL),
	R_SUB("-E", FS_EXT4, ext4_extended_opts),
	R_FEATURES("-O", FS_EXT4),
	R_SUB("-b", FS_XFS, xfs_block_opts),
	R_SUB("-i", FS_XFS, xfs_inode_opts),
	R_SUB("-m", FS_XFS, xfs_meta_opts),
	R_FLAG("-K", FS_XFS),
	R_END,
};

static const char *const ext4_data_modes[] = { "ordered", "journal", "writeback", NULL };
/* errors=panic is left out: a volume must not be able to crash the host. */
static const char *const ext4_error_modes[] = { "remount-ro", "continue", NULL };
static const char *const xfs_logbsizes[] = { "16k",   "32k",   "64k",	 "128k",   "256k", "16384",
					     "32768", "65536", "131072", "262144", NULL };

static const struct rule mount_rules[] = {
	R_FLAG("ro", FS_ANY),
	R_FLAG("rw", FS_ANY),
	R_FLAG("noatime", FS_ANY),
	R_FLAG("relatime", FS_ANY),
	R_FLAG("nodiratime", FS_ANY),
	R_FLAG("strictatime", FS_ANY),
	R_FLAG("lazytime", FS_ANY),
	R_FLAG("sync", FS_ANY),
	R_FLAG("async", FS_ANY),
	R_FLAG("dirsync", FS_ANY),
	R_FLAG("noexec", FS_ANY),
	R_FLAG("exec", FS_ANY),
	R_FLAG("discard", FS_ANY),
	R_FLAG("nodiscard", FS_ANY),
	R_FLAG("usrquota", FS_ANY),
	R_FLAG("grpquota", FS_ANY),
	R_FLAG("prjquota", FS_ANY),
	R_FLAG("noquota", FS_ANY),
	R_FLAG("barrier", FS_EXT4),
	R_FLAG("nobarrier", FS_EXT4),
	R_FLAG("noload", FS_EXT4),
	R_FLAG("norecovery", FS_XFS),
	R_CHOICE("data", FS_EXT4, ext4_data_modes),
	R_CHOICE("errors", FS_EXT4, ext4_error_modes),
	R_UINT("commit", FS_EXT4, 0, 86400),
	R_FLAG("inode64", FS_XFS),
	R_FLAG("nouuid", FS_XFS),
	R_FLAG("largeio", FS_XFS),
	R_CHOICE("logbsize", FS_XFS, xfs_logbsizes),
	R_END,
};

const char *fs_name(unsigned fs)
{
	return fs == FS_EXT4 ? "ext4" : "xfs";
}

int parse_fstype(const char *s, unsigned *fs, char *why, size_t len)
{
	if (s && strcmp(s, "ext4") == 0)
		*fs = FS_EXT4;
	else if (s && strcmp(s, "xfs") == 0)
		*fs = FS_XFS;
	else
		return why_set(why, len, -EINVAL, "unsupported filesystem type '%.64s' (expected ext4 or xfs)",
			       s ? s : "");
	return 0;
}

/* The rule called name that applies to fs, or NULL. */
static const struct rule *find_rule(const struct rule *rules, unsigned fs, const char *name, size_t len)
{
	for (; rules->name; rules++)
		if ((rules->fs & fs) && strlen(rules->name) == len && strncmp(rules->name, name, len) == 0)
			return rules;
	return NULL;
}

/* Write the choices of rule r as "a|b|c" into buf. */
static void list_choices(const struct rule *r, char *buf, size_t len)
{
	const char *const *c;
	size_t used = 0;

	buf[0] = '\0';
	for (c = r->choices; *c; c++)
		appendf(buf, len, &used, "%s%s", c == r->choices ? "" : "|", *c);
}

/*
 * Write "name, name=0|1, ..." for the rules that apply to fs into buf, for
 * an error that tells the user what they may write instead; sep goes
 * between a name and its value ("=" for mount options, " " for flags).
 */
static void list_rules(const struct rule *rules, unsigned fs, const char *sep, char *buf, size_t len)
{
	char choices[256];
	size_t used = 0;

	buf[0] = '\0';
	for (; rules->name; rules++) {
		if (!(rules->fs & fs))
			continue;
		appendf(buf, len, &used, "%s%s", used ? ", " : "", rules->name);
		switch (rules->kind) {
		case V_UINT:
		case V_POW2:
			appendf(buf, len, &used, "%sN", sep);
			break;
		case V_BOOL:
			appendf(buf, len, &used, "%s0|1", sep);
			break;
		case V_FEATURES:
			appendf(buf, len, &used, "%sFEATURES", sep);
			break;
		case V_SUBOPTS:
			appendf(buf, len, &used, "%sSUBOPTIONS", sep);
			break;
		case V_CHOICE:
			list_choices(rules, choices, sizeof(choices));
			appendf(buf, len, &used, "%s%s", sep, choices);
			break;
		case V_NONE:
			break;
		}
	}
}

int parse_uint(const char *s, unsigned long *out)
{
	size_t len = strlen(s);

	if (len == 0 || len > 10 || strspn(s, "0123456789") != len)
		return -EINVAL;
	*out = strtoul(s, NULL, 10);
	return 0;
}

static int check_value(const struct rule *r, const char *value, char *why, size_t len);

/*
 * Check value, a comma list, against rule r of kind V_FEATURES or
 * V_SUBOPTS. Returns 0, or -EINVAL with what was expected written to why.
 */
static int check_list(const struct rule *r, const char *value, char *why, size_t len)
{
	char buf[OPTS_MAX + 1], list[512], *item, *save, *eq;
	const struct rule *sub;
	size_t n;

	if (strlen(value) >= sizeof(buf))
		return why_set(why, len, -EINVAL, "value too long");
	strcpy(buf, value);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (r->kind == V_FEATURES) {
			n = strlen(item + (item[0] == '^'));
			if (n == 0 || n > 32 || strspn(item + (item[0] == '^'), FEATURE_CHARS) != n)
				return why_set(why, len, -EINVAL,
					       "'%.64s' is not a feature name ([^]name, name of a-z 0-9 _)", item);
			continue;
		}
		eq = strchr(item, '=');
		sub = find_rule(r->subopts, r->fs, item, eq ? (size_t)(eq - item) : strlen(item));
		if (!sub) {
			list_rules(r->subopts, r->fs, "=", list, sizeof(list));
			return why_set(why, len, -EINVAL, "unknown sub-option '%.64s' (allowed: %s)", item, list);
		}
		if (check_value(sub, eq ? eq + 1 : NULL, list, sizeof(list)))
			return why_set(why, len, -EINVAL, "sub-option '%.64s': %s", item, list);
	}
	return 0;
}

/*
 * Check value (NULL: none was given) against rule r. Returns 0, or -EINVAL
 * with what was expected written to why.
 */
static int check_value(const struct rule *r, const char *value, char *why, size_t len)
{
	const char *const *c;
	char list[512];
	unsigned long v;

	if (r->kind == V_NONE)
		return value ? why_set(why, len, -EINVAL, "takes no value") : 0;
	if (!value || !*value)
		return why_set(why, len, -EINVAL, "needs a value");
	switch (r->kind) {
	case V_UINT:
	case V_POW2:
		if (parse_uint(value, &v) || v < r->min || v > r->max || (r->kind == V_POW2 && (v & (v - 1))))
			return why_set(why, len, -EINVAL, "expected %s from %lu to %lu",
				       r->kind == V_POW2 ? "a power of two" : "a whole number", r->min, r->max);
		return 0;
	case V_BOOL:
		if (strcmp(value, "0") && strcmp(value, "1"))
			return why_set(why, len, -EINVAL, "expected 0 or 1");
		return 0;
	case V_CHOICE:
		for (c = r->choices; *c; c++)
			if (strcmp(*c, value) == 0)
				return 0;
		list_choices(r, list, sizeof(list));
		return why_set(why, len, -EINVAL, "expected one of %s", list);
	case V_FEATURES:
	case V_SUBOPTS:
		return check_list(r, value, why, len);
	default:
		return why_set(why, len, -EINVAL, "unknown rule");
	}
}

/*
 * Split the --mkfs-options string opts into tokens (at spaces, tabs,
 * newlines and commas) in buf, pointers in tok. Returns the number of
 * tokens, or -EINVAL (why) for a token with a character no whitelisted
 * option has.
 */
static int mkfs_tokens(const char *opts, char *buf, char **tok, char *why, size_t len)
{
	char *save, *t;
	int ntok = 0;

	strcpy(buf, opts);
	for (t = strtok_r(buf, " \t\n,", &save); t; t = strtok_r(NULL, " \t\n,", &save)) {
		if (strspn(t, MKFS_TOKEN_CHARS) != strlen(t))
			return why_set(
				why, len, -EINVAL,
				"mkfs option '%.64s' is not allowed (only letters, digits and _ = . : ^ - may appear)",
				t);
		tok[ntok++] = t;
	}
	return ntok;
}

/*
 * Check the --mkfs-options string opts (grammar above) for fs and append
 * the resulting arguments to al. Returns 0, or -EINVAL / -E2BIG with the
 * reason, naming the token, in why.
 */
static int add_mkfs_options(unsigned fs, const char *opts, struct arglist *al, char *why, size_t len)
{
	char buf[OPTS_MAX + 1], value[OPTS_MAX + 1], detail[512], list[256];
	char *tok[OPTS_MAX / 2 + 1];
	const struct rule *r;
	int ntok, i, n;
	size_t used;

	if (!opts || !*opts)
		return 0;
	if (strlen(opts) > OPTS_MAX)
		return why_set(why, len, -EINVAL, "mkfs options are too long (at most %d characters)", OPTS_MAX);
	ntok = mkfs_tokens(opts, buf, tok, why, len);
	if (ntok < 0)
		return ntok;
	for (i = 0; i < ntok; i++) {
		if (tok[i][0] != '-')
			return why_set(why, len, -EINVAL,
				       "unexpected mkfs option '%.64s' (values follow their flag, e.g. -m 1)", tok[i]);
		r = find_rule(mkfs_rules, fs, tok[i], strlen(tok[i]));
		if (!r) {
			list_rules(mkfs_rules, fs, " ", list, sizeof(list));
			return why_set(why, len, -EINVAL, "mkfs option '%.64s' is not allowed for %s (allowed: %s)",
				       tok[i], fs_name(fs), list);
		}
		/* Gather the value: the following tokens up to the next flag. */
		used = 0;
		value[0] = '\0';
		while (i + 1 < ntok && tok[i + 1][0] != '-') {
			i++;
			/* Cannot overflow: the joined value is no longer than opts. */
			n = snprintf(value + used, sizeof(value) - used, "%s%s", used ? "," : "", tok[i]);
			if (n < 0 || (size_t)n >= sizeof(value) - used)
				return why_set(why, len, -EINVAL, "mkfs options are too long");
			used += (size_t)n;
		}
		if (check_value(r, used ? value : NULL, detail, sizeof(detail)))
			return why_set(why, len, -EINVAL, "mkfs option '%s%s%.64s' for %s: %s", r->name,
				       used ? " " : "", value, fs_name(fs), detail);
		arglist_add(al, r->name);
		if (used)
			arglist_add(al, value);
		if (arglist_check(al, why, len))
			return -E2BIG;
	}
	return 0;
}

/*
 * Check a filesystem label: 1 to 16 (ext4) or 12 (xfs) characters of
 * [A-Za-z0-9._-], not starting with '-'. Longer labels would be truncated
 * or refused by mkfs with a less clear message. 0 or -EINVAL (why).
 */
static int check_label(unsigned fs, const char *label, char *why, size_t len)
{
	size_t max = fs == FS_EXT4 ? 16 : 12, n = strlen(label);

	if (n == 0 || n > max || label[0] == '-' || strspn(label, LABEL_CHARS) != n)
		return why_set(
			why, len, -EINVAL,
			"invalid %s label '%.64s' (1 to %zu characters of A-Z a-z 0-9 . _ -, not starting with -)",
			fs_name(fs), label, max);
	return 0;
}

int build_mkfs_argv(unsigned fs, const char *opts, const char *label, const char *source, struct arglist *al, char *why,
		    size_t len)
{
	int rc;

	if (fs == FS_EXT4) {
		arglist_add(al, "mkfs.ext4");
		arglist_add(al, "-q");
		arglist_add(al, "-F");
	} else {
		arglist_add(al, "mkfs.xfs");
		arglist_add(al, "-q");
	}
	rc = arglist_check(al, why, len);
	if (!rc)
		rc = add_mkfs_options(fs, opts, al, why, len);
	if (!rc && label) {
		rc = check_label(fs, label, why, len);
		if (!rc) {
			arglist_add(al, "-L");
			arglist_add(al, label);
		}
	}
	if (!rc) {
		arglist_add(al, source);
		rc = arglist_check(al, why, len);
	}
	return rc;
}

/*
 * Check one item of --options (name or name=value) for fs, into why.
 * Returns 0 or -EINVAL.
 */
static int check_mount_option(unsigned fs, const char *item, char *why, size_t len)
{
	char detail[512], list[640];
	const char *eq = strchr(item, '=');
	size_t nlen = eq ? (size_t)(eq - item) : strlen(item);
	const struct rule *r = find_rule(mount_rules, fs, item, nlen);

	if (!r && find_rule(mount_rules, FS_ANY, item, nlen))
		return why_set(why, len, -EINVAL, "mount option '%.64s' is not valid for %s", item, fs_name(fs));
	if (!r) {
		list_rules(mount_rules, fs, "=", list, sizeof(list));
		return why_set(why, len, -EINVAL, "mount option '%.64s' is not allowed (allowed: %s)", item, list);
	}
	if (check_value(r, eq ? eq + 1 : NULL, detail, sizeof(detail)))
		return why_set(why, len, -EINVAL, "mount option '%.64s': %s", item, detail);
	return 0;
}

int build_mount_options(unsigned fs, const char *opts, bool loop, char *out, size_t len, char *why, size_t whylen)
{
	char buf[OPTS_MAX + 1], *item, *rest;
	size_t used = 0;
	int n, rc;

	out[0] = '\0';
	if (opts && strlen(opts) > OPTS_MAX)
		return why_set(why, whylen, -EINVAL, "mount options are too long (at most %d characters)", OPTS_MAX);
	if (opts && *opts) {
		strcpy(buf, opts);
		rest = buf;
		while ((item = strsep(&rest, ",")) != NULL) {
			if (!*item)
				return why_set(why, whylen, -EINVAL, "empty mount option in '%.128s'", opts);
			rc = check_mount_option(fs, item, why, whylen);
			if (rc)
				return rc;
			n = snprintf(out + used, len - used, "%s,", item);
			if (n < 0 || (size_t)n >= len - used)
				return why_set(why, whylen, -EINVAL, "mount options are too long");
			used += (size_t)n;
		}
	}
	/* A local image file is allocated whole; ext4 zeroing its inode
	 * tables after the mount (lazy init: tables added by a grow) would
	 * punch holes in it through the loop device. rbd-fuse's loop mounts
	 * get the option too: there the image is thin, and lazy init would
	 * only write zeroes, so it changes nothing that matters. */
	n = snprintf(out + used, len - used, "%s%snosuid,nodev", loop ? "loop," : "",
		     loop && fs == FS_EXT4 ? "noinit_itable," : "");
	if (n < 0 || (size_t)n >= len - used)
		return why_set(why, whylen, -EINVAL, "mount options are too long");
	return 0;
}
