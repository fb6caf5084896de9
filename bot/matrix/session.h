/*
 * session.h - start-up steps shared by `run` and `check`: logging in,
 * resolving and joining rooms, reading their state, the sync filter.
 * These are blocking calls, made before the event loop starts.
 */
#ifndef BB_SESSION_H
#define BB_SESSION_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct mx;
struct mx_resp;
struct state;

/* Result of a start-up step. */
enum step { STEP_OK, STEP_RETRY, STEP_FATAL };

/*
 * Who logs in, and how.  The strings are borrowed (the config's); state
 * keeps a password login's token across restarts.
 */
struct session_login {
	struct mx	*mx;
	struct state	*state;
	const char	*user_id;		/* the account configured */
	const char	*homeserver;		/* for messages */
	const char	*access_token_file;	/* or: */
	const char	*password_file;
	const char	*device_id;		/* configured, or NULL */
	const char	*device_name;
	/* the server's answer (whoami), each replacing what was there */
	char		*user;
	char		*device;
	/* a login's refresh token (kept in state), and when to use it */
	char		*refresh_token;
	int64_t		 refresh_at;	/* mono ms to refresh, 0 never */
	unsigned char	 token_hash[32];/* of the access token in use */
};

/*
 * Log in with the access token, or with the password (a kept session
 * first); whoami must name user_id.  Sets the client's token.
 */
enum step session_login(struct session_login *l, char **cause);

/*
 * The access token was refused (401) with response r: get a working one.
 * soft_logout + a refresh token: POST /refresh; password_file: log in
 * again; access_token_file: read the file again (the operator rotates
 * it).  STEP_RETRY when nothing works yet (try later), with *cause.
 */
enum step session_recover(struct session_login *l, const struct mx_resp *r,
    char **cause);

/* POST /refresh with the refresh token now (before it expires). */
enum step session_refresh(struct session_login *l, char **cause);

/* Forget what l owns (the ids, the refresh token, wiped). */
void session_login_release(struct session_login *l);

/* Resolve a room alias (or return a copy of a room id); NULL + *cause. */
char *session_resolve_room(struct mx *mx, const char *room, char **cause,
    enum step *how);

/* The ids of the rooms joined (a JSON array of strings), or NULL. */
struct cJSON *session_joined_rooms(struct mx *mx, char **cause,
    enum step *how);

/* Join a room (works when invited or public): 1, or 0 (logged). */
int session_join(struct mx *mx, const char *room_id);

/*
 * m.room.encryption, m.room.power_levels and m.room.create of a joined
 * room: *encryption and *power_levels (their content, or NULL) and
 * *create (the event) are replaced.  Only a 404 means "no such state"; any other failure is
 * STEP_RETRY (or STEP_FATAL) with *cause, and the old values are kept.
 */
enum step session_room_state(struct mx *mx, const char *room_id,
    int *encrypted, struct cJSON **encryption, struct cJSON **power_levels,
    struct cJSON **create, char **cause);

/* Upload the sync filter for these rooms; replaces *filter_id. */
enum step session_filter(struct mx *mx, const char *user_id,
    const char *const *room_ids, size_t nrooms, char **filter_id,
    char **cause);

/* Classify a failed response of a start-up call. */
enum step session_classify(const struct mx_resp *r);

/* The wait a 429 of the last classified start-up call asked for (ms), then
 * forgotten; -1 if none. */
long session_retry_after(void);

#endif
