/*
 * schedule.c - schedules, retries, the day's thread, alerts and pauses
 * (schedule.h).
 *
 * Each schedule keeps `handled`: the time up to which its slots were
 * dealt with.  A slot is due when cron_next(handled) <= now; running it
 * sets handled = now, so any number of slots missed (bot down, clock
 * jumped forward) run once.  `handled` is stored before the job starts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bot.h"
#include "catalog.h"
#include "config.h"
#include "cron.h"
#include "jobs.h"
#include "human.h"
#include "json.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "report.h"
#include "pgbackrest.h"
#include "schedule.h"
#include "util.h"

/* Stale checks read the catalog: at most once a minute (more often
 * only when alert_repeat is shorter than two minutes). */
static long
stale_interval(const struct config *cfg)
{
	long half = cfg->alert_repeat / 2;

	return half < 60 ? (half < 5 ? 5 : half) : 60;
}

/* pgbackrest targets have one backup schedule per type: FULL, DIFF, INCR */
enum entry_kind { ENTRY_BACKUP, ENTRY_DRILL, ENTRY_FULL, ENTRY_DIFF,
	ENTRY_INCR };

/* One schedule of one target. */
struct entry {
	char		*target;
	enum entry_kind	 kind;
	struct cron	 cron;
	char		*tz;
	time_t		 handled;	/* slots up to here are dealt with */
	time_t		 next;		/* cron_next(handled), cached */
	int		 attempt;	/* retries used for the current slot */
	time_t		 retry_at;	/* 0, or when to try again */
	int		 alerted;	/* an alert was posted for this slot */
};

/* Per target: pause and stale state. */
struct tstate {
	char		*target;
	char		*paused_by;
	time_t		 paused_at;
	time_t		 paused_until;	/* 0: until resumed */
	int		 paused;
	time_t		 since;		/* first seen: the stale clock's start */
	int		 stale;		/* an alert is open */
	time_t		 stale_alerted;
	/* pgbackrest: the WAL archive, probed every archive_interval() */
	time_t		 archive_next;
	int		 archive_bad;	/* an alert is open */
	time_t		 archive_alerted;
};

struct sched {
	struct bot	*bot;
	char		*path;		/* state_dir/schedule.json */
	struct entry	*entries;
	size_t		 nentries;
	struct tstate	*ts;
	size_t		 nts;
	/* the day's report thread */
	char		 day[16];
	char		*day_event;
	uint64_t	 day_seq;
	/* the summary post */
	struct cron	 summary;
	int		 have_summary;
	time_t		 summary_handled;
	time_t		 summary_next;
	time_t		 stale_checked;
};

static const char *const entry_names[] = { "backup", "drill", "full",
    "diff", "incr" };

/* ---- pure helpers ----------------------------------------------------- */

long
sched_stale_after(const struct cron *c, const char *tz, long stale_after,
    time_t now)
{
	time_t a, b;
	long gap = 0;

	if (stale_after > 0)
		return stale_after;
	if (c == NULL)
		return 0;
	/* The longest gap between runs over the next week (and a bit). */
	a = cron_next(c, now, tz);
	for (int i = 0; i < 400 && a != (time_t)-1; i++) {
		b = cron_next(c, a, tz);
		if (b == (time_t)-1)
			break;
		if (b - a > gap)
			gap = (long)(b - a);
		if (b - now > 8 * 86400)
			break;
		a = b;
	}
	return gap > 0 ? gap + 2 * 3600 : 0;
}

/* ---- state ------------------------------------------------------------ */

static struct tstate *
tstate(struct sched *s, const char *target)
{
	for (size_t i = 0; i < s->nts; i++)
		if (!strcmp(s->ts[i].target, target))
			return &s->ts[i];
	s->ts = xrealloc(s->ts, (s->nts + 1) * sizeof(*s->ts));
	memset(&s->ts[s->nts], 0, sizeof(s->ts[0]));
	s->ts[s->nts].target = xstrdup(target);
	s->ts[s->nts].since = time(NULL);
	return &s->ts[s->nts++];
}

