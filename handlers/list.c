/*
 * list.c - !list [TARGET] [N]: the catalog, newest first.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bot.h"
#include "catalog.h"
#include "human.h"
#include "json.h"
#include "cmd.h"
#include "config.h"
#include "msg.h"
#include "retention.h"
#include "util.h"

static void
list_when(struct msg *m, double at)
{
	char buf[32];
	struct tm tm;
	time_t t = (time_t)at;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S+00", &tm);
	msg_code(m, buf);
}

/*
 * pgBackRest's sets, as `pgbackrest info` told the newest run (the daemon
 * never runs it: the job recorded it).
 */
static void
list_pgbackrest(struct msg *m, const struct config *cfg,
    const struct target *t, long max)
{
	cJSON *last, *good;
	const cJSON *info, *it;
	char age[16], size[16], delta[16];
	long shown = 0;
	int n;

	catalog_last_runs(cfg, t->name, &last, &good);
	msg_nl(m);
	msg_bold(m, t->name);
	msg_textf(m, " (pgbackrest, stanza %s, %s retention): ", t->stanza,
	    t->pgbackrest_keep ? t->pgbackrest_keep :
	    "pgbackrest.conf's");
	info = good ? cJSON_GetObjectItemCaseSensitive(good, "info") : NULL;
	if (info == NULL) {
		msg_text(m, "no backup by backupbot yet");
		goto done;
	}
	n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(info, "sets"));
	human_age(age, sizeof(age), difftime(time(NULL),
	    (time_t)json_num(good, "ended")));
	msg_textf(m, "%d set(s) as of %s ago; restorable from ", n, age);
	list_when(m, json_num(info, "earliest"));
	msg_text(m, " (the oldest set's end) to the newest archived WAL "
	    "(the newest set ended ");
	list_when(m, json_num(info, "latest"));
	msg_text(m, ")");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(info, "wal")) {
		msg_nl(m);
		msg_textf(m, "WAL in repo%.0f: %s … %s", json_num(it, "repo"),
		    json_text(it, "min"), json_text(it, "max"));
	}
	/* newest first: pgBackRest lists oldest first */
	for (it = cJSON_GetObjectItemCaseSensitive(info, "sets") ?
	    cJSON_GetObjectItemCaseSensitive(info, "sets")->child : NULL;
	    it != NULL && it->next != NULL; it = it->next)
		;
	for (; it != NULL && shown < max; it = it->prev, shown++) {
		human_size(size, sizeof(size), json_num(it, "size"));
		human_size(delta, sizeof(delta), json_num(it, "repo_size"));
		msg_nl(m);
		msg_text(m, "• ");
		msg_code(m, json_text(it, "label"));
		msg_textf(m, " %s in repo%.0f, %s (%s stored), ended ",
		    json_text(it, "type"), json_num(it, "repo"), size, delta);
		list_when(m, json_num(it, "stop"));
		msg_textf(m, ", WAL %s … %s", json_text(it, "wal_start"),
		    json_text(it, "wal_stop"));
		/* cJSON's first item's prev is the last: stop there */
		if (it == cJSON_GetObjectItemCaseSensitive(info,
		    "sets")->child)
			break;
	}
	if (good != NULL && cJSON_GetObjectItemCaseSensitive(good, "drill")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(good,
		    "drill");

		human_age(age, sizeof(age), difftime(time(NULL),
		    (time_t)json_num(d, "at")));
		msg_nl(m);
		msg_textf(m, "restore drill %s %s ago",
		    !strcmp(json_text(d, "status"), "ok") ? "✓" : "✗", age);
	}
done:
	cJSON_Delete(last);
	cJSON_Delete(good);
}

