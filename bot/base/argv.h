/*
 * argv.h - splitting a line into words without a shell: chat commands and
 * bot.conf's argvs (script commands, hooks) use the same rules.
 */
#ifndef BB_ARGV_H
#define BB_ARGV_H

#include <stddef.h>

#define ARGV_MAX_ARGS	32
#define ARGV_MAX_LEN	4096

/*
 * Split a command line into argv: whitespace separates words; '...' quotes
 * literally; "..." quotes with \" and \\ escapes; a backslash outside
 * quotes escapes the next character.  Input must be valid UTF-8 with no
 * control characters, at most ARGV_MAX_LEN bytes and ARGV_MAX_ARGS words.
 * Returns argc >= 0 with *argv allocated (argv_free), or -1 with
 * *cause set (caller frees).
 */
int  argv_split(const char *line, char ***argv, char **cause);
void argv_free(int argc, char **argv);

/* 1 if s is valid UTF-8 without control characters. */
int argv_valid_text(const char *s, size_t len);

#endif