static void
save(struct sched *s)
{
	cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j,
	    "schedules"), *t = cJSON_AddObjectToObject(j, "targets");
	char *text;

	for (size_t i = 0; i < s->nentries; i++) {
		struct entry *en = &s->entries[i];
		char *key = xasprintf("%s/%s", en->target,
		    entry_names[en->kind]);
		cJSON *o = cJSON_AddObjectToObject(e, key);

		cJSON_AddNumberToObject(o, "handled", (double)en->handled);
		cJSON_AddNumberToObject(o, "attempt", en->attempt);
		cJSON_AddNumberToObject(o, "retry_at", (double)en->retry_at);
		cJSON_AddBoolToObject(o, "alerted", en->alerted);
		free(key);
	}
	for (size_t i = 0; i < s->nts; i++) {
		struct tstate *ts = &s->ts[i];
		cJSON *o = cJSON_AddObjectToObject(t, ts->target);

		cJSON_AddNumberToObject(o, "since", (double)ts->since);
		cJSON_AddBoolToObject(o, "stale", ts->stale);
		cJSON_AddNumberToObject(o, "stale_alerted",
		    (double)ts->stale_alerted);
		if (ts->paused) {
			cJSON_AddStringToObject(o, "paused_by", ts->paused_by);
			cJSON_AddNumberToObject(o, "paused_at",
			    (double)ts->paused_at);
			cJSON_AddNumberToObject(o, "paused_until",
			    (double)ts->paused_until);
		}
	}
	cJSON_AddStringToObject(j, "day", s->day);
	if (s->day_event != NULL)
		cJSON_AddStringToObject(j, "day_event", s->day_event);
	cJSON_AddNumberToObject(j, "summary_handled",
	    (double)s->summary_handled);
	text = cJSON_Print(j);
	if (file_write_atomic(s->path, text, strlen(text), 0600) == -1)
		log_warn("schedule: cannot store %s", s->path);
	free(text);
	cJSON_Delete(j);
}

/* Entries from the configuration, with what the state file remembers. */
static void
build(struct sched *s, const cJSON *old)
{
	const struct config *cfg = s->bot->cfg;
	const cJSON *sch = cJSON_GetObjectItemCaseSensitive(old, "schedules");
	time_t now = time(NULL);
	char *cause = NULL;

	for (size_t i = 0; i < s->nentries; i++) {
		free(s->entries[i].target);
		free(s->entries[i].tz);
	}
	free(s->entries);
	s->entries = NULL;
	s->nentries = 0;
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		const char *exprs[5] = { t->schedule, t->verify_schedule,
		    t->schedule_full, t->schedule_diff, t->schedule_incr };

		for (int k = 0; k < 5; k++) {
			struct entry *en;
			char *key, *why = NULL;
			const cJSON *o;
			struct cron c;

			if (exprs[k] == NULL)
				continue;
			if (cron_parse(exprs[k], &c, &why) == -1) {
				/* checked when the config was read */
				log_warnx("%s: %s", t->name, why);
				free(why);
				continue;
			}
			s->entries = xrealloc(s->entries, (s->nentries + 1) *
			    sizeof(*s->entries));
			en = &s->entries[s->nentries++];
			memset(en, 0, sizeof(*en));
			en->target = xstrdup(t->name);
			en->kind = (enum entry_kind)k;
			en->cron = c;
			en->tz = t->timezone ? xstrdup(t->timezone) : NULL;
			key = xasprintf("%s/%s", t->name, entry_names[k]);
			o = cJSON_GetObjectItemCaseSensitive(sch, key);
			free(key);
			/* never run before: slots start counting now */
			en->handled = o != NULL ? (time_t)json_num(o, "handled") :
			    now;
			en->attempt = json_int(o, "attempt", 0, 100);
			en->retry_at = (time_t)json_num(o, "retry_at");
			en->alerted = cJSON_IsTrue(cJSON_GetObjectItem(o,
			    "alerted"));
			en->next = cron_next(&en->cron, en->handled, en->tz);
		}
		(void)tstate(s, t->name);
	}
	s->have_summary = 0;
	if (cfg->summary_schedule != NULL && cron_parse(cfg->summary_schedule,
	    &s->summary, &cause) == 0) {
		s->have_summary = 1;
		if (s->summary_handled == 0)
			s->summary_handled = now;
		s->summary_next = cron_next(&s->summary, s->summary_handled,
		    NULL);
	}
	free(cause);
}

