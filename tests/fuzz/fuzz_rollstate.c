/*
 * fuzz_rollstate.c - libFuzzer driver for the rollout state file reader, rollout_state_parse()
 * (include/rollout.h).
 *
 * Input: a state file's bytes, as is. The first byte, when there is one, also picks how many
 * steps the rollout is configured with (1 to 8). The bytes are parsed from a buffer of exactly
 * their length (no NUL after them), so a read past the end is caught. An accepted state must
 * hold together (a configured step, a known status, a weight within 0-100 %), and writing it
 * out with rollout_state_format() and reading that back must give the same state.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fuzz_check.h"
#include "rollout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nsteps = size > 0 ? 1 + data[0] % 8 : 5;
	char *text = malloc(size > 0 ? size : 1);
	struct rollout_saved st, again;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	const char *why = rollout_state_parse(text, size, "ranker", nsteps, &st);
	if (why == NULL) {
		CHECK(st.step >= 0 && (size_t)st.step < nsteps);
		CHECK(st.status >= ROLLOUT_RUNNING && st.status <= ROLLOUT_PROMOTED);
		CHECK(st.canary_bp <= 10000);
		char *out = rollout_state_format("ranker", &st);
		CHECK(out != NULL);
		CHECK(rollout_state_parse(out, strlen(out), "ranker", nsteps, &again) == NULL);
		CHECK(again.step == st.step && again.status == st.status &&
		      again.canary_bp == st.canary_bp);
		/* another experiment never reads it as its own */
		CHECK(rollout_state_parse(out, strlen(out), "ranker2", nsteps, &again) != NULL);
		cJSON_free(out);
	} else {
		CHECK(strlen(why) > 0);
	}
	free(text);
	return 0;
}
