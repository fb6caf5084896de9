/*
 * sync.h - reading a /sync (or /messages) response into plain structs.
 *
 * The parser trusts nothing: any field may be missing, of the wrong type,
 * huge or hostile.  It keeps only what the bot acts on and skips events
 * it cannot make sense of.  It is pure (no I/O), so it can be fuzzed.
 */
#ifndef BB_SYNC_H
#define BB_SYNC_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* One event as the bot sees it.  Strings are never NULL ("" if absent). */
struct mx_event {
	char	*event_id;
	char	*sender;
	char	*type;
	char	*state_key;	/* NULL for message events */
	int64_t	 ts;		/* origin_server_ts */
	int64_t	 age;		/* unsigned.age (server's view), -1 if absent */
	int64_t	 when;		/* receipt on our clock minus age; see sync_stamp */
	int	 redacted;	/* unsigned.redacted_because is there */
	char	*redacts;	/* m.room.redaction: the redacted event id */
	char	*msgtype;
	char	*body;
	char	*rel_type;	/* m.relates_to.rel_type */
	char	*rel_event;	/* m.relates_to.event_id */
	char	*reply_to;	/* m.relates_to.m.in_reply_to.event_id */
	char	*key;		/* m.annotation key */
	char	*membership;	/* m.room.member */
	int	 has_new_content;/* an edit (m.new_content) */
	struct cJSON *content;	/* kept for state events and m.room.encrypted,
				 * else NULL */
};

struct sync_room {
	char		*room_id;
	int		 limited;
	char		*prev_batch;	/* NULL if none */
	struct mx_event	*events;	/* timeline, oldest first */
	size_t		 nevents;
	struct mx_event	*state;		/* state section */
	size_t		 nstate;
};

struct sync_invite {
	char	*room_id;
	char	*inviter;	/* sender of our m.room.member invite */
};

/* rooms.leave: we were kicked, banned, or left. */
struct sync_leave {
	char	*room_id;
	char	*sender;	/* who changed our membership ("" if unknown) */
	char	*membership;	/* "leave" or "ban" */
	char	*reason;	/* "" if none */
};

struct sync_batch {
	char			*next_batch;
	struct sync_leave	*leaves;
	size_t			 nleaves;
	struct sync_room	*rooms;
	size_t			 nrooms;
	struct sync_invite	*invites;
	size_t			 ninvites;
	/* to_device, device_lists, device_one_time_keys_count and
	 * device_unused_fallback_key_types as given (for e2ee), or NULL */
	struct cJSON		*e2ee;
};

/*
 * Parse a /sync response for user_id.  Returns 0, or -1 with *cause set
 * (caller frees) when it is not a usable sync response at all.
 */
int sync_parse(const char *json, size_t len, const char *user_id,
    struct sync_batch *out, char **cause);
void sync_batch_release(struct sync_batch *b);

/*
 * Parse a /messages response: chunk (newest first for dir=b) into events
 * oldest first, and end (NULL when there is no more).  0 or -1.
 */
int sync_parse_messages(const char *json, size_t len, struct mx_event **ev,
    size_t *nev, char **end, char **cause);

/*
 * Parse a /relations response: its chunk of events (order as given) and
 * next_batch (NULL when there is no more).  0 or -1.
 */
int sync_parse_relations(const char *json, size_t len, struct mx_event **ev,
    size_t *nev, char **next, char **cause);

/*
 * Date each event on the bot's own clock: now_local - unsigned.age when the
 * server gave an age (a duration, so the two hosts' clocks need not agree),
 * else origin_server_ts.  Call right after the response arrived.
 */
void sync_stamp(struct mx_event *ev, size_t n, int64_t now_local);

void mx_event_release(struct mx_event *e);
void mx_events_free(struct mx_event *ev, size_t n);
/* Fill e from one JSON event; -1 if it is not an event at all. */
int mx_event_from_json(const struct cJSON *j, struct mx_event *e);

#endif
