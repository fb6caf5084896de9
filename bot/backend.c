/*
 * backend.c - which backend backs up which kind of target.
 */
#include <stddef.h>

#include "backend.h"
#include "config.h"

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
	}
	return NULL;
}
