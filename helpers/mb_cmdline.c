/*
 * mb_cmdline.c - mount.ballast's commands (name, options, arguments, the
 * function that runs it) and the parser of its command line. The parser
 * only decides: the reason goes to the caller's why buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mount_ballast.h"

/* --- Commands ------------------------------------------------------------ */

/* The options of map. */
#define MAP_OPTS                                                                                                       \
	(OPT_MAPPER | OPT_POOL | OPT_IMAGE | OPT_ID | OPT_CONF | OPT_KEYRING | OPT_READ_ONLY | OPT_TIMEOUT |           \
	 OPT_MS_MODE)

static const struct command commands[] = {
	{ "mkfs", OPT_FSTYPE | OPT_MKFS_OPTIONS | OPT_LABEL, OPT_FSTYPE, 1,
	  "mkfs --fstype ext4|xfs [--mkfs-options OPTS] [--label L] SOURCE", cmd_mkfs },
	{ "mount", OPT_FSTYPE | OPT_OPTIONS | OPT_LOOP, OPT_FSTYPE, 2,
	  "mount --fstype ext4|xfs|glusterfs [--options OPTS] [--loop] SOURCE TARGET", cmd_mount },
	{ "umount", 0, 0, 1, "umount TARGET", cmd_umount },
	{ "grow", OPT_FSTYPE, OPT_FSTYPE, 1, "grow --fstype ext4|xfs TARGET", cmd_grow },
	{ "status", 0, 0, 1, "status TARGET", cmd_status },
	{ "freeze", OPT_TIMEOUT, 0, 1, "freeze [--timeout S] TARGET", cmd_freeze },
	{ "map", MAP_OPTS, OPT_MAPPER | OPT_POOL | OPT_IMAGE | OPT_ID, 0,
	  "map --mapper krbd|nbd --pool POOL --image IMAGE --id USER [--conf PATH] [--keyring PATH]"
	  " [--read-only] [--ms-mode MODE] [--timeout S]",
	  cmd_map },
	{ "unmap", OPT_MAPPER | OPT_TIMEOUT, OPT_MAPPER, 1, "unmap --mapper krbd|nbd [--timeout S] DEVICE", cmd_unmap },
	{ "mappers", 0, 0, 0, "mappers", cmd_mappers },
};

#define COMMAND_NAMES "mkfs, mount, umount, grow, status, freeze, map, unmap or mappers"

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void print_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  " PROG " [--state-dir DIR] %s\n", commands[i].usage);
}

/* --- The command-line parser --------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
	bool has_value;
} option_names[] = {
	{ "--state-dir", OPT_STATE_DIR, true },
	{ "--fstype", OPT_FSTYPE, true },
	{ "--options", OPT_OPTIONS, true },
	{ "--loop", OPT_LOOP, false },
	{ "--mkfs-options", OPT_MKFS_OPTIONS, true },
	{ "--label", OPT_LABEL, true },
	{ "--mapper", OPT_MAPPER, true },
	{ "--pool", OPT_POOL, true },
	{ "--image", OPT_IMAGE, true },
	{ "--id", OPT_ID, true },
	{ "--conf", OPT_CONF, true },
	{ "--keyring", OPT_KEYRING, true },
	{ "--read-only", OPT_READ_ONLY, false },
	{ "--timeout", OPT_TIMEOUT, true },
	{ "--ms-mode", OPT_MS_MODE, true },
};

#define NOPTIONS (sizeof(option_names) / sizeof(option_names[0]))

/* Store the value of option bit in cl. */
static void set_option(struct cmdline *cl, unsigned bit, const char *value)
{
	switch (bit) {
	case OPT_STATE_DIR:
		cl->state_dir = value;
		break;
	case OPT_FSTYPE:
		cl->fstype = value;
		break;
	case OPT_OPTIONS:
		cl->options = value;
		break;
	case OPT_LOOP:
		cl->loop = true;
		break;
	case OPT_MKFS_OPTIONS:
		cl->mkfs_options = value;
		break;
	case OPT_LABEL:
		cl->label = value;
		break;
	case OPT_MAPPER:
		cl->mapper = value;
		break;
	case OPT_POOL:
		cl->pool = value;
		break;
	case OPT_IMAGE:
		cl->image = value;
		break;
	case OPT_ID:
		cl->id = value;
		break;
	case OPT_CONF:
		cl->conf = value;
		break;
	case OPT_KEYRING:
		cl->keyring = value;
		break;
	case OPT_READ_ONLY:
		cl->read_only = true;
		break;
	case OPT_TIMEOUT:
		cl->timeout = value;
		break;
	case OPT_MS_MODE:
		cl->ms_mode = value;
		break;
	}
}

