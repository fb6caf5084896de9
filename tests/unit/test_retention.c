/*
 * test_retention.c - the keep policy: parsing, and which backups a
 * policy keeps over months of a fake clock.  Expected sets are written
 * out as dates worked out by hand from a calendar, not computed with
 * the code under test.
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

#include "retention.h"
#include "util.h"
#include "testutil.h"

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

/* Items with ids "YYYY-MM-DD" or "YYYY-MM-DDTHHMM" (ids freed by free_items). */
static struct keep_item *
items_new(size_t n)
{
	return xcalloc(n, sizeof(struct keep_item));
}

static void
item_set(struct keep_item *it, time_t when, int good, int with_time)
{
	struct tm tm;
	char id[32];

	assert_non_null(gmtime_r(&when, &tm));
	strftime(id, sizeof(id), with_time ? "%Y-%m-%dT%H%M" : "%Y-%m-%d",
	    &tm);
	it->id = xstrdup(id);
	it->when = when;
	it->good = good;
	it->keep = -1;			/* keep_apply must set it */
	memset(it->reasons, 'x', sizeof(it->reasons) - 1);
	it->reasons[sizeof(it->reasons) - 1] = '\0';
}

static void
items_free(struct keep_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)items[i].id);
	free(items);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The kept ids, sorted, space separated (caller frees). */
static char *
kept(const struct keep_item *items, size_t n)
{
	const char **ids = xcalloc(n + 1, sizeof(*ids));
	struct buf b;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		assert_true(items[i].keep == 0 || items[i].keep == 1);
		if (items[i].keep) {
			assert_true(items[i].reasons[0] != '\0');
			ids[k++] = items[i].id;
		} else
			assert_string_equal(items[i].reasons, "");
	}
	qsort(ids, k, sizeof(*ids), cmp_str);
	buf_init(&b, 1 << 20);
	for (size_t i = 0; i < k; i++)
		buf_addf(&b, "%s%s", i > 0 ? " " : "", ids[i]);
	free(ids);
	return buf_detach(&b, NULL);
}

static const struct keep_item *
find(const struct keep_item *items, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(items[i].id, id) == 0)
			return &items[i];
	}
	fail_msg("no item %s", id);
	return NULL;
}

static void
assert_reasons(const struct keep_item *items, size_t n, const char *id,
    const char *reasons)
{
	assert_string_equal(find(items, n, id)->reasons, reasons);
}

static void
assert_kept(const struct keep_item *items, size_t n, const char *expect)
{
	char *got = kept(items, n);

	assert_string_equal(got, expect);
	free(got);
}

static struct keep_policy
policy(const char *s)
{
	struct keep_policy p;
	char *cause = NULL;

	memset(&p, 0xff, sizeof(p));
	assert_int_equal(keep_parse(s, &p, &cause), 0);
	assert_null(cause);
	return p;
}

/* ---- parsing ---------------------------------------------------------- */

static void
test_parse_good(void **state)
{
	struct keep_policy p;
	char *s;

	(void)state;
	p = policy("last=3 daily=7 weekly=4 monthly=6");
	assert_int_equal(p.set, 1);
	assert_int_equal(p.last, 3);
	assert_int_equal(p.hourly, 0);
	assert_int_equal(p.daily, 7);
	assert_int_equal(p.weekly, 4);
	assert_int_equal(p.monthly, 6);
	assert_int_equal(p.yearly, 0);

	p = policy("  hourly=24,daily=7 ,, \tyearly=10  ");
	assert_int_equal(p.set, 1);
	assert_int_equal(p.last, 0);
	assert_int_equal(p.hourly, 24);
	assert_int_equal(p.daily, 7);
	assert_int_equal(p.yearly, 10);

	/* Zero everywhere is a policy: keep only the newest. */
	p = policy("last=0");
	assert_int_equal(p.set, 1);
	assert_int_equal(p.last, 0);

	p = policy("");
	assert_int_equal(p.set, 0);
	assert_int_equal(p.last + p.hourly + p.daily + p.weekly + p.monthly +
	    p.yearly, 0);
	p = policy(" , ");
	assert_int_equal(p.set, 0);

	/* keep_format writes what keep_parse reads, in a fixed order. */
	p = policy("monthly=6, last=3 daily=7");
	s = keep_format(&p);
	assert_string_equal(s, "last=3 daily=7 monthly=6");
	free(s);
	p = policy("last=0 daily=0");
	s = keep_format(&p);
	assert_string_equal(s, "last=0");
	assert_int_equal(policy(s).set, 1);
	free(s);
	p = policy("");
	s = keep_format(&p);
	assert_string_equal(s, "");
	free(s);
}

