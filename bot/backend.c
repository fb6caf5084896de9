/*
 * backend.c - which backend backs up which kind of target.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "util.h"

int
backend_password(const struct target *t, char **password, char **cause)
{
	char *why = NULL;

	*password = NULL;
	if (t->password_file == NULL)
		return 0;
	if ((*password = secret_read(t->password_file, &why)) == NULL) {
		*cause = xasprintf("[%s %s] password_file: %s",
		    config_kind_name(t->kind), t->name, why);
		free(why);
		return -1;
	}
	return 0;
}

void
backend_log(struct job_ctx *ctx, const char *level, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (ctx->log == NULL)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	ctx->log(ctx, level, msg);
	free(msg);
}

void
backend_progress(struct job_ctx *ctx, const char *phase, uint64_t done,
    uint64_t total)
{
	if (ctx->progress != NULL && phase != NULL)
		ctx->progress(ctx, phase, done, total);
}

void
backend_fact(cJSON *m, const char *key, cJSON *item)
{
	if (m == NULL || item == NULL) {
		cJSON_Delete(item);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(m, key) != NULL)
		cJSON_ReplaceItemInObjectCaseSensitive(m, key, item);
	else
		cJSON_AddItemToObject(m, key, item);
}

const struct backend *
backend_for(const struct target *t)
{
	switch (t->kind) {
	case TARGET_POSTGRES:
		return &backend_postgres;
	case TARGET_REDIS:
		return &backend_redis;
	case TARGET_FILES:
		return &backend_files;
	case TARGET_MEDIA:
		return &backend_media;
	case TARGET_PGBACKREST:
		return &backend_pgbackrest;
	}
	return NULL;
}
