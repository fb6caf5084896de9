/*
 * matrix.c - HTTP requests to the homeserver on libcurl (see matrix.h).
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "json.h"
#include "log.h"
#include "matrix.h"
#include "util.h"

struct mx_call {
	struct mx		*client;
	CURL			*easy;
	struct curl_slist	*headers;
	struct buf		 body;
	long			 retry_after_s;	/* from the header, -1 */
	char			 errbuf[CURL_ERROR_SIZE];
	char			*req_body;
	mx_cb			 cb;
	void			*arg;
	struct mx_call		*next;
};

struct mx {
	char		*base;		/* homeserver URL without trailing / */
	char		*auth_header;	/* "Authorization: Bearer ..." */
	int		 tls_verify;
	CURLM		*multi;
	struct mx_call	*calls;
	int		 pending;
	int		 kicked;	/* mx_kick ran: finished calls may wait */
	/*
	 * Healthcheck pings go out one at a time, in the order asked: a
	 * job's /start and its /fail sent side by side can arrive the wrong
	 * way round, and a check that sees /start last waits for a finish
	 * that already came.
	 */
	struct ping	*ping_head, *ping_tail;
	int		 ping_queued;
	int		 ping_busy;
};

struct ping {
	char		*url;
	long		 timeout_ms;
	struct ping	*next;
};

#define PING_QUEUE_MAX	64