static void
test_parse_bad(void **state)
{
	static const struct {
		const char	*in;
		const char	*says;
	} bad[] = {
		{ "daily", "NAME=COUNT" },
		{ "daily 7", "NAME=COUNT" },
		{ "fortnightly=2", "unknown bucket" },
		{ "=3", "unknown bucket" },
		{ "Daily=3", "unknown bucket" },
		{ "daily=x", "number" },
		{ "daily=", "number" },
		{ "daily=7d", "number" },
		{ "daily=+7", "number" },
		{ "daily=99999999999", "number" },
		{ "daily=-1", "negative" },
		{ "daily=7 weekly=4 daily=8", "twice" },
		{ "last=1,last=1", "twice" },
	};
	struct keep_policy p, before;
	char *cause;

	(void)state;
	for (size_t i = 0; i < nitems(bad); i++) {
		memset(&p, 0x5a, sizeof(p));
		before = p;
		cause = NULL;
		assert_int_equal(keep_parse(bad[i].in, &p, &cause), -1);
		assert_non_null(cause);
		if (strstr(cause, bad[i].says) == NULL)
			fail_msg("\"%s\": cause \"%s\" lacks \"%s\"", bad[i].in,
			    cause, bad[i].says);
		/* A failed parse leaves the old policy alone. */
		assert_memory_equal(&p, &before, sizeof(p));
		free(cause);
	}
}

/* ---- applying --------------------------------------------------------- */

#define DAYS	400

/* 400 daily backups at 03:00 UTC, 2025-01-01 .. 2026-02-04. */
static struct keep_item *
daily_400(void)
{
	struct keep_item *items = items_new(DAYS);
	time_t first = utc(2025, 1, 1, 3, 0);

	for (size_t i = 0; i < DAYS; i++)
		item_set(&items[i], first + (time_t)i * 86400, 1, 0);
	assert_string_equal(items[DAYS - 1].id, "2026-02-04");
	return items;
}

/*
 * By the calendar: 2026-02-04 is a Wednesday in ISO week 6 (Feb 2-8);
 * week 5 is Jan 26 - Feb 1, week 4 ends Jan 25, week 3 ends Jan 18.
 */
static const char *expect_400 =
    "2025-09-30 2025-10-31 2025-11-30 2025-12-31 "	/* monthly */
    "2026-01-18 2026-01-25 "				/* weekly */
    "2026-01-29 2026-01-30 2026-01-31 2026-02-01 "	/* daily */
    "2026-02-02 2026-02-03 2026-02-04";			/* last */

static void
assert_400_reasons(const struct keep_item *items)
{
	assert_reasons(items, DAYS, "2026-02-04", "last, daily, weekly, monthly");
	assert_reasons(items, DAYS, "2026-02-03", "last, daily");
	assert_reasons(items, DAYS, "2026-02-02", "last, daily");
	assert_reasons(items, DAYS, "2026-02-01", "daily, weekly");
	assert_reasons(items, DAYS, "2026-01-31", "daily, monthly");
	assert_reasons(items, DAYS, "2026-01-30", "daily");
	assert_reasons(items, DAYS, "2026-01-25", "weekly");
	assert_reasons(items, DAYS, "2025-12-31", "monthly");
	assert_reasons(items, DAYS, "2025-09-30", "monthly");
	assert_reasons(items, DAYS, "2025-09-29", "");
}

static void
test_gfs_400_days(void **state)
{
	struct keep_policy p = policy("last=3 daily=7 weekly=4 monthly=6");
	struct keep_item *items = daily_400();

	(void)state;
	keep_apply(&p, items, DAYS);
	assert_kept(items, DAYS, expect_400);
	assert_400_reasons(items);
	items_free(items, DAYS);
}

