/*
 * log.h - logging to stderr, in the OpenBSD daemon style.
 *
 * log_warn appends strerror(errno); log_warnx does not.  fatal/fatalx log
 * and exit(1): use them only at start-up or for broken invariants.
 * Never pass a secret to any of these.
 */
#ifndef BB_LOG_H
#define BB_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN };

void log_init(enum log_level level, const char *progname);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