struct sched *
sched_new(struct bot *bot)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	char *text;
	size_t len;
	cJSON *j = NULL, *it;

	s->bot = bot;
	s->path = xasprintf("%s/schedule.json", bot->cfg->state_dir);
	if ((text = file_read(s->path, 1 << 20, &len)) != NULL) {
		j = cJSON_ParseWithLength(text, len);
		if (j == NULL)
			log_warnx("schedule: %s is unreadable; starting afresh",
			    s->path);
		free(text);
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j,
	    "targets")) {
		struct tstate *ts;

		if (!config_valid_name(it->string))
			continue;
		ts = tstate(s, it->string);
		if (json_num(it, "since") > 0)
			ts->since = (time_t)json_num(it, "since");
		ts->stale = cJSON_IsTrue(cJSON_GetObjectItem(it, "stale"));
		ts->stale_alerted = (time_t)json_num(it, "stale_alerted");
		if (json_str(it, "paused_by") != NULL) {
			ts->paused = 1;
			ts->paused_by = xstrdup(json_str(it, "paused_by"));
			ts->paused_at = (time_t)json_num(it, "paused_at");
			ts->paused_until = (time_t)json_num(it, "paused_until");
		}
	}
	if (json_str(j, "day") != NULL)
		snprintf(s->day, sizeof(s->day), "%s", json_str(j, "day"));
	if (json_str(j, "day_event") != NULL)
		s->day_event = xstrdup(json_str(j, "day_event"));
	s->summary_handled = (time_t)json_num(j, "summary_handled");
	build(s, j);
	cJSON_Delete(j);
	save(s);
	return s;
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nentries; i++) {
		free(s->entries[i].target);
		free(s->entries[i].tz);
	}
	free(s->entries);
	for (size_t i = 0; i < s->nts; i++) {
		free(s->ts[i].target);
		free(s->ts[i].paused_by);
	}
	free(s->ts);
	free(s->day_event);
	free(s->path);
	free(s);
}

void
sched_reload(struct sched *s)
{
	/* keep what is remembered: rebuild from a snapshot of the state */
	char *text;
	size_t len;
	cJSON *j;

	save(s);
	text = file_read(s->path, 1 << 20, &len);
	j = text != NULL ? cJSON_ParseWithLength(text, len) : NULL;
	free(text);
	build(s, j);
	cJSON_Delete(j);
	save(s);
}

/* ---- posting ---------------------------------------------------------- */

/* The room scheduled reports go to: report_room, or the first room. */
static const char *
report_room(struct sched *s)
{
	struct bot *bot = s->bot;

	for (size_t i = 0; i < bot->nrooms; i++)
		if (bot->cfg->report_room == NULL ||
		    !strcmp(bot->rooms[i].configured, bot->cfg->report_room))
			return bot->rooms[i].id;
	return bot->nrooms > 0 ? bot->rooms[0].id : NULL;
}

/* The day's thread root: its event id, or NULL and *seq. */
static const char *
day_thread(struct sched *s, time_t now, uint64_t *seq)
{
	char day[16], title[64];
	struct tm tm;
	struct msg m;

	localtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	if (strcmp(day, s->day) != 0 || (s->day_event == NULL &&
	    s->day_seq == 0)) {
		strftime(title, sizeof(title), "%a %d %b", &tm);
		msg_init(&m);
		msg_textf(&m, "🗓 Backups · %s", title);
		snprintf(s->day, sizeof(s->day), "%s", day);
		free(s->day_event);
		s->day_event = NULL;
		s->day_seq = bot_notice(s->bot, report_room(s), &m);
		msg_release(&m);
		save(s);
	}
	*seq = s->day_seq;
	return s->day_event;
}

