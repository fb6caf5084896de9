/*
 * lock.h - one lock per target, shared by every backupbot process: the
 * daemon's job children and the CLI.  An flock(2) on
 * state_dir/locks/TARGET.lock, held for as long as a process writes or
 * reads the target's backups (backup and its retention, restore, verify,
 * cat, catalog --from).  So retention never removes a backup another
 * process is reading, two backups of a target never interleave, and the
 * daemon's start-up cleanup leaves alone the partial files of a target
 * someone holds.
 *
 * The kernel drops the lock when its holder dies, however it dies: a
 * stale lock file means nothing.  The fd is close-on-exec, so pg_dump or
 * tar never inherit it.
 */
#ifndef BB_LOCK_H
#define BB_LOCK_H

#include <signal.h>

struct config;

/*
 * Take target's lock.  Busy and wait: waiting(arg, message) is called
 * once, then this blocks until the lock is free (or a signal sets
 * *cancelled).  Busy and !wait: -1 with *cause.  Returns the fd to give
 * to lock_release, or -1 with *cause.
 */
int lock_target(const struct config *cfg, const char *target, int wait,
    void (*waiting)(void *arg, const char *msg), void *arg,
    volatile sig_atomic_t *cancelled, char **cause);
/* Take it only if free: the fd, or -1 (busy, or cannot be opened). */
int lock_try(const struct config *cfg, const char *target);
void lock_release(int fd);

#endif
