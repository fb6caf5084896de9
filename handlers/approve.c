/*
 * approve.c - !approve REQ: approve another admin's restore request (or
 * confirm one's own when approvals_required = 0).  Never run from the
 * backlog: an approval counts only when it is given live (or as a ✅
 * reaction on the plan, which the relations API finds after a restart).
 */
#include "approval.h"
#include "cmd.h"

static int
approve_exec(struct cmd_ctx *ctx)
{
	approvals_command(ctx->bot, ctx->room_id, ctx->thread_root,
	    ctx->event_id, ctx->sender, ctx->argv[1], 1);
	return 0;
}

const struct cmd_entry cmd_approve_entry = {
	.name = "approve",
	.usage = "REQUEST",
	.summary = "approve a restore request (same as ✅ on its plan)",
	.min_args = 1,
	.max_args = 1,
	.flags = CMD_DANGEROUS,
	.exec = approve_exec,
};
