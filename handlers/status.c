/*
 * status.c - !status: the bot itself, its rooms and its outbox.
 */
#include <stdio.h>
#include <time.h>

#include "bot.h"
#include "cmd.h"
#include "config.h"
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
	bot_reply(ctx, &m);
	msg_release(&m);
	return 0;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "",
	.summary = "how the bot is doing: uptime, rooms, outbox",
	.min_args = 0,
	.max_args = 0,
	.exec = status_exec,
};
