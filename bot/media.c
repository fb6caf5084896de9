/*
 * media.c - being written.
 */
#include <stddef.h>

#include "backend.h"

const struct backend backend_media = {
	.kind = "media",
	.suffix = ".media",
};
