/*
 * metrics.h - the Prometheus textfile ([report] metrics_file) that
 * node_exporter's textfile collector serves, and reading the job ledger
 * (state_dir/ledger.jsonl) for it and for the summary (report.h).
 *
 * The file says, per target (labels target, kind):
 *
 *   backupbot_last_success_timestamp_seconds  end of the newest good
 *	backup (ok or partial; media: sync run); no sample when none
 *   backupbot_last_duration_seconds	its ended - started
 *   backupbot_last_size_bytes		its size as stored (media: bytes
 *	copied by the run)
 *   backupbot_failures_total		counter: ledger end lines of kind
 *	backup with status failed, crashed or interrupted
 *   backupbot_backups_kept		good backups in the catalog (not for
 *	media targets: their destinations hold one copy)
 *
 * and per target and remote (labels target, remote; for a media target
 * the remotes are its destinations):
 *
 *   backupbot_remote_last_success_timestamp_seconds  when the newest
 *	copy that reached the remote got there ("at", else the backup's
 *	end); no sample when none
 *   backupbot_remote_failed_backups	gauge: backups (media: runs) in the
 *	catalog whose copy to the remote failed.  A gauge and not a
 *	_total counter because retention removes old manifests and a
 *	counter must never go down.
 */
#ifndef BB_METRICS_H
#define BB_METRICS_H

#include <stddef.h>

struct cJSON;
struct config;

/*
 * Rewrite cfg->metrics_file atomically (mode 0644) when it is set; does
 * nothing when it is not.  Meant to be called after every job and at
 * start-up.  It reads the catalog, and the ledger incrementally: the
 * process remembers how far it counted and reads only the lines appended
 * since (the whole ledger on its first call, and again if the ledger was
 * replaced), so that failures_total stays exact and never goes down.
 * A ledger that cannot be read is logged and its counter left out.
 * 0, or -1 with *cause (caller frees) when the file cannot be written.
 */
int metrics_write(const struct config *cfg, char **cause);

typedef void (*metrics_ledger_fn)(const struct cJSON *end, void *arg);

/*
 * Call fn with every "end" line of the ledger, parsed, oldest first (fn
 * must not keep the object).  Only the last `tail` bytes of the ledger
 * are read (0: all of it), from the first whole line in them: the
 * ledger only grows, and callers that want recent jobs need not read
 * years of them.  Lines that do not parse, or are longer than 64 KB, are
 * skipped; a last line without its newline (being written) too.  A
 * missing ledger has no lines.  0, or -1 with *cause (caller frees).
 */
int metrics_ledger_ends(const struct config *cfg, size_t tail,
    metrics_ledger_fn fn, void *arg, char **cause);

/* 1 if a ledger end line is a backup that failed (failed, crashed, or
 * interrupted by a stop; not cancelled by a person). */
int metrics_is_failed_backup(const struct cJSON *end);

#endif
