/*
 * outbox.h - the durable queue of messages to send.
 *
 * A message is written to state_dir/outbox/SEQ.json (atomically) with its
 * transaction id, and removed only when the homeserver has accepted it.
 * A retry reuses the txnId, so the homeserver deduplicates; messages go
 * out one at a time in sequence order, which keeps the order within
 * every thread.
 *
 * When it is written depends on what can name it again after a crash:
 *
 *  - A reply to the command being handled (outbox_command) has a txnId
 *    derived from the command's event id and the reply's ordinal for it
 *    (outbox_reply_txn).  It is queued in memory and may be sent at once;
 *    outbox_commit() stores it unless the homeserver accepted it first.
 *    The caller commits before it records the command as seen, so a
 *    crash before that commit leaves the command unseen: it is handled
 *    again, its replies get the same txnIds, and the homeserver answers
 *    a retransmission with the event it already has (txnIds are kept per
 *    device for a while: minutes on Synapse, 24 h on the test server).
 *  - Everything else (reports, job progress, alerts, edits) has a random
 *    txnId and is written *before* any attempt to send it.
 *
 * An edit names its target by sequence number; the target's event id is
 * filled in when the target is sent.  A newer edit of the same target
 * replaces an older one still waiting, so progress reports never pile up.
 */
#ifndef BB_OUTBOX_H
#define BB_OUTBOX_H

#include <stdint.h>

struct cJSON;

struct outbox_item {
	uint64_t	 seq;
	char		*txn_id;
	char		*room_id;
	char		*type;		/* m.room.message, m.reaction */
	struct cJSON	*content;
	uint64_t	 edit_of;	/* seq of the edited message, 0 */
	char		*edit_event;	/* its event id, once known */
	char		*source_event;	/* the command this answers */
	uint64_t	 thread_of;	/* seq of the thread root, until sent */
	int		 attempts;
	int		 inflight;	/* being sent: never coalesced */
	int64_t		 not_before;	/* monotonic ms; retry time */
	char		*session_id;	/* Megolm session once sealed, or NULL */
	int		 stored;	/* on disk; 0: a reply not yet committed */
	struct outbox_item *next;
};

struct outbox;

/* Open (creating) dir and load what is queued.  NULL with *cause. */
struct outbox *outbox_open(const char *dir, char **cause);
void outbox_free(struct outbox *ob);

/*
 * Queue a message (takes ownership of content).  edit_of is the seq of a
 * message to replace, or 0.  Returns its seq, or 0 when it could not be
 * stored (logged; the caller cannot do better than that).
 */
uint64_t outbox_push(struct outbox *ob, const char *room_id, const char *type,
    struct cJSON *content, uint64_t edit_of, const char *source_event);

/*
 * Replies pushed from now on with source_event == event_id are that
 * command's: deterministic txnIds, in memory until outbox_commit().
 * NULL ends it.
 */
void outbox_command(struct outbox *ob, const char *event_id);
/*
 * Store every queued item that is only in memory (replies not yet
 * accepted by the homeserver).  0, or -1 when one could not be written
 * (logged; it stays queued in memory and is still sent in this run).
 */
int outbox_commit(struct outbox *ob);
/* Queued items only in memory: replies neither answered nor committed. */
size_t outbox_uncommitted(const struct outbox *ob);
/* "bbr" + hex of BLAKE2b-128(event_id, NUL, ordinal): caller frees. */
char *outbox_reply_txn(const char *event_id, unsigned ordinal);

/*
 * Queue a message (an m.room.message content) in the thread of an
 * earlier message known only by its seq: the relation is added when this
 * one comes to be sent, by then the root has been (the queue is sent in
 * order).  If the root was never sent, the message goes out on its own.
 */
uint64_t outbox_push_thread(struct outbox *ob, const char *room_id,
    struct cJSON *content, uint64_t thread_of);

/* The next item to send if it is due (now in monotonic ms), else NULL. */
struct outbox_item *outbox_head(struct outbox *ob, int64_t now);
/*
 * Encrypt content for room_id when it must be: 1 with *out (type
 * m.room.encrypted) and *session_id (both then owned by the outbox), 0
 * when the room is not encrypted, -1 when it cannot be done now.
 */
typedef int (*outbox_seal_fn)(void *arg, const char *room_id,
    const char *type, const struct cJSON *content, struct cJSON **out,
    char **session_id);
/*
 * Seal new messages whose relations are known (not edits, not thread
 * replies to a root still queued) as they are queued, in the same write:
 * one durable write per message, as in an unencrypted room.  The rest is
 * sealed at send time (outbox_seal).
 */
void outbox_set_sealer(struct outbox *ob, outbox_seal_fn fn, void *arg);
/*
 * Replace an item's content by its encrypted form (type m.room.encrypted,
 * Megolm session_id), durably (a reply not yet committed: in memory, and
 * stored so by outbox_commit), before it is first sent: a retry then
 * sends the very same ciphertext under the same txnId, and a sealed item
 * is never coalesced with a newer edit.  Takes content.  0, or -1 (the
 * item is unchanged, content freed).
 */
int outbox_seal(struct outbox *ob, struct outbox_item *it, const char *type,
    struct cJSON *content, const char *session_id);
/* Milliseconds until the head is due, -1 when empty. */
int64_t outbox_wait(struct outbox *ob, int64_t now);
size_t outbox_depth(const struct outbox *ob);
/* Event id of a sent message by seq, or NULL if unknown. */
const char *outbox_event_id(const struct outbox *ob, uint64_t seq);
/* Calls fn for the source event of every queued item. */
void outbox_foreach_source(const struct outbox *ob,
    void (*fn)(const char *event_id, void *arg), void *arg);

/* What to do after an attempt; see outbox_result(). */
enum outbox_action {
	OUTBOX_SENT,		/* accepted: removed */
	OUTBOX_RETRY,		/* kept, retry after a delay */
	OUTBOX_SHRUNK,		/* 413: content shrunk, retry now */
	OUTBOX_DROPPED		/* permanent error: removed, logged */
};

/*
 * Record the result of sending the head.  status is the HTTP status (0
 * for a network error), event_id the accepted event's id, retry_after_ms
 * the server's hint (-1 if none).  Returns what happened.
 */
enum outbox_action outbox_result(struct outbox *ob, struct outbox_item *it,
    long status, const char *event_id, long retry_after_ms, int64_t now);

/*
 * Exponential backoff with jitter: base * 2^attempt capped at max, then a
 * random value in [d/2, d].  rnd is a uniform random 32-bit value.
 */
int64_t backoff_delay(int attempt, int64_t base, int64_t max, uint32_t rnd);

/*
 * Turn an m.thread relation into a plain reply to the same event (for a
 * root that cannot start a thread).  1 if changed, 0 if not threaded.
 */
int outbox_unthread(struct cJSON *content);

#endif
