/* crashpoint.c - fault injection for crash tests (see crashpoint.h). */
#define LOG_TAG "crash"
#include "crashpoint.h"

#ifdef BALLAST_CRASH_POINTS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void crash_point(const char *name)
{
	const char *at = getenv("BALLAST_CRASH_AT");

	if (!at || strcmp(at, name) != 0)
		return;
	log_errx("crash point %s reached: SIGKILL", name);
	kill(getpid(), SIGKILL);
	pause();
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int crashpoint_unused;
#endif
