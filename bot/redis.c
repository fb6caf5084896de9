/*
 * redis.c - being written.
 */
#include <stddef.h>

#include "backend.h"

const struct backend backend_redis = {
	.kind = "redis",
	.suffix = ".redis",
};
