/*
 * cron.h - five-field cron expressions (Vixie/ISC cron syntax) and the
 * next time one fires in a named time zone.
 *
 * Pure apart from the C library's time zone data: no clock, no I/O
 * (cron_tz_check aside), so it is tested with hard-coded dates.
 *
 * Syntax: "MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK", fields separated
 * by spaces or tabs.  Each field is a comma-separated list of items; an
 * item is `*`, a number `5`, a range `1-5`, or one of those with a step:
 * `*\/15`, `5-59/20`, `30/10` (= `30-59/10`).  Ranges are inclusive and
 * must not be reversed; steps are at least 1.  Ranges:
 *
 *	minute		0-59
 *	hour		0-23
 *	day of month	1-31
 *	month		1-12 or jan-dec
 *	day of week	0-7 or sun-sat (0 and 7 are both Sunday; `*` and
 *			`a/n` run to 7, so "1/2" includes Sunday)
 *
 * Names are three letters, case-insensitive, and may end ranges
 * ("mon-fri").  Macros, alone on the line: @hourly (0 * * * *), @daily
 * and @midnight (0 0 * * *), @weekly (0 0 * * 0), @monthly (0 0 1 * *),
 * @yearly and @annually (0 0 1 1 *).  @reboot is not supported.
 *
 * Day rule (Vixie cron): when both day of month and day of week are
 * restricted, a day matches if EITHER matches ("0 0 1 * 1" is the 1st
 * of each month and every Monday).  When either field starts with `*`
 * (including `*\/2`), both must match, which for a plain `*` simply means
 * the other field decides.
 *
 * Daylight saving time (as ISC cron): a "fixed-time" job is one whose
 * minute and hour fields both do not start with `*`.
 *  - Spring forward: a fixed-time job whose local time does not exist
 *    that day (02:30 when clocks jump 02:00 -> 03:00) runs once, at the
 *    first minute after the gap (03:00).  A job with `*` in its minute or
 *    hour field simply has no runs in the gap ("15 * * * *" runs at
 *    01:15 and then 03:15).
 *  - Fall back: a fixed-time job whose local time happens twice (01:30
 *    when clocks go 02:00 -> 01:00) runs only at the first occurrence.
 *    A job with `*` in its minute or hour field runs at both, so
 *    "*\/30 * * * *" keeps firing every 30 real minutes.
 */
#ifndef BB_CRON_H
#define BB_CRON_H

#include <stdint.h>
#include <time.h>

/* flags: which fields were written starting with '*' */
#define CRON_MIN_STAR	0x01
#define CRON_HOUR_STAR	0x02
#define CRON_DOM_STAR	0x04
#define CRON_DOW_STAR	0x08

/*
 * A parsed expression: one bit per allowed value.  Plain data, no
 * allocation: embed it, copy it, compare it with memcmp (cron_parse
 * zeroes it first, padding included).
 */
struct cron {
	uint64_t	minutes;	/* bit m: minute m, 0-59 */
	uint32_t	hours;		/* bit h: hour h, 0-23 */
	uint32_t	mdays;		/* bit d: day of month d, 1-31 */
	uint16_t	months;		/* bit m: month m, 1-12 */
	uint8_t		wdays;		/* bit w: 0 = Sunday .. 6 = Saturday */
	uint8_t		flags;		/* CRON_*_STAR */
};

/*
 * Parse expr (leading and trailing white space ignored).  Returns 0 and
 * fills *c, or -1 with *c untouched and *cause set (caller frees), e.g.
 * "hour: 24 is out of range 0-23".  Causes start with the field's name
 * ("minute:", "hour:", "day of month:", "month:", "day of week:") when
 * one field is to blame; bad tokens are quoted, cut at 40 bytes, with
 * unprintable bytes shown as '?' (safe to echo into a chat room).
 */
int cron_parse(const char *expr, struct cron *c, char **cause);

/*
 * The first time strictly after `after` at which c fires, in time zone
 * tz: an IANA name such as "Europe/Berlin" (or any TZ value glibc
 * understands); NULL or "" means the process's local time as it is.
 * The result's local time is a whole minute.  DST as described above.
 * Returns (time_t)-1 when nothing matches within 8 years (e.g. "0 0 30 2
 * *", Feb 30) or when after is negative or absurdly far in the future.
 *
 * Sets TZ and calls tzset() around the computation and restores both
 * before returning: not thread-safe (the daemon has one thread).  An
 * unknown zone name is treated by the C library as UTC; check names
 * with cron_tz_check() when reading the configuration.
 */
time_t cron_next(const struct cron *c, time_t after, const char *tz);

/*
 * Check that tz names a zone in the system's tz database ($TZDIR or
 * /usr/share/zoneinfo), e.g. "Europe/Berlin" or "UTC".  0, or -1 with
 * *cause set (caller frees).  Names with "..", a leading '/', or bytes
 * other than letters, digits and "/_+-" are refused.
 */
int cron_tz_check(const char *tz, char **cause);

#endif
