/*
 * test_cron.c - cron expressions: what parses and what does not (with
 * the exact causes), and when they fire.  Expected times are written
 * out as UTC dates worked out from a calendar and the zones' published
 * DST dates (`date -d`), not computed with the code under test; one test
 * also compares against a naive minute-by-minute scan in UTC.
 *
 * 2026 DST: Europe/Berlin springs forward Sun 03-29 at 01:00 UTC
 * (02:00 CET -> 03:00 CEST) and falls back Sun 10-25 at 01:00 UTC
 * (03:00 CEST -> 02:00 CET).  America/New_York springs forward Sun
 * 03-08 at 07:00 UTC (02:00 EST -> 03:00 EDT) and falls back Sun 11-01
 * at 06:00 UTC (02:00 EDT -> 01:00 EST).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "util.h"
#include "testutil.h"

#define BERLIN	"Europe/Berlin"
#define NYC	"America/New_York"

/* A UTC time from its parts. */
static time_t
utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return timegm(&tm);
}

static const char *
fmt_utc(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "-1");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

static struct cron
parse_ok(const char *expr)
{
	struct cron c;
	char *cause = NULL;

	if (cron_parse(expr, &c, &cause) == -1)
		fail_msg("\"%s\" did not parse: %s", expr, cause);
	assert_null(cause);
	return c;
}

/* cron_next of expr after `after` must be `want`; returns the result. */
static time_t
next_is(const char *expr, const char *tz, time_t after, time_t want)
{
	struct cron c = parse_ok(expr);
	time_t got = cron_next(&c, after, tz);
	char a[40], b[40], w[40];

	if (got != want)
		fail_msg("\"%s\" in %s after %s: got %s, want %s", expr,
		    tz ? tz : "local", fmt_utc(after, a, sizeof(a)),
		    fmt_utc(got, b, sizeof(b)), fmt_utc(want, w, sizeof(w)));
	return got;
}

/* Following runs from `after`: each must be the next in want[]. */
static void
runs_are(const char *expr, const char *tz, time_t after,
    const time_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		after = next_is(expr, tz, after, want[i]);
}

static uint64_t
bits(const int *v, size_t n)
{
	uint64_t b = 0;

	for (size_t i = 0; i < n; i++)
		b |= 1ULL << v[i];
	return b;
}
#define BITS(...) bits((const int[]){ __VA_ARGS__ }, \
    sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

static uint64_t
range_bits(int lo, int hi, int step)
{
	uint64_t b = 0;

	for (int v = lo; v <= hi; v += step)
		b |= 1ULL << v;
	return b;
}

/* ---- parsing ------------------------------------------------------- */

static void
test_parse_fields(void **state)
{
	struct cron c;

	(void)state;
	c = parse_ok("*/15 * * * *");
	assert_true(c.minutes == BITS(0, 15, 30, 45));
	assert_true(c.hours == range_bits(0, 23, 1));
	assert_true(c.mdays == range_bits(1, 31, 1));
	assert_true(c.months == range_bits(1, 12, 1));
	assert_true(c.wdays == range_bits(0, 6, 1));
	assert_int_equal(c.flags, CRON_MIN_STAR | CRON_HOUR_STAR |
	    CRON_DOM_STAR | CRON_DOW_STAR);

	c = parse_ok("5-59/20 3,4-6 1,15 * *");
	assert_true(c.minutes == BITS(5, 25, 45));
	assert_true(c.hours == BITS(3, 4, 5, 6));
	assert_true(c.mdays == BITS(1, 15));
	assert_int_equal(c.flags, CRON_DOW_STAR);

	c = parse_ok("30/10 0/6 10/10 2/5 1/2");
	assert_true(c.minutes == BITS(30, 40, 50));
	assert_true(c.hours == BITS(0, 6, 12, 18));
	assert_true(c.mdays == BITS(10, 20, 30));
	assert_true(c.months == BITS(2, 7, 12));
	assert_true(c.wdays == BITS(1, 3, 5, 0));	/* 1-7/2: 7 is Sun */
	assert_int_equal(c.flags, 0);

	c = parse_ok("0 0 * jan,JUL Sun");
	assert_true(c.months == BITS(1, 7));
	assert_true(c.wdays == BITS(0));

	c = parse_ok("0 0 * mar-may mon-fri");
	assert_true(c.months == BITS(3, 4, 5));
	assert_true(c.wdays == BITS(1, 2, 3, 4, 5));

	/* 7 is Sunday, as is 0 */
	c = parse_ok("0 0 * * 7");
	assert_true(c.wdays == BITS(0));
	c = parse_ok("0 0 * * 5-7");
	assert_true(c.wdays == BITS(0, 5, 6));
	c = parse_ok("0 0 * * */2");
	assert_true(c.wdays == BITS(0, 2, 4, 6));
	c = parse_ok("0 0 * * 7/1");			/* found by the fuzzer */
	assert_true(c.wdays == BITS(0));
	c = parse_ok("0 0 * * 6/1");
	assert_true(c.wdays == BITS(0, 6));
	c = parse_ok("0 0 * * */7");
	assert_true(c.wdays == BITS(0));

	c = parse_ok("0 0 1-31/2 * *");
	assert_true(c.mdays == range_bits(1, 31, 2));
	c = parse_ok("*/60 */24 * * *");
	assert_true(c.minutes == BITS(0));
	assert_true(c.hours == BITS(0));

	/* white space around and between fields */
	c = parse_ok("  \t0\t\t12  *  * 1-5 \n");
	assert_true(c.minutes == BITS(0) && c.hours == BITS(12));
	assert_true(c.wdays == BITS(1, 2, 3, 4, 5));
}

