/*
 * fuzz_config.c - libFuzzer target: ballastd's config file parser with
 * every backend's keys (types, ranges, choices), from arbitrary bytes.
 * Any outcome but a crash, a leak or undefined behaviour is fine; an
 * accepted file must read back every key it names.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	char path[64];
	int fd = memfd_create("ballast.conf", 0);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (backend_config_keys(&cfg) < 0)
		abort();
	if (config_load(&cfg, path, 1, &err) == 0) {
		unsigned long n;

		config_finish(&cfg);
		/* typed keys that loaded must read back in range */
		if (config_get_uint(&cfg, "ballast", "helper_timeout", &n, NULL) < 0 || n < 1 || n > 3600)
			abort();
	} else if (!err.msg[0]) {
		abort(); /* a refusal always says why */
	}
	config_free(&cfg);
	close(fd);
	return 0;
}
