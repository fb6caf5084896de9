/*
 * proc.c - spawning programs with an argv array (see proc.h).
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

extern char **environ;

static void
close_pair(int fd[2])
{
	if (fd[0] != -1)
		close(fd[0]);
	if (fd[1] != -1)
		close(fd[1]);
	fd[0] = fd[1] = -1;
}

/*
 * 1 if the environment entry e ("NAME=value") is replaced by one in
 * env_add.  Replace, not append: Go programs (rclone) take the first of
 * two entries with the same name.
 */
static int
env_replaced(const char *e, const char *const *env_add)
{
	size_t n = strcspn(e, "=");

	for (; env_add != NULL && *env_add != NULL; env_add++)
		if (strncmp(e, *env_add, n) == 0 && (*env_add)[n] == '=')
			return 1;
	return 0;
}

int
proc_spawn(struct proc *p, const char *const *argv,
    const char *const *env_add, int flags, char **cause)
{
	size_t nenv = 0, nadd = 0;
	char **env;
	int r;

	while (environ[nenv] != NULL)
		nenv++;
	while (env_add != NULL && env_add[nadd] != NULL)
		nadd++;
	env = xcalloc(nenv + nadd + 1, sizeof(*env));
	nenv = 0;
	for (size_t i = 0; environ[i] != NULL; i++)
		if (!env_replaced(environ[i], env_add))
			env[nenv++] = environ[i];
	if (nadd > 0)
		memcpy(env + nenv, env_add, nadd * sizeof(*env));
	r = proc_spawn_as(p, argv, (const char *const *)env, NULL, flags,
	    cause);
	free(env);
	return r;
}

/* In the child: become who `as` says (only async-signal-safe calls). */
static int
child_setup(const struct proc_as *as)
{
	if (as->stdin_fd != -1 && dup2(as->stdin_fd, 0) == -1)
		return -1;
	if (as->ngroups >= 0 && setgroups((size_t)as->ngroups,
	    as->groups) == -1)
		return -1;
	if (as->gid != (gid_t)-1 && setgid(as->gid) == -1)
		return -1;
	if (as->uid != (uid_t)-1 && setuid(as->uid) == -1)
		return -1;
	/* a change of user clears the death signal: set it again */
	if (as->uid != (uid_t)-1)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (as->dir != NULL && chdir(as->dir) == -1)
		return -1;
	return 0;
}

int
proc_spawn_as(struct proc *p, const char *const *argv,
    const char *const *env, const struct proc_as *as, int flags,
    char **cause)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int report[2] = { -1, -1 };
	pid_t parent = getpid();
	int child_errno;
	ssize_t n;

	*cause = NULL;
	p->pid = -1;
	p->in_fd = p->out_fd = p->err_fd = -1;
	if (((flags & PROC_STDIN) && pipe2(in, O_CLOEXEC) == -1) ||
	    ((flags & PROC_STDOUT) && pipe2(out, O_CLOEXEC) == -1) ||
	    ((flags & PROC_STDERR) && pipe2(err, O_CLOEXEC) == -1) ||
	    pipe2(report, O_CLOEXEC) == -1) {
		*cause = xasprintf("pipe: %s", strerror(errno));
		goto fail;
	}
	if ((p->pid = fork()) == -1) {
		*cause = xasprintf("fork: %s", strerror(errno));
		goto fail;
	}
	if (p->pid == 0) {
		sigset_t none;

		/* Nothing outlives its parent: a job dies with the daemon. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (flags & PROC_NEWGROUP)
			setpgid(0, 0);
		if (in[0] != -1)
			dup2(in[0], 0);
		if (out[1] != -1)
			dup2(out[1], 1);
		else if (flags & PROC_STDOUT_NULL) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd != -1)
				dup2(fd, 1);
		}
		if (err[1] != -1)
			dup2(err[1], 2);
		if (as != NULL && child_setup(as) == -1)
			child_errno = errno;
		else {
			execvpe(argv[0], (char *const *)argv,
			    (char *const *)env);
			child_errno = errno;
		}
		if (write(report[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}
	close(report[1]);
	report[1] = -1;
	/* The child reports a failed exec; a clean close means it ran. */
	do
		n = read(report[0], &child_errno, sizeof(child_errno));
	while (n == -1 && errno == EINTR);
	close(report[0]);
	report[0] = -1;
	if (n == sizeof(child_errno)) {
		waitpid(p->pid, NULL, 0);
		p->pid = -1;
		*cause = xasprintf("cannot run %s: %s", argv[0],
		    strerror(child_errno));
		goto fail;
	}
	if (in[0] != -1)
		close(in[0]);
	if (out[1] != -1)
		close(out[1]);
	if (err[1] != -1)
		close(err[1]);
	p->in_fd = in[1];
	p->out_fd = out[0];
	p->err_fd = err[0];
	return 0;

fail:
	close_pair(in);
	close_pair(out);
	close_pair(err);
	close_pair(report);
	return -1;
}

/* Close our ends of the child's pipes. */
static void
close_ends(struct proc *p)
{
	if (p->in_fd != -1)
		close(p->in_fd);
	if (p->out_fd != -1)
		close(p->out_fd);
	if (p->err_fd != -1)
		close(p->err_fd);
	p->in_fd = p->out_fd = p->err_fd = -1;
}

int
proc_wait(struct proc *p, int *status)
{
	pid_t r;

	close_ends(p);
	if (p->pid <= 0)
		return -1;
	do
		r = waitpid(p->pid, status, 0);
	while (r == -1 && errno == EINTR);
	p->pid = -1;
	return r == -1 ? -1 : 0;
}