struct mx *
mx_new(const char *homeserver, int tls_verify)
{
	struct mx *c = xcalloc(1, sizeof(*c));
	size_t n = strlen(homeserver);

	while (n > 0 && homeserver[n - 1] == '/')
		n--;
	c->base = xstrndup(homeserver, n);
	c->tls_verify = tls_verify;
	if ((c->multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
	return c;
}

static void
call_free(struct mx_call *call)
{
	if (call->easy != NULL)
		curl_easy_cleanup(call->easy);
	/* curl_slist_append copied the Authorization header: wipe the copy,
	 * so an old token does not linger in freed memory. */
	for (struct curl_slist *h = call->headers; h != NULL; h = h->next)
		secure_wipe(h->data, strlen(h->data));
	curl_slist_free_all(call->headers);
	buf_release(&call->body);
	free(call->req_body);
	free(call);
}

void
mx_free(struct mx *c)
{
	struct mx_call *call, *next;

	if (c == NULL)
		return;
	for (call = c->calls; call != NULL; call = next) {
		next = call->next;
		curl_multi_remove_handle(c->multi, call->easy);
		call_free(call);
	}
	while (c->ping_head != NULL) {
		struct ping *p = c->ping_head;

		c->ping_head = p->next;
		free(p->url);
		free(p);
	}
	curl_multi_cleanup(c->multi);
	mx_set_token(c, NULL);
	free(c->base);
	free(c);
}

void
mx_set_token(struct mx *c, const char *token)
{
	if (c->auth_header != NULL) {
		secure_wipe(c->auth_header, strlen(c->auth_header));
		free(c->auth_header);
		c->auth_header = NULL;
	}
	if (token != NULL)
		c->auth_header = xasprintf("Authorization: Bearer %s", token);
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct mx_call *call = arg;

	if (buf_add(&call->body, ptr, size * nmemb) == -1)
		return 0;	/* over the cap: curl aborts the transfer */
	return size * nmemb;
}

static size_t
header_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct mx_call *call = arg;
	size_t n = size * nmemb;
	char line[128];
	long long v;

	if (n < 12 || n >= sizeof(line) || strncasecmp(ptr, "retry-after:",
	    12) != 0)
		return n;
	memcpy(line, ptr + 12, n - 12);
	line[n - 12] = '\0';
	/* delay-seconds, or an HTTP date (RFC 9110) */
	if (str_to_ll(str_trim(line), 0, 86400, &v) == 0)
		call->retry_after_s = (long)v;
	else {
		time_t when = curl_getdate(str_trim(line), NULL), now = time(NULL);

		if (when != (time_t)-1)
			call->retry_after_s = when <= now ? 0 :
			    (long)(when - now > 86400 ? 86400 : when - now);
	}
	return n;
}

static struct mx_call *
call_new(struct mx *c, const char *method, const char *path,
    const char *body, long timeout_ms)
{
	struct mx_call *call = xcalloc(1, sizeof(*call));
	char *url = xasprintf("%s%s", c->base, path);
	CURL *e;

	call->client = c;
	call->retry_after_s = -1;
	buf_init(&call->body, MX_BODY_CAP);
	if ((e = call->easy = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	curl_easy_setopt(e, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "backupbot");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (!c->tls_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		call->req_body = xstrdup(body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->req_body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(call->req_body));
		call->headers = curl_slist_append(call->headers,
		    "Content-Type: application/json");
	} else if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{}");
		call->headers = curl_slist_append(call->headers,
		    "Content-Type: application/json");
	}
	if (c->auth_header != NULL)
		call->headers = curl_slist_append(call->headers,
		    c->auth_header);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
	return call;
}

/* Fill a response from a finished call. */
static void
call_response(struct mx_call *call, CURLcode rc, struct mx_resp *r)
{
	const cJSON *ra;

	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
	if (rc != CURLE_OK) {
		if (call->body.overflow)
			snprintf(r->net_error, sizeof(r->net_error),
			    "response larger than %d bytes", MX_BODY_CAP);
		else
			snprintf(r->net_error, sizeof(r->net_error), "%s",
			    call->errbuf[0] ? call->errbuf :
			    curl_easy_strerror(rc));
		return;
	}
	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = buf_detach(&call->body, &r->len);
	/*
	 * Parsed once: a large 2xx body (a sync, a page of messages) is
	 * left to the reader that parses it (sync_parse...); an error body,
	 * or a small answer, is parsed here.  Both within json.h's bounds.
	 */
	if (r->status / 100 != 2 || r->len <= MX_PARSE_INLINE)
		r->json = json_parse_bounded(r->body, r->len, NULL);
	if (cJSON_IsObject(r->json)) {
		const cJSON *ec, *er;

		ec = cJSON_GetObjectItemCaseSensitive(r->json, "errcode");
		er = cJSON_GetObjectItemCaseSensitive(r->json, "error");
		if (cJSON_IsString(ec))
			r->errcode = ec->valuestring;
		if (cJSON_IsString(er))
			r->error = er->valuestring;
		ra = cJSON_GetObjectItemCaseSensitive(r->json,
		    "retry_after_ms");
		if (cJSON_IsNumber(ra) && ra->valuedouble >= 0 &&
		    ra->valuedouble < 86400000.0)
			r->retry_after_ms = (long)ra->valuedouble;
	}
	/* The header is the current form; it wins over the body field. */
	if (call->retry_after_s >= 0)
		r->retry_after_ms = call->retry_after_s * 1000;
}

void
mx_resp_release(struct mx_resp *r)
{
	cJSON_Delete(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

struct mx_call *
mx_start(struct mx *c, const char *method, const char *path,
    const char *body, long timeout_ms, mx_cb cb, void *arg)
{
	struct mx_call *call = call_new(c, method, path, body, timeout_ms);

	call->cb = cb;
	call->arg = arg;
	curl_easy_setopt(call->easy, CURLOPT_PRIVATE, call);
	call->next = c->calls;
	c->calls = call;
	c->pending++;
	curl_multi_add_handle(c->multi, call->easy);
	log_debug("%s %s", method, path);
	return call;
}

void
mx_kick(struct mx *c)
{
	int running;

	/* A request it finishes waits in curl's queue: the next mx_poll
	 * must not sleep before reading it. */
	c->kicked = 1;
	if (curl_multi_perform(c->multi, &running) != CURLM_OK)
		log_debug("curl_multi_perform failed; mx_poll retries");
}

static void
unlink_call(struct mx *c, struct mx_call *call)
{
	for (struct mx_call **pp = &c->calls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			c->pending--;
			break;
		}
	}
	curl_multi_remove_handle(c->multi, call->easy);
}

void
mx_cancel(struct mx *c, struct mx_call *call)
{
	if (call == NULL)
		return;
	unlink_call(c, call);
	call_free(call);
}

int
mx_pending(const struct mx *c)
{
	return c->pending + c->ping_queued;
}

/* ---- healthcheck pings ------------------------------------------------ */

#define PING_TIMEOUT_MS	10000L

/* scheme://host[:port] of url: never its path, the check's secret. */
static char *
ping_origin(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *s;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		s = xstrdup("(a malformed URL)");
	else {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
			port = NULL;
		s = xasprintf("%s://%s%s%s", scheme, host, port ? ":" : "",
		    port ? port : "");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return s;
}

/*
 * 1 if text quotes a piece of url's path or query (8 characters or more
 * between separators): curl's messages do not, but a log line must never.
 */
static int
ping_quotes_secret(const char *text, const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	if (p == NULL || (p = strchr(p + 3, '/')) == NULL)
		return 0;
	for (; *p != '\0'; p += n) {
		p += strspn(p, "/?&=#");
		n = strcspn(p, "/?&=#");
		if (n >= 8 && memmem(text, strlen(text), p, n) != NULL)
			return 1;
	}
	return 0;
}

static size_t
ping_discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

static void ping_next(struct mx *);
static void ping_start(struct mx *, const char *, long);

/* The callback of a ping: arg is the call itself, freed after this. */
static void
ping_done(struct mx_resp *r, void *arg)
{
	struct mx_call *call = arg;
	char *effective = NULL, *origin;
	const char *url;

	curl_easy_getinfo(call->easy, CURLINFO_EFFECTIVE_URL, &effective);
	url = effective != NULL ? effective : "";
	origin = ping_origin(url);
	if (r->status >= 200 && r->status < 300)
		log_debug("healthcheck ping to %s: HTTP %ld", origin,
		    r->status);
	else if (r->status != 0)
		log_warnx("healthcheck ping to %s: HTTP %ld", origin,
		    r->status);
	else
		log_warnx("healthcheck ping to %s failed: %s", origin,
		    ping_quotes_secret(r->net_error, url) ? "network error" :
		    r->net_error);
	free(origin);
	call->client->ping_busy = 0;
	ping_next(call->client);
}

/* Start the next queued ping, if none is in flight. */
static void
ping_next(struct mx *c)
{
	struct ping *p;

	if (c->ping_busy || (p = c->ping_head) == NULL)
		return;
	if ((c->ping_head = p->next) == NULL)
		c->ping_tail = NULL;
	c->ping_queued--;
	c->ping_busy = 1;
	ping_start(c, p->url, p->timeout_ms);
	free(p->url);
	free(p);
}

void
mx_ping(struct mx *c, const char *url, long timeout_ms)
{
	struct ping *p;

	if (!str_startswith(url, "https://") &&
	    !str_startswith(url, "http://")) {
		log_warnx("healthcheck ping: not an http(s) URL, not sent");
		return;
	}
	if (c->ping_queued >= PING_QUEUE_MAX) {
		log_warnx("healthcheck ping: %d pings waiting, this one is "
		    "dropped", c->ping_queued);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->url = xstrdup(url);
	p->timeout_ms = timeout_ms <= 0 ? PING_TIMEOUT_MS : timeout_ms;
	if (c->ping_tail != NULL)
		c->ping_tail->next = p;
	else
		c->ping_head = p;
	c->ping_tail = p;
	c->ping_queued++;
	ping_next(c);
}

static void
ping_start(struct mx *c, const char *url, long timeout_ms)
{
	struct mx_call *call;
	char *origin;
	CURL *e;

	call = xcalloc(1, sizeof(*call));
	call->client = c;
	call->retry_after_s = -1;
	buf_init(&call->body, 0);
	if ((e = call->easy = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	/*
	 * Not call_new(): no Authorization header nor any header of ours,
	 * no cookies, no redirects.  Nothing of the homeserver's goes to
	 * a third party.
	 */
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < PING_TIMEOUT_MS ? timeout_ms : PING_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ping_discard);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "backupbot");
	/* Its own callback: completions are told apart by CURLOPT_PRIVATE. */
	call->cb = ping_done;
	call->arg = call;
	curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	call->next = c->calls;
	c->calls = call;
	c->pending++;
	curl_multi_add_handle(c->multi, e);
	origin = ping_origin(url);
	log_debug("healthcheck ping to %s", origin);
	free(origin);
}

char *
mx_ping_url(const char *base, const char *event)
{
	size_t query = strcspn(base, "?#"), end = query;

	if (event == NULL || *event == '\0' || !strcmp(event, "success"))
		return xstrdup(base);
	while (end > 0 && base[end - 1] == '/')
		end--;
	return xasprintf("%.*s/%s%s", (int)end, base, event, base + query);
}

int
mx_poll(struct mx *c, const int *fds, int nfds, int timeout_ms)
{
	struct curl_waitfd wfd[64];
	struct CURLMsg *m;
	int running, left;
	CURLMcode mc;

	if (nfds > (int)nitems(wfd))
		nfds = (int)nitems(wfd);
	memset(wfd, 0, sizeof(wfd));
	for (int i = 0; i < nfds; i++) {
		wfd[i].fd = fds[i];
		wfd[i].events = CURL_WAIT_POLLIN;
	}
	mc = curl_multi_poll(c->multi, nfds > 0 ? wfd : NULL, (unsigned)nfds,
	    c->kicked ? 0 : timeout_ms, NULL);
	c->kicked = 0;
	if (mc != CURLM_OK) {
		log_warnx("curl_multi_poll: %s", curl_multi_strerror(mc));
		return -1;
	}
	mc = curl_multi_perform(c->multi, &running);
	if (mc != CURLM_OK) {
		log_warnx("curl_multi_perform: %s", curl_multi_strerror(mc));
		return -1;
	}
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct mx_call *call;
		struct mx_resp r;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
		    (char **)&call);
		call_response(call, m->data.result, &r);
		unlink_call(c, call);
		if (call->cb != NULL)
			call->cb(&r, call->arg);
		mx_resp_release(&r);
		call_free(call);
	}
	return 0;
}

/*
 * A blocking call gives up when SIGTERM or SIGINT is pending (they are
 * blocked and read from a signalfd by the loop, so looking does not take
 * them): a homeserver that never answers the login must not hold up a
 * stop for the whole timeout.  libcurl asks at least once a second.
 */
static int
stop_pending(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	sigset_t set;

	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1);
}

void
mx_call(struct mx *c, const char *method, const char *path, const char *body,
    long timeout_ms, struct mx_resp *out)
{
	struct mx_call *call = call_new(c, method, path, body, timeout_ms);
	CURLcode rc;

	log_debug("%s %s", method, path);
	curl_easy_setopt(call->easy, CURLOPT_XFERINFOFUNCTION, stop_pending);
	curl_easy_setopt(call->easy, CURLOPT_NOPROGRESS, 0L);
	rc = curl_easy_perform(call->easy);
	call_response(call, rc, out);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(out->net_error, sizeof(out->net_error),
		    "not waited for: stopping");
	call_free(call);
}

char *
mx_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b, (size_t)-1 / 2);
	buf_add(&b, "", 0);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' ||
		    ch == '~')
			buf_add(&b, s, 1);
		else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

			buf_add(&b, e, 3);
		}
	}
	return buf_detach(&b, NULL);
}

char *
mx_describe(const struct mx_resp *r)
{
	if (r->status == 0)
		return xasprintf("network error: %s", r->net_error);
	if (r->errcode != NULL)
		return xasprintf("HTTP %ld %s: %.200s", r->status, r->errcode,
		    r->error != NULL ? r->error : "");
	return xasprintf("HTTP %ld", r->status);
}
