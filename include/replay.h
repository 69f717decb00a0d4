/*
 * replay.h - at start, what the outcome log's tail still knows: the request ids served and
 * the outcomes recorded within the retention window (outcomes.rid_window_s) before a restart,
 * put back into the request-id map and the outcome keys (ridmap.h), so that an outcome posted
 * after the restart for a request served before it is still attributed, and a batch retried
 * across the restart still counts once.
 *
 * Only the current file of log.outcomes is read (after a rotation, the rotated file's records
 * are not), from the first record of the window on: the start is found by bisecting the file
 * on the records' timestamps, so the time taken grows with the window's records, not with
 * the file. A record of an experiment or variant the configuration no longer has is skipped.
 */
#ifndef ABGATE_REPLAY_H
#define ABGATE_REPLAY_H

#include <stdint.h>

struct conf;
struct ridmap;

struct replay_counts {
	uint64_t bytes;    /* bytes read */
	uint64_t requests; /* request ids put back */
	uint64_t outcomes; /* outcome keys put back */
};

/*
 * Reads the log at path (a missing file is an empty one) against generation c, whose pair ids
 * are registered (live_register_conf), at wall-clock time now_wall_us and monotonic time
 * now_mono_us; puts request ids into rids and outcome keys into keys (either may be NULL).
 * Main thread, before the workers start. Returns 0, or -1 when the file cannot be read
 * (errno set; what was read so far stays put).
 */
int replay_outcome_log(const char *path, const struct conf *c, struct ridmap *rids,
		       struct ridmap *keys, uint64_t now_wall_us, uint64_t now_mono_us,
		       struct replay_counts *out);

#endif
