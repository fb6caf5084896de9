/*
 * human.c - sizes, durations and ages as people read them (human.h), for
 * chat, the command line and the job's own messages alike.
 */
#include <stdio.h>

#include "human.h"
#include "util.h"

void
human_size(char *out, size_t n, double b)
{
	static const char *unit[] = { "B", "KB", "MB", "GB", "TB" };
	size_t u = 0;

	while (b >= 1000 && u < nitems(unit) - 1) {
		b /= 1000;
		u++;
	}
	snprintf(out, n, u == 0 ? "%.0f %s" : "%.1f %s", b, unit[u]);
}

void
human_duration(char *out, size_t n, double s)
{
	long v = (long)(s + 0.5);

	if (s < 10)
		snprintf(out, n, "%.1fs", s);
	else if (v < 3600)
		snprintf(out, n, "%ldm %02lds", v / 60, v % 60);
	else
		snprintf(out, n, "%ldh %02ldm", v / 3600, (v % 3600) / 60);
}

void
human_age(char *out, size_t n, double s)
{
	if (s < 120)
		snprintf(out, n, "%.0fs", s);
	else if (s < 7200)
		snprintf(out, n, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(out, n, "%.0fh", s / 3600);
	else
		snprintf(out, n, "%.0fd", s / 86400);
}
