/*
 * approval.h - restore requests and their approval by other admins.
 *
 * A request is made by !restore, after a check job has verified the
 * backup; it answers with a plan and waits.  Other admins approve with a
 * ✅ reaction on the plan or !approve REQ; any admin denies with ❌ or
 * !deny REQ.  The rules (approval_vote) are pure and unit-tested:
 *   - the requester's own approval never counts (unless the config says
 *     approvals_required = 0, when the requester must confirm);
 *   - an admin's approval counts once;
 *   - a request expires after approval_timeout;
 *   - an approved request starts once: its state is made durable as
 *     "running" before the job starts, so a crash never runs it again.
 *
 * Every request is a file, state_dir/approvals/REQ.json (atomic writes),
 * so pending requests and their approvals survive a restart.
 */
#ifndef BB_APPROVAL_H
#define BB_APPROVAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct bot;
struct config;
struct job;
struct cJSON;
struct mx_event;

enum req_state {
	REQ_PENDING,		/* waiting for approvals */
	REQ_RUNNING,		/* approved; the restore job started */
	REQ_DONE,		/* the restore job ended (either way) */
	REQ_DENIED,
	REQ_EXPIRED,
	REQ_INTERRUPTED,	/* the bot stopped while it ran */
	REQ_CANCELLED		/* no longer passes the config in force */
};

#define REQ_ID_LEN	6

struct request {
	char		 id[REQ_ID_LEN + 1];
	enum req_state	 state;
	char		*target;
	char		*backup;	/* the backup id (resolved, not latest) */
	char		*into;		/* NULL: the kind's default */
	char		*from;		/* media: destination */
	char		*pitr_time;	/* pgbackrest: --time */
	int		 replace;
	int		 flush;
	char		*requester;
	char		*room;
	char		*thread;	/* the !restore event: thread root */
	char		*plan_event;	/* the plan message, once sent */
	uint64_t	 plan_seq;	/* its outbox seq */
	time_t		 created;
	time_t		 expires;
	int		 needed;	/* approvals needed */
	int		 self_ok;	/* approvals_required = 0 */
	char		**approvers;	/* NULL-terminated */
	struct cJSON	*vote_events;	/* approver -> the ✅ reaction's event id */
	char		*closed_by;	/* who denied it */
	struct request	*next;
};

/* What a vote did. */
enum vote {
	VOTE_COUNTED,		/* counted, more needed */
	VOTE_READY,		/* counted, enough now: start it */
	VOTE_SELF,		/* the requester's own: does not count */
	VOTE_AGAIN,		/* this admin already approved */
	VOTE_EXPIRED,		/* too late */
	VOTE_CLOSED		/* denied, running or done */
};

struct approvals;

/* Load state_dir/approvals (creating it).  NULL with *cause. */
struct approvals *approvals_open(const char *dir, char **cause);
void approvals_free(struct approvals *a);

/*
 * A new pending request with a fresh random id (takes copies of the
 * strings), stored before it is returned.  NULL when it cannot be stored
 * (*cause set).
 */
struct request *approvals_add(struct approvals *a, const struct request *tmpl,
    time_t now, char **cause);
struct request *approvals_find(struct approvals *a, const char *id);
struct request *approvals_by_plan(struct approvals *a, const char *event_id);
/* The open (pending or running) request of target, or NULL. */
struct request *approvals_open_for(struct approvals *a, const char *target);
struct request *approvals_first(struct approvals *a);
/* Store a changed request.  0 or -1 (logged). */
int approvals_save(struct approvals *a, struct request *r);

/*
 * The rules: who approves at time at (a reaction's origin_server_ts, or
 * now).  Records a counted vote in r (the caller saves).
 */
enum vote approval_vote(struct request *r, const char *who, time_t at);
/* Number of approvals counted so far. */
int approval_count(const struct request *r);
/*
 * At the moment a restore starts, against the configuration in force
 * (it may have been reloaded since the votes): the requester and every
 * counted approver still authorised (authorised(arg, who)), their number
 * still meeting approvals_required, the target still there and still
 * allowing what is asked (restore_check: allow_replace...).  0, or -1
 * with *cause (caller frees), worded for the request's thread.
 */
int approval_recheck(const struct request *r, const struct config *cfg,
    int (*authorised)(void *arg, const char *who), void *arg, char **cause);
/* 1 if s looks like a request id: REQ_ID_LEN of [a-z2-9]. */
int approval_valid_id(const char *s);
const char *approval_state_name(enum req_state s);

/* ---- the chat flow (the daemon) ---------------------------------------- */

/*
 * A check job of a !restore ended: post the plan and store the request,
 * or say why there is none.  Restore jobs ending close their request.
 */
void approvals_job_done(struct bot *bot, const struct job *j);
/* A ✅/❌ reaction from an authorised admin.  backlog: from the gap. */
void approvals_reaction(struct bot *bot, const struct mx_event *ev,
    int backlog);
/* !approve and !deny. */
/*
 * An m.room.redaction in room: a redacted ✅ withdraws that vote while the
 * restore has not started (said in the plan's thread).
 */
void approvals_redaction(struct bot *bot, const char *room,
    const char *redacted_event);
void approvals_command(struct bot *bot, const char *room, const char *thread,
    const char *event_id, const char *sender, const char *id, int approve);
/*
 * Start-up: requests that were running were interrupted (never run
 * again); pending ones get the reactions given while the bot was down,
 * read through the relations API.
 */
void approvals_startup(struct bot *bot);
/* Expire requests, learn plan event ids; ms until the next expiry or -1. */
int64_t approvals_tick(struct bot *bot, time_t now);

#endif
