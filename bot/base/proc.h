/*
 * proc.h - starting programs (pg_dump, rclone, tar, ...) without a shell:
 * an argv array, chosen pipes, and a death signal so that nothing
 * outlives the process that started it.
 */
#ifndef BB_PROC_H
#define BB_PROC_H

#include <sys/types.h>

#include <stddef.h>

#define PROC_STDIN	0x01	/* pipe to the child's stdin (in_fd) */
#define PROC_STDOUT	0x02	/* pipe from its stdout (out_fd) */
#define PROC_STDERR	0x04	/* pipe from its stderr (err_fd) */
#define PROC_NEWGROUP	0x08	/* its own process group (jobs) */
#define PROC_STDOUT_NULL 0x10	/* stdout to /dev/null */

struct proc {
	pid_t	pid;
	int	in_fd;
	int	out_fd;
	int	err_fd;
};

/*
 * Start argv[0] (searched in PATH when it has no slash) with the current
 * environment plus env_add ("NAME=value" strings, may be NULL).  Pipes
 * are O_CLOEXEC on our side.  0, or -1 with *cause.
 */
int proc_spawn(struct proc *p, const char *const *argv,
    const char *const *env_add, int flags, char **cause);

/*
 * Who and where a child runs (operators' scripts): uid/gid (-1: ours),
 * supplementary groups (ngroups -1: ours; resolve them before, the
 * child may only make async-signal-safe calls), a working directory
 * (NULL: ours) and a stdin (-1: ours, or PROC_STDIN's pipe).
 */
struct proc_as {
	uid_t		 uid;
	gid_t		 gid;
	const gid_t	*groups;
	int		 ngroups;
	const char	*dir;
	int		 stdin_fd;
};

/*
 * proc_spawn with exactly env as the environment (not ours) and the
 * child set up as `as` says (may be NULL).  A failure to become that
 * user or enter that directory is reported like a failed exec.
 */
int proc_spawn_as(struct proc *p, const char *const *argv,
    const char *const *env, const struct proc_as *as, int flags,
    char **cause);

/* Close our pipe ends and wait; *status as from waitpid.  0 or -1. */
int proc_wait(struct proc *p, int *status);

/*
 * What proc_pump does with a running child's output.  Callbacks may be
 * NULL.  arg is passed to each.
 */
struct pump {
	/* A block of stdout (at most 64 KiB); -1 stops the child. */
	int	(*out)(void *arg, const unsigned char *data, size_t n);
	/* Asked before every wait: 1 stops the child (cancel, deadline). */
	int	(*stop)(void *arg);
	/* Called at most every tick_ms: progress reports. */
	void	(*tick)(void *arg);
	void	*arg;
	int	 tick_ms;
	int	 poll_ms;	/* how often stop is asked */
	struct tail *err;	/* keeps the tail of stderr, or NULL */
	/*
	 * Work that goes on beside the child (a database query): the
	 * descriptor to watch for input now, -1 for none; aux is called
	 * when it is readable, and -1 from it stops the child.  Both may
	 * be NULL.
	 */
	int	(*aux_fd)(void *arg);
	int	(*aux)(void *arg);
};

/*
 * Read p's stdout and stderr until both end, or until a callback says
 * stop.  Does not wait for p.  Returns 0 at the end of both, 1 when told
 * to stop, -1 when poll failed (*cause set).  After 1 or -1 the caller
 * stops p (kill its group, proc_reap).
 */
int proc_pump(struct proc *p, const struct pump *pm, char **cause);

/*
 * Close our ends and wait for p, which was asked to stop (SIGTERM to its
 * group): SIGKILL to its group if it is still there after grace_ms.
 */
void proc_reap(struct proc *p, int grace_ms, int *status);

/* "exited with status 1", "killed by signal 9 (Killed)"; caller frees. */
char *proc_status_text(int status);
/* 1 if status is a normal exit with code 0. */
int proc_ok(int status);

/*
 * The last lines of a stream (stderr of a tool), bounded: what an
 * operator needs to see when it fails.
 */
struct tail {
	char	buf[4096];
	size_t	len;
};
void tail_add(struct tail *t, const char *data, size_t n);
/* The kept text, at most max_lines last lines (pointer into t). */
const char *tail_text(struct tail *t, int max_lines);

/*
 * Run to completion: stdout captured (at most out_cap bytes, NULL if not
 * wanted), stderr's tail kept.  Returns 0 when it ran (check *status),
 * -1 with *cause when it could not be started.
 */
int proc_run(const char *const *argv, const char *const *env_add,
    char **out, size_t out_cap, struct tail *err, int *status, char **cause);

/*
 * proc_run's second half, for a child started by proc_spawn with
 * PROC_STDERR and PROC_STDOUT (or PROC_STDOUT_NULL and out NULL): so
 * that two quick programs can run at once.  Returns 0.
 */
int proc_collect(struct proc *p, char **out, size_t out_cap,
    struct tail *err, int *status);

#endif
