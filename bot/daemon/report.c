/*
 * report.c - the weekly summary: catalog, ledger trends, free space
 * (report.h).
 */
#include <sys/statvfs.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "catalog.h"
#include "config.h"
#include "human.h"
#include "json.h"
#include "metrics.h"
#include "msg.h"
#include "report.h"
#include "util.h"

#define DAY		86400

static const char *const spark_bars[] = {
	"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"
};
#define SPARK_GAP	"·"
#define SPARK_FLAT	3		/* ▄ */

/* One target's days, from the ledger. */
struct trend {
	const char	*target;
	time_t		 at[REPORT_DAYS];
	double		 bytes[REPORT_DAYS];
	double		 duration[REPORT_DAYS];
	int		 present[REPORT_DAYS];
	int		 failures;
};

struct trends {
	struct trend	*v;
	size_t		 n;
	time_t		 now;
};

static int
spark_shown(const double *values, const int *present, size_t i)
{
	return (present == NULL || present[i]) && isfinite(values[i]);
}

char *
report_sparkline(const double *values, size_t n, const int *present)
{
	double lo = 0, hi = 0;
	int any = 0;
	struct buf b;

	for (size_t i = 0; i < n; i++) {
		if (!spark_shown(values, present, i))
			continue;
		if (!any || values[i] < lo)
			lo = values[i];
		if (!any || values[i] > hi)
			hi = values[i];
		any = 1;
	}
	buf_init(&b, SIZE_MAX / 2);
	buf_add(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		double f;
		int level = SPARK_FLAT;

		if (!spark_shown(values, present, i)) {
			buf_adds(&b, SPARK_GAP);
			continue;
		}
		if (hi > lo) {
			f = (values[i] - lo) / (hi - lo);
			/* NaN (from infinite ranges) falls to the bottom */
			if (!(f >= 0))
				f = 0;
			if (f > 1)
				f = 1;
			level = (int)(f * 7 + 0.5);
		}
		buf_adds(&b, spark_bars[level]);
	}
	return buf_detach(&b, NULL);
}

/* ---- the ledger's last days ------------------------------------------- */

static void
trend_line(const cJSON *end, void *arg)
{
	struct trends *ts = arg;
	const char *target = json_text(end, "target");
	const char *status = json_text(end, "status");
	struct trend *t = NULL;
	double at, bytes, duration;
	int slot;

	if (json_get_num(end, "at", &at) == -1 || at > (double)ts->now ||
	    at <= (double)ts->now - REPORT_DAYS * (double)DAY)
		return;
	for (size_t i = 0; i < ts->n && t == NULL; i++)
		if (!strcmp(ts->v[i].target, target))
			t = &ts->v[i];
	if (t == NULL)
		return;
	if (metrics_is_failed_backup(end)) {
		t->failures++;
		return;
	}
	if (strcmp(json_text(end, "kind"), "backup") != 0 ||
	    (strcmp(status, "ok") != 0 && strcmp(status, "partial") != 0) ||
	    json_get_num(end, "bytes", &bytes) == -1 ||
	    json_get_num(end, "duration", &duration) == -1)
		return;
	/* the last slot is the 24 hours up to now */
	slot = REPORT_DAYS - 1 - (int)(((double)ts->now - at) / DAY);
	if (t->present[slot] && t->at[slot] > (time_t)at)
		return;
	t->present[slot] = 1;
	t->at[slot] = (time_t)at;
	t->bytes[slot] = bytes;
	t->duration[slot] = duration;
}

/* ---- pieces of the message -------------------------------------------- */

/* A new line under a target's. */
static void
sub_line(struct msg *m)
{
	msg_nl(m);
	msg_text(m, "   ");
}

static void
report_spark(struct msg *m, const char *what, const double *values,
    const int *present, void (*format)(char *, size_t, double))
{
	char *s = report_sparkline(values, REPORT_DAYS, present);
	char lo[32], hi[32];
	double min = 0, max = 0;
	int any = 0;

	for (size_t i = 0; i < REPORT_DAYS; i++) {
		if (!present[i])
			continue;
		if (!any || values[i] < min)
			min = values[i];
		if (!any || values[i] > max)
			max = values[i];
		any = 1;
	}
	format(lo, sizeof(lo), min);
	format(hi, sizeof(hi), max);
	sub_line(m);
	msg_textf(m, "%s trend: ", what);
	msg_code(m, s);
	if (!strcmp(lo, hi))
		msg_textf(m, " %s", lo);
	else
		msg_textf(m, " %s – %s", lo, hi);
	free(s);
}