void
sched_room_moved(struct sched *s)
{
	free(s->day_event);
	s->day_event = NULL;
	s->day_seq = 0;
	s->day[0] = '\0';
	save(s);
}

/* A message in the day's thread. */
static void
in_day_thread(struct sched *s, struct msg *m)
{
	uint64_t seq = 0;
	const char *root = day_thread(s, time(NULL), &seq);
	const char *room = report_room(s);
	cJSON *c = msg_content(m, MSG_MAX_CONTENT);

	if (room == NULL) {
		cJSON_Delete(c);
		return;
	}
	if (root != NULL) {
		msg_set_thread(c, root, root);
		outbox_push(s->bot->outbox, room, "m.room.message", c, 0, NULL);
	} else
		outbox_push_thread(s->bot->outbox, room, c, seq);
}

/* A top-level alert that mentions every admin, so their clients notify. */
static void
alert(struct sched *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
alert(struct sched *s, const char *fmt, ...)
{
	const struct config *cfg = s->bot->cfg;
	const char *room = report_room(s);
	cJSON *c, *mentions, *ids;
	struct msg m;
	va_list ap;
	char *text;

	if (room == NULL)
		return;
	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	msg_init(&m);
	msg_text(&m, text);
	msg_nl(&m);
	for (size_t i = 0; i < cfg->admins.n; i++)
		msg_textf(&m, "%s%s", i ? " " : "", cfg->admins.v[i]);
	if (s->day_event != NULL) {
		msg_text(&m, " · ");
		{
			char *url = xasprintf("https://matrix.to/#/%s/%s",
			    room, s->day_event);

			msg_link(&m, url, "today's thread");
			free(url);
		}
	}
	c = msg_content(&m, MSG_MAX_CONTENT);
	cJSON_DeleteItemFromObjectCaseSensitive(c, "m.mentions");
	mentions = cJSON_AddObjectToObject(c, "m.mentions");
	ids = cJSON_AddArrayToObject(mentions, "user_ids");
	for (size_t i = 0; i < cfg->admins.n; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(cfg->admins.v[i]));
	outbox_push(s->bot->outbox, room, "m.room.message", c, 0, NULL);
	log_warnx("alert: %s", text);
	msg_release(&m);
	free(text);
}

static void
hhmm(char *out, size_t n, time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, n, "%H:%M %Z", &tm);
}

/* ---- running ---------------------------------------------------------- */

static struct entry *
entry_for(struct sched *s, const char *target, enum entry_kind kind)
{
	for (size_t i = 0; i < s->nentries; i++)
		if (s->entries[i].kind == kind &&
		    !strcmp(s->entries[i].target, target))
			return &s->entries[i];
	return NULL;
}

/* Which schedule a backup job came from: its type, if it has one. */
static enum entry_kind
entry_of_backup(const struct job *j)
{
	const char *type = j->args != NULL ? j->args[0] : NULL;

	for (int k = ENTRY_FULL; type != NULL && k <= ENTRY_INCR; k++)
		if (!strcmp(type, entry_names[k]))
			return (enum entry_kind)k;
	return ENTRY_BACKUP;
}

/*
 * The backup schedule that says how often a target is backed up: its
 * only one, or for pgbackrest the most frequent type (incr, diff, full).
 */
static struct entry *
backup_entry(struct sched *s, const char *target)
{
	static const enum entry_kind order[] = { ENTRY_BACKUP, ENTRY_INCR,
	    ENTRY_DIFF, ENTRY_FULL };
	struct entry *en;

	for (size_t k = 0; k < nitems(order); k++)
		if ((en = entry_for(s, target, order[k])) != NULL)
			return en;
	return NULL;
}

/* The backup schedule of target that runs next. */
static struct entry *
next_backup_entry(struct sched *s, const char *target)
{
	struct entry *best = NULL;

	for (size_t i = 0; i < s->nentries; i++) {
		struct entry *en = &s->entries[i];

		if (en->kind == ENTRY_DRILL || strcmp(en->target, target) ||
		    en->next == (time_t)-1)
			continue;
		if (best == NULL || en->next < best->next)
			best = en;
	}
	return best;
}

