/* errors.c - the user-facing error buffer (see errors.h). */
#include "errors.h"

#include <stdio.h>
#include <string.h>

int berr_set(struct berr *err, int code, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	if (code > 0)
		code = -code;
	if (!err || err->msg[0])
		return code;
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* cut to fit: say so (a list cut mid-word is not read as whole) */
	if (n >= (int)sizeof(err->msg))
		memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
	/* One line of plain ASCII: it travels in JSON and logs, and a
	 * truncated multi-byte character would make it invalid UTF-8. */
	for (p = err->msg; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n' || c == '\r' || c == '\t')
			*p = ' ';
		else if (c < 0x20 || c >= 0x7f)
			*p = '?';
	}
	return code;
}

int berr_propagate(struct berr *err, int code, const struct berr *from)
{
	if (from && from->msg[0])
		return berr_set(err, code, "%s", from->msg);
	return berr_set(err, code, "%s", strerror(code < 0 ? -code : code));
}

void berr_clear(struct berr *err)
{
	if (err)
		err->msg[0] = '\0';
}
