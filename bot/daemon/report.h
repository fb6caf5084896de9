/*
 * report.h - the weekly summary post ([report] summary_schedule): how
 * every target has been doing, from the catalog and the job ledger.
 */
#ifndef BB_REPORT_H
#define BB_REPORT_H

#include <stddef.h>
#include <time.h>

struct config;
struct msg;

/* Days in the summary's trends. */
#define REPORT_DAYS		14
/* How much of the ledger's end the summary reads: months of jobs. */
#define REPORT_LEDGER_TAIL	(8 * 1024 * 1024)

/*
 * Append the summary to m: a bold "Weekly summary", then per target its
 * newest good backup (age, size), how many are kept and their total
 * size, each remote's ✓/✗ for the newest backup (media: each
 * destination's for the newest run), the last restore drill, failed
 * backups of the last REPORT_DAYS days, and the trend of size and
 * duration over those days as sparklines; last, the free space where
 * backup_dir is.
 *
 * A trend has one character per 24 hours, oldest first, the last one
 * ending at now; each is the newest good (ok or partial) backup that
 * ended in those hours according to the ledger, and '·' marks hours
 * without one.  Sizes are as the ledger has them: as stored, or bytes
 * copied for a media run.  Ages count from a backup's start, as
 * !status does.
 */
void report_summary(const struct config *cfg, time_t now, struct msg *m);

/*
 * A sparkline of n values, one character each: ▁▂▃▄▅▆▇█ scaled from the
 * smallest to the largest present value (rounded to the nearest of the
 * eight), so {1,2,3,4,5,6,7,8} -> "▁▂▃▄▅▆▇█".  When all present values
 * are equal every bar is the middle one, ▄: steady, neither empty nor
 * full.  present[i] == 0 (or a value that is not finite) draws '·' and
 * leaves the scale alone; present NULL: all are.  n == 0 gives "".
 * Caller frees.
 */
char *report_sparkline(const double *values, size_t n, const int *present);

#endif