/* The same backups shuffled: same decision, caller's order untouched. */
static void
test_gfs_random_order(void **state)
{
	struct keep_policy p = policy("last=3 daily=7 weekly=4 monthly=6");
	struct keep_item *items = daily_400();
	const char *order[DAYS];
	uint32_t x = 12345;

	(void)state;
	for (size_t i = DAYS - 1; i > 0; i--) {
		struct keep_item t;
		size_t j;

		x = x * 1103515245u + 12345u;
		j = (x >> 8) % (i + 1);
		t = items[i];
		items[i] = items[j];
		items[j] = t;
	}
	assert_string_not_equal(items[DAYS - 1].id, "2026-02-04");
	for (size_t i = 0; i < DAYS; i++)
		order[i] = items[i].id;
	keep_apply(&p, items, DAYS);
	for (size_t i = 0; i < DAYS; i++)
		assert_ptr_equal(items[i].id, order[i]);
	assert_kept(items, DAYS, expect_400);
	assert_400_reasons(items);
	items_free(items, DAYS);
}

/* Failed backups are never kept and leave their bucket to a good one. */
static void
test_gfs_failed_days(void **state)
{
	struct keep_policy p = policy("last=3 daily=7 weekly=4 monthly=6");
	struct keep_item *items = daily_400();
	const char *failed[] = { "2026-02-03", "2026-02-01", "2026-01-31" };

	(void)state;
	for (size_t i = 0; i < DAYS; i++) {
		for (size_t j = 0; j < nitems(failed); j++) {
			if (strcmp(items[i].id, failed[j]) == 0)
				items[i].good = 0;
		}
	}
	keep_apply(&p, items, DAYS);
	assert_kept(items, DAYS,
	    "2025-09-30 2025-10-31 2025-11-30 2025-12-31 "
	    "2026-01-18 2026-01-25 2026-01-26 2026-01-27 2026-01-28 "
	    "2026-01-29 2026-01-30 2026-02-02 2026-02-04");
	for (size_t j = 0; j < nitems(failed); j++)
		assert_int_equal(find(items, DAYS, failed[j])->keep, 0);
	assert_reasons(items, DAYS, "2026-02-02", "last, daily");
	/* Newest good of week 5 and of January, now that Jan 31 failed. */
	assert_reasons(items, DAYS, "2026-01-30",
	    "last, daily, weekly, monthly");
	assert_reasons(items, DAYS, "2026-01-26", "daily");
	items_free(items, DAYS);
}

/* Weeks without backups do not use up the weekly count. */
static void
test_gfs_gaps(void **state)
{
	struct keep_policy p = policy("daily=3 weekly=4 monthly=2");
	struct keep_item *items = items_new(7);

	(void)state;
	item_set(&items[0], utc(2025, 6, 30, 3, 0), 1, 0);
	item_set(&items[1], utc(2025, 10, 1, 3, 0), 1, 0);	/* Wed */
	item_set(&items[2], utc(2025, 12, 15, 3, 0), 1, 0);	/* Mon */
	item_set(&items[3], utc(2026, 1, 31, 3, 0), 1, 0);	/* Sat, W05 */
	item_set(&items[4], utc(2026, 2, 1, 3, 0), 1, 0);	/* Sun, W05 */
	item_set(&items[5], utc(2026, 3, 9, 3, 0), 1, 0);	/* Mon, W11 */
	item_set(&items[6], utc(2026, 3, 10, 3, 0), 1, 0);	/* Tue, W11 */
	keep_apply(&p, items, 7);
	assert_kept(items, 7, "2025-10-01 2025-12-15 2026-02-01 2026-03-09 "
	    "2026-03-10");
	assert_reasons(items, 7, "2026-03-10", "daily, weekly, monthly");
	assert_reasons(items, 7, "2026-03-09", "daily");
	assert_reasons(items, 7, "2026-02-01", "daily, weekly, monthly");
	assert_reasons(items, 7, "2025-12-15", "weekly");
	assert_reasons(items, 7, "2025-10-01", "weekly");
	items_free(items, 7);

	/* More buckets than backups: all of them. */
	p = policy("daily=100");
	items = items_new(3);
	item_set(&items[0], utc(2026, 1, 1, 3, 0), 1, 0);
	item_set(&items[1], utc(2026, 2, 1, 3, 0), 1, 0);
	item_set(&items[2], utc(2026, 3, 1, 3, 0), 1, 0);
	keep_apply(&p, items, 3);
	assert_kept(items, 3, "2026-01-01 2026-02-01 2026-03-01");
	items_free(items, 3);
}

