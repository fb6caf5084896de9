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

/*
 * Text as one log line: control characters (a newline in a command, an
 * escape sequence in a room id or a tool's stderr) are written escaped,
 * \n, \r, \t, \\ or \xNN, so nothing from outside can start a line of
 * its own or rewrite the terminal.
 */
static void
log_escaped(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		if (*p == '\n')
			fputs("\\n", stderr);
		else if (*p == '\r')
			fputs("\\r", stderr);
		else if (*p == '\t')
			fputs("\\t", stderr);
		else if (*p == '\\')
			fputs("\\\\", stderr);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(stderr, "\\x%02x", *p);
		else
			fputc(*p, stderr);
	}
}

static void
log_vemit(const char *tag, const char *fmt, va_list ap, const char *err)
{
	char stamp[32], *text = NULL;
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s %s: ", stamp, log_name, tag);
	if (vasprintf(&text, fmt, ap) == -1)
		text = NULL;
	log_escaped(text != NULL ? text : "(out of memory)");
	free(text);
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
