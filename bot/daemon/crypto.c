/*
 * crypto.c - the daemon's side of end-to-end encryption: when the device
 * (matrix/e2ee.c) is made and opened, with which key, how a room's
 * encrypted event becomes a plain one for the command path, and how a
 * message to an encrypted room is sealed before it is sent.  The crypto
 * itself is the Matrix client's; what it is for is decided here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "bot.h"
#include "config.h"
#include "crypto.h"
#include "e2ee.h"
#include "json.h"
#include "log.h"
#include "matrix.h"
#include "msg.h"
#include "outbox.h"
#include "pipeline.h"
#include "state.h"
#include "sync.h"
#include "util.h"

/*
 * Largest plaintext encrypted as it is: Megolm's base64 makes it about
 * 4/3 larger, and the event must stay under the 64 KiB PDU limit.
 */
#define SEAL_MAX_PLAIN	40000

/* "I could not decrypt this", once per sender and Megolm session. */
static void
undecryptable(struct bot *bot, struct room *room, const struct mx_event *ev,
    const char *session_id)
{
	char *key = xasprintf("%s %s", ev->sender, session_id ? session_id :
	    "");
	const char *root;
	struct msg m;
	cJSON *c;

	for (size_t i = 0; i < nitems(bot->undecryptable); i++) {
		if (bot->undecryptable[i] != NULL &&
		    !strcmp(bot->undecryptable[i], key)) {
			free(key);
			return;
		}
	}
	free(bot->undecryptable[bot->undecryptable_next]);
	bot->undecryptable[bot->undecryptable_next] = key;
	bot->undecryptable_next = (bot->undecryptable_next + 1) %
	    nitems(bot->undecryptable);
	root = !strcmp(ev->rel_type, "m.thread") && ev->rel_event[0] == '$' ?
	    ev->rel_event : ev->event_id;
	msg_init(&m);
	msg_text(&m, E2EE_UNDECRYPTABLE);
	c = msg_content(&m, MSG_MAX_CONTENT);
	msg_set_thread(c, root, ev->event_id);
	outbox_push(bot->outbox, room->id, "m.room.message", c, 0,
	    ev->event_id);
	msg_release(&m);
}

/*
 * An event of an encrypted room, as the command path sees it: the
 * decrypted event in *plain (0), 1 to take ev as it is, or -1 when there
 * is nothing to act on.  Unencrypted messages there are refused: in an
 * encrypted room, only a device of the sender can vouch for a command.
 * Reactions are taken in the clear, as Element sends them (their
 * relation is in the clear anyway); `!approve` is the encrypted way.
 */
int
crypto_room_event(struct bot *bot, struct room *room, const struct mx_event *ev,
    struct mx_event *plain, int backlog)
{
	char *cause = NULL, *sid = NULL;
	uint32_t index = 0;
	enum e2ee_fail f;

	if (!strcmp(ev->type, "m.reaction"))
		return 1;
	if (!strcmp(ev->type, "m.room.message")) {
		if (strcmp(ev->sender, bot->login.user) != 0)
			log_warnx("ignoring an unencrypted %s from %s in the "
			    "encrypted room %s", ev->type, ev->sender,
			    room->id);
		return -1;
	}
	if (strcmp(ev->type, "m.room.encrypted") != 0 ||
	    !strcmp(ev->sender, bot->login.user))
		return -1;
	f = e2ee_decrypt(bot->e2ee, room->id, ev, plain, &sid, &index, &cause);
	if (f == E2EE_OK) {
		/*
		 * The index goes into the seen journal with the event, in the
		 * same write: a replay under another event id is refused
		 * after a crash too.
		 */
		char *used = xasprintf("megolm:%s:%u", sid, index);

		free(sid);
		if (state_seen(bot->state, used)) {
			log_warnx("e2ee: %s from %s replays Megolm index %u; "
			    "ignored", ev->event_id, ev->sender, index);
			mx_event_release(plain);
			free(used);
			return -1;
		}
		state_mark_seen(bot->state, used);
		free(used);
		return 0;
	}
	log_warnx("e2ee: cannot decrypt %s from %s in %s: %s", ev->event_id,
	    ev->sender, room->id, cause);
	if (f == E2EE_NO_SESSION && !backlog && ev->event_id[0] == '$' &&
	    bot_authorised(bot, room, ev->sender))
		undecryptable(bot, room, ev, sid);
	free(sid);
	free(cause);
	return -1;
}