/*
 * Parse argv[*i] as an option ("--name value" or "--name=value") allowed by
 * allowed, advancing *i past its value. Returns 0 or -EINVAL (why).
 */
static int parse_option(struct cmdline *cl, int argc, char **argv, int *i, unsigned allowed, char *why, size_t wlen)
{
	const char *arg = argv[*i], *eq = strchr(arg, '='), *value = NULL;
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg), k;
	const char *where = cl->cmd ? cl->cmd->name : "mount.ballast";

	for (k = 0; k < NOPTIONS; k++)
		if (strlen(option_names[k].name) == len && strncmp(option_names[k].name, arg, len) == 0)
			break;
	if (k == NOPTIONS || !(option_names[k].bit & allowed))
		return why_set(why, wlen, -EINVAL, "unknown option '%.64s' for %s", arg, where);
	if (cl->given & option_names[k].bit)
		return why_set(why, wlen, -EINVAL, "option %s given twice", option_names[k].name);
	if (option_names[k].has_value) {
		if (eq)
			value = eq + 1;
		else if (*i + 1 < argc)
			value = argv[++*i];
		else
			return why_set(why, wlen, -EINVAL, "option %s needs a value", option_names[k].name);
	} else if (eq) {
		return why_set(why, wlen, -EINVAL, "option %s takes no value", option_names[k].name);
	}
	cl->given |= option_names[k].bit;
	set_option(cl, option_names[k].bit, value);
	return 0;
}

int parse_cmdline(int argc, char **argv, struct cmdline *cl, char *why, size_t len)
{
	bool only_args = false;
	int i, nargs = 0, rc;
	size_t k;

	memset(cl, 0, sizeof(*cl));
	cl->state_dir = DEFAULT_STATE_DIR;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cl->help = true;
			return 0;
		}
		rc = parse_option(cl, argc, argv, &i, OPT_STATE_DIR, why, len);
		if (rc)
			return rc;
	}
	if (i >= argc)
		return why_set(why, len, -EINVAL, "no command given (expected " COMMAND_NAMES ")");
	for (k = 0; k < NCOMMANDS; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			cl->cmd = &commands[k];
	if (!cl->cmd)
		return why_set(why, len, -EINVAL, "unknown command '%.64s' (expected " COMMAND_NAMES ")", argv[i]);

	for (i++; i < argc; i++) {
		if (!only_args && strcmp(argv[i], "--") == 0) {
			only_args = true;
		} else if (!only_args && argv[i][0] == '-' && argv[i][1]) {
			rc = parse_option(cl, argc, argv, &i, cl->cmd->allowed | OPT_STATE_DIR, why, len);
			if (rc)
				return rc;
		} else {
			if (nargs < 2)
				cl->args[nargs] = argv[i];
			nargs++;
		}
	}
	for (k = 0; k < NOPTIONS; k++)
		if ((cl->cmd->required & option_names[k].bit) && !(cl->given & option_names[k].bit))
			return why_set(why, len, -EINVAL, "%s needs %s (usage: %s)", cl->cmd->name,
				       option_names[k].name, cl->cmd->usage);
	if (nargs != cl->cmd->nargs)
		return why_set(why, len, -EINVAL, "%s takes %d argument%s, got %d (usage: %s)", cl->cmd->name,
			       cl->cmd->nargs, cl->cmd->nargs == 1 ? "" : "s", nargs, cl->cmd->usage);
	for (i = 0; i < nargs; i++)
		if (!cl->args[i][0])
			return why_set(why, len, -EINVAL, "%s: empty argument", cl->cmd->name);
	return 0;
}
