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
log_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p == '\\')
			fputs("\\\\", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

/*
 * The line is made in memory and written at once: stderr is unbuffered,
 * so writing it piece by piece cost a system call per character (a
 * millisecond per command on the reply path), and one write(2) keeps
 * lines whole when job children log to the same file.
 */
static void
log_vemit(const char *tag, const char *fmt, va_list ap, const char *err)
{
	char stamp[32], *text = NULL, *line = NULL;
	size_t len = 0;
	struct tm tm;
	time_t t = time(NULL);
	FILE *f;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((f = open_memstream(&line, &len)) == NULL)
		f = stderr;	/* no memory: piece by piece, as it can */
	fprintf(f, "%s %s %s: ", stamp, log_name, tag);
	if (vasprintf(&text, fmt, ap) == -1)
		text = NULL;
	log_escaped(f, text != NULL ? text : "(out of memory)");
	free(text);
	if (err != NULL)
		fprintf(f, ": %s", err);
	fputc('\n', f);
	if (f != stderr && fclose(f) == 0)
		fwrite(line, 1, len, stderr);
	free(line);
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
