/* timeutil.c - clocks (see timeutil.h). */
#include "timeutil.h"

long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static __thread long request_deadline_ms;

void deadline_set(long ms)
{
	request_deadline_ms = ms;
}

long deadline_get(void)
{
	return request_deadline_ms;
}

int deadline_cap_s(int cap_s)
{
	long left;

	if (!request_deadline_ms)
		return cap_s;
	left = request_deadline_ms - monotonic_ms();
	if (left <= 0)
		return 0;
	if (left < 1000)
		return 1;
	return left / 1000 < cap_s ? (int)(left / 1000) : cap_s;
}

long monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000L;
}

void rfc3339_format(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void rfc3339_now(char *buf, size_t len)
{
	rfc3339_format(time(NULL), buf, len);
}
