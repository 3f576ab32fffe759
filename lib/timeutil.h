/* timeutil.h - clocks: monotonic milliseconds and RFC 3339 wall time. */
#ifndef BALLAST_TIMEUTIL_H
#define BALLAST_TIMEUTIL_H

#include <stddef.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds: for deadlines and ages. */
long monotonic_ms(void);

/* CLOCK_MONOTONIC in microseconds: for latencies. */
long monotonic_us(void);

/*
 * The deadline of the request the calling thread serves (CLOCK_MONOTONIC
 * ms; 0: none), set by the daemon for each request below dockerd's own
 * limit for that endpoint. Every bounded step (a helper run, a wait)
 * takes min(its own bound, what is left), so that a chain of steps can
 * never outlast dockerd, which would then give up and never undo it.
 */
void deadline_set(long ms);
long deadline_get(void);

/* cap_s, or the whole seconds left before the deadline when fewer (at
 * least 1 while any time is left); 0 when the deadline has passed. */
int deadline_cap_s(int cap_s);

/* Current time as RFC 3339 UTC ("2026-11-27T10:00:00Z") into buf (at
 * least 21 bytes). */
void rfc3339_now(char *buf, size_t len);

/* t as RFC 3339 UTC into buf (at least 21 bytes). */
void rfc3339_format(time_t t, char *buf, size_t len);

#endif
