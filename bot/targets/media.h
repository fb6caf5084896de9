/*
 * media.h - the media backend's helpers that config validation and the
 * tests use: the allowlist of extra rclone flags, where files deleted
 * from a destination are kept, and the reading of rclone's JSON log.
 *
 * Nothing here runs a program; media.c's backend_media does.
 */
#ifndef BB_MEDIA_H
#define BB_MEDIA_H

#include <stddef.h>
#include <stdint.h>

struct target;

/*
 * Split [media] flags on white space and check every flag against the
 * allowlist (media.c: media_allowed); values are checked too (numbers
 * are digits, sizes and durations [0-9A-Za-z.:_-]+, --include/--exclude
 * patterns have no control characters).  "--name value" and
 * "--name=value" are both accepted.
 *
 * On success *argv is a NULL-terminated array of *argc strings, one per
 * flag, always in the unambiguous form "--name" or "--name=value" (a
 * pattern that starts with '-' can never be taken for a flag); free it
 * with media_argv_free.  flags may be NULL or empty: *argc is 0.
 * On failure returns -1, *argv is NULL and *cause names the flag
 * ("rclone flag --config is not allowed in flags; allowed: ...").
 */
int media_flags_parse(const char *flags, char ***argv, int *argc,
    char **cause);
void media_argv_free(char **argv);

/*
 * Where rclone's --backup-dir puts what a sync deletes or overwrites at
 * dest, as a sibling of dest, so that it never overlaps it: the last
 * component of dest gets "-deleted" ("remote:bucket/vmst-media" ->
 * "remote:bucket/vmst-media-deleted", "do-nyc:vmst-media" ->
 * "do-nyc:vmst-media-deleted").  Runs put their files in
 * ROOT/YYYY-MM-DD (UTC).  "-" and not ".": S3 and Spaces bucket names
 * cannot hold every character, and a destination at a bucket root gets
 * a sibling *bucket* (which must exist or be creatable with the
 * remote's credentials).  A destination that is a remote's root
 * ("remote:", "/") has no sibling: NULL with *cause.  Caller frees.
 */
char *media_deleted_root(const char *dest, char **cause);

/*
 * Everything about a [media] target that can be checked without running
 * anything: source and destinations present, not option-like ('-'),
 * without control characters, no destination equal to the source or to
 * another one, flags allowed, and with keep_deleted_days a deleted-files
 * root for every destination.  0, or -1 with *cause (without FILE:LINE;
 * config validation adds that).
 */
int media_target_check(const struct target *t, char **cause);

/* rclone's exit codes in words ("directory not found"). */
const char *media_exit_text(int code);

/* What rclone's stats say (cumulative over its retries). */
struct media_stats {
	int		 seen;		/* a stats object was read */
	uint64_t	 bytes;
	uint64_t	 total_bytes;
	uint64_t	 transfers;
	uint64_t	 total_transfers;
	uint64_t	 checks;
	uint64_t	 deletes;
	uint64_t	 renames;	/* moved, e.g. into --backup-dir */
	uint64_t	 errors;
	double		 speed;		/* bytes/s */
	double		 eta;		/* seconds, -1: unknown */
	double		 elapsed;	/* seconds */
	int		 fatal;
	char		 last_error[256];
};

/*
 * Read one line of rclone's --use-json-log stderr.  A line with a
 * "stats" object updates st and returns 1.  An error (or critical)
 * message returns 2 with it in msg ("OBJECT: MESSAGE", control
 * characters replaced), as does a line that is not JSON (rclone prints
 * its final "Failed to sync: ..." as plain text; its timestamp is cut).
 * Anything else returns 0.  msg is always NUL-terminated.
 */
int media_log_line(const char *line, size_t len, struct media_stats *st,
    char *msg, size_t msgsize);

#endif
