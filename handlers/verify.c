/*
 * verify.c - !verify TARGET [ID|latest]: a restore drill.  Every byte of
 * the backup is checked, then it is restored into a scratch copy
 * (database, temporary redis-server, directory), compared with its
 * manifest and the copy removed; media destinations are compared with
 * the source.  The outcome is recorded in the catalog.
 */
#include <string.h>

#include "bot.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "jobs.h"
#include "msg.h"

static int
verify_exec(struct cmd_ctx *ctx)
{
	const struct config *cfg = ctx->bot->cfg;
	const char *target = ctx->argv[1];
	const char *id = ctx->argc > 2 ? ctx->argv[2] : "latest";
	const char *args[] = { id, NULL };
	const struct target *t;
	struct msg m;

	msg_init(&m);
	/* Checked before it reaches a path or an argv. */
	if (!config_valid_name(target) ||
	    (t = config_target(cfg, target)) == NULL) {
		msg_textf(&m, "No target \"%s\" (see %sstatus).", target,
		    cfg->command_prefix);
		goto refuse;
	}
	if (strcmp(id, "latest") != 0 && (!catalog_valid_id(id) ||
	    strncmp(id, target, strlen(target)) != 0 ||
	    id[strlen(target)] != '-')) {
		msg_textf(&m, "\"%s\" is not a backup id of %s (see %slist %s).",
		    id, target, cfg->command_prefix, target);
		goto refuse;
	}
	if (jobs_submit(ctx->bot->jobs, JOB_VERIFY, target, args, ctx->sender,
	    ctx->room_id, ctx->thread_root, ctx->event_id, 0) == NULL) {
		msg_textf(&m, "⚠️ %s", jobs_last_error(ctx->bot->jobs));
		goto refuse;
	}
	msg_release(&m);
	return 0;

refuse:
	bot_reply(ctx, &m);
	msg_release(&m);
	return -1;
}

const struct cmd_entry cmd_verify_entry = {
	.name = "verify",
	.usage = "TARGET [ID|latest]",
	.summary = "restore drill: check every byte, restore into a scratch "
	    "copy, compare with the manifest, remove the copy",
	.min_args = 1,
	.max_args = 2,
	.flags = CMD_SLOW,
	.exec = verify_exec,
};