static void
run(struct sched *s, struct entry *en, const char *why)
{
	const char *args[] = { "latest", NULL };
	const char *type[] = { entry_names[en->kind], NULL };
	const char *room = report_room(s);
	const char *root;
	uint64_t seq = 0;
	struct job *j;
	struct msg m;

	if (room == NULL)
		return;
	root = day_thread(s, time(NULL), &seq);
	j = jobs_submit_in(s->bot->jobs, en->kind != ENTRY_DRILL ? JOB_BACKUP :
	    JOB_VERIFY, en->target, en->kind == ENTRY_DRILL ? args :
	    en->kind >= ENTRY_FULL ? type : NULL,
	    "schedule", room, root, root ? 0 : seq, NULL, 0);
	if (j == NULL) {
		msg_init(&m);
		msg_textf(&m, "⏭ scheduled %s of %s skipped: %s",
		    en->kind != ENTRY_DRILL ? "backup" : "restore drill",
		    en->target, jobs_last_error(s->bot->jobs));
		in_day_thread(s, &m);
		msg_release(&m);
		return;
	}
	j->scheduled = 1;
	j->attempt = en->attempt;
	log_info("schedule: %s of %s started (%s)", entry_names[en->kind],
	    en->target, why);
}

void
sched_startup(struct sched *s, time_t now)
{
	for (size_t i = 0; i < s->nentries; i++) {
		struct entry *en = &s->entries[i];
		const struct target *t = config_target(s->bot->cfg, en->target);

		if (en->next == (time_t)-1 || en->next > now)
			continue;
		/* One or more slots passed while the bot was down. */
		en->handled = now;
		en->next = cron_next(&en->cron, now, en->tz);
		en->attempt = 0;
		en->retry_at = 0;
		en->alerted = 0;
		save(s);
		if (t != NULL && t->catch_up &&
		    !sched_paused(s, en->target, NULL, NULL))
			run(s, en, "catch-up: a run was missed while backupbot "
			    "was down");
		else
			log_info("schedule: missed %s of %s not caught up",
			    entry_names[en->kind], en->target);
	}
}

/* Newest good backup (or media run) of target: its end time, or 0. */
static time_t
last_good(const struct config *cfg, const struct target *t)
{
	time_t at = 0;

	if (config_records_runs(t)) {
		cJSON *last, *good;

		catalog_last_runs(cfg, t->name, &last, &good);
		if (good != NULL)
			at = (time_t)json_num(good, "ended");
		cJSON_Delete(last);
		cJSON_Delete(good);
	} else {
		struct backup *list;
		size_t n = catalog_list(cfg, t->name, &list);

		if (n > 0)
			at = list[0].ended;
		catalog_free(list, n);
	}
	return at;
}

static void
stale_check(struct sched *s, time_t now)
{
	const struct config *cfg = s->bot->cfg;

	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		struct entry *en = backup_entry(s, t->name);
		struct tstate *ts = tstate(s, t->name);
		long limit = sched_stale_after(en ? &en->cron : NULL,
		    t->timezone, t->stale_after, now);
		time_t good, ref;
		char age[16], lim[16];

		if (limit <= 0 || sched_paused(s, t->name, NULL, NULL))
			continue;
		good = last_good(cfg, t);
		/* no backup at all: the clock starts when the target
		 * appeared (or its pause ended) */
		ref = good > 0 ? good : ts->since;
		if (now - ref > limit) {
			if (ts->stale && now - ts->stale_alerted <
			    cfg->alert_repeat)
				continue;
			human_age(age, sizeof(age), difftime(now, good ? good :
			    ts->since));
			human_age(lim, sizeof(lim), (double)limit);
			if (good == 0)
				alert(s, "⏰ %s: no good backup at all in %s "
				    "(stale after %s)%s", t->name, age, lim,
				    ts->stale ? ", still" : "");
			else
				alert(s, "⏰ %s: the newest good backup is %s "
				    "old (stale after %s)%s; the bot may have "
				    "been down, the schedule may be wrong, or a "
				    "job may hang", t->name, age, lim,
				    ts->stale ? ", still" : "");
			ts->stale = 1;
			ts->stale_alerted = now;
			save(s);
		} else if (ts->stale) {
			human_age(age, sizeof(age), difftime(now, good));
			alert(s, "✅ resolved: %s has a good backup again (%s "
			    "old)", t->name, age);
			ts->stale = 0;
			save(s);
		}
	}
}

