/*
 * fuzz_catalog.c - libFuzzer target: loading a catalog record (one file
 * of arbitrary bytes in <state>/catalog) at start. A record that does not
 * load must be kept aside and its name refused (held damaged), never
 * dropped silently; nothing may crash or leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char state[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog *cat = NULL;
	char dir[300], file[400];
	struct volume *vol;
	json_t *list;
	int fd;

	if (!state[0]) {
		const char *base = getenv("TMPDIR");

		snprintf(state, sizeof(state), "%s/ballast-fuzz-cat-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(state))
			abort();
	}
	snprintf(dir, sizeof(dir), "%s/catalog", state);
	rm_rf(dir);
	if (mkdir_p(dir, 0700) < 0)
		abort();
	snprintf(file, sizeof(file), "%s/v1.json", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	if (catalog_open(state, &cat, NULL) < 0)
		abort();
	list = catalog_list(cat);
	json_decref(list);
	/* The name is held: loaded as whatever the record says, or damaged. */
	vol = catalog_acquire(cat, "v1", 1);
	if (!vol)
		abort();
	if (vol->state == VOL_NEW)
		abort(); /* the record was dropped without a trace */
	catalog_release(cat, vol);
	catalog_close(cat);
	return 0;
}
