/*
 * fuzz_cron.c - libFuzzer target for cron_parse and, on what parses,
 * cron_next in Europe/Berlin around both 2026 DST changes.
 *
 * Checks cron.h's contract: a cause if and only if the parse fails, and
 * then *c untouched; every field has at least one value; a next run is
 * -1 or strictly later, within 9 years, a whole local minute, in an
 * allowed month and on an allowed day, and at an allowed hour and
 * minute unless it is a fixed-time job run at the end of a
 * spring-forward gap; the run after it is later still; TZ is as it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2026-03-28 23:10 UTC and 2026-10-24 22:50 UTC: hours before a change */
static const time_t afters[] = { 1774739400, 1792882200 };
static void
check_run(const struct cron *c, time_t after, time_t t)
{
	struct tm tm, before;
	time_t t1;
	int dom, dow, day;

	if (t == (time_t)-1)
		return;
	if (t <= after || t - after > 9 * 366 * 86400LL)
		abort();
	if (localtime_r(&t, &tm) == NULL || tm.tm_sec != 0)
		abort();
	if (!((c->months >> (tm.tm_mon + 1)) & 1))
		abort();
	dom = (c->mdays >> tm.tm_mday) & 1;
	dow = (c->wdays >> tm.tm_wday) & 1;
	day = (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR)) ? dom && dow :
	    dom || dow;
	if (!day)
		abort();
	if (((c->hours >> tm.tm_hour) & 1) && ((c->minutes >> tm.tm_min) & 1))
		return;
	/* otherwise the clocks must have just jumped forward to t */
	t1 = t - 1;
	if ((c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR)) ||
	    localtime_r(&t1, &before) == NULL ||
	    before.tm_gmtoff >= tm.tm_gmtoff)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cron c, before;
	char *expr, *cause = NULL;
	const char *tz;
	int rc;

	/* the zone the checks read local time in, and cron_next restores */
	setenv("TZ", "Europe/Berlin", 1);
	tzset();

	expr = xstrndup((const char *)data, size);
	memset(&c, 0x5a, sizeof(c));
	before = c;
	rc = cron_parse(expr, &c, &cause);
	free(expr);
	if (rc == -1) {
		if (cause == NULL || *cause == '\0' ||
		    memcmp(&c, &before, sizeof(c)) != 0)
			abort();
		free(cause);
		return 0;
	}
	if (rc != 0 || cause != NULL)
		abort();
	if (c.minutes == 0 || c.hours == 0 || c.mdays == 0 ||
	    c.months == 0 || c.wdays == 0 || (c.minutes >> 60) != 0 ||
	    (c.hours >> 24) != 0 || (c.mdays & 1) || (c.months & 1) ||
	    (c.months >> 13) != 0 || (c.wdays >> 7) != 0)
		abort();

	for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
		time_t t, t2;

		/* explicitly named, and the process's zone (the same) */
		t = cron_next(&c, afters[i], "Europe/Berlin");
		if (cron_next(&c, afters[i], NULL) != t)
			abort();
		check_run(&c, afters[i], t);
		if (t != (time_t)-1) {
			t2 = cron_next(&c, t, "Europe/Berlin");
			check_run(&c, t, t2);
		}
		/* another zone: must not crash, and must put TZ back */
		(void)cron_next(&c, afters[i], "America/New_York");
		tz = getenv("TZ");
		if (tz == NULL || strcmp(tz, "Europe/Berlin") != 0)
			abort();
	}
	return 0;
}
