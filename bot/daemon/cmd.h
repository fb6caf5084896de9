/*
 * cmd.h - chat commands: turning a message body into argv, the command
 * table, and lookup.  One handler per file in handlers/, each exporting a
 * `const struct cmd_entry`; handlers/table.c holds the NULL-terminated list.
 */
#ifndef BB_CMD_H
#define BB_CMD_H

#include <stddef.h>

#include "argv.h"

struct bot;
struct msg;

#define CMD_MAX_ARGS	ARGV_MAX_ARGS
#define CMD_MAX_LEN	ARGV_MAX_LEN

/* Never run from the backlog without a fresh request (e.g. restore). */
#define CMD_DANGEROUS	0x1
/*
 * Its answer takes time (it starts a job): the command gets a 👀 at
 * once.  Any other answer is ready at once and is its own
 * acknowledgement, so it is not held up behind a reaction's round trip.
 */
#define CMD_SLOW	0x2
/*
 * It only reads (help, list, status): its batch may be recorded as seen
 * after its replies are answered (bot.c, batch_commit).  A command that
 * acts (starts a job, votes, cancels, pauses) has its batch made durable
 * at once, so that a crash cannot run it a second time.
 */
#define CMD_READONLY	0x4

/* What a handler gets. */
struct cmd_ctx {
	struct bot	 *bot;
	const char	 *room_id;
	const char	 *event_id;	/* the command message */
	const char	 *thread_root;	/* where replies go */
	const char	 *sender;
	int		  argc;
	char		**argv;		/* argv[0] is the command name */
};

struct cmd_entry {
	const char	*name;
	const char	*alias;		/* or NULL */
	const char	*usage;		/* arguments, e.g. "[COMMAND]" */
	const char	*summary;	/* one line for !help */
	int		 min_args;	/* not counting the name */
	int		 max_args;	/* -1: unlimited */
	int		 flags;
	/* Answers through bot_reply(); returns 0, or -1 after replying. */
	int		(*exec)(struct cmd_ctx *);
};

extern const struct cmd_entry *cmd_table[];

/*
 * The command text of a message body, or NULL if it is not a command:
 * strips a reply fallback (leading "> " lines and the blank line after
 * them), then requires the prefix.  Returns a pointer into body.
 */
const char *cmd_extract(const char *body, const char *prefix);

/*
 * Find a command by name, alias or unique prefix.  On failure returns NULL
 * and, if suggest is not NULL, sets *suggest to a "did you mean" hint
 * (caller frees) or NULL.
 */
const struct cmd_entry *cmd_find(const char *name, char **suggest);

/* Usage line, e.g. "!help [COMMAND]" (caller frees). */
char *cmd_usage(const struct cmd_entry *c, const char *prefix);

/* Edit distance, capped at max+1. */
int cmd_distance(const char *a, const char *b, int max);

#endif
