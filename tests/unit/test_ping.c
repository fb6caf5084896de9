/*
 * test_ping.c - healthcheck pings: the URL per event, and a ping on the
 * daemon's multi handle against a throwaway HTTP server on 127.0.0.1:
 * it carries no access token, its completion leaves a homeserver call's
 * callback alone, and the log never shows the check's secret path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "matrix.h"
#include "util.h"
#include "testutil.h"

static void
test_ping_url(void **state)
{
	static const struct {
		const char	*base;
		const char	*event;
		const char	*want;
	} cases[] = {
		{ "https://hc-ping.com/5f3c", "start",
		    "https://hc-ping.com/5f3c/start" },
		{ "https://hc-ping.com/5f3c", "fail",
		    "https://hc-ping.com/5f3c/fail" },
		{ "https://hc-ping.com/5f3c", "success",
		    "https://hc-ping.com/5f3c" },
		{ "https://hc-ping.com/5f3c", NULL, "https://hc-ping.com/5f3c" },
		{ "https://hc-ping.com/5f3c", "", "https://hc-ping.com/5f3c" },
		/* a trailing slash is not doubled; success keeps it */
		{ "https://hc-ping.com/5f3c/", "start",
		    "https://hc-ping.com/5f3c/start" },
		{ "https://hc-ping.com/5f3c//", "fail",
		    "https://hc-ping.com/5f3c/fail" },
		{ "https://hc-ping.com/5f3c/", "success",
		    "https://hc-ping.com/5f3c/" },
		/* the query stays last */
		{ "https://hc.example/ping/KEY/db?create=1", "start",
		    "https://hc.example/ping/KEY/db/start?create=1" },
		{ "https://hc.example/ping/KEY/db/?create=1", "fail",
		    "https://hc.example/ping/KEY/db/fail?create=1" },
		{ "https://hc.example/ping/KEY/db?create=1", "success",
		    "https://hc.example/ping/KEY/db?create=1" },
		/* other healthchecks events */
		{ "http://hc.lan:8000/ping/abc", "log",
		    "http://hc.lan:8000/ping/abc/log" },
		{ "http://hc.lan:8000/ping/abc", "1",
		    "http://hc.lan:8000/ping/abc/1" },
	};

	(void)state;
	for (size_t i = 0; i < nitems(cases); i++) {
		char *got = mx_ping_url(cases[i].base, cases[i].event);

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s + %s: got %s, want %s", cases[i].base,
			    cases[i].event ? cases[i].event : "NULL", got,
			    cases[i].want);
		free(got);
	}
}

/* ---- a throwaway HTTP server ------------------------------------------ */

#define MAX_CLIENTS	8
#define SECRET		"1e3b5c7a-0d4f-4b8e-9c2d-5a6b7c8d9e0f"
#define TOKEN		"syt_TOKEN_must_not_leak"

struct server {
	int		 lfd;
	int		 port;
	int		 cfd[MAX_CLIENTS];
	struct buf	 req[MAX_CLIENTS];
	struct buf	 seen;		/* every request, one after another */
};

static void
server_start(struct server *s)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	assert_true(s->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len),
	    0);
	s->port = ntohs(sa.sin_port);
	for (int i = 0; i < MAX_CLIENTS; i++)
		s->cfd[i] = -1;
	buf_init(&s->seen, 1024 * 1024);
	buf_add(&s->seen, "", 0);
}

static void
server_stop(struct server *s)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (s->cfd[i] != -1)
			close(s->cfd[i]);
		buf_release(&s->req[i]);
	}
	close(s->lfd);
	buf_release(&s->seen);
}

/* The fds to wait on: the listener and every open client. */
static int
server_fds(const struct server *s, int *fds)
{
	int n = 0;

	fds[n++] = s->lfd;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (s->cfd[i] != -1)
			fds[n++] = s->cfd[i];
	return n;
}