static void
test_parse_macros(void **state)
{
	static const struct {
		const char *macro, *same;
	} t[] = {
		{ "@hourly",	"0 * * * *" },
		{ "@daily",	"0 0 * * *" },
		{ "@midnight",	"0 0 * * *" },
		{ "@weekly",	"0 0 * * 0" },
		{ "@monthly",	"0 0 1 * *" },
		{ "@yearly",	"0 0 1 1 *" },
		{ "@annually",	"0 0 1 1 *" },
		{ " @Daily ",	"0 0 * * *" },
	};

	(void)state;
	for (size_t i = 0; i < nitems(t); i++) {
		struct cron a = parse_ok(t[i].macro), b = parse_ok(t[i].same);

		if (memcmp(&a, &b, sizeof(a)) != 0)
			fail_msg("%s differs from %s", t[i].macro, t[i].same);
	}
}

static void
test_parse_bad(void **state)
{
	static const struct {
		const char *expr, *cause;
	} t[] = {
		{ "",			"empty cron expression" },
		{ " \t\n",		"empty cron expression" },
		{ "* * * *",		"expected 5 fields (minute hour "
					"day-of-month month day-of-week), "
					"got 4" },
		{ "* * * * * *",	"got 6" },
		{ "60 * * * *",		"minute: 60 is out of range 0-59" },
		{ "0 24 * * *",		"hour: 24 is out of range 0-23" },
		{ "0 0 0 * *",		"day of month: 0 is out of range "
					"1-31" },
		{ "0 0 32 * *",		"day of month: 32 is out of range" },
		{ "0 0 * 0 *",		"month: 0 is out of range 1-12" },
		{ "0 0 * 13 *",		"month: 13 is out of range 1-12" },
		{ "0 0 * * 8",		"day of week: 8 is out of range 0-7" },
		{ "99999999999999999999999 * * * *",
					"minute: 99999999999999999999999 is "
					"out of range 0-59" },
		{ "*/0 * * * *",	"minute: the step must be at least 1 "
					"in \"*/0\"" },
		{ "0 1-5/0 * * *",	"hour: the step must be at least 1" },
		{ "*/61 * * * *",	"minute: the step in \"*/61\" is out "
					"of range 1-60" },
		{ "0 0 * * */8",	"day of week: the step in \"*/8\" is "
					"out of range 1-7" },
		{ "*/ * * * *",		"minute: the step is missing in "
					"\"*/\"" },
		{ "*/x * * * *",	"minute: the step is not a number" },
		{ "1/2/3 * * * *",	"minute: the step is not a number in "
					"\"1/2/3\"" },
		{ "5-1 * * * *",	"minute: reversed range (write the "
					"smaller value first): \"5-1\"" },
		{ "0 0 * dec-jan *",	"month: reversed range" },
		{ "0 0 * * sat-sun",	"day of week: reversed range" },
		{ "a * * * *",		"minute: not a number: \"a\"" },
		{ "5x * * * *",		"minute: not a number: \"5x\"" },
		{ "jan 0 * * *",	"minute: not a number: \"jan\"" },
		{ "0 0 * foo *",	"month: unknown month (use 1-12 or "
					"jan-dec): \"foo\"" },
		{ "0 0 * january *",	"month: unknown month" },
		{ "0 0 * * funday",	"day of week: unknown day (use 0-7 or "
					"sun-sat): \"funday\"" },
		{ "1,,2 * * * *",	"minute: empty list item in \"1,,2\"" },
		{ "1, * * * *",		"minute: empty list item" },
		{ ",1 * * * *",		"minute: empty list item" },
		{ "- * * * *",		"minute: a value is missing in \"-\"" },
		{ "1- * * * *",		"minute: a value is missing" },
		{ "-1 * * * *",		"minute: a value is missing" },
		{ "/5 * * * *",		"minute: a value is missing" },
		{ "1-2-3 * * * *",	"minute: not a number: \"2-3\"" },
		{ "** * * * *",		"minute: not a number: \"**\"" },
		{ "0 0 * * mon-",	"day of week: a value is missing" },
		{ "0 0 * * 1\x01",	"day of week: not a number: \"1?\"" },
		{ "@reboot",		"@reboot is not supported" },
		{ "@daily x",		"unknown macro \"@daily x\"" },
		{ "@fortnightly",	"unknown macro \"@fortnightly\" (use "
					"@hourly, @daily, @weekly, @monthly "
					"or @yearly)" },
		{ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx * * * *",
					"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
					"xxxxx...\"" },
	};

	(void)state;
	for (size_t i = 0; i < nitems(t); i++) {
		struct cron c, before;
		char *cause = NULL;

		memset(&c, 0xa5, sizeof(c));
		before = c;
		if (cron_parse(t[i].expr, &c, &cause) != -1)
			fail_msg("\"%s\" parsed", t[i].expr);
		assert_non_null(cause);
		if (strstr(cause, t[i].cause) == NULL)
			fail_msg("\"%s\": cause \"%s\" lacks \"%s\"",
			    t[i].expr, cause, t[i].cause);
		assert_memory_equal(&c, &before, sizeof(c));
		free(cause);
	}
}

