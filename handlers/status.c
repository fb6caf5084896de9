/*
 * status.c - !status: the bot itself, its rooms and its outbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <time.h>

#include "approval.h"
#include "bot.h"
#include "catalog.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "jobs.h"
#include "json.h"
#include "msg.h"
#include "outbox.h"

static void
format_duration(char *out, size_t n, long s)
{
	if (s < 60)
		snprintf(out, n, "%lds", s);
	else if (s < 3600)
		snprintf(out, n, "%ldm %lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, n, "%ldh %ldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(out, n, "%ldd %ldh", s / 86400, (s % 86400) / 3600);
}

/* When the target's backups were last proven restorable. */
static void
status_drill(struct msg *m, const struct config *cfg, const struct target *t,
    time_t now)
{
	char age[16], *id = NULL;
	time_t at;
	int ok;

	if (catalog_last_drill(cfg, t, &at, &ok, &id) == -1) {
		msg_text(m, "; no restore drill yet");
		return;
	}
	cli_age(age, sizeof(age), difftime(now, at));
	msg_textf(m, "; restore drill %s %s ago (", ok ? "✓" : "✗ FAILED",
	    age);
	msg_code(m, id);
	msg_text(m, ")");
	free(id);
}

/* Restore requests waiting for approval, or running. */
static void
status_requests(struct bot *bot, struct msg *m)
{
	for (struct request *r = approvals_first(bot->approvals); r != NULL;
	    r = r->next) {
		if (r->state != REQ_PENDING && r->state != REQ_RUNNING)
			continue;
		msg_nl(m);
		msg_text(m, "• restore request ");
		msg_code(m, r->id);
		msg_textf(m, " of %s by %s: %s, %d of %d approval(s)",
		    r->target, r->requester, approval_state_name(r->state),
		    approval_count(r), r->needed);
	}
}

static void
status_targets(struct bot *bot, struct msg *m)
{
	const struct config *cfg = bot->cfg;
	time_t now = time(NULL);

	msg_nl(m);
	msg_textf(m, "targets (%zu):", cfg->ntargets);
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		struct backup *list;
		size_t n = catalog_list(cfg, t->name, &list);
		char age[16], size[16];

		msg_nl(m);
		msg_text(m, "• ");
		msg_code(m, t->name);
		msg_textf(m, " (%s): ", config_kind_name(t->kind));
		if (t->kind == TARGET_MEDIA) {
			cJSON *last, *good;

			catalog_last_runs(cfg, t->name, &last, &good);
			if (good == NULL)
				msg_text(m, "no good sync yet");
			else {
				cli_age(age, sizeof(age), difftime(now,
				    (time_t)json_num(good, "started")));
				msg_textf(m, "last good sync %s ago (%s)", age,
				    json_text(good, "status"));
			}
			if (last != NULL && strcmp(json_text(last, "status"),
			    "ok") != 0 && last != good &&
			    json_num(last, "started") > (good ?
			    json_num(good, "started") : 0))
				msg_textf(m, "; the last run failed: %s",
				    json_text(last, "error"));
			cJSON_Delete(last);
			cJSON_Delete(good);
			catalog_free(list, n);
			status_drill(m, cfg, t, now);
			continue;
		}
		if (n == 0)
			msg_text(m, "no good backup yet");
		else {
			cli_age(age, sizeof(age), difftime(now,
			    list[0].started));
			cli_size(size, sizeof(size), (double)list[0].bytes);
			msg_textf(m, "last good backup %s ago, %s, %s; %zu "
			    "kept", age, size, list[0].status, n);
		}
		catalog_free(list, n);
		status_drill(m, cfg, t, now);
	}
}

static void
status_jobs(struct bot *bot, struct msg *m)
{
	int n = 0;

	for (struct job *j = jobs_first(bot->jobs); j != NULL; j = j->next) {
		char done[16], total[16];

		if (j->state == JOB_DONE)
			continue;
		if (n++ == 0) {
			msg_nl(m);
			msg_text(m, "jobs:");
		}
		msg_nl(m);
		cli_size(done, sizeof(done), (double)j->done);
		cli_size(total, sizeof(total), (double)j->total);
		if (j->state == JOB_QUEUED)
			msg_textf(m, "• job %d: %s of %s, queued (by %s)",
			    j->number, jobs_kind_word(j->kind), j->target,
			    j->requester);
		else
			msg_textf(m, "• job %d: %s of %s, running (by %s): %s "
			    "%s of ~%s", j->number, jobs_kind_word(j->kind),
			    j->target,
			    j->requester, j->phase ? j->phase : "starting",
			    done, total);
	}
	if (n == 0) {
		msg_nl(m);
		msg_text(m, "jobs: none running");
	}
}

static int
status_exec(struct cmd_ctx *ctx)
{
	struct bot *bot = ctx->bot;
	char up[64];
	struct msg m;

	format_duration(up, sizeof(up), (long)(time(NULL) - bot->started));
	msg_init(&m);
	msg_bold(&m, "backupbot " BB_VERSION);
	msg_nl(&m);
	msg_textf(&m, "uptime: %s", up);
	msg_nl(&m);
	msg_text(&m, "homeserver: ");
	msg_code(&m, bot->cfg->homeserver);
	msg_textf(&m, " as %s", bot->user_id);
	msg_nl(&m);
	msg_textf(&m, "rooms (%zu):", bot->nrooms);
	for (size_t i = 0; i < bot->nrooms; i++) {
		const struct room *r = &bot->rooms[i];

		msg_nl(&m);
		msg_text(&m, "• ");
		msg_code(&m, r->configured);
		msg_textf(&m, " %s%s", r->joined ? "joined" : "NOT joined",
		    r->encrypted ? ", encrypted (commands unreadable)" : "");
	}
	msg_nl(&m);
	msg_textf(&m, "outbox: %zu message(s) waiting",
	    outbox_depth(bot->outbox));
	status_targets(bot, &m);
	status_jobs(bot, &m);
	status_requests(bot, &m);
	bot_reply(ctx, &m);
	msg_release(&m);
	return 0;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "",
	.summary = "how the bot is doing: targets, jobs, rooms, outbox",
	.min_args = 0,
	.max_args = 0,
	.exec = status_exec,
};
