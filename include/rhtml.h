/*
 * rhtml.h - the HTML report: one self-contained file with inline CSS and SVG charts (confidence
 * intervals per metric, traffic split over time, cumulative lift over time); no script and no
 * network access.
 */
#ifndef ABGATE_RHTML_H
#define ABGATE_RHTML_H

#include <stddef.h>
#include <stdio.h>

struct analysis;
struct render_meta;

/* Writes one document holding n reports. Returns 0 or -1 (write error). */
int rhtml_write(FILE *f, struct analysis *const *as, const struct render_meta *metas, size_t n);

#endif
