/*
 * pause.c - !pause TARGET|all [DURATION]: skip a target's scheduled runs
 * for a maintenance window (until !resume when no duration is given).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bot.h"
#include "cmd.h"
#include "config.h"
#include "msg.h"
#include "schedule.h"

static int
pause_exec(struct cmd_ctx *ctx)
{
	const struct config *cfg = ctx->bot->cfg;
	const char *target = ctx->argv[1];
	time_t until = 0;
	char *text = NULL;
	struct msg m;
	int r = -1;

	msg_init(&m);
	if (strcmp(target, "all") != 0 && (!config_valid_name(target) ||
	    config_target(cfg, target) == NULL)) {
		msg_textf(&m, "No target \"%s\" (see %sstatus).", target,
		    cfg->command_prefix);
		goto done;
	}
	if (ctx->argc > 2) {
		long d = config_parse_duration(ctx->argv[2]);

		if (d <= 0 || d > 90L * 86400) {
			msg_text(&m, "A pause lasts for a duration such as ");
			msg_code(&m, "30m");
			msg_text(&m, ", ");
			msg_code(&m, "2h");
			msg_text(&m, " or ");
			msg_code(&m, "3d");
			msg_text(&m, " (at most 90d), or leave it out to pause "
			    "until !resume.");
			goto done;
		}
		until = time(NULL) + d;
	}
	r = sched_pause(ctx->bot->sched, target, ctx->sender, until, &text);
	msg_text(&m, text);
done:
	bot_reply(ctx, &m);
	msg_release(&m);
	free(text);
	return r;
}

const struct cmd_entry cmd_pause_entry = {
	.name = "pause",
	.usage = "TARGET|all [DURATION]",
	.summary = "skip scheduled runs for a while (maintenance); !backup "
	    "still works",
	.min_args = 1,
	.max_args = 2,
	.exec = pause_exec,
};
