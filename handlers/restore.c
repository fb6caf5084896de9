/*
 * restore.c - !restore TARGET [ID|latest] [--into NAME] [--replace]
 * [--flush] [--from DEST]: ask for a restore.  Nothing is restored here:
 * the arguments are checked, a check job verifies the backup, and the
 * approval flow (bot/approval.c) posts the plan and waits for other
 * admins.  Never run from the backlog.
 */
#include <stdlib.h>
#include <string.h>

#include "approval.h"
#include "backend.h"
#include "bot.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "jobs.h"
#include "msg.h"
#include "pgbackrest.h"
#include "restore.h"

static int
restore_exec(struct cmd_ctx *ctx)
{
	const struct config *cfg = ctx->bot->cfg;
	const char *target = ctx->argv[1], *id = "latest";
	const char *args[JOB_MAX_ARGS];
	const struct target *t;
	const struct request *open;
	struct restore_opts ro;
	char *cause = NULL;
	int nargs = 1, have_id = 0;
	struct msg m;

	msg_init(&m);
	memset(&ro, 0, sizeof(ro));
	/* Every word is checked before it reaches a path or an argv. */
	if (!config_valid_name(target) ||
	    (t = config_target(cfg, target)) == NULL) {
		msg_textf(&m, "No target \"%s\" (see %sstatus).", target,
		    cfg->command_prefix);
		goto refuse;
	}
	for (int i = 2; i < ctx->argc; i++) {
		const char *a = ctx->argv[i];

		if (!strcmp(a, "--replace") && !ro.replace)
			ro.replace = 1;
		else if (!strcmp(a, "--flush") && !ro.flush)
			ro.flush = 1;
		else if (!strcmp(a, "--into") && i + 1 < ctx->argc &&
		    ro.into == NULL)
			ro.into = ctx->argv[++i];
		else if (!strcmp(a, "--from") && i + 1 < ctx->argc &&
		    ro.from == NULL)
			ro.from = ctx->argv[++i];
		else if (!strcmp(a, "--time") && i + 1 < ctx->argc &&
		    ro.time == NULL)
			ro.time = ctx->argv[++i];
		else if (!strcmp(a, "--set") && i + 1 < ctx->argc && !have_id) {
			id = ctx->argv[++i];
			have_id = 1;
		}
		else if (a[0] != '-' && !have_id) {
			id = a;
			have_id = 1;
		} else {
			msg_text(&m, "I cannot use ");
			msg_code(&m, a);
			msg_textf(&m, " here. Usage: %srestore TARGET [ID|latest]"
			    " [--into NAME] [--replace] [--flush] [--from DEST]"
			    " [--time 'YYYY-MM-DD HH:MM:SS+00'] [--set ID]",
			    cfg->command_prefix);
			goto refuse;
		}
	}
	if (t->kind == TARGET_PGBACKREST) {
		if (strcmp(id, "latest") != 0 && !pgbackrest_valid_set(id)) {
			msg_text(&m, "Not a pgBackRest backup set: ");
			msg_code(&m, id);
			msg_textf(&m, " (labels look like 20261207-002654F or "
			    "20261207-002654F_20261207-010000I; see %slist %s).",
			    cfg->command_prefix, target);
			goto refuse;
		}
	} else if (strcmp(id, "latest") != 0 && (!catalog_valid_id(id) ||
	    strncmp(id, target, strlen(target)) != 0 ||
	    id[strlen(target)] != '-')) {
		msg_text(&m, "Not a backup id of ");
		msg_code(&m, target);
		msg_textf(&m, " (see %slist %s); ids look like %s-"
		    "20261126T030000Z, or say latest.", cfg->command_prefix,
		    target, target);
		goto refuse;
	}
	if (restore_check(t, &ro, &cause) == -1) {
		msg_textf(&m, "Cannot restore %s: %s.", target, cause);
		goto refuse;
	}
	if (cfg->approvals_required > 0 &&
	    cfg->admins.n < (size_t)cfg->approvals_required + 1) {
		msg_textf(&m, "No restore is possible: it needs %d approval(s) "
		    "from other admins and only %zu admin(s) are configured. "
		    "Add admins, or on a one-admin server set "
		    "approvals_required = 0 in [restore].",
		    cfg->approvals_required, cfg->admins.n);
		goto refuse;
	}
	if ((open = approvals_open_for(ctx->bot->approvals, target)) != NULL) {
		msg_textf(&m, "A restore of %s is already %s: request ",
		    target, approval_state_name(open->state));
		msg_code(&m, open->id);
		msg_textf(&m, " by %s (https://matrix.to/#/%s/%s).",
		    open->requester, open->room, open->thread);
		goto refuse;
	}
	args[0] = id;
	if (ro.into != NULL) {
		args[nargs++] = "--into";
		args[nargs++] = ro.into;
	}
	if (ro.from != NULL) {
		args[nargs++] = "--from";
		args[nargs++] = ro.from;
	}
	if (ro.time != NULL) {
		args[nargs++] = "--time";
		args[nargs++] = ro.time;
	}
	if (ro.replace)
		args[nargs++] = "--replace";
	if (ro.flush)
		args[nargs++] = "--flush";
	args[nargs] = NULL;
	if (jobs_submit(ctx->bot->jobs, JOB_CHECK, target, args, ctx->sender,
	    ctx->room_id, ctx->thread_root, ctx->event_id, 0) == NULL) {
		msg_textf(&m, "⚠️ %s", jobs_last_error(ctx->bot->jobs));
		goto refuse;
	}
	msg_release(&m);
	return 0;

refuse:
	free(cause);
	bot_reply(ctx, &m);
	msg_release(&m);
	return -1;
}

const struct cmd_entry cmd_restore_entry = {
	.name = "restore",
	.usage = "TARGET [ID|latest] [--into NAME] [--replace] [--flush] "
	    "[--from DEST] [--time TIME] [--set ID]",
	.summary = "plan a restore; it runs after another admin approves",
	.min_args = 1,
	.max_args = 10,
	.flags = CMD_DANGEROUS | CMD_SLOW,
	.exec = restore_exec,
};
