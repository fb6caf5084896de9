/*
 * retention.c - which backups to keep (see retention.h for the rules).
 *
 * The same walk as restic's `forget`: good backups newest first; each
 * bucket remembers the period (hour, day, ISO week, ...) of the last
 * backup it kept and takes the next one whose period differs, until its
 * count is used up.  So each bucket keeps the newest backup of each of
 * its N most recent periods that have a good backup.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retention.h"
#include "util.h"

enum bucket { B_LAST, B_HOURLY, B_DAILY, B_WEEKLY, B_MONTHLY, B_YEARLY,
    B_COUNT };

static const char *bucket_names[B_COUNT] = {
	"last", "hourly", "daily", "weekly", "monthly", "yearly"
};

/* The largest count keep_parse takes: more is surely a typo. */
#define KEEP_MAX	1000000

static int *
bucket_field(struct keep_policy *p, enum bucket b)
{
	switch (b) {
	case B_LAST:	return &p->last;
	case B_HOURLY:	return &p->hourly;
	case B_DAILY:	return &p->daily;
	case B_WEEKLY:	return &p->weekly;
	case B_MONTHLY:	return &p->monthly;
	case B_YEARLY:	return &p->yearly;
	default:	return NULL;
	}
}

static int
bucket_value(const struct keep_policy *p, enum bucket b)
{
	return *bucket_field((struct keep_policy *)p, b);
}

/* One "name=N" token. */
static int
parse_token(const char *tok, struct keep_policy *p, int *seen, char **cause)
{
	const char *eq = strchr(tok, '=');
	const char *value;
	long long v;
	size_t namelen;
	int b;

	if (eq == NULL) {
		*cause = xasprintf("\"%s\": expected NAME=COUNT, e.g. daily=7",
		    tok);
		return -1;
	}
	namelen = (size_t)(eq - tok);
	value = eq + 1;
	for (b = 0; b < B_COUNT; b++) {
		if (strlen(bucket_names[b]) == namelen &&
		    strncmp(tok, bucket_names[b], namelen) == 0)
			break;
	}
	if (b == B_COUNT) {
		*cause = xasprintf("\"%.*s\": unknown bucket (use last, "
		    "hourly, daily, weekly, monthly or yearly)", (int)namelen,
		    tok);
		return -1;
	}
	if (seen[b]) {
		*cause = xasprintf("\"%s\" given twice", bucket_names[b]);
		return -1;
	}
	if (*value == '-') {
		*cause = xasprintf("%s=%s: the count must not be negative",
		    bucket_names[b], value);
		return -1;
	}
	if (str_to_ll(value, 0, KEEP_MAX, &v) == -1) {
		*cause = xasprintf("%s=%s: the count must be a number from 0 "
		    "to %d", bucket_names[b], value, KEEP_MAX);
		return -1;
	}
	seen[b] = 1;
	*bucket_field(p, (enum bucket)b) = (int)v;
	return 0;
}

int
keep_parse(const char *s, struct keep_policy *p, char **cause)
{
	struct keep_policy tmp;
	int seen[B_COUNT] = { 0 };
	char *copy, *tok, *next;
	int rc = 0;

	*cause = NULL;
	memset(&tmp, 0, sizeof(tmp));
	copy = xstrdup(s);
	for (tok = copy; rc == 0 && *tok != '\0'; tok = next) {
		size_t len;

		tok += strspn(tok, " \t,");
		if (*tok == '\0')
			break;
		len = strcspn(tok, " \t,");
		next = tok + len;
		if (*next != '\0')
			*next++ = '\0';
		rc = parse_token(tok, &tmp, seen, cause);
		tmp.set = 1;
	}
	free(copy);
	if (rc == 0)
		*p = tmp;
	return rc;
}

