/*
 * version.h - backupbot's version: `backupbot --version`, the status
 * answer, and the "backupbot" field of every manifest.
 */
#ifndef BB_VERSION_H
#define BB_VERSION_H

#define BB_VERSION	"0.1.0"

#endif