/* ---- next run, UTC ------------------------------------------------- */

static void
test_next_every_15_minutes(void **state)
{
	const time_t want[] = {
		utc(2026, 2, 1, 0, 0), utc(2026, 2, 1, 0, 15),
		utc(2026, 2, 1, 0, 30), utc(2026, 2, 1, 0, 45),
		utc(2026, 2, 1, 1, 0),
	};

	(void)state;
	runs_are("*/15 * * * *", "UTC", utc(2026, 1, 31, 23, 50) + 30,
	    want, nitems(want));
	/* strictly after: on the minute itself gives the next one */
	next_is("*/15 * * * *", "UTC", utc(2026, 1, 1, 10, 15),
	    utc(2026, 1, 1, 10, 30));
	next_is("*/15 * * * *", "UTC", utc(2026, 1, 1, 10, 15) - 1,
	    utc(2026, 1, 1, 10, 15));
	next_is("* * * * *", "UTC", utc(2026, 1, 1, 10, 0) + 59,
	    utc(2026, 1, 1, 10, 1));
}

static void
test_next_hourly_daily(void **state)
{
	const time_t daily[] = {
		utc(2026, 2, 1, 0, 0), utc(2026, 2, 2, 0, 0),
	};

	(void)state;
	next_is("@hourly", "UTC", utc(2026, 5, 5, 10, 0),
	    utc(2026, 5, 5, 11, 0));
	next_is("@hourly", "UTC", utc(2026, 12, 31, 23, 1),
	    utc(2027, 1, 1, 0, 0));
	runs_are("@daily", "UTC", utc(2026, 1, 31, 12, 0), daily,
	    nitems(daily));
	next_is("@daily", "UTC", utc(2026, 2, 28, 0, 0),
	    utc(2026, 3, 1, 0, 0));
	next_is("@daily", "UTC", utc(2028, 2, 28, 0, 0),
	    utc(2028, 2, 29, 0, 0));
	next_is("@daily", "UTC", utc(2026, 12, 31, 0, 0),
	    utc(2027, 1, 1, 0, 0));
	next_is("@weekly", "UTC", utc(2026, 3, 6, 0, 0),	/* Fri */
	    utc(2026, 3, 8, 0, 0));
	next_is("@monthly", "UTC", utc(2026, 1, 31, 0, 0),
	    utc(2026, 2, 1, 0, 0));
	next_is("@yearly", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2027, 1, 1, 0, 0));
}