/* The supervisor's word that an archive probe ended (jobs.h on_end). */
static void
archive_probe_done(struct bot *bot, const struct job *j)
{
	if (bot->sched != NULL)
		sched_archive_done(bot->sched, j);
}

/*
 * How often a pgbackrest target's WAL archive is probed: a quarter of
 * stale_after, between 15 s and 15 min.  The daemon never talks to the
 * database: a probe job does, and sched_archive_done judges its facts.
 */
static long
archive_interval(const struct target *t)
{
	long every = t->stale_after > 0 ? t->stale_after / 4 : 900;

	return every < 15 ? 15 : every > 900 ? 900 : every;
}

/* Start the probes that are due; the next time one is, or 0. */
static time_t
archive_watch(struct sched *s, time_t now)
{
	const struct config *cfg = s->bot->cfg;
	const char *room = report_room(s);
	time_t wake = 0;

	for (size_t i = 0; room != NULL && i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		struct tstate *ts;
		const char *args[] = { t->name, NULL };
		struct job *j;

		if (t->kind != TARGET_PGBACKREST ||
		    sched_paused(s, t->name, NULL, NULL))
			continue;
		ts = tstate(s, t->name);
		if (ts->archive_next == 0)
			ts->archive_next = now + 5;	/* after start-up */
		if (ts->archive_next <= now) {
			ts->archive_next = now + archive_interval(t);
			j = jobs_submit_in(s->bot->jobs, JOB_PROBE, t->name,
			    args, "schedule", room, NULL, 0, NULL, 0);
			if (j != NULL) {
				j->scheduled = 1;
				j->on_end = archive_probe_done;
			}
		}
		if (wake == 0 || ts->archive_next < wake)
			wake = ts->archive_next;
	}
	return wake;
}

void
sched_archive_done(struct sched *s, const struct job *j)
{
	const struct target *t = config_target(s->bot->cfg, j->target);
	const cJSON *facts = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j->result, "targets"), j->target);
	struct tstate *ts;
	time_t now = time(NULL);
	char *why;

	if (t == NULL || t->kind != TARGET_PGBACKREST || facts == NULL)
		return;		/* no answer: the next probe tells */
	ts = tstate(s, t->name);
	why = *json_text(facts, "error") ? xstrdup(json_text(facts, "error")) :
	    pgbackrest_archive_problem(t, facts);
	if (why != NULL) {
		if (!ts->archive_bad ||
		    now - ts->archive_alerted >= s->bot->cfg->alert_repeat) {
			alert(s, "⏰ %s: %s%s; point-in-time restores cannot "
			    "reach past the last archived WAL", t->name, why,
			    ts->archive_bad ? " (still)" : "");
			ts->archive_alerted = now;
		}
		ts->archive_bad = 1;
	} else if (ts->archive_bad) {
		alert(s, "✅ resolved: the WAL archive of %s works again",
		    t->name);
		ts->archive_bad = 0;
	}
	free(why);
}

static void
post_summary(struct sched *s, time_t now)
{
	struct msg m;
	const char *room = report_room(s);

	if (room == NULL)
		return;
	msg_init(&m);
	report_summary(s->bot->cfg, now, &m);
	bot_notice(s->bot, room, &m);
	msg_release(&m);
}

