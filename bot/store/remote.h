/*
 * remote.h - copies of backups in other places ("geographies"), with
 * rclone.  Runs in job children only (it blocks).
 *
 * rclone is started with an argv array, never a shell; its config file
 * comes from [storage] rclone_config (RCLONE_CONFIG in its environment).
 */
#ifndef BB_REMOTE_H
#define BB_REMOTE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct remote;

/*
 * Copy local files (full paths) into REMOTE/TARGET/ and verify each copy
 * there (remote_verify).  One retry after a failure, which copies again
 * even files that look current.  0, or -1 with *cause naming the remote,
 * rclone's exit status in words and its last stderr lines.
 */
int remote_put(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *files, size_t nfiles,
    char **cause);

/*
 * Check that REMOTE/TARGET/BASENAME(file) is a copy of the local file:
 * same size, and same MD5 (else SHA-1) when the remote reports one
 * (remotes without hashes, e.g. plain WebDAV, are checked by size).
 * 0, or -1 with *cause saying what differs or is missing.
 */
int remote_verify(const struct config *cfg, const struct remote *r,
    const char *target, const char *file, char **cause);

/*
 * Delete REMOTE/TARGET/NAME for each name; a name already missing is not
 * an error.  Stops at the first failure.  0 or -1 with *cause.
 */
int remote_delete(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *names, size_t n, char **cause);

/*
 * List file names in REMOTE/TARGET/ (rclone lsjson).  Returns the count
 * and *names (NULL-terminated; free each and the array), or -1 with
 * *cause.  A directory that does not exist yet holds 0 names.
 */
long remote_list(const struct config *cfg, const struct remote *r,
    const char *target, char ***names, char **cause);

/* Copy REMOTE/TARGET/NAME to local path dest.  0 or -1 with *cause. */
int remote_get(const struct config *cfg, const struct remote *r,
    const char *target, const char *name, const char *dest, char **cause);

/* rclone's exit codes in words; code 1 is also its catch-all. */
const char *remote_exit_text(int code);

#endif
