/*
 * e2ee.h - end-to-end encryption for the Matrix client, on libolm.
 *
 * Owns the bot's Olm device: its account (curve25519 + ed25519 identity
 * keys, one-time and fallback keys), the Olm sessions with other devices
 * (to-device messages), the inbound Megolm sessions (reading rooms) and
 * one outbound Megolm session per room (writing to them).  It knows the
 * Matrix client (struct mx) and nothing of backups.
 *
 * Storage: one JSON document, DIR/e2ee.json, mode 0600, rewritten
 * atomically (tmp + fsync + rename) after every change, before whatever
 * depends on the change leaves the process:
 *
 *   { "version": 1, "user_id", "device_id", "curve25519", "ed25519",
 *     "account": PICKLE, "keys_uploaded": bool,
 *     "olm": [ { "curve": KEY, "pickle": PICKLE, "used": ms } ],
 *     "inbound": [ { "room_id", "session_id", "sender_key", "sender",
 *                    "ed25519", "pickle", "seen": { "INDEX": "$event" } } ],
 *     "outbound": { ROOM: { "pickle", "session_id", "created", "count",
 *                    "shared": [ { "user", "device", "curve" } ] } },
 *     "devices": { USER: { DEVICE: { "curve", "ed25519" } } },
 *     "masters": { USER: ED25519 },   (cross-signing keys, pinned)
 *     "stale": [ USER ] }
 *
 * Every PICKLE is libolm's pickle, encrypted by libolm with the 32-byte
 * key given to e2ee_open (derived by the caller from pickle_key_file);
 * identity keys and ids are public and kept in the clear for `e2ee status`.
 *
 * Durability: the stored outbound Megolm session is kept E2EE_RESERVE
 * (32) indexes ahead of the one in use, written before an index beyond
 * it is used, so a crash skips indexes rather than reusing one and most
 * messages need no write; an inbound session is on disk (e2ee_flush)
 * before the sync that brought it is acknowledged.
 *
 * The network calls of key sharing (/joined_members, /keys/query,
 * /keys/claim, /sendToDevice) and of key upload are blocking: they are
 * rare (a new session, a new device, a rotation) and short.
 */
#ifndef BB_E2EE_H
#define BB_E2EE_H

#include <stddef.h>
#include <stdint.h>

#define E2EE_KEYBYTES		32
#define E2EE_MEGOLM		"m.megolm.v1.aes-sha2"
#define E2EE_OLM		"m.olm.v1.curve25519-aes-sha2"
#define E2EE_UNDECRYPTABLE	"I could not decrypt this (no room key from " \
				"that device); please send it again."

struct cJSON;
struct mx;
struct mx_event;
struct e2ee;

/* How other users' devices are trusted. */
enum e2ee_trust {
	E2EE_TOFU,		/* first keys seen for a device are kept */
	E2EE_VERIFIED		/* only devices cross-signed by their user */
};

/*
 * Said to the room (or log) on behalf of the module: a user's device
 * keys changed, a device was refused.  user_id is the user concerned.
 */
typedef void (*e2ee_warn_fn)(void *arg, const char *user_id,
    const char *text);

/*
 * Open (creating) the store in dir for user_id's device device_id.  A
 * store of another device is an error unless fresh is set, in which case
 * it is moved aside to e2ee.json.old and a new account made.  key is
 * wiped by the caller.  NULL with *cause.
 */
struct e2ee *e2ee_open(const char *dir, const unsigned char *key,
    const char *user_id, const char *device_id, enum e2ee_trust trust,
    char **cause);
void e2ee_free(struct e2ee *e);
void e2ee_set_warn(struct e2ee *e, e2ee_warn_fn fn, void *arg);

/* The device id of a store, without opening it (for login); caller frees. */
char *e2ee_stored_device(const char *dir);

const char *e2ee_device_id(const struct e2ee *e);
const char *e2ee_ed25519(const struct e2ee *e);
const char *e2ee_curve25519(const struct e2ee *e);
/* "abcd efgh ..." in groups of four, as clients show it; caller frees. */
char *e2ee_fingerprint(const char *ed25519);

/*
 * Upload the device keys (once), one-time keys up to the target given
 * the server's count (-1: unknown, ask), and a fallback key when
 * need_fallback.  Blocking.  0, or -1 with *cause.
 */
int e2ee_upload_keys(struct e2ee *e, struct mx *mx, long otk_count,
    int need_fallback, char **cause);

/*
 * The E2EE part of a /sync response (the object sync_parse keeps in
 * sync_batch.e2ee: to_device, device_lists, device_one_time_keys_count,
 * device_unused_fallback_key_types).  Decrypts room keys, marks changed
 * device lists, tops keys up.  mx may be NULL (no upload: fuzzing).
 */
void e2ee_handle_sync(struct e2ee *e, struct mx *mx, const struct cJSON *sync);
/*
 * Write what changed since the last write (Olm ratchets, room keys, seen
 * message indexes): before the sync that brought them is acknowledged.
 * 0, or -1 (logged).
 */
int e2ee_flush(struct e2ee *e);
/* One to-device event; exposed for the fuzzer.  0, or -1 (logged). */
int e2ee_to_device(struct e2ee *e, const struct cJSON *ev);

/* Why a room event could not be decrypted. */
enum e2ee_fail {
	E2EE_OK,
	E2EE_NO_SESSION,	/* no room key from that device (yet) */
	E2EE_BAD		/* malformed, forged, replayed: ignore */
};

/*
 * Decrypt an m.room.encrypted timeline event of room_id (ev->content
 * holds its content) into *out, an event like an unencrypted one with
 * ev's id, sender and time.  Checks the Megolm session came over Olm
 * from a device of ev's sender, the room, and that the message index was
 * not used by another event in the indexes kept in the store (written
 * with its next write).  *session_id (caller frees; session_id may be
 * NULL) names the session, for "cannot decrypt" notices; *index (may be
 * NULL) is the message index, for the caller to journal durably with the
 * event (a crash must not forget that an index was used).
 */
enum e2ee_fail e2ee_decrypt(struct e2ee *e, const char *room_id,
    const struct mx_event *ev, struct mx_event *out, char **session_id,
    uint32_t *index, char **cause);

/* The settings of a room's m.room.encryption content. */
struct e2ee_room_cfg {
	int64_t		 rotation_ms;	/* default a week */
	uint64_t	 rotation_msgs;	/* default 100 */
};
void e2ee_room_cfg(const struct cJSON *encryption, struct e2ee_room_cfg *c);

/*
 * Encrypt content of type for room_id with its outbound Megolm session,
 * creating, rotating and sharing it with every device of every joined
 * member first as needed.  *out is the m.room.encrypted content
 * (m.relates_to copied in the clear), *session_id its session; both
 * caller frees.  The advanced session is on disk before this returns.
 * 0, or -1 with *cause (retry later).
 */
int e2ee_encrypt(struct e2ee *e, struct mx *mx, const char *room_id,
    const struct e2ee_room_cfg *cfg, const char *type,
    const struct cJSON *content, struct cJSON **out, char **session_id,
    char **cause);

/* Membership of room_id changed: re-read members, rotate if one left. */
void e2ee_members_changed(struct e2ee *e, const char *room_id);

/*
 * Canonical JSON (sorted keys, no spaces, integers) of j without its
 * "signatures" and "unsigned" members at the top: what Matrix signs.
 * Caller frees; NULL when j holds a non-integer number.
 */
char *e2ee_canonical(const struct cJSON *j);

/* `backupbot e2ee status`: print the store of dir to stdout. 0 / -1. */
int e2ee_print_status(const char *dir);

#endif