static void
list_target(struct msg *m, const struct config *cfg, const struct target *t,
    long max)
{
	struct backup *list;
	struct keep_item *items;
	size_t n;
	time_t now = time(NULL);

	if (t->kind == TARGET_PGBACKREST) {
		list_pgbackrest(m, cfg, t, max);
		return;
	}
	if (config_records_runs(t)) {
		cJSON *last, *good;
		char age[16];

		catalog_last_runs(cfg, t->name, &last, &good);
		msg_nl(m);
		msg_bold(m, t->name);
		if (t->kind == TARGET_SCRIPT)
			msg_text(m, " (script, its output kept as logs in "
			    "state_dir/logs): ");
		else
			msg_textf(m, " (media, synced to %zu destination(s), "
			    "only the latest copy kept): ", t->destinations.n);
		if (last == NULL)
			msg_text(m, "never run");
		else {
			human_age(age, sizeof(age), difftime(now,
			    (time_t)json_num(last, "started")));
			msg_textf(m, "last run %s ago, %s", age,
			    json_text(last, "status"));
		}
		cJSON_Delete(last);
		cJSON_Delete(good);
		return;
	}
	n = catalog_list(cfg, t->name, &list);

	msg_nl(m);
	msg_bold(m, t->name);
	msg_textf(m, " (%s, keep %s): %zu backup(s)",
	    config_kind_name(t->kind), t->keep.set ? t->keep_text : "all", n);
	items = catalog_keep(t, list, n);
	for (size_t i = 0; i < n && (long)i < max; i++) {
		const cJSON *rem = cJSON_GetObjectItemCaseSensitive(
		    list[i].manifest, "remotes"), *it;
		char age[16], size[16];

		human_age(age, sizeof(age), difftime(now, list[i].started));
		human_size(size, sizeof(size), (double)list[i].bytes);
		msg_nl(m);
		msg_text(m, "• ");
		msg_code(m, list[i].id);
		msg_textf(m, " %s ago, %s", age, size);
		cJSON_ArrayForEach(it, rem) {
			const cJSON *st = cJSON_GetObjectItemCaseSensitive(it,
			    "status");
			int ok = cJSON_IsString(st) &&
			    !strcmp(st->valuestring, "ok");

			msg_textf(m, ", %s %s", it->string, ok ? "✓" : "✗");
		}
		msg_textf(m, " · kept as %s", t->keep.set ? items[i].reasons :
		    "all");
		{
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(
			    list[i].manifest, "drill");

			if (d != NULL) {
				human_age(age, sizeof(age), difftime(now,
				    (time_t)json_num(d, "at")));
				msg_textf(m, " · restore drill %s %s ago",
				    !strcmp(json_text(d, "status"), "ok") ?
				    "✓" : "✗", age);
			}
		}
	}
	if ((long)n > max)
		msg_textf(m, " (and %zu older)", n - (size_t)max);
	free(items);
	catalog_free(list, n);
}

static int
list_exec(struct cmd_ctx *ctx)
{
	const struct config *cfg = ctx->bot->cfg;
	const char *only = NULL;
	long long max = 10;
	struct msg m;

	msg_init(&m);
	for (int i = 1; i < ctx->argc; i++) {
		if (str_to_ll(ctx->argv[i], 1, 1000, &max) == 0)
			continue;
		if (only == NULL && config_target(cfg, ctx->argv[i]) != NULL) {
			only = ctx->argv[i];
			continue;
		}
		msg_textf(&m, "\"%s\" is neither a target nor a count (1-1000)."
		    " Usage: %slist [TARGET] [N]", ctx->argv[i],
		    cfg->command_prefix);
		bot_reply(ctx, &m);
		msg_release(&m);
		return -1;
	}
	msg_bold(&m, "Catalog");
	if (cfg->ntargets == 0)
		msg_text(&m, ": no targets configured.");
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (only == NULL || !strcmp(only, cfg->targets[i].name))
			list_target(&m, cfg, &cfg->targets[i], (long)max);
	bot_reply(ctx, &m);
	msg_release(&m);
	return 0;
}

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.usage = "[TARGET] [N]",
	.summary = "the catalog, newest first: age, size, remotes, kept as",
	.min_args = 0,
	.max_args = 2,
	.exec = list_exec,
	.flags = CMD_READONLY,
};
