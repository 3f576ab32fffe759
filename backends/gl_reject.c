/* gl_reject.c - edit a Gluster volume's auth.reject value (see gl_reject.h). */
#include "gl_reject.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int gl_reject_parse(const char *line, char *val, size_t len)
{
	const char *p = line;
	size_t n;

	if (strncmp(p, "auth.reject", 11) != 0 || (p[11] != ' ' && p[11] != '\t'))
		return -EINVAL;
	p += 11;
	p += strspn(p, " \t");
	/* the value is the first word: it never holds a space */
	n = strcspn(p, " \t\r\n");
	if ((n == 6 && strncmp(p, "(null)", 6) == 0) || (n == 4 && strncmp(p, "none", 4) == 0))
		n = 0;
	if (n >= len)
		return -E2BIG;
	memcpy(val, p, n);
	val[n] = '\0';
	return 0;
}

/* Is addr in the list of path's entry of auth.reject value val? */
int gl_reject_has(const char *val, const char *path, const char *addr)
{
	size_t pl = strlen(path), al = strlen(addr);

	for (const char *e = val; e && *e; e = strchr(e, ',') ? strchr(e, ',') + 1 : NULL) {
		const char *l, *end;

		if (strncmp(e, path, pl) != 0 || e[pl] != '(')
			continue;
		end = strchr(e, ')');
		for (l = e + pl + 1; l && end && l < end; l = strchr(l, '|') ? strchr(l, '|') + 1 : NULL) {
			if (strncmp(l, addr, al) == 0 && (l[al] == '|' || l[al] == ')'))
				return 1;
		}
	}
	return 0;
}

/* val with addr added to (add) or taken from path's entry, into out. */
int gl_reject_edit(const char *val, const char *path, const char *addr, int add, char *out, size_t len)
{
	size_t pl = strlen(path), al = strlen(addr), off = 0;
	int found = 0;

	out[0] = '\0';
	for (const char *e = val; e && *e;) {
		const char *next = strchr(e, ',');
		size_t elen = next ? (size_t)(next - e) : strlen(e);
		char ent[1024], list[1024] = "";
		size_t loff = 0;

		if (elen >= sizeof(ent))
			return -E2BIG;
		memcpy(ent, e, elen);
		ent[elen] = '\0';
		e = next ? next + 1 : NULL;
		if (strncmp(ent, path, pl) == 0 && ent[pl] == '(' && ent[elen - 1] == ')') {
			char *tok, *save = NULL;

			found = 1;
			ent[elen - 1] = '\0';
			for (tok = strtok_r(ent + pl + 1, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
				if (strcmp(tok, addr) == 0)
					continue;
				loff += (size_t)snprintf(list + loff, sizeof(list) - loff, "%s%s", loff ? "|" : "",
							 tok);
			}
			if (add)
				loff += (size_t)snprintf(list + loff, sizeof(list) - loff, "%s%.*s", loff ? "|" : "",
							 (int)al, addr);
			if (loff >= sizeof(list))
				return -E2BIG;
			if (!list[0])
				continue; /* nobody left to refuse there */
			off += (size_t)snprintf(out + off, len > off ? len - off : 0, "%s%s(%s)", off ? "," : "", path,
						list);
		} else {
			off += (size_t)snprintf(out + off, len > off ? len - off : 0, "%s%s", off ? "," : "", ent);
		}
	}
	if (add && !found)
		off += (size_t)snprintf(out + off, len > off ? len - off : 0, "%s%s(%s)", off ? "," : "", path, addr);
	return off < len ? 0 : -E2BIG;
}