static void
test_next_31st_skips_short_months(void **state)
{
	const time_t want[] = {
		utc(2026, 3, 31, 3, 0), utc(2026, 5, 31, 3, 0),
		utc(2026, 7, 31, 3, 0), utc(2026, 8, 31, 3, 0),
		utc(2026, 10, 31, 3, 0), utc(2026, 12, 31, 3, 0),
		utc(2027, 1, 31, 3, 0),
	};

	(void)state;
	runs_are("0 3 31 * *", "UTC", utc(2026, 1, 31, 3, 0), want,
	    nitems(want));
}

static void
test_next_leap_day(void **state)
{
	(void)state;
	next_is("0 0 29 2 *", "UTC", utc(2026, 3, 1, 0, 0),
	    utc(2028, 2, 29, 0, 0));
	next_is("0 0 29 2 *", "UTC", utc(2028, 2, 29, 0, 0),
	    utc(2032, 2, 29, 0, 0));
	/* 2100 is not a leap year: eight years from 2096 to 2104 */
	next_is("0 0 29 2 *", "UTC", utc(2096, 3, 1, 0, 0),
	    utc(2104, 2, 29, 0, 0));
}

static void
test_next_never(void **state)
{
	struct cron c;

	(void)state;
	next_is("0 0 30 2 *", "UTC", utc(2026, 1, 1, 0, 0), (time_t)-1);
	next_is("0 0 31 4,6,9,11 *", BERLIN, utc(2026, 1, 1, 0, 0),
	    (time_t)-1);
	next_is("0 0 30 feb *", NULL, utc(2026, 1, 1, 0, 0), (time_t)-1);
	/* but Feb 30 OR a Monday fires on February Mondays */
	next_is("0 0 30 2 1", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2026, 2, 2, 0, 0));
	/* nonsense `after` */
	c = parse_ok("* * * * *");
	assert_true(cron_next(&c, (time_t)-5, "UTC") == (time_t)-1);
}

static void
test_next_weekdays(void **state)
{
	const time_t want[] = {
		utc(2026, 3, 9, 12, 0),		/* Mon */
		utc(2026, 3, 10, 12, 0),
		utc(2026, 3, 11, 12, 0),
		utc(2026, 3, 12, 12, 0),
		utc(2026, 3, 13, 12, 0),	/* Fri */
		utc(2026, 3, 16, 12, 0),	/* Mon */
	};

	(void)state;
	/* Friday 2026-03-06 12:00, on the dot: the weekend is skipped */
	runs_are("0 12 * * 1-5", "UTC", utc(2026, 3, 6, 12, 0), want,
	    nitems(want));
	runs_are("0 12 * * mon-fri", "UTC", utc(2026, 3, 6, 12, 0), want,
	    nitems(want));
}

static void
test_next_dom_dow_or(void **state)
{
	/* March 2026: the 1st is a Sunday; April 1st a Wednesday */
	const time_t either[] = {
		utc(2026, 3, 2, 0, 0), utc(2026, 3, 9, 0, 0),
		utc(2026, 3, 16, 0, 0), utc(2026, 3, 23, 0, 0),
		utc(2026, 3, 30, 0, 0), utc(2026, 4, 1, 0, 0),
		utc(2026, 4, 6, 0, 0),
	};

	(void)state;
	runs_are("0 0 1 * 1", "UTC", utc(2026, 3, 1, 0, 0), either,
	    nitems(either));
	/* one field `*`: the other alone decides */
	next_is("0 0 1 * *", "UTC", utc(2026, 3, 1, 0, 0),
	    utc(2026, 4, 1, 0, 0));
	next_is("0 0 * * 1", "UTC", utc(2026, 3, 30, 0, 0),
	    utc(2026, 4, 6, 0, 0));
	/*
	 * Vixie cron: a field starting with `*` makes it AND, steps
	 * included: odd days that are Mondays (2026-03-09 is the first).
	 * Written as a range, both are restricted: OR (Mon 03-02).
	 */
	next_is("0 0 */2 * 1", "UTC", utc(2026, 3, 1, 0, 0),
	    utc(2026, 3, 9, 0, 0));
	next_is("0 0 1-31/2 * 1", "UTC", utc(2026, 3, 1, 0, 0),
	    utc(2026, 3, 2, 0, 0));
}

