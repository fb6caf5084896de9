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
	if (t->kind == TARGET_SCRIPT && !config_records_runs(t))
		return &backend_script_backup;
	return backend_for_kind(t->kind);
}

const struct backend *
backend_for_kind(enum target_kind kind)
{
	switch (kind) {
	case TARGET_POSTGRES:
		return &backend_postgres;
	case TARGET_REDIS:
		return &backend_redis;
	case TARGET_FILES:
		return &backend_files;
	case TARGET_MEDIA:
		return &backend_media;
	case TARGET_SCRIPT:
		return &backend_script;
	case TARGET_PGBACKREST:
		return &backend_pgbackrest;
	}
	return NULL;
}

static int
check_key(enum target_kind kind, const char *key, const char *value,
    char **cause)
{
	const struct backend *b = backend_for_kind(kind);

	if (b == NULL || b->check_key == NULL)
		return 0;
	return b->check_key(key, value, cause);
}

static int
check_target(const struct target *t, char **cause)
{
	const struct backend *b = backend_for(t);

	if (b == NULL || b->check_target == NULL)
		return 0;
	return b->check_target(t, cause);
}

const struct config_checks backend_config_checks = {
	.check_key = check_key,
	.check_target = check_target,
};
