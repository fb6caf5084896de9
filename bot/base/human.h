/*
 * human.h - numbers as people read them: "1.2 GB", "3m 12s", "2d".
 * Decimal units (1 KB = 1000 B).  Each writes a NUL-terminated string of
 * at most n bytes into out.
 */
#ifndef BB_HUMAN_H
#define BB_HUMAN_H

#include <stddef.h>

/* "1.2 GB", "512 KB" into out. */
void human_size(char *out, size_t n, double bytes);
/* "3m 12s" into out. */
void human_duration(char *out, size_t n, double seconds);
/* "2h", "3d" ago into out. */
void human_age(char *out, size_t n, double seconds);

#endif
