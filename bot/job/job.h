/*
 * job.h - the work of a job, in the process that does it: `backupbot job
 * ...` (a child of the daemon, reporting JSON lines on stdout) and the
 * CLI (`backupbot backup ...`, reporting on the terminal) run the same
 * code.  It blocks; it never runs inside the daemon's event loop.
 *
 * A job reports through struct job_out: progress, log lines, and one
 * result object:
 *   {"status": "ok"|"partial"|"failed"|"cancelled", "id", "target",
 *    "kind", "bytes", "bytes_raw", "duration", "blake2b",
 *    "remotes": {NAME: {"status", "error"?}}, "removed": [ids],
 *    "error"?, "warnings"?: [...]}
 */
#ifndef BB_JOB_H
#define BB_JOB_H

#include <signal.h>
#include <stdint.h>

struct cJSON;
struct config;
struct restore_opts;

struct job_out {
	void	(*progress)(void *arg, const char *phase, uint64_t done,
		    uint64_t total);
	void	(*log)(void *arg, const char *level, const char *msg);
	void	*arg;
};

/* Set from a signal handler: the job stops and cleans up. */
extern volatile sig_atomic_t job_cancelled;

/*
 * Set only by the CLI's --insecure-unauthenticated (never by `backupbot
 * job`, so never from chat): read backups whose manifests do not
 * authenticate while a key is configured (seal.h).
 */
extern int job_insecure;

/*
 * Set only by the CLI's --no-wait: a target another process holds
 * (lock.h) is refused at once instead of waited for.
 */
extern int job_no_wait;

/*
 * Take target's lock for a job (lock.h): waits, saying so through o,
 * unless job_no_wait.  The fd for lock_release, or -1 with *cause.
 * job_backup, job_restore and job_verify take it themselves.
 */
int job_lock(const struct config *cfg, const char *target,
    const struct job_out *o, char **cause);

/* Back up one target.  Returns the result object (caller frees). */
struct cJSON *job_backup(const struct config *cfg, const char *target,
    const struct job_out *out);
/* The same, with a pgbackrest backup type ("full", "diff", "incr"). */
struct cJSON *job_backup_type(const struct config *cfg, const char *target,
    const char *type, const struct job_out *out);

/*
 * Verify a backup: every byte (hash, decryption, decompression), then
 * the restore drill: the backend restores it into a scratch copy,
 * compares with the manifest and removes the copy; the outcome is
 * recorded in the manifest ("drill").  quick: instead of the drill, only
 * check that the restore tool can read it.  id may be "latest".  Media:
 * the drill compares the destination with the source.
 */
struct cJSON *job_verify(const struct config *cfg, const char *target,
    const char *id, int quick, const struct job_out *out);

/*
 * Restore a backup (id or "latest"): taken from backup_dir or fetched from
 * the first remote that has it, its hash checked before anything is
 * touched, then handed to the backend.  opts are checked again
 * (restore_check).  Result as above plus "into", "compared",
 * "differences", "notes", "fetched_from".
 */
struct cJSON *job_restore(const struct config *cfg, const char *target,
    const char *id, const struct restore_opts *opts,
    const struct job_out *out);

/*
 * Apply the target's retention locally and on its remotes.  Never
 * removes the newest good backup.  Adds "removed" to result.
 */
void job_retention(const struct config *cfg, const char *target,
    struct cJSON *result, const struct job_out *out);

/*
 * Before a restore is planned: find the backup (locally, or its manifest
 * on the first remote that has it) and check the stored file's hash and
 * size.  Result: "id" (resolved), "started", "bytes", "blake2b",
 * "location" ("local", a remote's name, or "destinations" for media),
 * and "database" / "mode" when the manifest has them.
 */
struct cJSON *job_check(const struct config *cfg, const char *target,
    const char *id, const struct job_out *out);

/*
 * Health facts for !status: each target's probe (reachable, version,
 * size...; "error" when it failed), each remote reachable ("files" seen
 * for the first target using it), and the free space in backup_dir.
 * only: one target, or NULL for all.  Result {"status": "ok",
 * "targets": {}, "remotes": {}, "disk": {"free", "total"}}.
 */
struct cJSON *job_probe(const struct config *cfg, const char *only,
    const struct job_out *out);

/* `backupbot job KIND ARGS...`: the daemon's child.  Exit status. */
int job_main(const struct config *cfg, int argc, char **argv);

#endif
