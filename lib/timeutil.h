/* timeutil.h - clocks: monotonic milliseconds and RFC 3339 wall time. */
#ifndef BALLAST_TIMEUTIL_H
#define BALLAST_TIMEUTIL_H

#include <stddef.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds: for deadlines and ages. */
long monotonic_ms(void);

/* CLOCK_MONOTONIC in microseconds: for latencies. */
long monotonic_us(void);

/* Current time as RFC 3339 UTC ("2026-11-27T10:00:00Z") into buf (at
 * least 21 bytes). */
void rfc3339_now(char *buf, size_t len);

/* t as RFC 3339 UTC into buf (at least 21 bytes). */
void rfc3339_format(time_t t, char *buf, size_t len);

#endif
