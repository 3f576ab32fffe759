/*
 * log.h - level-checked logging to stderr (journald picks it up).
 *
 * Each file defines LOG_TAG before including this header. The *x variants
 * log the message alone; the plain variants append strerror(errno), like
 * warn(3) and warnx(3). Never pass a secret (cephx key) to these.
 */
#ifndef BALLAST_LOG_H
#define BALLAST_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_threshold;

/* Parse "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_emit(enum log_level lvl, const char *tag, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#ifndef LOG_TAG
#define LOG_TAG "ballast"
#endif

#define LOG_AT(lvl, e, ...)                                                                                            \
	do {                                                                                                           \
		if ((lvl) <= log_threshold)                                                                            \
			log_emit((lvl), LOG_TAG, (e), __VA_ARGS__);                                                    \
	} while (0)

#define log_errx(...) LOG_AT(LOG_LVL_ERROR, 0, __VA_ARGS__)
#define log_err(...) LOG_AT(LOG_LVL_ERROR, 1, __VA_ARGS__)
#define log_warnx(...) LOG_AT(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, 1, __VA_ARGS__)
#define log_infox(...) LOG_AT(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debugx(...) LOG_AT(LOG_LVL_DEBUG, 0, __VA_ARGS__)

#endif