static void
test_next_steps_and_names(void **state)
{
	const time_t steps[] = {
		utc(2026, 6, 1, 10, 5), utc(2026, 6, 1, 10, 25),
		utc(2026, 6, 1, 10, 45), utc(2026, 6, 1, 11, 5),
	};
	const time_t names[] = {
		utc(2026, 7, 5, 0, 0), utc(2026, 7, 12, 0, 0),
		utc(2026, 7, 19, 0, 0), utc(2026, 7, 26, 0, 0),
		utc(2027, 1, 3, 0, 0),
	};

	(void)state;
	runs_are("5-59/20 * * * *", "UTC", utc(2026, 6, 1, 10, 0), steps,
	    nitems(steps));
	/* Jan 31 2026 is a Saturday: the next January Sunday is in 2027 */
	runs_are("0 0 * jan,jul sun", "UTC", utc(2026, 1, 31, 0, 0), names,
	    nitems(names));
	next_is("0 0 * jan,jul sun", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2026, 1, 4, 0, 0));
	next_is("0 0 * * 7", "UTC", utc(2026, 1, 1, 0, 0),
	    utc(2026, 1, 4, 0, 0));
}

/* ---- next run, DST ------------------------------------------------- */

static void
test_dst_berlin_spring_fixed(void **state)
{
	(void)state;
	/* 02:30 does not exist on 03-29: once at 03:00 CEST (01:00 UTC) */
	next_is("30 2 * * *", BERLIN, utc(2026, 3, 28, 12, 0),
	    utc(2026, 3, 29, 1, 0));
	next_is("30 2 * * *", BERLIN, utc(2026, 3, 29, 1, 0),
	    utc(2026, 3, 30, 0, 30));
	/* from just before the gap, and the day before */
	next_is("30 2 * * *", BERLIN, utc(2026, 3, 29, 0, 59),
	    utc(2026, 3, 29, 1, 0));
	next_is("30 2 * * *", BERLIN, utc(2026, 3, 27, 12, 0),
	    utc(2026, 3, 28, 1, 30));
	/* two times in the gap still run once; 03:30 runs as usual */
	next_is("0,30 2 * * *", BERLIN, utc(2026, 3, 28, 12, 0),
	    utc(2026, 3, 29, 1, 0));
	next_is("0,30 2 * * *", BERLIN, utc(2026, 3, 29, 1, 0),
	    utc(2026, 3, 30, 0, 0));
	next_is("30 2,3 * * *", BERLIN, utc(2026, 3, 29, 1, 0),
	    utc(2026, 3, 29, 1, 30));
	/* 03:00 itself is an ordinary time */
	next_is("0 3 * * *", BERLIN, utc(2026, 3, 28, 12, 0),
	    utc(2026, 3, 29, 1, 0));
}

static void
test_dst_berlin_spring_wildcard(void **state)
{
	const time_t half[] = {
		utc(2026, 3, 29, 0, 30),	/* 01:30 CET */
		utc(2026, 3, 29, 1, 0),		/* 03:00 CEST */
		utc(2026, 3, 29, 1, 30),	/* 03:30 CEST */
	};

	(void)state;
	runs_are("*/30 * * * *", BERLIN, utc(2026, 3, 29, 0, 0), half,
	    nitems(half));
	/* `*` hour: 02:15 is simply skipped, one real hour later */
	next_is("15 * * * *", BERLIN, utc(2026, 3, 29, 0, 15),
	    utc(2026, 3, 29, 1, 15));
	next_is("* 2 * * *", BERLIN, utc(2026, 3, 28, 12, 0),
	    utc(2026, 3, 30, 0, 0));
}

