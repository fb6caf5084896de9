/*
 * cli.h - the shell side of backupbot: backup, list, verify, keygen,
 * catalog.  The same job code as the daemon's children, reporting on the
 * terminal instead of in JSON lines.
 */
#ifndef BB_CLI_H
#define BB_CLI_H

struct config;

int cli_backup(const struct config *cfg, int argc, char **argv);
int cli_list(const struct config *cfg, int argc, char **argv);
int cli_verify(const struct config *cfg, int argc, char **argv);
/* Restore, after a question on the terminal unless --yes. */
int cli_restore(const struct config *cfg, int argc, char **argv);
/* Write a backup's original bytes to stdout, checking its hash. */
int cli_cat(const struct config *cfg, int argc, char **argv);
int cli_keygen(const struct config *cfg, int argc, char **argv);
int cli_catalog(const struct config *cfg, int argc, char **argv);
/* `e2ee status` (the device, keys and sessions) and `e2ee reset`. */
int cli_e2ee(const struct config *cfg, int argc, char **argv);

#endif