int64_t
sched_tick(struct sched *s, time_t now)
{
	time_t wake = 0;

	/* learn the day thread's event id once it is sent */
	if (s->day_event == NULL && s->day_seq != 0 &&
	    outbox_event_id(s->bot->outbox, s->day_seq) != NULL) {
		s->day_event = xstrdup(outbox_event_id(s->bot->outbox,
		    s->day_seq));
		save(s);
	}
	for (size_t i = 0; i < s->nts; i++) {
		struct tstate *ts = &s->ts[i];

		if (ts->paused && ts->paused_until != 0 &&
		    now >= ts->paused_until) {
			struct msg m;

			ts->paused = 0;
			save(s);
			msg_init(&m);
			msg_textf(&m, "⏯ the pause of %s (by %s) ended; its "
			    "schedule runs again", ts->target, ts->paused_by);
			in_day_thread(s, &m);
			msg_release(&m);
		} else if (ts->paused && ts->paused_until != 0 &&
		    (wake == 0 || ts->paused_until < wake))
			wake = ts->paused_until;
	}
	for (size_t i = 0; i < s->nentries; i++) {
		struct entry *en = &s->entries[i];

		if (en->next != (time_t)-1 && en->next <= now) {
			en->handled = now;
			en->next = cron_next(&en->cron, now, en->tz);
			en->attempt = 0;
			en->retry_at = 0;
			en->alerted = 0;
			save(s);
			if (sched_paused(s, en->target, NULL, NULL))
				log_info("schedule: %s of %s skipped (paused)",
				    entry_names[en->kind], en->target);
			else
				run(s, en, "scheduled");
		} else if (en->retry_at != 0 && en->retry_at <= now) {
			en->retry_at = 0;
			en->attempt++;
			save(s);
			if (!sched_paused(s, en->target, NULL, NULL))
				run(s, en, "retry");
		}
		if (en->next != (time_t)-1 && (wake == 0 || en->next < wake))
			wake = en->next;
		if (en->retry_at != 0 && (wake == 0 || en->retry_at < wake))
			wake = en->retry_at;
	}
	if (s->have_summary && s->summary_next != (time_t)-1 &&
	    s->summary_next <= now) {
		s->summary_handled = now;
		s->summary_next = cron_next(&s->summary, now, NULL);
		save(s);
		post_summary(s, now);
	}
	if (s->have_summary && s->summary_next != (time_t)-1 &&
	    (wake == 0 || s->summary_next < wake))
		wake = s->summary_next;
	{
		time_t next = archive_watch(s, now);

		if (next != 0 && (wake == 0 || next < wake))
			wake = next;
	}
	if (now - s->stale_checked >= stale_interval(s->bot->cfg) ||
	    now < s->stale_checked) {
		s->stale_checked = now;
		stale_check(s, now);
	}
	if (wake == 0 || wake > s->stale_checked +
	    stale_interval(s->bot->cfg))
		wake = s->stale_checked + stale_interval(s->bot->cfg);
	return wake > now ? (int64_t)(wake - now) * 1000 : 0;
}

void
sched_job_done(struct sched *s, const struct job *j)
{
	const struct target *t = config_target(s->bot->cfg, j->target);
	const char *st = j->result ? json_text(j->result, "status") : "crashed";
	const char *what = j->kind == JOB_BACKUP ? "backup" : "restore drill";
	int failed = strcmp(st, "ok") != 0 && strcmp(st, "partial") != 0;
	struct entry *en;
	char when[32];
	struct msg m;

	if (j->kind == JOB_BACKUP)
		s->stale_checked = 0;	/* a good backup resolves at once */
	if (!j->scheduled || t == NULL ||
	    (j->kind != JOB_BACKUP && j->kind != JOB_VERIFY))
		return;
	en = entry_for(s, j->target, j->kind == JOB_VERIFY ? ENTRY_DRILL :
	    entry_of_backup(j));
	if (!failed && strcmp(st, "partial") != 0) {
		if (en != NULL && en->alerted) {
			alert(s, "✅ resolved: the %s of %s succeeded%s", what,
			    j->target, j->attempt > 0 ? " on a retry" : "");
			en->alerted = 0;
			save(s);
		}
		return;
	}
	if (!failed) {
		/* partial: a remote missed a copy; a retry would redo it all */
		alert(s, "⚠️ scheduled %s of %s is only partial: %s", what,
		    j->target, "a remote or destination failed (see the "
		    "summary in today's thread)");
		return;
	}
	if (en != NULL && en->attempt < t->retries) {
		en->retry_at = time(NULL) + t->retry_delay;
		hhmm(when, sizeof(when), en->retry_at);
		msg_init(&m);
		msg_textf(&m, "🔁 the scheduled %s of %s failed; retry %d of %d "
		    "at %s", what, j->target, en->attempt + 1, t->retries,
		    when);
		in_day_thread(s, &m);
		msg_release(&m);
		if (!en->alerted)
			alert(s, "🚨 scheduled %s of %s failed: %s (retry %d of "
			    "%d at %s)", what, j->target, j->result ?
			    json_text(j->result, "error") : "the job crashed",
			    en->attempt + 1, t->retries, when);
		en->alerted = 1;
		save(s);
		return;
	}
	alert(s, "🚨 scheduled %s of %s failed%s: %s", what, j->target,
	    t->retries > 0 ? " and no retries are left" : "", j->result ?
	    json_text(j->result, "error") : "the job crashed");
	if (en != NULL) {
		en->alerted = 1;
		save(s);
	}
}

