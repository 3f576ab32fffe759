/* perms.c - a volume root's owner and mode (see perms.h). */
#include "perms.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "validate.h"

int parse_perms(const json_t *opts, struct vol_perms *p, struct berr *err)
{
	const char *v;
	int ret = 0;

	p->uid = 0;
	p->gid = 0;
	p->mode = VOL_DEFAULT_MODE;
	if ((v = opt_get(opts, "uid")))
		ret = parse_id("uid", v, &p->uid, err);
	if (!ret && (v = opt_get(opts, "gid")))
		ret = parse_id("gid", v, &p->gid, err);
	if (!ret && (v = opt_get(opts, "mode")))
		ret = parse_mode(v, &p->mode, err);
	return ret;
}

int apply_perms(const char *dir, const struct vol_perms *p, struct berr *err)
{
	if (chown(dir, p->uid, p->gid) < 0 || chmod(dir, p->mode) < 0)
		return berr_set(err, -errno, "cannot set owner and mode of %s: %s", dir, strerror(errno));
	return 0;
}
