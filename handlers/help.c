/*
 * help.c - !help [COMMAND]: generated from the command table.
 */
#include <stdlib.h>

#include "bot.h"
#include "cmd.h"
#include "config.h"
#include "msg.h"

static int
help_exec(struct cmd_ctx *ctx)
{
	const char *prefix = ctx->bot->cfg->command_prefix;
	const struct cmd_entry *c;
	struct msg m;
	char *u, *suggest = NULL;

	msg_init(&m);
	if (ctx->argc == 2) {
		if ((c = cmd_find(ctx->argv[1], &suggest)) == NULL) {
			msg_textf(&m, "No command \"%s\"", ctx->argv[1]);
			if (suggest != NULL)
				msg_textf(&m, "; did you mean %s%s?", prefix,
				    suggest);
			else
				msg_text(&m, ".");
			free(suggest);
			bot_reply(ctx, &m);
			msg_release(&m);
			return -1;
		}
		u = cmd_usage(c, prefix);
		msg_code(&m, u);
		msg_text(&m, " — ");
		msg_text(&m, c->summary);
		if (c->alias != NULL)
			msg_textf(&m, " (alias: %s%s)", prefix, c->alias);
		free(u);
		bot_reply(ctx, &m);
		msg_release(&m);
		return 0;
	}
	msg_bold(&m, "backupbot commands");
	for (size_t i = 0; cmd_table[i] != NULL; i++) {
		c = cmd_table[i];
		u = cmd_usage(c, prefix);
		msg_nl(&m);
		msg_code(&m, u);
		msg_text(&m, " — ");
		msg_text(&m, c->summary);
		free(u);
	}
	bot_reply(ctx, &m);
	msg_release(&m);
	return 0;
}

const struct cmd_entry cmd_help_entry = {
	.name = "help",
	.alias = "?",
	.usage = "[COMMAND]",
	.summary = "list the commands, or explain one",
	.min_args = 0,
	.max_args = 1,
	.exec = help_exec,
	.flags = CMD_READONLY,
};