/* ---- pauses ----------------------------------------------------------- */

int
sched_paused(struct sched *s, const char *target, const char **by,
    time_t *until)
{
	for (size_t i = 0; i < s->nts; i++) {
		struct tstate *ts = &s->ts[i];

		if (strcmp(ts->target, target) != 0 || !ts->paused)
			continue;
		if (ts->paused_until != 0 && time(NULL) >= ts->paused_until)
			return 0;
		if (by != NULL)
			*by = ts->paused_by;
		if (until != NULL)
			*until = ts->paused_until;
		return 1;
	}
	return 0;
}

int
sched_pause(struct sched *s, const char *target, const char *by, time_t until,
    char **msg)
{
	const struct config *cfg = s->bot->cfg;
	int n = 0;

	for (size_t i = 0; i < cfg->ntargets; i++) {
		struct tstate *ts;

		if (strcmp(target, "all") != 0 &&
		    strcmp(target, cfg->targets[i].name) != 0)
			continue;
		ts = tstate(s, cfg->targets[i].name);
		ts->paused = 1;
		free(ts->paused_by);
		ts->paused_by = xstrdup(by);
		ts->paused_at = time(NULL);
		ts->paused_until = until;
		n++;
	}
	if (n == 0) {
		*msg = xasprintf("no target '%s'", target);
		return -1;
	}
	save(s);
	if (until != 0) {
		char when[32];

		hhmm(when, sizeof(when), until);
		*msg = xasprintf("⏸ %s paused until %s: scheduled runs are "
		    "skipped (and not caught up), stale alerts are off. "
		    "!backup still works.", target, when);
	} else
		*msg = xasprintf("⏸ %s paused until !resume: scheduled runs "
		    "are skipped (and not caught up), stale alerts are off. "
		    "!backup still works.", target);
	return 0;
}

int
sched_resume(struct sched *s, const char *target, const char *by,
    char **msg)
{
	int n = 0;

	for (size_t i = 0; i < s->nts; i++) {
		struct tstate *ts = &s->ts[i];

		if (strcmp(target, "all") != 0 && strcmp(target,
		    ts->target) != 0)
			continue;
		if (ts->paused)
			n++;
		ts->paused = 0;
		/* a target never backed up: its stale clock restarts */
		ts->since = time(NULL);
	}
	save(s);
	if (n == 0) {
		*msg = xasprintf("%s was not paused", target);
		return -1;
	}
	*msg = xasprintf("⏯ %s resumed by %s: its schedule runs again", target,
	    by);
	return 0;
}

time_t
sched_next_run(struct sched *s, const char *target, int drill)
{
	struct entry *en = drill ? entry_for(s, target, ENTRY_DRILL) :
	    next_backup_entry(s, target);

	if (en == NULL || en->next == (time_t)-1)
		return 0;
	return en->retry_at != 0 && en->retry_at < en->next ? en->retry_at :
	    en->next;
}

int
sched_stale(struct sched *s, const char *target)
{
	for (size_t i = 0; i < s->nts; i++)
		if (!strcmp(s->ts[i].target, target))
			return s->ts[i].stale;
	return 0;
}