static void
respond(int fd, const char *request)
{
	const char *r;

	if (strstr(request, "GET /_matrix/client/v3/account/whoami ") ==
	    request)
		r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "Content-Length: 22\r\nConnection: close\r\n\r\n"
		    "{\"user_id\":\"@bot:hs\"}\n";
	else if (strstr(request, "/fail ") != NULL)
		r = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n";
	else
		r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
		    "Connection: close\r\n\r\nOK";
	assert_int_equal(write(fd, r, strlen(r)), (ssize_t)strlen(r));
}

/* Accept every waiting connection; the number accepted. */
static int
server_accept(struct server *s)
{
	int fd, n = 0;

	while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) >= 0) {
		int i;

		for (i = 0; i < MAX_CLIENTS && s->cfd[i] != -1; i++)
			;
		assert_true(i < MAX_CLIENTS);
		s->cfd[i] = fd;
		buf_init(&s->req[i], 64 * 1024);
		buf_add(&s->req[i], "", 0);
		n++;
	}
	return n;
}

/* Accept, read whole requests (headers only), answer, close. */
static void
server_serve(struct server *s)
{
	server_accept(s);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		char chunk[4096];
		ssize_t n;

		if (s->cfd[i] == -1)
			continue;
		while ((n = read(s->cfd[i], chunk, sizeof(chunk))) > 0)
			buf_add(&s->req[i], chunk, (size_t)n);
		if (strstr(s->req[i].data, "\r\n\r\n") == NULL && n != 0)
			continue;
		respond(s->cfd[i], s->req[i].data);
		buf_addf(&s->seen, "%s", s->req[i].data);
		close(s->cfd[i]);
		s->cfd[i] = -1;
		buf_release(&s->req[i]);
	}
}

/* ---- pings ------------------------------------------------------------ */

struct whoami {
	int	 calls;
	long	 status;
	char	 user_id[64];
};

static void
whoami_cb(struct mx_resp *r, void *arg)
{
	struct whoami *w = arg;

	w->calls++;
	w->status = r->status;
	snprintf(w->user_id, sizeof(w->user_id), "%s", r->body ? r->body :
	    "");
}

/* Run the loop until nothing is in flight (10 s at most). */
static void
drain(struct mx *c, struct server *s)
{
	int64_t deadline = mono_ms() + 10000;

	while (mx_pending(c) > 0) {
		int fds[MAX_CLIENTS + 1], n = server_fds(s, fds);

		assert_true(mono_ms() < deadline);
		assert_int_equal(mx_poll(c, fds, n, 100), 0);
		server_serve(s);
	}
}

/* stderr into a file while fn runs; returns what was logged. */
static char *
logged_during(void (*fn)(void *), void *arg)
{
	char *dir = tu_mkdtemp(), *path = tu_path(dir, "log"), *text;
	int saved = dup(2), fd;

	fflush(stderr);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	fn(arg);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	text = tu_read(path);
	free(path);
	tu_rmtree(dir);
	return text;
}

struct ping_run {
	struct server	 srv;
	struct whoami	 who;
	int		 closed_port;
};

static void
ping_run(void *arg)
{
	struct ping_run *p = arg;
	char *hs = xasprintf("http://127.0.0.1:%d", p->srv.port);
	char *url = xasprintf("http://127.0.0.1:%d/ping/" SECRET, p->srv.port);
	char *fail = mx_ping_url(url, "fail");
	char *refused = xasprintf("http://127.0.0.1:%d/ping/" SECRET,
	    p->closed_port);
	struct mx *c = mx_new(hs, 1);

	mx_set_token(c, TOKEN);
	/* a homeserver call and pings in flight together */
	assert_non_null(mx_start(c, "GET", MX_V3 "/account/whoami", NULL,
	    10000, whoami_cb, &p->who));
	mx_ping(c, url, 5000);
	mx_ping(c, fail, 5000);
	mx_ping(c, refused, 5000);
	mx_ping(c, "ftp://127.0.0.1/" SECRET, 5000);	/* refused at once */
	assert_int_equal(mx_pending(c), 4);
	drain(c, &p->srv);
	/* one still in flight when the client goes: dropped, no leak */
	mx_ping(c, url, 5000);
	mx_free(c);
	free(refused);
	free(fail);
	free(url);
	free(hs);
}

