/* crashpoint.c - fault injection for crash tests (see crashpoint.h). */
#define LOG_TAG "crash"
#include "crashpoint.h"

#ifdef BALLAST_CRASH_POINTS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* $BALLAST_PAUSE_AT: the thread that reaches that point waits while the
 * file $BALLAST_PAUSE_FILE exists (at most 120 s), and the rest of the
 * daemon goes on: a test looks at what ballastd does meanwhile. */
static void pause_point(const char *name)
{
	const char *at = getenv("BALLAST_PAUSE_AT"), *file = getenv("BALLAST_PAUSE_FILE");

	if (!at || !file || strcmp(at, name) != 0)
		return;
	log_infox("pause point %s reached: waiting while %s exists", name, file);
	for (int i = 0; i < 2400 && access(file, F_OK) == 0; i++)
		usleep(50 * 1000);
	log_infox("pause point %s: going on", name);
}

void crash_point(const char *name)
{
	const char *at = getenv("BALLAST_CRASH_AT");

	pause_point(name);

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
