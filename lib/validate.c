/* validate.c - request value checks (see validate.h). */
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int validate_name(const char *name, struct berr *err)
{
	size_t len;

	if (!name || !*name)
		return berr_set(err, -EINVAL, "volume name is empty");
	len = strlen(name);
	if (len > VOLUME_NAME_MAX)
		return berr_set(err, -EINVAL, "volume name is %zu characters long; at most %d are allowed", len,
				VOLUME_NAME_MAX);
	if (!isalnum((unsigned char)name[0]) || !isascii((unsigned char)name[0]))
		return berr_set(err, -EINVAL, "invalid volume name \"%.*s\": it must start with a letter or digit", 64,
				name);
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(isascii(c) && (isalnum(c) || c == '_' || c == '.' || c == '-')))
			return berr_set(
				err, -EINVAL,
				"invalid volume name \"%.*s\": only letters, digits, '_', '.' and '-' are allowed", 64,
				name);
	}
	return 0;
}

int validate_mount_id(const char *id, struct berr *err)
{
	size_t len;

	if (!id || !*id)
		return berr_set(err, -EINVAL, "mount ID is missing or empty");
	len = strlen(id);
	if (len > MOUNT_ID_MAX)
		return berr_set(err, -EINVAL, "mount ID is %zu characters long; at most %d are allowed", len,
				MOUNT_ID_MAX);
	for (size_t i = 0; i < len; i++)
		if (!isascii((unsigned char)id[i]) || !isgraph((unsigned char)id[i]))
			return berr_set(err, -EINVAL, "mount ID holds a character that is not printable ASCII");
	return 0;
}

int parse_size(const char *s, uint64_t *out, struct berr *err)
{
	static const char units[] = "KMGTP";
	uint64_t v = 0, mult = 1;
	const char *p = s;
	const char *u;

	if (!s || !*s)
		return berr_set(err, -EINVAL, "size is empty");
	if (!isdigit((unsigned char)*p))
		goto bad;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			goto too_big;
		v = v * 10 + d;
	}
	if (*p) {
		u = strchr(units, toupper((unsigned char)*p));
		if (!u)
			goto bad;
		for (long i = 0; i <= u - units; i++)
			mult *= 1024;
		p++;
		if (strcasecmp(p, "") != 0 && strcasecmp(p, "B") != 0 && strcasecmp(p, "iB") != 0)
			goto bad;
	}
	if (v == 0)
		return berr_set(err, -EINVAL, "size \"%s\" is zero", s);
	if (v > UINT64_MAX / mult)
		goto too_big;
	*out = v * mult;
	return 0;
too_big:
	return berr_set(err, -ERANGE, "size \"%.40s\" is too large", s);
bad:
	return berr_set(err, -EINVAL,
			"invalid size \"%.40s\": use bytes or a whole number with K, M, G, T or P (e.g. 512M, 10G)", s);
}

int parse_id(const char *what, const char *s, uint32_t *out, struct berr *err)
{
	unsigned long v = 0;

	if (!s || !*s)
		goto bad;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p) || p - s >= 10)
			goto bad;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v >= 1UL << 31)
		goto bad;
	*out = (uint32_t)v;
	return 0;
bad:
	return berr_set(err, -EINVAL, "invalid %s \"%.40s\": expected a whole number from 0 to 2147483647", what,
			s ? s : "");
}

int parse_mode(const char *s, mode_t *out, struct berr *err)
{
	unsigned v = 0;

	if (!s || !*s || strlen(s) > 5)
		goto bad;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			goto bad;
		v = v * 8 + (unsigned)(*p - '0');
	}
	if (v > 07777)
		goto bad;
	*out = (mode_t)v;
	return 0;
bad:
	return berr_set(err, -EINVAL, "invalid mode \"%.40s\": expected octal permissions such as 0755", s ? s : "");
}

int validate_opt_keys(const json_t *opts, const char *backend, const char *const *valid, struct berr *err)
{
	const char *key;
	json_t *val;

	if (!json_is_object(opts))
		return berr_set(err, -EINVAL, "Opts must be an object of strings");
	json_object_foreach ((json_t *)opts, key, val) {
		int known = 0;

		for (const char *const *v = valid; *v; v++)
			if (strcmp(*v, key) == 0)
				known = 1;
		if (!known) {
			char list[160] = "";
			size_t off = 0;

			for (const char *const *v = valid; *v && off < sizeof(list); v++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", v == valid ? "" : ", ",
							*v);
			return berr_set(err, -EINVAL, "unknown option \"%.40s\" for backend %s; valid options: %s", key,
					backend, list);
		}
		if (!json_is_string(val))
			return berr_set(err, -EINVAL, "option \"%s\" must be a string", key);
	}
	return 0;
}

const char *const takeover_choices[] = { "after-lease", "never", NULL };

int check_choice(const char *section, const char *what, const char *v, const char *const *choices, struct berr *err)
{
	char alts[256];
	size_t off = 0, n = 0;

	for (size_t i = 0; choices[i]; i++) {
		if (strcmp(v, choices[i]) == 0)
			return 0;
		n++;
	}
	alts[0] = '\0';
	for (size_t i = 0; i < n && off < sizeof(alts); i++)
		off += (size_t)snprintf(alts + off, sizeof(alts) - off, "%s%s",
					i == 0	     ? ""
					: i + 1 == n ? " or "
						     : ", ",
					choices[i]);
	if (section)
		return berr_set(err, -EINVAL, "[%s] %s = %s: use %s", section, what, v, alts);
	return berr_set(err, -EINVAL, "invalid %s \"%.40s\": use %s", what, v, alts);
}

const char *opt_get(const json_t *opts, const char *key)
{
	return json_string_value(json_object_get(opts, key));
}
