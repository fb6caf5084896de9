/*
 * state.h - what the bot remembers across restarts, in state_dir:
 *
 *   next_batch   the sync position, saved after a batch is recorded
 *   seen         ids of handled events (append-only; compacted at start
 *                and whenever it reaches 2 * STATE_SEEN_KEEP ids)
 *   session      access token and device id from a password login (0600)
 *   first_start  when this state_dir was first used (ms since the epoch,
 *                the bot's clock): nothing older is ever executed
 *   outbox/      the outbox (outbox.h)
 *
 * Files are written with tmp + fsync + rename; the seen journal is
 * appended and fsynced before next_batch moves past its events.
 */
#ifndef BB_STATE_H
#define BB_STATE_H

#include <stddef.h>
#include <stdint.h>

#define STATE_SEEN_KEEP	4096

struct state;

struct state *state_open(const char *dir, char **cause);
void state_free(struct state *st);

/* NULL on the first start ever. */
const char *state_next_batch(const struct state *st);
int state_set_next_batch(struct state *st, const char *token);

int  state_seen(const struct state *st, const char *event_id);
/* Marks in memory; state_flush_seen() makes it durable. */
void state_mark_seen(struct state *st, const char *event_id);
int  state_flush_seen(struct state *st);

/* Session from a password login: token and device id, or NULL. */
int state_load_session(struct state *st, char **token, char **device_id);
int state_save_session(struct state *st, const char *token,
    const char *device_id);
int state_clear_session(struct state *st);
/* The refresh token of that session (file refresh_token, 0600). */
int state_load_refresh(struct state *st, char **refresh);
int state_save_refresh(struct state *st, const char *refresh);

/*
 * The first start's time: read from first_start, or, when the file is
 * missing, written now (now_ms on a fresh state_dir; 0 when a next_batch
 * shows an older bot already ran here).  -1 if it cannot be written.
 */
int state_first_start(struct state *st, int64_t now_ms, int64_t *out);

const char *state_dir(const struct state *st);

#endif
