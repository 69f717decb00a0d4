/*
 * fuzz_chunked.c - libFuzzer driver for the chunked-body framer, http_chunked_feed()
 * (include/http.h).
 *
 * Input: a 2-byte control prefix, then the bytes that follow a head announcing a chunked body
 * (the body, and perhaps the next message after it).
 *   [0..1]  seed of the generator that cuts the body into random pieces
 *
 * The body is fed three ways: whole, one byte at a time, and in random pieces (empty ones
 * included). Each piece comes in a buffer of exactly its length, so a read past len is caught.
 * Feeding stops at the first result other than HTTP_AGAIN. All three must end with the same
 * result and (but for HTTP_TOO_LARGE, see check_same) the same total of *used, each call must
 * keep *used within its piece (all of it on HTTP_AGAIN), and a framer that has finished must
 * keep answering the same with *used = 0.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http.h"

#define CTL_BYTES 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* How a feed ended: the last result and the bytes the framer claimed in all. */
struct feed {
	enum http_parse r;
	size_t used;
	const char *error;
};

/*
 * Feeds buf[0..len) as one piece, copied to a buffer of exactly len bytes (one-byte pieces,
 * the most frequent, share a buffer allocated once). Returns the result; *used as fed back.
 */
static enum http_parse feed_piece(struct http_chunked *c, const uint8_t *buf, size_t len,
				  size_t *used)
{
	static char *one;
	char *copy;
	enum http_parse r;

	if (len == 1) {
		if (one == NULL)
			one = malloc(1);
		copy = one;
	} else {
		copy = malloc(len != 0 ? len : 1);
	}
	CHECK(copy != NULL);
	memcpy(copy, buf, len);
	*used = (size_t)-1;
	r = http_chunked_feed(c, copy, len, used);
	if (copy != one)
		free(copy);
	CHECK(r == HTTP_OK || r == HTTP_AGAIN || r == HTTP_ERROR || r == HTTP_TOO_LARGE);
	CHECK(*used <= len);
	if (r == HTTP_AGAIN)
		CHECK(*used == len);
	if (r == HTTP_ERROR)
		CHECK(c->error != NULL);
	return r;
}

/* After the end or a failure the framer takes nothing more and repeats its answer. */
static void check_finished(struct http_chunked *c, enum http_parse r)
{
	static const uint8_t more[4] = {'0', '\r', '\n', '\r'};
	size_t used;

	CHECK(feed_piece(c, more, sizeof(more), &used) == r);
	CHECK(used == 0);
}

/* A small generator for the piece sizes (xorshift32; never seeded with 0). */
static uint32_t next_rand(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/*
 * Feeds body[0..n) in pieces: size 0 means the whole body in one piece, 1 one byte at a time,
 * and any other value seeds random sizes.
 */
static struct feed feed_all(const uint8_t *body, size_t n, unsigned mode, uint32_t seed)
{
	struct http_chunked c;
	struct feed f = {HTTP_AGAIN, 0, NULL};
	size_t off = 0;

	http_chunked_reset(&c);
	do {
		size_t len, used;

		if (mode == 0) {
			len = n;
		} else if (mode == 1) {
			len = 1;
		} else {
			uint32_t x = next_rand(&seed);

			/* Mostly short pieces, sometimes empty ones, sometimes long ones. */
			len = (x & 7u) == 0 ? 0 : (x & 7u) == 1 ? (x >> 8) % 4096u : (x >> 8) % 17u;
		}
		if (len > n - off)
			len = n - off;
		f.r = feed_piece(&c, body + off, len, &used);
		f.used += used;
		off += len;
	} while (f.r == HTTP_AGAIN && off < n);
	if (f.r != HTTP_AGAIN)
		check_finished(&c, f.r);
	f.error = c.error;
	return f;
}

/*
 * Two feeds of the same bytes end alike. The total of *used must match where the contract
 * defines it (HTTP_OK, HTTP_AGAIN) and on HTTP_ERROR, where it is the offset of the offending
 * byte. On HTTP_TOO_LARGE it is left out: an over-long trailer value is refused at the start of
 * the run being scanned, which depends on where the pieces begin (seed
 * crash-trailer-too-large-used in the corpus).
 */
static void check_same(const struct feed *a, const struct feed *b)
{
	CHECK(a->r == b->r);
	if (a->r != HTTP_TOO_LARGE)
		CHECK(a->used == b->used);
	if (a->r == HTTP_ERROR)
		CHECK(strcmp(a->error, b->error) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed whole, bytes, pieces;
	uint32_t seed;

	if (size < CTL_BYTES)
		return 0;
	seed = ((uint32_t)data[0] << 8 | data[1]) + 1;
	data += CTL_BYTES;
	size -= CTL_BYTES;

	whole = feed_all(data, size, 0, 0);
	bytes = feed_all(data, size, 1, 0);
	pieces = feed_all(data, size, 2, seed);
	check_same(&whole, &bytes);
	check_same(&whole, &pieces);
	if (whole.r == HTTP_OK)
		CHECK(whole.used > 0 && data[whole.used - 1] == '\n');
	return 0;
}