static void
report_trend(struct msg *m, const struct trend *t, int media)
{
	int any = 0;

	for (size_t i = 0; i < REPORT_DAYS; i++)
		any |= t->present[i];
	if (!any) {
		sub_line(m);
		msg_textf(m, "no good %s in the last %d days",
		    media ? "sync" : "backup", REPORT_DAYS);
	} else {
		report_spark(m, media ? "copied" : "size", t->bytes,
		    t->present, human_size);
		report_spark(m, "duration", t->duration, t->present,
		    human_duration);
	}
	if (t->failures > 0) {
		sub_line(m);
		msg_textf(m, "⚠️ %d failed %s in the last %d days",
		    t->failures, media ? (t->failures == 1 ? "sync" :
		    "syncs") : (t->failures == 1 ? "backup" : "backups"),
		    REPORT_DAYS);
	}
}

/* ✓, ✗ or ? for each name, from a "remotes" or "destinations" object. */
static void
report_copies(struct msg *m, const char *what, const struct strlist *names,
    const cJSON *copies)
{
	sub_line(m);
	if (names->n == 0) {
		msg_textf(m, "%s: none configured", what);
		return;
	}
	msg_textf(m, "%s:", what);
	for (size_t i = 0; i < names->n; i++) {
		const char *st = json_text(cJSON_GetObjectItemCaseSensitive(
		    copies, names->v[i]), "status");

		/* ?: no copy recorded (a remote added since, say) */
		msg_textf(m, "%s %s ", i > 0 ? "," : "", !strcmp(st, "ok") ?
		    "✓" : !strcmp(st, "failed") ? "✗" : "?");
		msg_code(m, names->v[i]);
	}
}

static void
report_drill(struct msg *m, const struct config *cfg,
    const struct target *t, time_t now)
{
	char age[16], *id = NULL;
	time_t at;
	int ok;

	sub_line(m);
	if (catalog_last_drill(cfg, t, &at, &ok, &id) == -1) {
		msg_text(m, "restore drill: never");
		return;
	}
	human_age(age, sizeof(age), difftime(now, at));
	msg_textf(m, "restore drill: %s %s ago (", ok ? "✓" : "✗ FAILED",
	    age);
	msg_code(m, id);
	msg_text(m, ")");
	free(id);
}

static void
report_backups(struct msg *m, const struct config *cfg,
    const struct target *t, time_t now)
{
	struct backup *list;
	size_t n = catalog_list(cfg, t->name, &list);
	char age[16], size[16], total[16];
	double sum = 0;

	if (n == 0)
		msg_text(m, "no good backup yet");
	else {
		for (size_t i = 0; i < n; i++)
			sum += (double)list[i].bytes;
		human_age(age, sizeof(age), difftime(now, list[0].started));
		human_size(size, sizeof(size), (double)list[0].bytes);
		human_size(total, sizeof(total), sum);
		msg_textf(m, "last good backup %s ago, %s; %zu kept, %s in "
		    "all", age, size, n, total);
	}
	report_copies(m, "remotes", &t->remotes, n > 0 ?
	    cJSON_GetObjectItemCaseSensitive(list[0].manifest, "remotes") :
	    NULL);
	catalog_free(list, n);
}

/* pgBackRest: the newest good backup and each repository's set. */
static void
report_pgbackrest(struct msg *m, const struct config *cfg,
    const struct target *t, time_t now)
{
	cJSON *last, *good;
	const cJSON *it;
	char age[16], size[16];

	catalog_last_runs(cfg, t->name, &last, &good);
	if (good == NULL)
		msg_text(m, "no good backup yet");
	else {
		human_age(age, sizeof(age), difftime(now,
		    (time_t)json_num(good, "started")));
		human_size(size, sizeof(size), json_num(good, "bytes"));
		msg_textf(m, "last good %s backup %s ago, %s",
		    json_text(good, "type"), age, size);
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(good,
		    "repos"))
			msg_textf(m, " · %s %s", it->string,
			    !strcmp(json_text(it, "status"), "ok") ? "✓" : "✗");
	}
	if (last != NULL && (good == NULL || strcmp(json_text(last, "id"),
	    json_text(good, "id")) != 0)) {
		sub_line(m);
		msg_textf(m, "⚠️ the last backup failed: %s",
		    json_text(last, "error"));
	}
	cJSON_Delete(last);
	cJSON_Delete(good);
}

