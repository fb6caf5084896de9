/*
 * files.c - being written.
 */
#include <stddef.h>

#include "backend.h"

const struct backend backend_files = {
	.kind = "files",
	.suffix = ".files",
};
