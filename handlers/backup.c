/*
 * backup.c - !backup TARGET|KIND|all: run backups now, in the thread.
 */
#include <stdlib.h>
#include <string.h>

#include "bot.h"
#include "cmd.h"
#include "config.h"
#include "jobs.h"
#include "msg.h"
#include "pgbackrest.h"

static int
backup_exec(struct cmd_ctx *ctx)
{
	const struct config *cfg = ctx->bot->cfg;
	const char *what = ctx->argv[1];
	const char *type = ctx->argc > 2 ? ctx->argv[2] : NULL;
	const char *args[] = { type, NULL };
	int matched = 0, group;
	struct msg m;

	msg_init(&m);
	if (type != NULL && (!pgbackrest_valid_type(type) ||
	    config_target(cfg, what) == NULL ||
	    config_target(cfg, what)->kind != TARGET_PGBACKREST)) {
		msg_text(&m, "A backup type (full, diff or incr) is for one "
		    "pgbackrest target: !backup NAME full|diff|incr.");
		bot_reply(ctx, &m);
		msg_release(&m);
		return -1;
	}
	if (!config_valid_name(what)) {
		msg_text(&m, "Not a target name: names are a-z, 0-9, _ and -. "
		    "See !status for the targets.");
		bot_reply(ctx, &m);
		msg_release(&m);
		return -1;
	}
	group = jobs_new_group(ctx->bot->jobs);
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];

		if (strcmp(what, "all") != 0 && strcmp(what, t->name) != 0 &&
		    strcmp(what, config_kind_name(t->kind)) != 0)
			continue;
		matched++;
		if (jobs_submit(ctx->bot->jobs, JOB_BACKUP, t->name,
		    type != NULL ? args : NULL,
		    ctx->sender, ctx->room_id, ctx->thread_root, ctx->event_id,
		    group) == NULL) {
			if (m.plain.len > 0)
				msg_nl(&m);
			msg_textf(&m, "⚠️ %s",
			    jobs_last_error(ctx->bot->jobs));
		}
	}
	if (matched == 0) {
		msg_textf(&m, "No target \"%s\".", what);
		if (cfg->ntargets > 0) {
			msg_text(&m, " Targets:");
			for (size_t i = 0; i < cfg->ntargets; i++)
				msg_textf(&m, " %s", cfg->targets[i].name);
		} else
			msg_text(&m, " None is configured yet: add a "
			    "[postgres NAME] section to bot.conf.");
	}
	if (m.plain.len > 0)
		bot_reply(ctx, &m);
	msg_release(&m);
	return matched ? 0 : -1;
}

const struct cmd_entry cmd_backup_entry = {
	.name = "backup",
	.usage = "TARGET|postgres|all [full|diff|incr]",
	.summary = "back up a target (or every target of a kind, or all) now",
	.min_args = 1,
	.max_args = 2,
	.flags = CMD_SLOW,
	.exec = backup_exec,
};
