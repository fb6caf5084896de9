/*
 * cancel.c - !cancel JOB: stop a running or queued job.
 */
#include <stdlib.h>

#include "bot.h"
#include "cmd.h"
#include "jobs.h"
#include "msg.h"

static int
cancel_exec(struct cmd_ctx *ctx)
{
	char *text = NULL;
	struct msg m;
	int r;

	r = jobs_cancel(ctx->bot->jobs, ctx->argv[1], ctx->sender, &text);
	msg_init(&m);
	msg_text(&m, text);
	bot_reply(ctx, &m);
	msg_release(&m);
	free(text);
	return r;
}

const struct cmd_entry cmd_cancel_entry = {
	.name = "cancel",
	.usage = "JOB|TARGET",
	.summary = "stop a running or queued job (its number or target)",
	.min_args = 1,
	.max_args = 1,
	.exec = cancel_exec,
};
