/*
 * matrix.h - the HTTP side of the Matrix client-server API, on libcurl.
 *
 * Requests are asynchronous on one curl multi handle and finish with a
 * callback; mx_poll() is the heart of the daemon's event loop.  Blocking
 * calls (mx_call) exist for start-up and `backupbot check`.
 *
 * The access token is kept here only, sent in the Authorization header
 * (never in a URL, so it cannot reach a log line), and wiped on free.
 * Response bodies are capped (MX_BODY_CAP) so a hostile server cannot make
 * the bot allocate without bound.
 */
#ifndef BB_MATRIX_H
#define BB_MATRIX_H

#include <stddef.h>

#define MX_BODY_CAP	(32 * 1024 * 1024)
/* A 2xx body larger than this is not parsed into mx_resp.json: its
 * reader parses the text (once).  Everything smaller is. */
#define MX_PARSE_INLINE	(1024 * 1024)
#define MX_V3		"/_matrix/client/v3"
#define MX_V1		"/_matrix/client/v1"

struct cJSON;

struct mx_resp {
	long		 status;	/* HTTP status, 0 on network error */
	char		*body;
	size_t		 len;
	struct cJSON	*json;		/* parsed body, or NULL */
	const char	*errcode;	/* from json, or NULL */
	const char	*error;
	long		 retry_after_ms;/* Retry-After / retry_after_ms, -1 */
	char		 net_error[256];
};

typedef void (*mx_cb)(struct mx_resp *r, void *arg);

struct mx;
struct mx_call;

struct mx *mx_new(const char *homeserver, int tls_verify);
void mx_free(struct mx *c);
/* Copies the token; the old one is wiped. */
void mx_set_token(struct mx *c, const char *token);

/*
 * Start a request.  path starts with "/_matrix/" and is already escaped
 * (mx_escape); body is JSON text or NULL.  cb runs from mx_poll(); the
 * response is released after it returns.
 */
struct mx_call *mx_start(struct mx *c, const char *method, const char *path,
    const char *body, long timeout_ms, mx_cb cb, void *arg);
/*
 * Drive the transfers once, without waiting: a request just started is
 * written to its connection now (when one is open to reuse) rather than
 * at the next mx_poll().  Finished requests are left for mx_poll().
 */
void mx_kick(struct mx *c);
/* Abandon a request without calling its callback. */
void mx_cancel(struct mx *c, struct mx_call *call);
/* Requests in flight. */
int mx_pending(const struct mx *c);

/*
 * Wait up to timeout_ms for network activity or one of the extra fds
 * becoming readable, then run callbacks of finished requests.  Returns 0,
 * or -1 on a curl failure (logged).
 */
int mx_poll(struct mx *c, const int *fds, int nfds, int timeout_ms);

/* Blocking request; fills out (release with mx_resp_release). */
void mx_call(struct mx *c, const char *method, const char *path,
    const char *body, long timeout_ms, struct mx_resp *out);
void mx_resp_release(struct mx_resp *r);

/*
 * A healthcheck ping (the healthchecks.io convention): a GET of url, fire
 * and forget, on the same multi handle as everything else so that the
 * event loop never waits for it.  url is an absolute http(s) URL of a
 * third party, so the request carries no Authorization header (nor any
 * other header of ours), follows no redirect, and always verifies TLS
 * whatever tls_verify says about the homeserver.  The URL's path is the
 * check's secret: log lines name only its scheme, host and port.  The
 * outcome is only logged (debug when 2xx, else a warning); timeout_ms
 * <= 0 means 10 s.  A ping counts in mx_pending() while in flight and is
 * dropped, unsent or unanswered, by mx_free().
 */
void mx_ping(struct mx *c, const char *url, long timeout_ms);
/*
 * The URL to ping for a check whose URL is base: event "start" ->
 * base/start, "fail" -> base/fail, "success" (NULL, "") -> base as it is;
 * any other event is appended the same way (healthchecks also takes
 * "log" and exit codes).  Slashes at the end of base are not doubled and
 * a query stays last: https://hc/ping/KEY/db?create=1 with "start" ->
 * https://hc/ping/KEY/db/start?create=1.  Caller frees.
 */
char *mx_ping_url(const char *base, const char *event);

/* Percent-encode s for use as one path segment or query value. */
char *mx_escape(const char *s);
/* "HTTP 404 M_NOT_FOUND: Room not found" or the network error. */
char *mx_describe(const struct mx_resp *r);

#endif
