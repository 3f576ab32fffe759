/*
 * crashpoint.h - named fault-injection points for crash tests.
 *
 * Compiled in only when BALLAST_CRASH_POINTS is defined (make CRASHPOINTS=1,
 * used by tests/integration/crash_points.sh); otherwise CRASH_POINT is
 * nothing. With them compiled in, ballastd kills itself with SIGKILL on
 * reaching the point named by $BALLAST_CRASH_AT, as `kill -9` at that
 * moment would. With $BALLAST_PAUSE_AT naming the point instead, the
 * thread that reaches it waits while the file $BALLAST_PAUSE_FILE exists.
 */
#ifndef BALLAST_CRASHPOINT_H
#define BALLAST_CRASHPOINT_H

#ifdef BALLAST_CRASH_POINTS
void crash_point(const char *name);
#define CRASH_POINT(name) crash_point(name)
#else
#define CRASH_POINT(name)                                                                                              \
	do {                                                                                                           \
	} while (0)
#endif

#endif
