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
 * there (size, and hash where both sides have one: `rclone check`).
 * One retry after a failure.  0, or -1 with *cause naming the remote and
 * rclone's last stderr lines.
 */
int remote_put(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *files, size_t nfiles,
    char **cause);

/* Delete REMOTE/TARGET/NAME for each name.  0 or -1 with *cause. */
int remote_delete(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *names, size_t n, char **cause);

/*
 * List file names in REMOTE/TARGET/ (rclone lsjson).  Returns the count
 * and *names (free each and the array), or -1 with *cause.
 */
long remote_list(const struct config *cfg, const struct remote *r,
    const char *target, char ***names, char **cause);

/* Copy REMOTE/TARGET/NAME to local path dest.  0 or -1 with *cause. */
int remote_get(const struct config *cfg, const struct remote *r,
    const char *target, const char *name, const char *dest, char **cause);

#endif