/* Read once from *fd: 0 while it is open, 1 at its end (closed). */
static int
pump_read(int *fd, unsigned char *buf, size_t size, ssize_t *got)
{
	*got = read(*fd, buf, size);
	if (*got > 0 || (*got == -1 && (errno == EINTR || errno == EAGAIN)))
		return 0;
	close(*fd);
	*fd = -1;
	return 1;
}

int
proc_pump(struct proc *p, const struct pump *pm, char **cause)
{
	unsigned char *block = xmalloc(64 * 1024), chunk[4096];
	int64_t last = 0;
	int r = 0;

	*cause = NULL;
	while (p->out_fd != -1 || p->err_fd != -1) {
		struct pollfd pf[3] = { { p->out_fd, POLLIN, 0 },
		    { p->err_fd, POLLIN, 0 }, { -1, POLLIN, 0 } };
		ssize_t n;

		if (pm->stop != NULL && pm->stop(pm->arg)) {
			r = 1;
			break;
		}
		if (pm->aux_fd != NULL && pm->aux != NULL)
			pf[2].fd = pm->aux_fd(pm->arg);
		if (poll(pf, 3, pm->poll_ms) == -1 && errno != EINTR) {
			*cause = xasprintf("poll: %s", strerror(errno));
			r = -1;
			break;
		}
		if (p->out_fd != -1 && (pf[0].revents & (POLLIN | POLLHUP |
		    POLLERR)) && pump_read(&p->out_fd, block, 64 * 1024,
		    &n) == 0 && n > 0 && pm->out != NULL &&
		    pm->out(pm->arg, block, (size_t)n) == -1) {
			r = 1;
			break;
		}
		if (p->err_fd != -1 && (pf[1].revents & (POLLIN | POLLHUP |
		    POLLERR)) && pump_read(&p->err_fd, chunk, sizeof(chunk),
		    &n) == 0 && n > 0 && pm->err != NULL)
			tail_add(pm->err, (char *)chunk, (size_t)n);
		if (pf[2].fd != -1 && (pf[2].revents & (POLLIN | POLLHUP |
		    POLLERR)) && pm->aux(pm->arg) == -1) {
			r = 1;
			break;
		}
		if (pm->tick != NULL && mono_ms() - last >= pm->tick_ms) {
			last = mono_ms();
			pm->tick(pm->arg);
		}
	}
	free(block);
	return r;
}

void
proc_reap(struct proc *p, int grace_ms, int *status)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int64_t deadline = mono_ms() + grace_ms;
	pid_t r;

	close_ends(p);
	for (;;) {
		r = waitpid(p->pid, status, WNOHANG);
		if (r == p->pid || (r == -1 && errno != EINTR))
			break;
		if (mono_ms() >= deadline) {
			kill(-p->pid, SIGKILL);
			while (waitpid(p->pid, status, 0) == -1 &&
			    errno == EINTR)
				;
			break;
		}
		nanosleep(&ts, NULL);
	}
	p->pid = -1;
}

char *
proc_status_text(int status)
{
	if (WIFEXITED(status))
		return xasprintf("exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return xasprintf("killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	return xasprintf("ended with wait status %d", status);
}

int
proc_ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void
tail_add(struct tail *t, const char *data, size_t n)
{
	if (n >= sizeof(t->buf)) {
		data += n - (sizeof(t->buf) - 1);
		n = sizeof(t->buf) - 1;
	}
	if (t->len + n >= sizeof(t->buf)) {
		size_t drop = t->len + n - (sizeof(t->buf) - 1);

		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

const char *
tail_text(struct tail *t, int max_lines)
{
	size_t end = t->len;
	int lines = 0;

	t->buf[t->len] = '\0';
	while (end > 0 && (t->buf[end - 1] == '\n' || t->buf[end - 1] == ' '))
		t->buf[--end] = '\0';
	for (size_t i = end; i-- > 0; ) {
		if (t->buf[i] == '\n' && ++lines == max_lines)
			return t->buf + i + 1;
	}
	return t->buf;
}

int
proc_collect(struct proc *p, char **out, size_t out_cap, struct tail *err,
    int *status)
{
	struct buf b;
	char chunk[8192];

	buf_init(&b, out_cap);
	buf_add(&b, "", 0);
	while (p->out_fd != -1 || p->err_fd != -1) {
		struct pollfd pf[2] = { { p->out_fd, POLLIN, 0 },
		    { p->err_fd, POLLIN, 0 } };
		ssize_t n;

		if (poll(pf, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &p->out_fd : &p->err_fd;

			if (*fd == -1 || !(pf[i].revents & (POLLIN | POLLHUP |
			    POLLERR)))
				continue;
			n = read(*fd, chunk, sizeof(chunk));
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
			} else if (i == 0)
				buf_add(&b, chunk, (size_t)n); /* over cap: cut */
			else if (err != NULL)
				tail_add(err, chunk, (size_t)n);
		}
	}
	proc_wait(p, status);
	if (out != NULL)
		*out = buf_detach(&b, NULL);
	else
		buf_release(&b);
	return 0;
}

int
proc_run(const char *const *argv, const char *const *env_add, char **out,
    size_t out_cap, struct tail *err, int *status, char **cause)
{
	struct proc p;

	if (proc_spawn(&p, argv, env_add, (out ? PROC_STDOUT :
	    PROC_STDOUT_NULL) | PROC_STDERR, cause) == -1)
		return -1;
	return proc_collect(&p, out, out_cap, err, status);
}
