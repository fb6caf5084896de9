/*
 * table.c - the command table, in the order !help lists it.
 */
#include <stddef.h>

#include "cmd.h"

extern const struct cmd_entry cmd_approve_entry;
extern const struct cmd_entry cmd_backup_entry;
extern const struct cmd_entry cmd_cancel_entry;
extern const struct cmd_entry cmd_deny_entry;
extern const struct cmd_entry cmd_help_entry;
extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_pause_entry;
extern const struct cmd_entry cmd_restore_entry;
extern const struct cmd_entry cmd_resume_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_verify_entry;

const struct cmd_entry *cmd_table[] = {
	&cmd_help_entry,
	&cmd_status_entry,
	&cmd_backup_entry,
	&cmd_list_entry,
	&cmd_verify_entry,
	&cmd_restore_entry,
	&cmd_approve_entry,
	&cmd_deny_entry,
	&cmd_cancel_entry,
	&cmd_pause_entry,
	&cmd_resume_entry,
	NULL
};