/* ISO weeks cross the new year: Mon 2025-12-29 is in 2026-W01. */
static void
test_gfs_iso_week_new_year(void **state)
{
	struct keep_policy p = policy("weekly=2");
	struct keep_item *items = items_new(4);

	(void)state;
	item_set(&items[0], utc(2025, 12, 22, 3, 0), 1, 0);	/* W52 Mon */
	item_set(&items[1], utc(2025, 12, 28, 3, 0), 1, 0);	/* W52 Sun */
	item_set(&items[2], utc(2025, 12, 29, 3, 0), 1, 0);	/* 2026-W01 */
	item_set(&items[3], utc(2026, 1, 2, 3, 0), 1, 0);	/* 2026-W01 */
	keep_apply(&p, items, 4);
	assert_kept(items, 4, "2025-12-28 2026-01-02");
	items_free(items, 4);
}

/* Several backups a day: daily keeps each day's newest; last counts all. */
static void
test_gfs_several_per_day(void **state)
{
	struct keep_policy p = policy("last=2 daily=3");
	struct keep_item *items = items_new(15);
	static const int hm[3][2] = { { 1, 0 }, { 13, 0 }, { 23, 30 } };

	(void)state;
	for (int d = 0; d < 5; d++) {
		for (int k = 0; k < 3; k++)
			item_set(&items[d * 3 + k], utc(2026, 3, 1 + d,
			    hm[k][0], hm[k][1]), 1, 1);
	}
	keep_apply(&p, items, 15);
	assert_kept(items, 15, "2026-03-03T2330 2026-03-04T2330 "
	    "2026-03-05T1300 2026-03-05T2330");
	assert_reasons(items, 15, "2026-03-05T2330", "last, daily");
	assert_reasons(items, 15, "2026-03-05T1300", "last");
	assert_reasons(items, 15, "2026-03-04T2330", "daily");
	items_free(items, 15);
}

static void
test_gfs_hourly(void **state)
{
	struct keep_policy p = policy("hourly=5");
	struct keep_item *items = items_new(30);

	(void)state;
	for (int i = 0; i < 30; i++)
		item_set(&items[i], utc(2026, 3, 5, i / 3, (i % 3) * 20), 1,
		    1);
	keep_apply(&p, items, 30);
	assert_kept(items, 30, "2026-03-05T0540 2026-03-05T0640 "
	    "2026-03-05T0740 2026-03-05T0840 2026-03-05T0940");
	assert_reasons(items, 30, "2026-03-05T0740", "hourly");
	items_free(items, 30);
}

static void
test_gfs_yearly(void **state)
{
	struct keep_policy p = policy("yearly=3");
	struct keep_item *items = items_new(7);

	(void)state;
	item_set(&items[0], utc(2023, 6, 1, 3, 0), 1, 0);
	item_set(&items[1], utc(2023, 12, 31, 3, 0), 1, 0);
	item_set(&items[2], utc(2024, 3, 1, 3, 0), 1, 0);
	item_set(&items[3], utc(2024, 12, 31, 3, 0), 1, 0);
	item_set(&items[4], utc(2025, 1, 1, 3, 0), 1, 0);
	item_set(&items[5], utc(2026, 2, 4, 3, 0), 1, 0);
	item_set(&items[6], utc(2026, 2, 5, 3, 0), 0, 0);	/* failed */
	keep_apply(&p, items, 7);
	assert_kept(items, 7, "2024-12-31 2025-01-01 2026-02-04");
	assert_reasons(items, 7, "2026-02-04", "yearly");
	items_free(items, 7);
}

