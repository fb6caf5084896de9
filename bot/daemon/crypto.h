/*
 * crypto.h - the daemon's side of end-to-end encryption (crypto.c).
 */
#ifndef BB_CRYPTO_H
#define BB_CRYPTO_H

#include "session.h"

struct bot;
struct room;
struct mx_event;
struct cJSON;

/*
 * Open the E2EE device with the store key (pickle_key_file, else a
 * subkey of encryption_key_file), making it when create is set; STEP_OK
 * also when no key is configured (then bot->e2ee stays NULL).
 */
enum step crypto_start(struct bot *bot, int create, char **cause);
/* The start-up step: the device when it is wanted, keys uploaded. */
enum step crypto_step(struct bot *bot, char **cause);

/*
 * An event of an encrypted room: 0 with *plain (decrypted; caller
 * releases it), 1 to handle ev as it is (a clear reaction, redaction),
 * -1 to drop it (said in the room where it helps).
 */
int crypto_room_event(struct bot *bot, struct room *room,
    const struct mx_event *ev, struct mx_event *plain, int backlog);

/*
 * The outbox's sealer (outbox_set_sealer): 0 when room_id is not
 * encrypted, 1 with *out (m.room.encrypted content) and *session_id,
 * -1 when it cannot be encrypted yet.
 */
int crypto_seal(void *arg, const char *room_id, const char *type,
    const struct cJSON *content, struct cJSON **out, char **session_id);

/* `backupbot e2ee status`: the kept device, its keys and sessions, on
 * stdout.  0, or -1 (said on stderr). */
struct config;
int crypto_print_status(const struct config *cfg);

#endif