static void
test_dst_berlin_fall_fixed(void **state)
{
	(void)state;
	/* 02:30 happens twice on 10-25: only the first (CEST, 00:30 UTC) */
	next_is("30 2 * * *", BERLIN, utc(2026, 10, 24, 12, 0),
	    utc(2026, 10, 25, 0, 30));
	next_is("30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 30),
	    utc(2026, 10, 26, 1, 30));
	/* from between the two: the repeat is not run */
	next_is("30 2 * * *", BERLIN, utc(2026, 10, 25, 1, 0),
	    utc(2026, 10, 26, 1, 30));
	/* ordinary times that day */
	next_is("30 1 * * *", BERLIN, utc(2026, 10, 24, 12, 0),
	    utc(2026, 10, 24, 23, 30));
	next_is("30 3 * * *", BERLIN, utc(2026, 10, 24, 12, 0),
	    utc(2026, 10, 25, 2, 30));
}

static void
test_dst_berlin_fall_wildcard(void **state)
{
	/* 01:00 CEST on 10-25 onwards: every 30 real minutes */
	const time_t want[] = {
		utc(2026, 10, 24, 23, 30),	/* 01:30 CEST */
		utc(2026, 10, 25, 0, 0),	/* 02:00 CEST */
		utc(2026, 10, 25, 0, 30),	/* 02:30 CEST */
		utc(2026, 10, 25, 1, 0),	/* 02:00 CET */
		utc(2026, 10, 25, 1, 30),	/* 02:30 CET */
		utc(2026, 10, 25, 2, 0),	/* 03:00 CET */
		utc(2026, 10, 25, 2, 30),
	};
	struct cron c = parse_ok("*/30 * * * *");
	time_t t = utc(2026, 10, 24, 22, 0), prev = t;
	int n = 0;

	(void)state;
	runs_are("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23, 0), want,
	    nitems(want));
	/* a whole day through the change: strictly increasing, 30 min */
	while ((t = cron_next(&c, t, BERLIN)) < utc(2026, 10, 25, 23, 0)) {
		assert_true(t != (time_t)-1);
		assert_int_equal(t - prev, 1800);
		prev = t;
		n++;
	}
	assert_int_equal(n, 49);	/* a 25-hour day: 00:30 to 24:00 */
	/* `*` hour: "15 * * * *" runs in both 02:xx hours */
	next_is("15 * * * *", BERLIN, utc(2026, 10, 25, 0, 15),
	    utc(2026, 10, 25, 1, 15));
}

static void
test_dst_new_york(void **state)
{
	(void)state;
	/* 2026-03-08: 02:30 does not exist, runs at 03:00 EDT (07:00 UTC) */
	next_is("30 2 * * *", NYC, utc(2026, 3, 7, 12, 0),
	    utc(2026, 3, 8, 7, 0));
	next_is("30 2 * * *", NYC, utc(2026, 3, 8, 7, 0),
	    utc(2026, 3, 9, 6, 30));
	/* 2026-11-01: 01:30 happens twice, runs at 01:30 EDT only */
	next_is("30 1 * * *", NYC, utc(2026, 10, 31, 12, 0),
	    utc(2026, 11, 1, 5, 30));
	next_is("30 1 * * *", NYC, utc(2026, 11, 1, 5, 30),
	    utc(2026, 11, 2, 6, 30));
	next_is("@daily", NYC, utc(2026, 11, 1, 4, 0),
	    utc(2026, 11, 2, 5, 0));
	next_is("*/30 * * * *", NYC, utc(2026, 11, 1, 5, 30),
	    utc(2026, 11, 1, 6, 0));	/* 01:00 EST, the repeat */
}

static void
test_tz_restored(void **state)
{
	struct cron c = parse_ok("0 0 * * *");
	const char *tz;

	(void)state;
	/* a set TZ comes back */
	assert_int_equal(setenv("TZ", "Asia/Tokyo", 1), 0);
	tzset();
	assert_true(cron_next(&c, utc(2026, 6, 1, 12, 0), BERLIN) ==
	    utc(2026, 6, 1, 22, 0));
	tz = getenv("TZ");
	assert_non_null(tz);
	assert_string_equal(tz, "Asia/Tokyo");
	/* NULL and "" use it: Tokyo midnight is 15:00 UTC */
	assert_true(cron_next(&c, utc(2026, 6, 1, 12, 0), NULL) ==
	    utc(2026, 6, 1, 15, 0));
	assert_true(cron_next(&c, utc(2026, 6, 1, 12, 0), "") ==
	    utc(2026, 6, 1, 15, 0));

	/* an unset TZ stays unset */
	assert_int_equal(unsetenv("TZ"), 0);
	tzset();
	(void)cron_next(&c, utc(2026, 6, 1, 12, 0), NYC);
	assert_null(getenv("TZ"));
}

