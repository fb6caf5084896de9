/*
 * session.h - start-up steps shared by `run` and `check`: logging in,
 * resolving and joining rooms, reading their state, the sync filter.
 * These are blocking calls, made before the event loop starts.
 */
#ifndef BB_SESSION_H
#define BB_SESSION_H

struct bot;
struct mx_resp;
struct room;

/* Result of a start-up step. */
enum step { STEP_OK, STEP_RETRY, STEP_FATAL };

/*
 * Authenticate: access_token_file, or password_file with the session kept
 * in state_dir (the device id is reused across logins).  Sets bot->user_id
 * and bot->device_id.  *cause explains a failure (caller frees).
 */
enum step session_login(struct bot *bot, char **cause);

/*
 * The access token was refused (401) with response r: get a working one.
 * soft_logout + a refresh token: POST /refresh; password_file: log in
 * again; access_token_file: read the file again (the operator rotates
 * it).  STEP_RETRY when nothing works yet (try later), with *cause.
 */
enum step session_recover(struct bot *bot, const struct mx_resp *r,
    char **cause);

/* POST /refresh with the refresh token now (before it expires). */
enum step session_refresh(struct bot *bot, char **cause);

/* Resolve a room alias (or return a copy of a room id); NULL + *cause. */
char *session_resolve_room(struct bot *bot, const char *room, char **cause,
    enum step *how);

/*
 * Fetch m.room.create, m.room.encryption and m.room.power_levels of a
 * joined room.  Only a 404 means "no such state"; any other failure is
 * STEP_RETRY (or STEP_FATAL) with *cause, and the room keeps its old state.
 */
enum step session_room_state(struct bot *bot, struct room *r, char **cause);

/* Build bot->rooms from the config: resolve, check membership, state. */
enum step session_rooms(struct bot *bot, char **cause);

/* Upload the sync filter; sets bot->filter_id. */
enum step session_filter(struct bot *bot, char **cause);

/* Classify a failed response of a start-up call. */
enum step session_classify(const struct mx_resp *r);

/* The wait a 429 of the last classified start-up call asked for (ms), then
 * forgotten; -1 if none. */
long session_retry_after(void);

#endif
