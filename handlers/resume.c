/*
 * resume.c - !resume TARGET|all: end a pause; the schedule runs again.
 */
#include <stdlib.h>
#include <string.h>

#include "bot.h"
#include "cmd.h"
#include "config.h"
#include "msg.h"
#include "schedule.h"

static int
resume_exec(struct cmd_ctx *ctx)
{
	char *text = NULL;
	struct msg m;
	int r;

	msg_init(&m);
	if (strcmp(ctx->argv[1], "all") != 0 &&
	    (!config_valid_name(ctx->argv[1]) ||
	    config_target(ctx->bot->cfg, ctx->argv[1]) == NULL)) {
		msg_textf(&m, "No target \"%s\" (see %sstatus).", ctx->argv[1],
		    ctx->bot->cfg->command_prefix);
		bot_reply(ctx, &m);
		msg_release(&m);
		return -1;
	}
	r = sched_resume(ctx->bot->sched, ctx->argv[1], ctx->sender, &text);
	msg_text(&m, text);
	bot_reply(ctx, &m);
	msg_release(&m);
	free(text);
	return r;
}

const struct cmd_entry cmd_resume_entry = {
	.name = "resume",
	.usage = "TARGET|all",
	.summary = "end a pause: scheduled runs go on",
	.min_args = 1,
	.max_args = 1,
	.exec = resume_exec,
};
