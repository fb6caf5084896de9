/*
 * url.c - redis://, rediss:// and unix:// URLs taken apart (redis.h).
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "proc.h"
#include "redis.h"
#include "redis_parts.h"
#include "util.h"

/* ---- url -------------------------------------------------------------- */

void
redis_url_release(struct redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	memset(u, 0, sizeof(*u));
}

static int
redis_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n); NULL on a bad escape or a NUL byte. */
static char *
redis_pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t k = 0;
	int hi, lo;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[k++] = s[i];
			continue;
		}
		if (i + 2 >= n) {
			free(out);
			return NULL;
		}
		if ((hi = redis_hexval(s[i + 1])) == -1 ||
		    (lo = redis_hexval(s[i + 2])) == -1 || (hi | lo) == 0) {
			free(out);
			return NULL;
		}
		out[k++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[k] = '\0';
	return out;
}

static int
redis_url_fail(struct redis_url *u, const char *url, const char *why,
    char **cause)
{
	*cause = xasprintf("url '%s': %s", url, why);
	redis_url_release(u);
	return -1;
}

/* A database number: "" is 0. */
static int
redis_url_db(const char *s, size_t n, int *db)
{
	char *num;
	long long v;
	int rc;

	if (n == 0) {
		*db = 0;
		return 0;
	}
	num = xstrndup(s, n);
	rc = str_to_ll(num, 0, 1000000, &v);
	free(num);
	if (rc == -1)
		return -1;
	*db = (int)v;
	return 0;
}

int
redis_url_parse(const char *url, struct redis_url *u, char **cause)
{
	const char *p, *end, *at, *colon, *hs, *he, *q;
	char *num;
	long long port;
	size_t len;

	memset(u, 0, sizeof(*u));
	*cause = NULL;
	if (str_startswith(url, "unix://")) {
		p = url + 7;
		len = strcspn(p, "?");
		if (len == 0 || *p != '/')
			return redis_url_fail(u, url, "unix:// needs an absolute "
			    "socket path: unix:///run/redis/redis.sock", cause);
		u->path = xstrndup(p, len);
		if (p[len] == '?' && (!str_startswith(p + len + 1, "db=") ||
		    redis_url_db(p + len + 4, strlen(p + len + 4),
		    &u->db) == -1))
			return redis_url_fail(u, url, "only ?db=N may follow "
			    "the socket path", cause);
		return 0;
	}
	if (str_startswith(url, "rediss://")) {
		u->tls = 1;
		p = url + 9;
	} else if (str_startswith(url, "redis://"))
		p = url + 8;
	else
		return redis_url_fail(u, url, "must start with redis://, "
		    "rediss:// or unix://", cause);
	u->port = REDIS_DEFAULT_PORT;
	end = p + strcspn(p, "/?#");

	/* user@ or user:password@: the password never goes in a url. */
	at = NULL;
	for (q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon != NULL && colon + 1 < at) {
			*cause = xstrdup("the url holds a password: it would be "
			    "shown in logs; put the password in password_file "
			    "and leave it out of the url (redis://user@host)");
			redis_url_release(u);
			return -1;
		}
		len = (size_t)((colon != NULL ? colon : at) - p);
		if (len > 0 && (u->user = redis_pct_decode(p, len)) == NULL)
			return redis_url_fail(u, url, "bad %-escape in the user "
			    "name", cause);
		p = at + 1;
	}

	if (*p == '[') {
		hs = p + 1;
		if ((he = memchr(hs, ']', (size_t)(end - hs))) == NULL)
			return redis_url_fail(u, url, "no ']' after an IPv6 "
			    "address", cause);
		q = he + 1;
	} else {
		hs = p;
		he = memchr(p, ':', (size_t)(end - p));
		if (he == NULL)
			he = end;
		q = he;
	}
	if (he == hs)
		return redis_url_fail(u, url, "no host", cause);
	if (*hs == '-')
		return redis_url_fail(u, url, "bad host name", cause);
	for (const char *c = hs; c < he; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' ||
		    *c == '_' || (*p == '[' && (*c == ':' || *c == '%'))))
			return redis_url_fail(u, url, "bad host name", cause);
	u->host = xstrndup(hs, (size_t)(he - hs));
	if (q < end) {
		if (*q != ':')
			return redis_url_fail(u, url, "unexpected text after "
			    "the host", cause);
		num = xstrndup(q + 1, (size_t)(end - q - 1));
		if (str_to_ll(num, 1, 65535, &port) == -1) {
			free(num);
			return redis_url_fail(u, url, "bad port", cause);
		}
		free(num);
		u->port = (int)port;
	}
	if (*end == '/') {
		p = end + 1;
		len = strlen(p);
		if (redis_url_db(p, len, &u->db) == -1)
			return redis_url_fail(u, url, "the path must be a "
			    "database number: redis://host:6379/0", cause);
	} else if (*end != '\0')
		return redis_url_fail(u, url, "unexpected '?' or '#'; the "
		    "form is redis://[user@]host:port/db", cause);
	return 0;
}
