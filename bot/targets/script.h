/*
 * script.h - the operators' own programs, run the way backupbot runs its
 * own jobs: [script NAME] targets (backend_script: output = log, a run
 * recorded like a media sync; backend_script_backup: output = backup,
 * stdout is the backup stream and restore_command reads it back on
 * stdin), and the hooks every target may have (pre_hook, post_hook,
 * on_failure_hook, pre_restore_hook, post_restore_hook).
 *
 * Programs come from the config file only (config_check_program checks
 * owner and permissions); nothing from chat reaches their argv.  Each
 * runs in a job child, in its own process group, with a clean
 * environment: PATH, HOME, the target's env, and
 *   BACKUPBOT_TARGET   the target's name
 *   BACKUPBOT_JOB      the job number shown in chat (!cancel N), 0 from
 *                      the command line
 *   BACKUPBOT_TRIGGER  schedule, chat or cli
 *   BACKUPBOT_ID       the run's or backup's id (hooks: when known)
 *   BACKUPBOT_STATUS   hooks: started, ok, partial, failed, cancelled
 *   BACKUPBOT_FILE     hooks: the backup file, when there is one
 * When it ends (or times out, or is cancelled), whatever is left of its
 * process group is killed.  Its output, stdout and stderr (only stderr
 * when stdout is a backup), goes to state_dir/logs/TARGET/ID.log (at
 * most SCRIPT_LOG_MAX bytes each, the newest SCRIPT_LOGS_KEPT kept) and
 * its last SCRIPT_TAIL_LINES lines to the report.  Memory stays bounded
 * whatever the program writes.
 */
#ifndef BB_SCRIPT_H
#define BB_SCRIPT_H

#include <signal.h>
#include <stddef.h>

#define SCRIPT_TAIL_LINES	20
#define SCRIPT_TAIL_BYTES	2048	/* the report line stays small */
#define SCRIPT_LOG_MAX		(16 * 1024 * 1024)
#define SCRIPT_LOGS_KEPT	30

struct config;
struct job_ctx;
struct target;

/* Set by the job child from its environment (jobs.c passes them). */
extern const char *script_trigger;	/* "cli" unless told */
extern const char *script_job;		/* "0" unless told */

/* What one run of a program produced. */
struct script_result {
	int	 status;	/* as from waitpid */
	int	 ok;		/* exited 0, in time, not cancelled */
	int	 timed_out;
	int	 cancelled;
	int	 leftovers;	/* its process group outlived it: killed */
	int	 unread;	/* its output was still open when it ended
				   and the drain gave up (SCRIPT_DRAIN_MS) */
	char	*how;		/* "exited with status 3", "timed out after
				   10s and was stopped (...)" */
	char	*output;	/* last lines, escaped for JSON/chat use */
	char	*log;		/* the log file, or NULL if none written */
};
void script_result_release(struct script_result *r);

/*
 * Run a hook of t (which: "pre_hook", ...; argv NULL: nothing to do,
 * returns 0).  id, status, file go to BACKUPBOT_ID/_STATUS/_FILE (NULL:
 * unset).  0 when it exited 0 in time; -1 with *cause ("pre_hook
 * /usr/bin/x exited with status 1" and its last lines).  *output (may
 * be NULL) gets its last lines.
 */
int script_hook(const struct config *cfg, const struct target *t,
    const char *which, char *const *argv, const char *id, const char *status,
    const char *file, volatile sig_atomic_t *cancelled, char **output,
    char **cause);

/*
 * Clean text for a report: at most max bytes from the end of s, cut at
 * a line start, invalid UTF-8 and control characters (but newline and
 * tab) replaced by '?'.  Caller frees.
 */
char *script_clean_text(const char *s, size_t len, size_t max);

#endif