static void
report_runs(struct msg *m, const struct config *cfg,
    const struct target *t, time_t now)
{
	cJSON *last, *good;
	char age[16], size[16];

	catalog_last_runs(cfg, t->name, &last, &good);
	if (good == NULL)
		msg_text(m, t->kind == TARGET_SCRIPT ? "no good run yet" :
		    "no good sync yet");
	else {
		human_age(age, sizeof(age), difftime(now,
		    (time_t)json_num(good, "started")));
		human_size(size, sizeof(size), json_num(good, "bytes"));
		if (t->kind == TARGET_SCRIPT)
			msg_textf(m, "last good run %s ago", age);
		else
			msg_textf(m, "last good sync %s ago, %s copied; the "
			    "destinations hold the latest copy", age, size);
	}
	/* a newer run that was not good */
	if (last != NULL && (good == NULL || strcmp(json_text(last, "id"),
	    json_text(good, "id")) != 0)) {
		sub_line(m);
		msg_textf(m, "⚠️ the last run %s%s%s",
		    !strcmp(json_text(last, "status"), "cancelled") ?
		    "was cancelled" : "failed",
		    *json_text(last, "error") ? ": " : "",
		    json_text(last, "error"));
	}
	report_copies(m, "destinations", &t->destinations, last != NULL ?
	    cJSON_GetObjectItemCaseSensitive(last, "destinations") : NULL);
	cJSON_Delete(last);
	cJSON_Delete(good);
}

static void
report_space(struct msg *m, const char *dir)
{
	struct statvfs sv;
	char avail[16], total[16];
	double a, t;

	msg_nl(m);
	if (statvfs(dir, &sv) == -1) {
		msg_text(m, "free space in ");
		msg_code(m, dir);
		msg_textf(m, ": unknown (%s)", strerror(errno));
		return;
	}
	a = (double)sv.f_bavail * (double)sv.f_frsize;
	t = (double)sv.f_blocks * (double)sv.f_frsize;
	human_size(avail, sizeof(avail), a);
	human_size(total, sizeof(total), t);
	msg_text(m, t > 0 && a / t < 0.1 ? "⚠️ free space in " :
	    "free space in ");
	msg_code(m, dir);
	msg_textf(m, ": %s of %s (%.0f%%)", avail, total, t > 0 ?
	    100 * a / t : 0);
}

void
report_summary(const struct config *cfg, time_t now, struct msg *m)
{
	struct trends ts;
	char *cause = NULL;

	ts.n = cfg->ntargets;
	ts.now = now;
	ts.v = xcalloc(cfg->ntargets + 1, sizeof(*ts.v));
	for (size_t i = 0; i < cfg->ntargets; i++)
		ts.v[i].target = cfg->targets[i].name;
	metrics_ledger_ends(cfg, REPORT_LEDGER_TAIL, trend_line, &ts, &cause);

	msg_bold(m, "Weekly summary");
	msg_nl(m);
	msg_textf(m, "Trends: one character a day for the last %d days, "
	    "newest last; %s: no good backup that day.", REPORT_DAYS,
	    SPARK_GAP);
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];

		msg_nl(m);
		msg_text(m, "• ");
		msg_code(m, t->name);
		msg_textf(m, " (%s): ", config_kind_name(t->kind));
		if (t->kind == TARGET_PGBACKREST)
			report_pgbackrest(m, cfg, t, now);
		else if (config_records_runs(t))
			report_runs(m, cfg, t, now);
		else
			report_backups(m, cfg, t, now);
		report_drill(m, cfg, t, now);
		report_trend(m, &ts.v[i], config_records_runs(t));
	}
	if (cause != NULL) {
		msg_nl(m);
		msg_textf(m, "⚠️ trends incomplete: %s", cause);
		free(cause);
	}
	report_space(m, cfg->backup_dir);
	free(ts.v);
}