/* The outbox's sealer: encrypt for an encrypted room (outbox.h). */
int
crypto_seal(void *arg, const char *room_id, const char *type,
    const cJSON *content, cJSON **out, char **session_id)
{
	struct bot *bot = arg;
	struct room *room = bot_room(bot, room_id);
	struct e2ee_room_cfg rc;
	char *cause = NULL, *text;
	cJSON *plain;
	int r;

	if (room == NULL || !room->encrypted || bot->e2ee == NULL)
		return 0;
	/* A ciphertext cannot be shrunk on a 413: shrink the text first. */
	plain = cJSON_Duplicate(content, 1);
	while ((text = cJSON_PrintUnformatted(plain)) != NULL &&
	    strlen(text) > SEAL_MAX_PLAIN && msg_shrink(plain) == 0)
		free(text);
	free(text);
	e2ee_room_cfg(room->encryption, &rc);
	r = e2ee_encrypt(bot->e2ee, bot->mx, room_id, &rc, type, plain, out,
	    session_id, &cause);
	cJSON_Delete(plain);
	if (r == -1) {
		log_warnx("e2ee: cannot encrypt for %s yet: %s", room_id,
		    cause);
		free(cause);
		return -1;
	}
	return 1;
}

/*
 * The key of the E2EE store: a crypto_kdf subkey of pickle_key_file, or
 * else of encryption_key_file (a key of its own, never the backup key).
 * 0, 1 when neither is configured, -1 with *cause.
 */
static int
e2ee_store_key(const struct config *cfg, unsigned char key[E2EE_KEYBYTES],
    char **cause)
{
	const char *file = cfg->pickle_key_file != NULL ?
	    cfg->pickle_key_file : cfg->encryption_key_file;
	unsigned char master[PIPE_KEYBYTES];

	if (file == NULL)
		return 1;
	if (pipe_key_load(file, master, cause) == -1)
		return -1;
	crypto_kdf_derive_from_key(key, E2EE_KEYBYTES, 1, "bbpickle", master);
	sodium_memzero(master, sizeof(master));
	return 0;
}

/* A device of a room member changed keys: say so where it matters. */
static void
e2ee_warn_rooms(void *arg, const char *user_id, const char *text)
{
	struct bot *bot = arg;
	struct msg m;

	(void)user_id;
	for (size_t i = 0; i < bot->nrooms; i++) {
		if (!bot->rooms[i].joined || !bot->rooms[i].encrypted)
			continue;
		msg_init(&m);
		msg_text(&m, text);
		bot_notice(bot, bot->rooms[i].id, &m);
		msg_release(&m);
	}
}

/* Open the E2EE device (creating it) when a key is configured. */
enum step
crypto_start(struct bot *bot, int create, char **cause)
{
	unsigned char key[E2EE_KEYBYTES];
	enum e2ee_trust trust = !strcmp(bot->cfg->e2ee_trust, "verified") ?
	    E2EE_VERIFIED : E2EE_TOFU;
	char *have;
	int r;

	if (bot->e2ee != NULL)
		return STEP_OK;
	if ((r = e2ee_store_key(bot->cfg, key, cause)) != 0)
		return r == 1 ? STEP_OK : STEP_FATAL;
	if (bot->login.device == NULL) {
		sodium_memzero(key, sizeof(key));
		*cause = xstrdup("the homeserver did not say which device this "
		    "session is: end-to-end encryption needs one");
		return STEP_FATAL;
	}
	if (!create && (have = e2ee_stored_device(bot->cfg->state_dir)) ==
	    NULL) {
		sodium_memzero(key, sizeof(key));
		return STEP_OK;
	}
	if (!create)
		free(have);
	bot->e2ee = e2ee_open(bot->cfg->state_dir, key, bot->login.user,
	    bot->login.device, trust, cause);
	sodium_memzero(key, sizeof(key));
	if (bot->e2ee == NULL)
		return STEP_FATAL;
	e2ee_set_warn(bot->e2ee, e2ee_warn_rooms, bot);
	if (bot->outbox != NULL)
		outbox_set_sealer(bot->outbox, crypto_seal, bot);
	return STEP_OK;
}

/*
 * The device is made when it is needed: pickle_key_file is set, a device
 * exists already, or a room is encrypted (encryption_key_file alone
 * does not make a device for unencrypted rooms).
 */
static int
e2ee_wanted(struct bot *bot)
{
	char *have;

	if (bot->cfg->pickle_key_file != NULL)
		return 1;
	if ((have = e2ee_stored_device(bot->cfg->state_dir)) != NULL) {
		free(have);
		return 1;
	}
	for (size_t i = 0; i < bot->nrooms; i++)
		if (bot->rooms[i].joined && bot->rooms[i].encrypted)
			return 1;
	return 0;
}

enum step
crypto_step(struct bot *bot, char **cause)
{
	enum step s;
	char *fp;

	if (!e2ee_wanted(bot))
		return STEP_OK;
	s = crypto_start(bot, 1, cause);

	if (s != STEP_OK || bot->e2ee == NULL)
		return s;
	if (e2ee_upload_keys(bot->e2ee, bot->mx, -1, 0, cause) == -1)
		return STEP_RETRY;
	fp = e2ee_fingerprint(e2ee_ed25519(bot->e2ee));
	log_info("e2ee: device %s, ed25519 fingerprint %s", bot->login.device,
	    fp);
	free(fp);
	return STEP_OK;
}


int
crypto_print_status(const struct config *cfg)
{
	return e2ee_print_status(cfg->state_dir);
}
