/*
 * deny.c - !deny REQ: cancel a restore request before it runs (any admin,
 * the requester too; same as ❌ on its plan).
 */
#include "approval.h"
#include "cmd.h"

static int
deny_exec(struct cmd_ctx *ctx)
{
	approvals_command(ctx->bot, ctx->room_id, ctx->thread_root,
	    ctx->event_id, ctx->sender, ctx->argv[1], 0);
	return 0;
}

const struct cmd_entry cmd_deny_entry = {
	.name = "deny",
	.usage = "REQUEST",
	.summary = "cancel a restore request (same as ❌ on its plan)",
	.min_args = 1,
	.max_args = 1,
	.exec = deny_exec,
};
