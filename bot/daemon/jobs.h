/*
 * jobs.h - the daemon's job supervisor.  Jobs are children
 * (`backupbot -c CONFIG job ...`, in their own process group) that report
 * JSON lines on a pipe; the supervisor never blocks on them, turns their
 * progress into one message edited in place, posts the result in the
 * command's thread, and keeps an append-only ledger in state_dir.
 *
 * One job per target at a time; at most max_parallel_jobs run, the rest
 * wait in a queue.
 */
#ifndef BB_JOBS_H
#define BB_JOBS_H

#include "util.h"

#include <stdint.h>
#include <sys/types.h>

struct bot;

/*
 * A check verifies a backup before a restore is planned; its result goes
 * to the approval flow (approval.h), which also follows restores.  A
 * probe gathers the health facts of !status (read-only, short: it runs
 * beside other jobs, outside the queue and the ledger).
 */
enum job_kind { JOB_BACKUP, JOB_VERIFY, JOB_RESTORE, JOB_CHECK, JOB_PROBE };

#define JOB_MAX_ARGS	12
/*
 * A child's JSON line (progress, log, result) may be this long; the
 * child caps its long lists ("… and N more") well below it.  A longer
 * line is not read, and the job's end says so.
 */
#define JOBS_LINE_MAX	(16 << 20)
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
	int		 number;	/* shown to people: job 3 */
	enum job_kind	 kind;
	enum job_state	 state;
	char		*target;
	char		**args;		/* after the target: ID, options */
	char		*request;	/* restore: the approval request */
	int		 scheduled;	/* started by the scheduler */
	int		 attempt;	/* its retry number, 0 first */
	uint64_t	 reply_seq;	/* probe: the !status message to edit */
	char		*requester;	/* mxid, or "schedule" */
	char		*room;
	char		*thread;	/* thread root, or NULL: */
	uint64_t	 thread_seq;	/* ... the outbox seq of one not sent */
	char		*command;	/* the command event */
	int		 group;		/* jobs of one !backup all */
	time_t		 queued_at;
	time_t		 started_at;
	int64_t		 started_mono;
	pid_t		 pid;
	int		 fd;		/* its stdout, JSON lines */
	struct buf	 line;		/* the JSON line being read: one
					   line may be up to JOBS_LINE_MAX */
	int		 line_lost;	/* a longer one came: said at the end */
	uint64_t	 progress_seq;	/* the message edited in place */
	int64_t		 last_edit;
	char		*phase;
	uint64_t	 done, total;
	struct cJSON	*result;
	char		*cancelled_by;
	int64_t		 kill_at;	/* SIGKILL after SIGTERM */
	/* what its submitter asked to be told of its end, or NULL */
	void		(*on_end)(struct bot *bot, const struct job *j);
	struct job	*next;
};

struct jobs;
struct msg;

/*
 * What the supervisor needs of the daemon, handed to jobs_new: it posts
 * and edits its messages and tells of a job's end through these, and
 * calls no posting function, no approval and no schedule itself.
 *   post:  m into the job's room, as a reply in its thread (a scheduled
 *          job: the day's thread); the outbox seq.
 *   edit:  replace the message seq of room with m.
 *   ended: a job ended (its summary is posted, before the ledger line):
 *          the daemon tells those who wait on it (j->on_end, approvals,
 *          the schedule).
 */
struct jobs_ops {
	uint64_t	(*post)(struct bot *bot, const struct job *j,
			    struct msg *m);
	uint64_t	(*edit)(struct bot *bot, const char *room,
			    uint64_t seq, struct msg *m);
	void		(*ended)(struct bot *bot, const struct job *j);
};

struct jobs *jobs_new(struct bot *bot, const struct jobs_ops *ops);
/* Kill what runs (they die with us anyway) and free. */
void jobs_free(struct jobs *js);

/*
 * Start-up: report jobs the ledger shows as started but never ended
 * (interrupted by a stop or crash), and remove leftover partial files.
 */
void jobs_startup(struct jobs *js);

/*
 * Submit a job.  Returns it (queued or running), or NULL with *why
 * (caller frees): unknown target, already running (with a link to its
 * thread).
 */
struct job *jobs_submit(struct jobs *js, enum job_kind kind,
    const char *target, const char *const *args, const char *requester,
    const char *room, const char *thread, const char *command, int group);
/*
 * The same for a job whose thread root may not be sent yet (scheduled
 * runs: thread NULL, thread_seq its outbox seq; command NULL).
 */
struct job *jobs_submit_in(struct jobs *js, enum job_kind kind,
    const char *target, const char *const *args, const char *requester,
    const char *room, const char *thread, uint64_t thread_seq,
    const char *command, int group);
const char *jobs_last_error(struct jobs *js);
/* A new group number for jobs submitted together. */
int jobs_new_group(struct jobs *js);

/* The fds to poll (at most max); returns the count. */
int jobs_fds(struct jobs *js, int *fds, int max);
/* Read what the children wrote, reap those that ended, run timers. */
void jobs_poll(struct jobs *js, int64_t now);
/* Milliseconds until jobs_poll has timer work, or -1. */
int64_t jobs_timeout(struct jobs *js, int64_t now);

/*
 * Cancel a job by number or target name.  0 and a message, or -1 and
 * why.  Caller frees *msg.
 */
int jobs_cancel(struct jobs *js, const char *what, const char *by,
    char **msg);

/* "backup", "verification", "restore", "check". */
const char *jobs_kind_word(enum job_kind k);

/* Iterate: running and queued jobs, in order. */
struct job *jobs_first(struct jobs *js);

#endif
