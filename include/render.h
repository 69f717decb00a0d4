/*
 * render.h - writes analyses as a report: JSON (the contract of DESIGN.md "Report"), text for
 * the terminal (100 columns), Markdown for a pull request, or one self-contained HTML file with
 * inline SVG charts. The text/Markdown writers live in rtext.c, the HTML one in rhtml.c; this
 * module holds the JSON object, the dispatch and the number formatting they share.
 */
#ifndef ABGATE_RENDER_H
#define ABGATE_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct analysis;
struct cJSON;
struct shadow_summary;

enum render_format { RENDER_TEXT, RENDER_JSON, RENDER_MD, RENDER_HTML };

/* What the report command adds around an analysis. */
struct render_meta {
	const char *generated;	 /* "2026-11-22T18:50:15Z" */
	const char *const *logs; /* (ref) log paths */
	size_t nlogs;
	uint64_t request, outcome, config, shadow, forced, other;
	uint64_t unrandomised;           /* requests without a unit (fallback: control) */
	uint64_t skipped; /* malformed or invalid lines in all logs */
	const struct shadow_summary *shadow_stats; /* (ref) NULL: no shadow records */
};

/* Parses "text", "json", "md" or "html"; returns the format or -1. */
int render_format_parse(const char *name);

/* The report object of one analysis (owned by the caller: cJSON_Delete), or NULL (memory). */
struct cJSON *render_json(const struct analysis *a, const struct render_meta *m);

/*
 * Writes n analyses (metas[i] belongs to as[i]) to f in the format: JSON gives one object for
 * n = 1 and an array otherwise; the other formats put the reports one after the other (HTML:
 * in one document). Returns 0, or -1 on a write error or out of memory.
 */
int render_write(FILE *f, enum render_format fmt, struct analysis *const *as,
		 const struct render_meta *metas, size_t n);

/* Shared formatting: a number with sig significant digits ("-" when !has or not finite). */
const char *render_num(char *buf, size_t len, bool has, double v, int sig);
/* A p-value: 4 decimals down to 1e-4, scientific below ("-" when !has). */
const char *render_p(char *buf, size_t len, bool has, double p);
/* The notes of a comparison joined with "; " into buf (empty when none). */
const char *render_notes(char *buf, size_t len, const char *const *notes, size_t n);

struct shadow_stats_rate;
struct shadow_stats_side;
/* A rate as "0.9 (891/990), 95% Wilson CI [0.88, 0.92]" into buf; none when nothing counted. */
const char *render_rate(char *buf, size_t len, const struct shadow_stats_rate *r,
			const char *none);
/* One side's latencies as the five cells mean, sd, p50, p95, p99. */
void render_side_cells(char cells[5][32], const struct shadow_stats_side *d);

#endif