/*
 * A job's /start and /fail pings: the second is not sent before the first
 * is answered, so a check never sees them the wrong way round.  The server
 * holds the first request unanswered for 300 ms: sent side by side, the
 * second would arrive meanwhile.
 */
static void
test_pings_go_one_at_a_time(void **state)
{
	struct server srv;
	struct mx *c;
	char *url, *start, *fail, *hs;
	const char *a, *b;
	int64_t until;
	int accepted = 0;

	(void)state;
	server_start(&srv);
	hs = xasprintf("http://127.0.0.1:%d", srv.port);
	url = xasprintf("http://127.0.0.1:%d/ping/" SECRET, srv.port);
	start = mx_ping_url(url, "start");
	fail = mx_ping_url(url, "fail");
	c = mx_new(hs, 1);
	mx_ping(c, start, 5000);
	mx_ping(c, fail, 5000);
	assert_int_equal(mx_pending(c), 2);
	until = mono_ms() + 300;
	while (mono_ms() < until) {
		int fds[MAX_CLIENTS + 1], n = server_fds(&srv, fds);

		assert_int_equal(mx_poll(c, fds, n, 20), 0);
		accepted += server_accept(&srv);
	}
	assert_int_equal(accepted, 1);
	drain(c, &srv);
	a = strstr(srv.seen.data, "GET /ping/" SECRET "/start ");
	b = strstr(srv.seen.data, "GET /ping/" SECRET "/fail ");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b);
	mx_free(c);
	server_stop(&srv);
	free(fail);
	free(start);
	free(url);
	free(hs);
}

static void
test_ping_on_the_loop(void **state)
{
	struct ping_run p;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char *log, *want;
	int fd;

	(void)state;
	memset(&p, 0, sizeof(p));
	/* a port nobody listens on */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	p.closed_port = ntohs(sa.sin_port);
	close(fd);

	server_start(&p.srv);
	log_init(LOG_LVL_DEBUG, "test");
	log = logged_during(ping_run, &p);
	log_init(LOG_LVL_INFO, "backupbot");

	/* the homeserver call got its own answer, once, with the token */
	assert_int_equal(p.who.calls, 1);
	assert_int_equal(p.who.status, 200);
	assert_string_equal(p.who.user_id, "{\"user_id\":\"@bot:hs\"}\n");
	assert_int_equal(tu_count(p.srv.seen.data,
	    "Authorization: Bearer " TOKEN "\r\n"), 1);
	/* the pings: two arrived, neither with the token */
	assert_int_equal(tu_count(p.srv.seen.data,
	    "GET /ping/" SECRET " HTTP/1.1\r\n"), 1);
	assert_int_equal(tu_count(p.srv.seen.data,
	    "GET /ping/" SECRET "/fail HTTP/1.1\r\n"), 1);
	assert_int_equal(tu_count(p.srv.seen.data, "GET "), 3);
	assert_int_equal(tu_count(p.srv.seen.data, TOKEN), 1);
	assert_int_equal(tu_count(p.srv.seen.data, "Authorization"), 1);

	/* the log names the host, never the secret */
	if (strstr(log, SECRET) != NULL || strstr(log, TOKEN) != NULL)
		fail_msg("secret in the log:\n%s", log);
	want = xasprintf("healthcheck ping to http://127.0.0.1:%d: HTTP 200",
	    p.srv.port);
	assert_non_null(strstr(log, want));
	free(want);
	want = xasprintf("warning: healthcheck ping to http://127.0.0.1:%d: "
	    "HTTP 500", p.srv.port);
	assert_non_null(strstr(log, want));
	free(want);
	want = xasprintf("warning: healthcheck ping to http://127.0.0.1:%d "
	    "failed: ", p.closed_port);
	assert_non_null(strstr(log, want));
	free(want);
	assert_non_null(strstr(log, "not an http(s) URL"));
	free(log);
	server_stop(&p.srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_url),
		cmocka_unit_test(test_pings_go_one_at_a_time),
		cmocka_unit_test(test_ping_on_the_loop),
	};

	return TU_RUN(tests);
}
