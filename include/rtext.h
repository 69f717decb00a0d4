/*
 * rtext.h - the terminal (100 columns) and Markdown reports.
 */
#ifndef ABGATE_RTEXT_H
#define ABGATE_RTEXT_H

#include <stdio.h>

struct analysis;
struct render_meta;

/* Writes one report; markdown selects Markdown. Returns 0 or -1 (write error). */
int rtext_write(FILE *f, const struct analysis *a, const struct render_meta *m, int markdown);

#endif
