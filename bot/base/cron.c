/*
 * cron.c - cron expressions: the parser and the next-run search (see
 * cron.h for the syntax and the DST rules).
 *
 * The search walks local civil time ("2026-03-29 02:30", as plain
 * numbers, no time zone) from one matching minute to the next using the
 * bitsets, and only then asks the C library which instants, if any, have
 * that local time.  A civil minute has one instant on ordinary days,
 * none in a spring-forward gap and two in a fall-back overlap; doing the
 * calendar ourselves keeps those three cases explicit instead of
 * depending on what mktime() guesses for tm_isdst.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "util.h"

/* How far cron_next looks: Feb 29 jobs need 8 years across 2100. */
#define CRON_YEARS	8
#define DAY		86400LL

/* ---- parsing ------------------------------------------------------- */

enum field { F_MIN, F_HOUR, F_MDAY, F_MON, F_WDAY, F_COUNT };

static const struct field_info {
	const char	*name;
	int		 min, max;	/* what may be written; `*` is min-max */
	int		 max_step;
	int		 star_flag;
} fields[F_COUNT] = {
	{ "minute",		0, 59, 60, CRON_MIN_STAR },
	{ "hour",		0, 23, 24, CRON_HOUR_STAR },
	{ "day of month",	1, 31, 31, CRON_DOM_STAR },
	{ "month",		1, 12, 12, 0 },
	/* as in Vixie cron, 0-7 with 7 folded onto Sunday (0) */
	{ "day of week",	0,  7,  7, CRON_DOW_STAR },
};

static const char *month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec"
};
static const char *wday_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat"
};

static const struct {
	const char	*name;
	const char	*expr;
} macros[] = {
	{ "@hourly",	"0 * * * *" },
	{ "@daily",	"0 0 * * *" },
	{ "@midnight",	"0 0 * * *" },
	{ "@weekly",	"0 0 * * 0" },
	{ "@monthly",	"0 0 1 * *" },
	{ "@yearly",	"0 0 1 1 *" },
	{ "@annually",	"0 0 1 1 *" },
};

