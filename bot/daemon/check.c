/*
 * check.c - `backupbot check`: the configuration, the state and backup
 * directories, the keys, the login, the E2EE device, every room (joined,
 * encrypted, power to post, admins' power) and the sync filter, one line
 * per finding.  It opens the daemon's pieces (bot_open) but runs no loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bot.h"
#include "config.h"
#include "crypto.h"
#include "e2ee.h"
#include "rooms.h"
#include "seal.h"
#include "session.h"
#include "util.h"

int
bot_check(const char *config_path)
{
	struct bot bot;
	char *cause = NULL, *e2ee_cause = NULL;
	int errors = 0;
	enum step s;

	if (bot_open(&bot, config_path, 1) == -1) {
		bot_free(&bot);
		fflush(stdout);
		return 1;
	}
	printf("ok: %s is valid\n", config_path);
	printf("ok: state_dir %s is writable\n", bot.cfg->state_dir);
	if (dir_make(bot.cfg->backup_dir, 0700) == -1 ||
	    access(bot.cfg->backup_dir, W_OK) == -1) {
		printf("error: backup_dir %s: %s\n", bot.cfg->backup_dir,
		    strerror(errno));
		errors++;
	} else
		printf("ok: backup_dir %s is writable\n", bot.cfg->backup_dir);
	if (bot.cfg->encryption_key_file == NULL)
		printf("warning: %s\n", seal_no_key_warning);
	else {
		struct seal_keys keys;

		if (seal_keys_load(bot.cfg, &keys, &cause) == -1) {
			printf("error: encryption_key_file: %s\n", cause);
			free(cause);
			cause = NULL;
			errors++;
		} else
			printf("ok: encryption_key_file %s: backups are "
			    "encrypted and authenticated\n",
			    bot.cfg->encryption_key_file);
		seal_keys_wipe(&keys);
	}
	if ((s = rooms_login(&bot, &cause)) != STEP_OK) {
		printf("error: login: %s\n", cause ? cause : "failed");
		free(cause);
		bot_free(&bot);
		return 1;
	}
	printf("ok: logged in to %s as %s (device %s)\n", bot.cfg->homeserver,
	    bot.login.user, bot.login.device ? bot.login.device : "?");
	if (crypto_start(&bot, 0, &e2ee_cause) != STEP_OK) {
		printf("error: end-to-end encryption: %s\n", e2ee_cause);
		errors++;
	} else if (bot.e2ee != NULL) {
		char *fp = e2ee_fingerprint(e2ee_ed25519(bot.e2ee));

		printf("ok: E2EE device %s, ed25519 fingerprint %s\n",
		    e2ee_device_id(bot.e2ee), fp);
		free(fp);
	} else if (bot.cfg->pickle_key_file != NULL ||
	    bot.cfg->encryption_key_file != NULL)
		printf("ok: E2EE device: made at the first start\n");
	if ((s = rooms_build(&bot, &cause)) != STEP_OK) {
		printf("error: rooms: %s\n", cause ? cause : "failed");
		free(cause);
		errors++;
	}
	for (size_t i = 0; i < bot.cfg->rooms.n; i++) {
		const char *name = bot.cfg->rooms.v[i];
		struct room *room = NULL;
		long mine, need = 0;
		const cJSON *ev, *m, *d;

		for (size_t k = 0; k < bot.nrooms; k++)
			if (!strcmp(bot.rooms[k].configured, name))
				room = &bot.rooms[k];
		if (room == NULL) {
			printf("error: room %s: does not exist or cannot be "
			    "resolved\n", name);
			errors++;
			continue;
		}
		if (!room->joined) {
			printf("error: room %s (%s): not joined; invite %s "
			    "from an admin account\n", name, room->id,
			    bot.login.user);
			errors++;
			continue;
		}
		printf("ok: room %s (%s): joined\n", name, room->id);
		if (room->encrypted && e2ee_cause != NULL) {
			printf("error: room %s: end-to-end encrypted, and the "
			    "E2EE device cannot be opened: %s\n", name,
			    e2ee_cause);
			errors++;
		} else if (room->encrypted && bot.cfg->pickle_key_file ==
		    NULL && bot.cfg->encryption_key_file == NULL) {
			printf("error: room %s: end-to-end encrypted; set "
			    "[matrix] pickle_key_file so that backupbot keeps "
			    "an encrypted device\n", name);
			errors++;
		} else if (room->encrypted)
			printf("ok: room %s: end-to-end encrypted; my device "
			    "is %s\n", name, bot.login.device);
		else
			printf("ok: room %s: not encrypted\n", name);
		mine = bot_room_power(room->create, room->power_levels,
		    bot.login.user);
		ev = cJSON_GetObjectItemCaseSensitive(room->power_levels,
		    "events");
		m = cJSON_IsObject(ev) ? cJSON_GetObjectItemCaseSensitive(ev,
		    "m.room.message") : NULL;
		d = cJSON_GetObjectItemCaseSensitive(room->power_levels,
		    "events_default");
		if (cJSON_IsNumber(m))
			need = (long)m->valuedouble;
		else if (cJSON_IsNumber(d))
			need = (long)d->valuedouble;
		if (mine < need) {
			printf("error: room %s: the bot's power level %ld is "
			    "below the %ld needed to send messages\n", name,
			    mine, need);
			errors++;
		} else if (mine == BOT_POWER_INFINITE)
			printf("ok: room %s: the bot is a creator of the room "
			    "(infinite power)\n", name);
		else
			printf("ok: room %s: the bot's power level is %ld "
			    "(%ld needed to send)\n", name, mine, need);
		if (bot.cfg->min_power_level >= 0) {
			for (size_t a = 0; a < bot.cfg->admins.n; a++) {
				long pl = bot_room_power(room->create,
				    room->power_levels,
				    bot.cfg->admins.v[a]);

				if (pl < bot.cfg->min_power_level)
					printf("warning: room %s: admin %s has "
					    "power level %ld, below "
					    "min_power_level %d\n", name,
					    bot.cfg->admins.v[a], pl,
					    bot.cfg->min_power_level);
			}
		}
	}
	if (rooms_filter(&bot, &cause) != STEP_OK) {
		printf("error: sync filter: %s\n", cause ? cause : "failed");
		free(cause);
		errors++;
	} else
		printf("ok: sync filter stored\n");
	printf("%s: %d problem(s)\n", errors ? "error" : "ok", errors);
	free(e2ee_cause);
	bot_free(&bot);
	return errors ? 1 : 0;
}