/* A naive scan, minute by minute, in UTC: the oracle for the search. */
static time_t
naive_next_utc(const char *expr, time_t after, time_t limit)
{
	struct cron c = parse_ok(expr);

	for (time_t t = after - after % 60 + 60; t < limit; t += 60) {
		struct tm tm;
		int dom, dow, day;

		assert_non_null(gmtime_r(&t, &tm));
		dom = (c.mdays >> tm.tm_mday) & 1;
		dow = (c.wdays >> tm.tm_wday) & 1;
		day = (c.flags & (CRON_DOM_STAR | CRON_DOW_STAR)) ?
		    dom && dow : dom || dow;
		if (((c.minutes >> tm.tm_min) & 1) &&
		    ((c.hours >> tm.tm_hour) & 1) && day &&
		    ((c.months >> (tm.tm_mon + 1)) & 1))
			return t;
	}
	return (time_t)-1;
}

static void
test_next_matches_naive_scan(void **state)
{
	static const char *exprs[] = {
		"*/7 */5 * * *", "59 23 31 12 *", "0 0 1,15 * 3",
		"10-20/3 4 * 2-4 *", "0 12 13 * fri", "* * 29 2 *",
		"30 */2 */3 * *", "0 0 * * 6,0", "17 3 */10 * 2-3",
	};
	const time_t limit = utc(2027, 1, 1, 0, 0);
	int runs = 0;

	(void)state;
	for (size_t i = 0; i < nitems(exprs); i++) {
		struct cron c = parse_ok(exprs[i]);
		time_t t = utc(2025, 12, 20, 7, 13) + 17;
		int n = 0;

		while (n < 200) {
			time_t want = naive_next_utc(exprs[i], t, limit);
			time_t got = cron_next(&c, t, "UTC");

			if (want == (time_t)-1) {
				/* none before limit: cron_next agrees */
				assert_true(got == (time_t)-1 || got >= limit);
				break;
			}
			if (got != want) {
				char a[40], b[40];

				fail_msg("\"%s\": got %s, want %s", exprs[i],
				    fmt_utc(got, a, sizeof(a)),
				    fmt_utc(want, b, sizeof(b)));
			}
			t = got + (n % 3 == 0 ? 0 : 29);
			n++;
		}
		runs += n;
	}
	assert_true(runs > 500);
}

static void
test_tz_check(void **state)
{
	static const char *good[] = { BERLIN, NYC, "UTC", "Etc/GMT+5" };
	static const char *bad[] = {
		"", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime",
		"Europe/Berlin\n", "Europe", "Europe/Ber lin",
	};
	char *cause;

	(void)state;
	for (size_t i = 0; i < nitems(good); i++) {
		cause = NULL;
		if (cron_tz_check(good[i], &cause) == -1)
			fail_msg("%s refused: %s", good[i], cause);
	}
	for (size_t i = 0; i < nitems(bad); i++) {
		cause = NULL;
		if (cron_tz_check(bad[i], &cause) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(cause);
		free(cause);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_macros),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_next_every_15_minutes),
		cmocka_unit_test(test_next_hourly_daily),
		cmocka_unit_test(test_next_31st_skips_short_months),
		cmocka_unit_test(test_next_leap_day),
		cmocka_unit_test(test_next_never),
		cmocka_unit_test(test_next_weekdays),
		cmocka_unit_test(test_next_dom_dow_or),
		cmocka_unit_test(test_next_steps_and_names),
		cmocka_unit_test(test_dst_berlin_spring_fixed),
		cmocka_unit_test(test_dst_berlin_spring_wildcard),
		cmocka_unit_test(test_dst_berlin_fall_fixed),
		cmocka_unit_test(test_dst_berlin_fall_wildcard),
		cmocka_unit_test(test_dst_new_york),
		cmocka_unit_test(test_tz_restored),
		cmocka_unit_test(test_next_matches_naive_scan),
		cmocka_unit_test(test_tz_check),
	};

	return TU_RUN(tests);
}
