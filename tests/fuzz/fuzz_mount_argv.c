/*
 * fuzz_mount_argv.c - libFuzzer target: mount.ballast's command line and
 * its option whitelists, from arbitrary bytes (NUL-separated arguments;
 * the first argument's bytes also feed the mount and mkfs option checks).
 * A refusal must say why; nothing may crash or overflow.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mount_ballast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[MAX_ARGS + 2], why[512], out[1024];
	struct cmdline cl;
	struct arglist al;
	int argc = 1;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[0] = (char *)"mount.ballast";
	for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	memset(&cl, 0, sizeof(cl));
	why[0] = '\0';
	if (parse_cmdline(argc, argv, &cl, why, sizeof(why)) < 0 && !why[0])
		abort();
	for (unsigned fs = FS_EXT4; fs <= FS_XFS; fs <<= 1) {
		why[0] = '\0';
		if (build_mount_options(fs, argv[1], true, out, sizeof(out), why, sizeof(why)) < 0 && !why[0])
			abort();
		memset(&al, 0, sizeof(al));
		why[0] = '\0';
		if (build_mkfs_argv(fs, argv[1], NULL, "/dev/null", &al, why, sizeof(why)) < 0 && !why[0])
			abort();
	}
	free(buf);
	return 0;
}
