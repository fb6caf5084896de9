/*
 * schedule.h - the daemon's clock: per target a backup schedule and a
 * restore-drill schedule (cron), retries of failed scheduled runs, the
 * day's report thread, alerts (failures, stale backups), the periodic
 * summary, and pauses.
 *
 * What it remembers is in state_dir/schedule.json, so a restart neither
 * repeats a run nor forgets one: each schedule keeps the time it was
 * handled up to, and a run missed while the bot was down runs once at
 * start-up (catch_up), never once per missed slot.  A clock jump forward
 * runs what was skipped once; a jump back runs nothing twice.
 */
#ifndef BB_SCHED_H
#define BB_SCHED_H

#include <stdint.h>
#include <time.h>

struct bot;
struct job;
struct cron;
struct sched;

struct sched *sched_new(struct bot *bot);
void sched_free(struct sched *s);

/* Start-up: catch up missed runs (once each).  Call after jobs_startup. */
void sched_startup(struct sched *s, time_t now);
/* Run what is due; milliseconds until the next thing to do, or -1. */
int64_t sched_tick(struct sched *s, time_t now);
/* A job ended: retries and alerts for scheduled runs. */
void sched_job_done(struct sched *s, const struct job *j);
/*
 * A scheduled probe of a pgbackrest target's WAL archive ended: alert when
 * archiving fails or stalls (stale_after), resolve when it works again.
 */
void sched_archive_done(struct sched *s, const struct job *j);
/* The configuration was reloaded: schedules may have changed. */
void sched_reload(struct sched *s);
/* The report room was upgraded: the day's thread starts again there. */
void sched_room_moved(struct sched *s);

/*
 * Pause a target's schedules until `until` (0: until resumed), or resume
 * them.  target may be "all".  0 and a message for the chat, or -1 and
 * why.  Caller frees *msg.
 */
int sched_pause(struct sched *s, const char *target, const char *by,
    time_t until, char **msg);
int sched_resume(struct sched *s, const char *target, const char *by,
    char **msg);
/* 1 if target is paused now (by and until set; until 0: no end). */
int sched_paused(struct sched *s, const char *target, const char **by,
    time_t *until);
/* Next scheduled backup (kind 0) or drill (kind 1) of target, or 0. */
time_t sched_next_run(struct sched *s, const char *target, int drill);

/* 1 if a stale alert is open for target. */
int sched_stale(struct sched *s, const char *target);

/*
 * The time after which a target without a good backup is stale:
 * stale_after, or for a schedule its longest gap between two runs over
 * the next week plus 2 hours (26h for a daily one); 0 when neither is set.
 * Pure; exposed for the tests.
 */
long sched_stale_after(const struct cron *c, const char *tz, long stale_after,
    time_t now);

#endif