char *
keep_format(const struct keep_policy *p)
{
	struct buf b;
	char *s;

	if (!p->set)
		return xstrdup("");
	buf_init(&b, 1024);
	for (int i = 0; i < B_COUNT; i++) {
		int v = bucket_value(p, (enum bucket)i);

		if (v != 0)
			buf_addf(&b, "%s%s=%d", b.len > 0 ? " " : "",
			    bucket_names[i], v);
	}
	/* A policy of all zeros still means "only the newest". */
	if (b.len == 0)
		buf_adds(&b, "last=0");
	s = buf_detach(&b, NULL);
	buf_release(&b);
	return s;
}

/* Floor division, so times before 1970 still fall into whole periods. */
static long long
floor_div(long long a, long long b)
{
	long long q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* The period of t for bucket b, as a number; equal means same period. */
static long long
bucket_period(enum bucket b, time_t t)
{
	struct tm tm;
	char week[32];

	switch (b) {
	case B_HOURLY:
		return floor_div((long long)t, 3600);	/* UTC: no DST */
	case B_DAILY:
		return floor_div((long long)t, 86400);
	default:
		break;
	}
	if (gmtime_r(&t, &tm) == NULL)
		return floor_div((long long)t, 86400);	/* out of range */
	switch (b) {
	case B_WEEKLY:
		/* ISO 8601: the week-based year, so Dec 29 can be week 1. */
		if (strftime(week, sizeof(week), "%G%V", &tm) == 0)
			return floor_div((long long)t, 7 * 86400);
		return strtoll(week, NULL, 10);
	case B_MONTHLY:
		return (long long)tm.tm_year * 12 + tm.tm_mon;
	case B_YEARLY:
		return tm.tm_year;
	default:
		return 0;
	}
}

/* Newest first; ties broken by id then position, so the result is stable. */
static int
cmp_newest_first(const void *a, const void *b)
{
	const struct keep_item *x = *(struct keep_item *const *)a;
	const struct keep_item *y = *(struct keep_item *const *)b;
	int c;

	if (x->when != y->when)
		return x->when > y->when ? -1 : 1;
	if (x->id != NULL && y->id != NULL && (c = strcmp(x->id, y->id)) != 0)
		return -c;
	return x > y ? -1 : (x < y ? 1 : 0);
}

static void
add_reason(struct keep_item *it, const char *reason)
{
	size_t len = strlen(it->reasons);

	it->keep = 1;
	snprintf(it->reasons + len, sizeof(it->reasons) - len, "%s%s",
	    len > 0 ? ", " : "", reason);
}

void
keep_apply(const struct keep_policy *p, struct keep_item *items, size_t n)
{
	struct keep_item **order;
	long long last_period[B_COUNT];
	int left[B_COUNT], have[B_COUNT];
	size_t ngood = 0;

	for (size_t i = 0; i < n; i++) {
		items[i].keep = !p->set;
		snprintf(items[i].reasons, sizeof(items[i].reasons), "%s",
		    p->set ? "" : "no policy");
	}
	if (!p->set || n == 0)
		return;

	/* Sort pointers: the caller's array keeps its order. */
	order = xcalloc(n, sizeof(*order));
	for (size_t i = 0; i < n; i++) {
		if (items[i].good)
			order[ngood++] = &items[i];
	}
	qsort(order, ngood, sizeof(*order), cmp_newest_first);

	for (int b = 0; b < B_COUNT; b++) {
		left[b] = bucket_value(p, (enum bucket)b);
		have[b] = 0;
		last_period[b] = 0;
	}
	for (size_t i = 0; i < ngood; i++) {
		struct keep_item *it = order[i];

		for (int b = 0; b < B_COUNT; b++) {
			long long period;

			if (left[b] <= 0)
				continue;
			/* "last" has a period per backup: every one counts. */
			period = b == B_LAST ? (long long)i :
			    bucket_period((enum bucket)b, it->when);
			if (have[b] && period == last_period[b])
				continue;
			have[b] = 1;
			last_period[b] = period;
			left[b]--;
			add_reason(it, bucket_names[b]);
		}
	}
	if (ngood > 0 && !order[0]->keep)
		add_reason(order[0], "newest");
	free(order);
}