/* A token as it may be shown to the operator: short and printable. */
static char *
show(const char *s, size_t len)
{
	size_t n = len > 40 ? 40 : len;
	char *out = xmalloc(n + 4);

	for (size_t i = 0; i < n; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (n < len)
		memcpy(out + n, "...", 4);
	else
		out[n] = '\0';
	return out;
}

static void
field_error(char **cause, enum field f, const char *tok, size_t len,
    const char *what)
{
	char *t = show(tok, len);

	*cause = xasprintf("%s: %s \"%s\"", fields[f].name, what, t);
	free(t);
}

/*
 * One value: a number, or in the month and day-of-week fields a name.
 * [s, s + len) is the value alone.
 */
static int
parse_value(enum field f, const char *s, size_t len, int *out, char **cause)
{
	const struct field_info *fi = &fields[f];
	long long v = 0;

	if (isdigit((unsigned char)s[0])) {
		for (size_t i = 0; i < len; i++) {
			if (!isdigit((unsigned char)s[i])) {
				field_error(cause, f, s, len,
				    "not a number:");
				return -1;
			}
			if (v < 1000000)
				v = v * 10 + (s[i] - '0');
		}
		if (v < fi->min || v > fi->max) {
			char *t = show(s, len);

			*cause = xasprintf("%s: %s is out of range %d-%d",
			    fi->name, t, fi->min, fi->max);
			free(t);
			return -1;
		}
		*out = (int)v;
		return 0;
	}
	if (f == F_MON || f == F_WDAY) {
		const char **names = f == F_MON ? month_names : wday_names;
		size_t n = f == F_MON ? nitems(month_names) :
		    nitems(wday_names);

		for (size_t i = 0; len == 3 && i < n; i++) {
			if (strncasecmp(s, names[i], 3) == 0) {
				*out = (int)i + (f == F_MON ? 1 : 0);
				return 0;
			}
		}
		field_error(cause, f, s, len, f == F_MON ?
		    "unknown month (use 1-12 or jan-dec):" :
		    "unknown day (use 0-7 or sun-sat):");
		return -1;
	}
	field_error(cause, f, s, len, "not a number:");
	return -1;
}

/* One list item: `*`, `a`, `a-b`, each optionally with `/step`. */
static int
parse_item(enum field f, const char *s, size_t len, uint64_t *bits,
    char **cause)
{
	const struct field_info *fi = &fields[f];
	const char *slash = memchr(s, '/', len);
	size_t blen = slash != NULL ? (size_t)(slash - s) : len;
	const char *dash = memchr(s, '-', blen);
	int lo, hi, step = 1;

	if (blen == 1 && s[0] == '*') {
		lo = fi->min;
		hi = fi->max;
	} else if (blen == 0 || dash == s || dash == s + blen - 1) {
		field_error(cause, f, s, len, "a value is missing in");
		return -1;
	} else {
		if (parse_value(f, s, dash != NULL ? (size_t)(dash - s) : blen,
		    &lo, cause) == -1)
			return -1;
		if (dash != NULL) {
			if (parse_value(f, dash + 1,
			    blen - (size_t)(dash + 1 - s), &hi, cause) == -1)
				return -1;
			if (lo > hi) {
				field_error(cause, f, s, blen,
				    "reversed range (write the smaller value "
				    "first):");
				return -1;
			}
		} else if (slash != NULL)
			hi = fi->max;			/* a/n = a-max/n */
		else
			hi = lo;
	}
	if (slash != NULL) {
		const char *st = slash + 1;
		size_t slen = len - blen - 1;
		long long v = 0;

		if (slen == 0) {
			field_error(cause, f, s, len, "the step is missing in");
			return -1;
		}
		for (size_t i = 0; i < slen; i++) {
			if (!isdigit((unsigned char)st[i])) {
				field_error(cause, f, s, len,
				    "the step is not a number in");
				return -1;
			}
			if (v < 1000000)
				v = v * 10 + (st[i] - '0');
		}
		if (v == 0) {
			field_error(cause, f, s, len,
			    "the step must be at least 1 in");
			return -1;
		}
		if (v > fi->max_step) {
			char *t = show(s, len);

			*cause = xasprintf("%s: the step in \"%s\" is out of "
			    "range 1-%d", fi->name, t, fi->max_step);
			free(t);
			return -1;
		}
		step = (int)v;
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ULL << (f == F_WDAY && v == 7 ? 0 : v);
	return 0;
}

/* One field: a comma-separated list of items. */
static int
parse_field(enum field f, const char *s, size_t len, struct cron *c,
    char **cause)
{
	uint64_t bits = 0;
	size_t i = 0;

	/* Vixie cron looks at the first character only: `*\/2` counts */
	if (s[0] == '*')
		c->flags |= (uint8_t)fields[f].star_flag;
	for (;;) {
		const char *item = s + i;
		const char *comma = memchr(item, ',', len - i);
		size_t ilen = comma != NULL ? (size_t)(comma - item) : len - i;

		if (ilen == 0) {
			field_error(cause, f, s, len, "empty list item in");
			return -1;
		}
		if (parse_item(f, item, ilen, &bits, cause) == -1)
			return -1;
		if (comma == NULL)
			break;
		i += ilen + 1;
	}
	switch (f) {
	case F_MIN:	c->minutes = bits; break;
	case F_HOUR:	c->hours = (uint32_t)bits; break;
	case F_MDAY:	c->mdays = (uint32_t)bits; break;
	case F_MON:	c->months = (uint16_t)bits; break;
	default:	c->wdays = (uint8_t)bits; break;
	}
	return 0;
}

int
cron_parse(const char *expr, struct cron *c, char **cause)
{
	struct cron tmp;
	const char *p = expr, *end;
	int nfields = 0;

	*cause = NULL;
	p += strspn(p, " \t\r\n");
	end = p + strlen(p);
	while (end > p && strchr(" \t\r\n", end[-1]) != NULL)
		end--;
	if (p == end) {
		*cause = xstrdup("empty cron expression");
		return -1;
	}
	if (*p == '@') {
		size_t len = (size_t)(end - p);

		for (size_t i = 0; i < nitems(macros); i++) {
			if (strlen(macros[i].name) == len &&
			    strncasecmp(p, macros[i].name, len) == 0)
				return cron_parse(macros[i].expr, c, cause);
		}
		if (len == 7 && strncasecmp(p, "@reboot", 7) == 0) {
			*cause = xstrdup("@reboot is not supported");
		} else {
			char *t = show(p, len);

			*cause = xasprintf("unknown macro \"%s\" (use @hourly, "
			    "@daily, @weekly, @monthly or @yearly)", t);
			free(t);
		}
		return -1;
	}

	memset(&tmp, 0, sizeof(tmp));
	for (const char *q = p; q < end; ) {
		size_t len = strcspn(q, " \t\r\n");

		if ((size_t)(end - q) < len)
			len = (size_t)(end - q);
		if (nfields < F_COUNT && parse_field((enum field)nfields, q,
		    len, &tmp, cause) == -1)
			return -1;
		nfields++;
		q += len;
		q += strspn(q, " \t\r\n");
	}
	if (nfields != F_COUNT) {
		*cause = xasprintf("expected 5 fields (minute hour "
		    "day-of-month month day-of-week), got %d", nfields);
		return -1;
	}
	*c = tmp;
	return 0;
}

/* ---- civil time ---------------------------------------------------- */

/*
 * Local time as plain numbers.  "Civil seconds" are the seconds since
 * 1970-01-01 00:00 of that wall-clock reading, as if it were UTC.
 */
struct civil {
	long long	year;
	int		mon, mday, hour, min;	/* 1-12, 1-31, 0-23, 0-59 */
};

static long long
floor_div(long long a, long long b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int
is_leap(long long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(long long y, int mon)
{
	static const int dim[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return mon == 2 && is_leap(y) ? 29 : dim[mon - 1];
}

/* Days since 1970-01-01 (H. Hinnant's days_from_civil). */
static long long
days_from_civil(long long y, int mon, int mday)
{
	long long era, yoe, doy, doe;

	y -= mon <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (mon > 2 ? mon - 3 : mon + 9) + 2) / 5 + mday - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_secs(long long secs, struct civil *cv)
{
	long long z = floor_div(secs, DAY), rem = secs - z * DAY;
	long long era, doe, yoe, doy, mp;

	cv->hour = (int)(rem / 3600);
	cv->min = (int)(rem % 3600 / 60);
	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	cv->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	cv->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	cv->year = yoe + era * 400 + (cv->mon <= 2);
}

static long long
civil_secs(const struct civil *cv)
{
	return days_from_civil(cv->year, cv->mon, cv->mday) * DAY +
	    cv->hour * 3600LL + cv->min * 60LL;
}

/* The local wall clock at instant t, in civil seconds; -1 on failure. */
static int
local_secs(long long t, long long *out)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((long long)tt != t || localtime_r(&tt, &tm) == NULL)
		return -1;
	*out = days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1,
	    tm.tm_mday) * DAY + tm.tm_hour * 3600LL + tm.tm_min * 60LL +
	    tm.tm_sec;
	return 0;
}

/* The UTC offset at instant t (0 if the C library cannot say). */
static long long
offset_at(long long t)
{
	long long l;

	return local_secs(t, &l) == 0 ? l - t : 0;
}

static int
day_matches(const struct cron *c, const struct civil *cv)
{
	long long days = days_from_civil(cv->year, cv->mon, cv->mday);
	int wday = (int)((days % 7 + 11) % 7);		/* 1970-01-01: Thu */
	int dom = (c->mdays >> cv->mday) & 1;
	int dow = (c->wdays >> wday) & 1;

	if (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR))
		return dom && dow;
	return dom || dow;
}

/*
 * Move *cv forward (staying put if it matches) to the next civil minute
 * that c matches.  -1 past max_year.
 */
static int
civil_next_match(const struct cron *c, struct civil *cv, long long max_year)
{
	for (;;) {
		if (cv->min > 59) {
			cv->min = 0;
			cv->hour++;
		}
		if (cv->hour > 23) {
			cv->hour = 0;
			cv->mday++;
		}
		if (cv->mon > 12) {
			cv->mon = 1;
			cv->year++;
		}
		if (cv->mday > days_in_month(cv->year, cv->mon)) {
			cv->mday = 1;
			if (++cv->mon > 12) {
				cv->mon = 1;
				cv->year++;
			}
		}
		if (cv->year > max_year)
			return -1;
		if (!((c->months >> cv->mon) & 1)) {
			cv->mon++;
			cv->mday = 1;
			cv->hour = cv->min = 0;
		} else if (!day_matches(c, cv)) {
			cv->mday++;
			cv->hour = cv->min = 0;
		} else if (!((c->hours >> cv->hour) & 1)) {
			cv->hour++;
			cv->min = 0;
		} else if (!((c->minutes >> cv->min) & 1))
			cv->min++;
		else
			return 0;
	}
}

/*
 * The instants whose local time is the civil second l, earliest first:
 * one, two (fall-back overlap) or none (spring-forward gap).  Offsets
 * are sampled a day either side, which sees any single transition.
 * In a gap, *gap_end is set to the first instant after the gap.
 */
static int
resolve(long long l, long long out[3], long long *gap_end)
{
	long long off[3], omin, omax, lo, hi, got;
	int n = 0, k;

	*gap_end = -1;
	off[0] = offset_at(l - DAY);
	off[1] = offset_at(l);
	off[2] = offset_at(l + DAY);
	omin = omax = off[0];
	for (int i = 0; i < 3; i++) {
		long long t = l - off[i];
		int dup = 0;

		if (off[i] < omin)
			omin = off[i];
		if (off[i] > omax)
			omax = off[i];
		for (int j = 0; j < n; j++)
			dup |= out[j] == t;
		if (dup || local_secs(t, &got) == -1 || got != l)
			continue;
		/* insertion sort, at most three */
		k = n++;
		while (k > 0 && out[k - 1] > t) {
			out[k] = out[k - 1];
			k--;
		}
		out[k] = t;
	}
	if (n > 0 || omin == omax)
		return n;

	/*
	 * A gap: the wall clock jumps over l between lo (before, still
	 * short of l) and hi (after, past l).  Find the jump.
	 */
	lo = l - omax;
	hi = l - omin;
	if (local_secs(lo, &got) == -1 || got >= l ||
	    local_secs(hi, &got) == -1 || got <= l)
		return 0;
	while (hi - lo > 1) {
		long long mid = lo + (hi - lo) / 2;

		if (local_secs(mid, &got) == -1)
			return 0;
		if (got > l)
			hi = mid;
		else
			lo = mid;
	}
	/* up to a whole minute of wall-clock time */
	if (local_secs(hi, &got) == -1)
		return 0;
	*gap_end = hi + (60 - (got % 60 + 60) % 60) % 60;
	return 0;
}

/* ---- cron_next ----------------------------------------------------- */

static int
tz_enter(const char *tz, char **saved, int *had)
{
	const char *old;

	*saved = NULL;
	*had = 0;
	if (tz == NULL || *tz == '\0')
		return 0;
	if ((old = getenv("TZ")) != NULL) {
		*saved = xstrdup(old);
		*had = 1;
	}
	if (setenv("TZ", tz, 1) == -1) {
		free(*saved);
		*saved = NULL;
		return -1;
	}
	tzset();
	return 1;
}

static void
tz_leave(char *saved, int had)
{
	if (had)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
}

static long long
next_in_zone(const struct cron *c, long long after)
{
	struct civil cv;
	long long start_local, min_off, o, l, last_l, max_year;
	long long best = -1, stop = 0;
	int fixed = !(c->flags & (CRON_MIN_STAR | CRON_HOUR_STAR));

	if (local_secs(after, &start_local) == -1)
		return -1;
	/*
	 * Any instant t > after has local time t + offset(t) > after +
	 * offset(t), so begin at the smallest offset about now: after a
	 * fall back, wall-clock times before "now" can still come again.
	 */
	min_off = start_local - after;
	o = offset_at(after + DAY);
	if (o < min_off)
		min_off = o;
	l = floor_div(after + min_off, 60) * 60 + 60;
	last_l = l + CRON_YEARS * 366 * DAY;
	civil_from_secs(l, &cv);
	max_year = cv.year + CRON_YEARS + 1;

	for (;;) {
		long long inst[3], gap_end;
		int n;

		if (civil_next_match(c, &cv, max_year) == -1)
			break;
		l = civil_secs(&cv);
		if (l > last_l || (best != -1 && l >= stop))
			break;
		n = resolve(l, inst, &gap_end);
		if (n == 0 && fixed && gap_end != -1) {
			inst[0] = gap_end;
			n = 1;
		} else if (n > 1 && fixed)
			n = 1;		/* overlap: the first occurrence only */
		for (int i = 0; i < n; i++) {
			if (inst[i] <= after || (best != -1 && inst[i] >= best))
				continue;
			best = inst[i];
			/*
			 * A later wall-clock time gives an earlier instant
			 * only across a fall back: its instant t satisfies
			 * t >= local - offset(t), so none can beat best once
			 * local >= best + the largest offset about.
			 */
			stop = best + offset_at(best);
			o = best + offset_at(best - DAY);
			if (o > stop)
				stop = o;
			o = best + offset_at(after);
			if (o > stop)
				stop = o;
		}
		cv.min++;
	}
	return best;
}

time_t
cron_next(const struct cron *c, time_t after, const char *tz)
{
	char *saved;
	int had, entered;
	long long t = -1;

	/* beyond year 9000 the calendar arithmetic is not worth trusting */
	if ((long long)after < 0 || (long long)after > 221845392000LL)
		return (time_t)-1;
	if ((entered = tz_enter(tz, &saved, &had)) == -1)
		return (time_t)-1;
	t = next_in_zone(c, (long long)after);
	if (entered)
		tz_leave(saved, had);
	if (t < 0 || (long long)(time_t)t != t)
		return (time_t)-1;
	return (time_t)t;
}

int
cron_tz_check(const char *tz, char **cause)
{
	const char *dir = getenv("TZDIR");
	struct stat st;
	char *path, *t;
	int rc;

	*cause = NULL;
	if (tz == NULL || *tz == '\0') {
		*cause = xstrdup("empty time zone name");
		return -1;
	}
	if (strlen(tz) > 64 || tz[0] == '/' || strstr(tz, "..") != NULL ||
	    tz[strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789/_+-")] != '\0') {
		t = show(tz, strlen(tz));
		*cause = xasprintf("\"%s\" is not a time zone name (like "
		    "Europe/Berlin)", t);
		free(t);
		return -1;
	}
	if (dir == NULL || *dir == '\0')
		dir = "/usr/share/zoneinfo";
	path = xasprintf("%s/%s", dir, tz);
	rc = stat(path, &st);
	free(path);
	if (rc == -1 || !S_ISREG(st.st_mode)) {
		*cause = xasprintf("unknown time zone \"%s\" (not in %s; is "
		    "tzdata installed?)", tz, dir);
		return -1;
	}
	return 0;
}
