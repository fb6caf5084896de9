/*
 * lock.c - one flock per target under state_dir/locks (see lock.h).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lock.h"
#include "util.h"

static int
lock_open(const struct config *cfg, const char *target, char **cause)
{
	char *dir = xasprintf("%s/locks", cfg->state_dir);
	char *path = xasprintf("%s/%s.lock", dir, target);
	int fd = -1;

	if (!config_valid_name(target))
		*cause = xasprintf("'%.40s' is not a target name", target);
	else if (dir_make(dir, 0700) == -1)
		*cause = xasprintf("cannot create %s: %s", dir,
		    strerror(errno));
	else if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1)
		*cause = xasprintf("cannot open %s: %s", path,
		    strerror(errno));
	free(path);
	free(dir);
	return fd;
}

int
lock_target(const struct config *cfg, const char *target, int wait,
    void (*waiting)(void *arg, const char *msg), void *arg,
    volatile sig_atomic_t *cancelled, char **cause)
{
	int fd;

	*cause = NULL;
	if ((fd = lock_open(cfg, target, cause)) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	if (errno != EWOULDBLOCK) {
		*cause = xasprintf("cannot lock %s: %s", target,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!wait) {
		*cause = xasprintf("%s is busy: another backupbot process "
		    "(the daemon's job or a command) is working on it; "
		    "try again later, or leave out --no-wait to wait",
		    target);
		close(fd);
		return -1;
	}
	if (waiting != NULL)
		waiting(arg, "another backupbot process is working on this "
		    "target; waiting for it to finish");
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR || (cancelled != NULL && *cancelled)) {
			*cause = errno == EINTR ? xstrdup("cancelled while "
			    "waiting for the target's lock") : xasprintf(
			    "cannot lock %s: %s", target, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

int
lock_try(const struct config *cfg, const char *target)
{
	char *cause = NULL;
	int fd = lock_open(cfg, target, &cause);

	free(cause);
	if (fd != -1 && flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

void
lock_release(int fd)
{
	if (fd != -1)
		close(fd);	/* closing drops the flock */
}
