/*
 * log.c - timestamped log lines on stderr (systemd's journal adds its own
 * metadata, so plain lines are what an operator wants).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static enum log_level	 log_level = LOG_LVL_INFO;
static const char	*log_name = "backupbot";

void
log_init(enum log_level level, const char *progname)
{
	log_level = level;
	if (progname != NULL)
		log_name = progname;
}

static void
log_vemit(const char *tag, const char *fmt, va_list ap, const char *err)
{
	char stamp[32];
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s %s: ", stamp, log_name, tag);
	vfprintf(stderr, fmt, ap);
	if (err != NULL)
		fprintf(stderr, ": %s", err);
	fputc('\n', stderr);
	fflush(stderr);
}

#define LOG_BODY(lvl, tag, err) do {				\
	va_list ap;						\
	if (log_level > (lvl))					\
		return;						\
	va_start(ap, fmt);					\
	log_vemit(tag, fmt, ap, err);				\
	va_end(ap);						\
} while (0)

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_DEBUG, "debug", NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_INFO, "info", NULL);
}

void
log_warn(const char *fmt, ...)
{
	const char *err = strerror(errno);

	LOG_BODY(LOG_LVL_WARN, "warning", err);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, "warning", NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vemit("fatal", fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit("fatal", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