/* Buckets are UTC whatever TZ says (here UTC+13 and UTC+5:30). */
static void
test_gfs_utc_not_local(void **state)
{
	struct keep_policy p;
	struct keep_item *items;
	char *saved = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;

	(void)state;
	setenv("TZ", "XXX-13", 1);
	tzset();
	/* Both on Mar 5 in local time, two days in UTC. */
	p = policy("daily=2");
	items = items_new(2);
	item_set(&items[0], utc(2026, 3, 4, 23, 30), 1, 1);
	item_set(&items[1], utc(2026, 3, 5, 0, 30), 1, 1);
	keep_apply(&p, items, 2);
	assert_kept(items, 2, "2026-03-04T2330 2026-03-05T0030");
	items_free(items, 2);
	/* Both in March locally, February and March in UTC. */
	p = policy("monthly=2");
	items = items_new(2);
	item_set(&items[0], utc(2026, 2, 28, 23, 30), 1, 1);
	item_set(&items[1], utc(2026, 3, 1, 0, 30), 1, 1);
	keep_apply(&p, items, 2);
	assert_kept(items, 2, "2026-02-28T2330 2026-03-01T0030");
	items_free(items, 2);

	setenv("TZ", "XXX-5:30", 1);
	tzset();
	p = policy("hourly=2");
	items = items_new(3);
	item_set(&items[0], utc(2026, 3, 5, 9, 20), 1, 1);
	item_set(&items[1], utc(2026, 3, 5, 9, 40), 1, 1);
	item_set(&items[2], utc(2026, 3, 5, 10, 10), 1, 1);
	keep_apply(&p, items, 3);
	assert_kept(items, 3, "2026-03-05T0940 2026-03-05T1010");
	items_free(items, 3);

	if (saved != NULL)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
}

/* The newest good backup survives any policy; a failed newer one not. */
static void
test_newest_always_kept(void **state)
{
	struct keep_policy p = policy("last=0 hourly=0 daily=0 weekly=0 "
	    "monthly=0 yearly=0");
	struct keep_item *items = items_new(4);

	(void)state;
	item_set(&items[0], utc(2026, 3, 1, 3, 0), 1, 0);
	item_set(&items[1], utc(2026, 3, 2, 3, 0), 1, 0);
	item_set(&items[2], utc(2026, 3, 3, 3, 0), 1, 0);
	item_set(&items[3], utc(2026, 3, 4, 3, 0), 0, 0);	/* failed */
	keep_apply(&p, items, 4);
	assert_kept(items, 4, "2026-03-03");
	assert_reasons(items, 4, "2026-03-03", "newest");

	/* With a reason of its own, "newest" is not added. */
	p = policy("daily=1");
	keep_apply(&p, items, 4);
	assert_kept(items, 4, "2026-03-03");
	assert_reasons(items, 4, "2026-03-03", "daily");

	/* Same time, two ids: exactly one is the newest, every time. */
	items_free(items, 4);
	p = policy("last=0");
	items = items_new(2);
	item_set(&items[0], utc(2026, 3, 1, 3, 0), 1, 0);
	item_set(&items[1], utc(2026, 3, 1, 3, 0), 1, 1);
	keep_apply(&p, items, 2);
	assert_int_equal(items[0].keep + items[1].keep, 1);
	assert_int_equal(items[1].keep, 1);	/* larger id wins the tie */
	items_free(items, 2);
}

static void
test_only_failed(void **state)
{
	struct keep_policy p = policy("last=3 daily=7");
	struct keep_item *items = items_new(5);

	(void)state;
	for (int i = 0; i < 5; i++)
		item_set(&items[i], utc(2026, 3, 1 + i, 3, 0), 0, 0);
	keep_apply(&p, items, 5);
	assert_kept(items, 5, "");
	keep_apply(&p, items, 0);		/* no items: nothing to do */
	items_free(items, 5);
}

/* No policy: keep everything, failed ones too (nothing is deleted). */
static void
test_unset_keeps_all(void **state)
{
	struct keep_policy p = policy("");
	struct keep_item *items = items_new(5);

	(void)state;
	for (int i = 0; i < 5; i++)
		item_set(&items[i], utc(2026, 3, 1 + i, 3, 0), i % 2, 0);
	keep_apply(&p, items, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(items[i].keep, 1);
	items_free(items, 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_gfs_400_days),
		cmocka_unit_test(test_gfs_random_order),
		cmocka_unit_test(test_gfs_failed_days),
		cmocka_unit_test(test_gfs_gaps),
		cmocka_unit_test(test_gfs_iso_week_new_year),
		cmocka_unit_test(test_gfs_several_per_day),
		cmocka_unit_test(test_gfs_hourly),
		cmocka_unit_test(test_gfs_yearly),
		cmocka_unit_test(test_gfs_utc_not_local),
		cmocka_unit_test(test_newest_always_kept),
		cmocka_unit_test(test_only_failed),
		cmocka_unit_test(test_unset_keeps_all),
	};

	return TU_RUN(tests);
}
