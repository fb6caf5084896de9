/*
 * offline.c - the "while I was offline" notice: commands that came in
 * too old to run (backlog_max_age) are listed once per room after the
 * sync that brought them, instead of being run or silently dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bot.h"
#include "msg.h"
#include "offline.h"
#include "sync.h"
#include "util.h"

void
offline_add(struct bot *bot, const char *room_id, const struct mx_event *ev,
    const char *cmdline, const char *why)
{
	cJSON *list, *item;

	if (bot->offline == NULL)
		bot->offline = cJSON_CreateObject();
	list = cJSON_GetObjectItemCaseSensitive(bot->offline, room_id);
	if (list == NULL)
		list = cJSON_AddArrayToObject(bot->offline, room_id);
	if (cJSON_GetArraySize(list) >= 50)
		return;
	item = cJSON_CreateObject();
	cJSON_AddStringToObject(item, "sender", ev->sender);
	cJSON_AddStringToObject(item, "command", cmdline);
	cJSON_AddNumberToObject(item, "ts", (double)ev->when);
	cJSON_AddStringToObject(item, "why", why);
	cJSON_AddItemToArray(list, item);
}

static void
format_age(char *out, size_t n, int64_t ms)
{
	int64_t s = ms / 1000;

	if (s < 120)
		snprintf(out, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(out, n, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(out, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(out, n, "%lldd", (long long)(s / 86400));
}

/* Post "while I was offline" once per room after the first sync. */
void
offline_flush(struct bot *bot)
{
	const cJSON *room;
	int64_t now = now_ms();

	if (bot->offline == NULL)
		return;
	cJSON_ArrayForEach(room, bot->offline) {
		const cJSON *item;
		struct msg m;

		msg_init(&m);
		msg_bold(&m, "While I was offline");
		msg_text(&m, ", these commands arrived and were not run "
		    "(ask again if they are still wanted):");
		cJSON_ArrayForEach(item, room) {
			const char *sender = cJSON_GetObjectItem(item,
			    "sender")->valuestring;
			const char *cmd = cJSON_GetObjectItem(item,
			    "command")->valuestring;
			const char *why = cJSON_GetObjectItem(item,
			    "why")->valuestring;
			int64_t ts = (int64_t)cJSON_GetObjectItem(item,
			    "ts")->valuedouble;
			char age[32];

			format_age(age, sizeof(age), now - ts);
			msg_nl(&m);
			msg_textf(&m, "• %s ago, %s: ", age, sender);
			msg_code(&m, cmd);
			msg_textf(&m, " (%s)", why);
		}
		bot_notice(bot, room->string, &m);
		msg_release(&m);
	}
	cJSON_Delete(bot->offline);
	bot->offline = NULL;
}
