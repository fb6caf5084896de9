/*
 * retention.h - which backups to keep: grandfather-father-son, like
 * `restic forget --keep-last/--keep-daily/...`.
 *
 * Pure: works on a list of (id, time, good) and a policy, no I/O, so it
 * is tested with a fake clock over months of backups.
 *
 * Rules: only good backups count toward any bucket and only good ones are
 * ever kept for a reason; failed or incomplete ones are never counted.
 * The newest good backup is always kept, whatever the policy says.
 * Buckets: last=N the N newest; hourly/daily/weekly/monthly/yearly=N the
 * newest backup of each of the N most recent hours/days/ISO weeks/months/
 * years that have one (in UTC).
 */
#ifndef BB_RETENTION_H
#define BB_RETENTION_H

#include <stddef.h>
#include <time.h>

struct keep_policy {
	int	last, hourly, daily, weekly, monthly, yearly;
	int	set;		/* 0: no policy, keep everything */
};

struct keep_item {
	const char	*id;
	time_t		 when;		/* start time, UTC */
	int		 good;		/* has a manifest, completed */
	/* out */
	int		 keep;
	char		 reasons[64];	/* "last, daily, weekly" */
};

/*
 * Parse "last=3 daily=7 weekly=4 monthly=6" (spaces and/or commas).  An
 * empty string is no policy (set = 0); "last=0" is a policy that keeps
 * only the newest good backup.  0, or -1 with *cause and *p untouched.
 */
int keep_parse(const char *s, struct keep_policy *p, char **cause);
/* "last=3 daily=7"; "" when unset, "last=0" when all zero (caller frees). */
char *keep_format(const struct keep_policy *p);

/*
 * Decide: sets keep and reasons on every item.  Items in any order; the
 * array is not reordered.  Bad items get keep = 0 unless policy is unset
 * (then all are kept, reason "no policy").  Backups with the same time
 * are ordered by id, the larger one counting as newer.
 */
void keep_apply(const struct keep_policy *p, struct keep_item *items,
    size_t n);

#endif
