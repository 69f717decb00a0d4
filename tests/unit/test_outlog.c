/*
 * test_outlog.c - unit tests for proxy/outlog.c: the record formatters (exact strings, escaping,
 * capacity limits, every line read back as JSON) and the writer (concurrent staging, bounded
 * queue, all-or-nothing blocks, drop counting, reopen after a rotation, sync and close).
 *
 * Files live in a fresh temporary directory that is removed at the end.
 */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "outlog.h"

static char tmpdir[256];

static void tmp_path(char *dst, size_t cap, const char *name)
{
	snprintf(dst, cap, "%s/%s", tmpdir, name);
}

static void tmp_cleanup(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		tmp_path(p, sizeof(p), e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* Whether line (NUL-terminated) is exactly one JSON value followed by '\n'. */
static bool json_line_ok(const char *line)
{
	size_t n = strlen(line);
	const char *end = NULL;
	cJSON *j;

	if (n == 0 || line[n - 1] != '\n')
		return false;
	j = cJSON_ParseWithOpts(line, &end, 1);
	cJSON_Delete(j);
	return j != NULL;
}

/*
 * Runs fmt-like check of capacity: formats into heap buffers of every capacity from 0 to
 * want_len + 1 (so an overrun is caught by the address sanitizer) and checks that only a buffer
 * with room for the line and its NUL succeeds.
 */
#define CHECK_CAPS(call_with_dst_cap, want_len)                                                    \
	do {                                                                                       \
		size_t wl_ = (want_len), bad_ = 0;                                                 \
		for (size_t cap = 0; cap <= wl_ + 1; cap++) {                                      \
			char *dst = malloc(cap + 1);                                               \
			size_t got_ = (call_with_dst_cap);                                         \
			if (got_ != (cap > wl_ ? wl_ : 0))                                         \
				bad_++;                                                            \
			free(dst);                                                                 \
		}                                                                                  \
		CHECK_INT(bad_, 0);                                                                \
	} while (0)

/* ---- timestamps ---- */

static void check_ts(time_t sec, long usec, const char *want)
{
	struct timeval tv = {.tv_sec = sec, .tv_usec = usec};
	char buf[64];

	memset(buf, 'x', sizeof(buf));
	CHECK_INT(outlog_format_ts(buf, sizeof(buf), &tv), 27);
	CHECK_STR(buf, want);
}

static void *ts_thread(void *arg)
{
	int *bad = arg;
	char buf[32];

	for (int i = 0; i < 20000; i++) {
		struct timeval tv = {.tv_sec = 951782400 + (i & 1) * 86399, .tv_usec = i};
		outlog_format_ts(buf, sizeof(buf), &tv);
		const char *want = (i & 1) ? "2000-02-29T23:59:59." : "2000-02-29T00:00:00.";
		if (strncmp(buf, want, 20) != 0 || atoi(buf + 20) != i)
			(*bad)++;
	}
	return NULL;
}

static void test_ts(void)
{
	struct timeval tv = {.tv_sec = 1795373415, .tv_usec = 123456};
	char buf[64];

	check_ts(1795373415, 123456, "2026-11-22T18:50:15.123456Z");
	/* The cached second is reused, then replaced, then recomputed. */
	check_ts(1795373415, 0, "2026-11-22T18:50:15.000000Z");
	check_ts(1795373415, 999999, "2026-11-22T18:50:15.999999Z");
	check_ts(1795373416, 5, "2026-11-22T18:50:16.000005Z");
	check_ts(1795373415, 42, "2026-11-22T18:50:15.000042Z");
	check_ts(0, 0, "1970-01-01T00:00:00.000000Z");
	check_ts(-1, 500000, "1969-12-31T23:59:59.500000Z");
	check_ts(951782400, 1, "2000-02-29T00:00:00.000001Z");
	check_ts(4102444800, 10, "2100-01-01T00:00:00.000010Z");
	check_ts(253402300799, 999999, "9999-12-31T23:59:59.999999Z");
	/* Out-of-range microseconds are carried into the seconds. */
	check_ts(1795373415, 1500000, "2026-11-22T18:50:16.500000Z");
	check_ts(1795373415, -1, "2026-11-22T18:50:14.999999Z");
	/* Year 10000 does not fit the format. */
	tv.tv_sec = 253402300800;
	CHECK_INT(outlog_format_ts(buf, sizeof(buf), &tv), 0);

	tv.tv_sec = 1795373415;
	CHECK_CAPS(outlog_format_ts(dst, cap, &tv), 27);

	/* Against strftime over many seconds (leap years, month ends, 1900-2100). */
	int bad = 0;
	for (int64_t s = -2208988800LL; s < 4102444800LL; s += 86400 * 7 + 3601) {
		struct timeval t = {.tv_sec = (time_t)s, .tv_usec = 7};
		struct tm tm;
		char want[64];
		time_t ts = (time_t)s;
		gmtime_r(&ts, &tm);
		size_t n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.000007Z", &tm);
		if (outlog_format_ts(buf, sizeof(buf), &t) != n || strcmp(buf, want) != 0)
			bad++;
	}
	CHECK_INT(bad, 0);

	/* The cache is per thread: two threads alternating seconds each see their own. */
	pthread_t th[2];
	int tbad[2] = {0, 0};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, ts_thread, &tbad[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_INT(tbad[0] + tbad[1], 0);
}

/* ---- JSON strings ---- */

/* Escapes in (inlen bytes), expects want, parses it back and, when decoded is not NULL,
 * compares the parsed value with it. */
static void check_str(const char *in, size_t inlen, const char *want, const char *decoded)
{
	char buf[256], line[300];
	size_t n = outlog_json_str(buf, sizeof(buf), in, inlen);

	CHECK_INT(n, strlen(want));
	CHECK_STR(buf, want);
	CHECK_CAPS(outlog_json_str(dst, cap, in, inlen), strlen(want));
	snprintf(line, sizeof(line), "%s\n", buf);
	CHECK(json_line_ok(line));
	if (decoded != NULL) {
		cJSON *j = cJSON_Parse(buf);
		CHECK(j != NULL && cJSON_IsString(j));
		if (j != NULL && cJSON_IsString(j))
			CHECK_STR(j->valuestring, decoded);
		cJSON_Delete(j);
	}
}

#define STR(lit) (lit), sizeof(lit) - 1

static void test_json_str(void)
{
	char buf[16];

	check_str(STR("abc"), "\"abc\"", "abc");
	check_str(STR(""), "\"\"", "");
	check_str(STR("say \"hi\""), "\"say \\\"hi\\\"\"", "say \"hi\"");
	check_str(STR("C:\\dir\\"), "\"C:\\\\dir\\\\\"", "C:\\dir\\");
	check_str(STR("a\nb\rc\td\be\ff"), "\"a\\nb\\rc\\td\\be\\ff\"", "a\nb\rc\td\be\ff");
	check_str(STR("\x01\x1f x\x7f"), "\"\\u0001\\u001f x\x7f\"", "\x01\x1f x\x7f");
	check_str(STR("a\0b"), "\"a\\u0000b\"", NULL);
	/* Valid UTF-8, two to four bytes, passes through unchanged. */
	check_str(STR("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf"),
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf\"",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf");
	/* Invalid bytes become \u00XX, one escape per byte; the decoded value is then the
	 * Latin-1 reading of those bytes (U+00XX), valid UTF-8 again. */
	check_str(STR("\x80"), "\"\\u0080\"", "\xc2\x80");
	check_str(STR("a\xff"), "\"a\\u00ff\"", "a\xc3\xbf");
	check_str(STR("\xc0\xaf"), "\"\\u00c0\\u00af\"", "\xc3\x80\xc2\xaf"); /* overlong */
	check_str(STR("\xe0\x80\xaf"), "\"\\u00e0\\u0080\\u00af\"", NULL);    /* overlong */
	check_str(STR("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"", NULL);    /* surrogate */
	check_str(STR("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"", NULL); /* > 10FFFF */
	check_str(STR("\xf5\x80"), "\"\\u00f5\\u0080\"", NULL);
	check_str(STR("\303A"), "\"\\u00c3A\"", "\303\203A");	  /* cut short */
	check_str(STR("x\xe2\x82"), "\"x\\u00e2\\u0082\"", NULL); /* truncated */
	check_str(STR("\xf0\x9f\x98x"), "\"\\u00f0\\u009f\\u0098x\"", NULL);
	check_str(STR("\xc3\xa9\xa9"), "\"\xc3\xa9\\u00a9\"", "\xc3\xa9\xc2\xa9"); /* stray cont. */

	CHECK_INT(outlog_json_str(buf, sizeof(buf), NULL, 0), 4);
	CHECK_STR(buf, "null");

	/* Every byte value alone, and random byte strings: always one valid JSON string. */
	int bad = 0;
	for (int c = 0; c < 256; c++) {
		char in = (char)c, out[16], line[20];
		size_t n = outlog_json_str(out, sizeof(out), &in, 1);
		memcpy(line, out, n);
		memcpy(line + n, "\n", 2);
		if (n == 0 || !json_line_ok(line))
			bad++;
	}
	unsigned seed = 12345;
	for (int i = 0; i < 2000; i++) {
		char in[64], out[64 * 6 + 3], line[sizeof(out) + 1];
		for (size_t k = 0; k < sizeof(in); k++)
			in[k] = (char)(rand_r(&seed) & 0xff);
		size_t n = outlog_json_str(out, sizeof(out), in, sizeof(in));
		memcpy(line, out, n);
		memcpy(line + n, "\n", 2);
		if (n == 0 || !json_line_ok(line))
			bad++;
	}
	CHECK_INT(bad, 0);

	/* Every byte value at every position of strings of 1 to 20 bytes (the whole-word check
	 * and its overlapping last word), against a byte-at-a-time escaper. */
	int wrong = 0;
	for (size_t len = 1; len <= 20; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 0; c < 256; c++) {
				char in[20], out[160], want[160], esc[8];
				memset(in, 'a', len);
				in[pos] = (char)c;
				switch (c) {
				case '"': strcpy(esc, "\\\""); break;
				case '\\': strcpy(esc, "\\\\"); break;
				case '\n': strcpy(esc, "\\n"); break;
				case '\r': strcpy(esc, "\\r"); break;
				case '\t': strcpy(esc, "\\t"); break;
				case '\b': strcpy(esc, "\\b"); break;
				case '\f': strcpy(esc, "\\f"); break;
				default:
					if (c < 0x20 || c >= 0x80)
						snprintf(esc, sizeof(esc), "\\u%04x", c);
					else
						snprintf(esc, sizeof(esc), "%c", c);
				}
				snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)pos, in, esc,
					 (int)(len - pos - 1), in + pos + 1);
				size_t n = outlog_json_str(out, sizeof(out), in, len);
				if (n != strlen(want) || strcmp(out, want) != 0)
					wrong++;
			}
		}
	}
	CHECK_INT(wrong, 0);
}

/* ---- records ---- */

static const struct timeval ts0 = {.tv_sec = 1795373415, .tv_usec = 123456};

#define S(lit) (lit), sizeof(lit) - 1

static void check_request(const struct outlog_request *r, const char *want)
{
	char buf[1024];

	CHECK_INT(outlog_format_request(buf, sizeof(buf), r), strlen(want));
	CHECK_STR(buf, want);
	CHECK(json_line_ok(buf));
	CHECK_CAPS(outlog_format_request(dst, cap, r), strlen(want));
}

static void test_request(void)
{
	struct outlog_request r = {
	    .ts = ts0,
	    .exp = S("ranker-v2"),
	    .variant = S("treatment"),
	    .unit = S("u-123"),
	    .rid = S("5f0c9a2e-01"),
	    .status = 200,
	    .latency_ms = 12.345,
	    .upstream = S("127.0.0.1:9002"),
	    .bytes_in = 70,
	    .bytes_out = 29,
	};

	check_request(&r, "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
			  "\"exp\":\"ranker-v2\",\"variant\":\"treatment\",\"unit\":\"u-123\","
			  "\"rid\":\"5f0c9a2e-01\",\"status\":200,\"latency_ms\":12.345,"
			  "\"upstream\":\"127.0.0.1:9002\",\"bytes_in\":70,\"bytes_out\":29}\n");

	/* Parsed back, every field holds what went in. */
	char buf[1024];
	outlog_format_request(buf, sizeof(buf), &r);
	cJSON *j = cJSON_Parse(buf);
	CHECK(j != NULL);
	if (j != NULL) {
		CHECK_INT(cJSON_GetObjectItemCaseSensitive(j, "v")->valuedouble, 1);
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(j, "unit")->valuestring, "u-123");
		CHECK_INT(cJSON_GetObjectItemCaseSensitive(j, "status")->valueint, 200);
		CHECK(cJSON_GetObjectItemCaseSensitive(j, "latency_ms")->valuedouble == 12.345);
		CHECK(cJSON_GetObjectItemCaseSensitive(j, "forced") == NULL);
		cJSON_Delete(j);
	}

	/* No experiment, no unit, no upstream; three decimals always. */
	struct outlog_request d = {
	    .ts = ts0,
	    .rid = S("r1"),
	    .unit = "ignored",
	    .unit_len = 0,
	    .status = 502,
	    .latency_ms = 9.1,
	};
	check_request(&d,
		      "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
		      "\"exp\":null,\"variant\":null,\"unit\":null,\"rid\":\"r1\",\"status\":502,"
		      "\"latency_ms\":9.100,\"upstream\":null,\"bytes_in\":0,\"bytes_out\":0}\n");

	/* Forced variant, escaped strings, extreme numbers, rounding of the latency. */
	struct outlog_request f = {
	    .ts = {.tv_sec = 1795373416, .tv_usec = 7},
	    .exp = S("e\"1"),
	    .variant = S("v\\2"),
	    .unit = S("caf\xc3\xa9\n"),
	    .rid = S("\xff"),
	    .status = 0,
	    .latency_ms = 1234.5678,
	    .upstream = S("[::1]:80"),
	    .bytes_in = UINT64_MAX,
	    .bytes_out = 1000000,
	    .forced = true,
	};
	check_request(&f, "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:16.000007Z\","
			  "\"exp\":\"e\\\"1\",\"variant\":\"v\\\\2\",\"unit\":\"caf\xc3\xa9\\n\","
			  "\"rid\":\"\\u00ff\",\"status\":0,\"latency_ms\":1234.568,"
			  "\"upstream\":\"[::1]:80\",\"bytes_in\":18446744073709551615,"
			  "\"bytes_out\":1000000,\"forced\":true}\n");

	static const struct {
		double ms;
		const char *text;
	} lat[] = {
	    {0, "0.000"},      {0.0004, "0.000"},   {0.0006, "0.001"},	     {0.999, "0.999"},
	    {0.9996, "1.000"}, {1000, "1000.000"},  {59999.25, "59999.250"}, {-0.0001, "0.000"},
	    {-3.5, "-3.500"},  {1.0 / 0.0, "null"}, {0.0 / 0.0, "null"},
	};
	for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++) {
		char want[512];
		d.latency_ms = lat[i].ms;
		snprintf(
		    want, sizeof(want),
		    "{\"v\":1,\"type\":\"request\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
		    "\"exp\":null,\"variant\":null,\"unit\":null,\"rid\":\"r1\",\"status\":502,"
		    "\"latency_ms\":%s,\"upstream\":null,\"bytes_in\":0,\"bytes_out\":0}\n",
		    lat[i].text);
		outlog_format_request(buf, sizeof(buf), &d);
		CHECK_STR(buf, want);
		CHECK(json_line_ok(buf));
	}
}

static void check_outcome(const struct outlog_outcome *o, const char *want)
{
	char buf[1024];

	CHECK_INT(outlog_format_outcome(buf, sizeof(buf), o), strlen(want));
	CHECK_STR(buf, want);
	CHECK(json_line_ok(buf));
	CHECK_CAPS(outlog_format_outcome(dst, cap, o), strlen(want));
}

static void test_outcome(void)
{
	struct outlog_outcome o = {
	    .ts = ts0,
	    .exp = "ranker-v2",
	    .variant = "treatment",
	    .unit = "u-123",
	    .rid = "5f0c9a2e-01",
	    .metric = "click",
	    .value = 1,
	};

	check_outcome(&o, "{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
			  "\"exp\":\"ranker-v2\",\"variant\":\"treatment\",\"unit\":\"u-123\","
			  "\"rid\":\"5f0c9a2e-01\",\"metric\":\"click\",\"value\":1}\n");
	o.unit = NULL;
	o.rid = NULL;
	o.value = 0.25;
	check_outcome(&o, "{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
			  "\"exp\":\"ranker-v2\",\"variant\":\"treatment\",\"unit\":null,"
			  "\"rid\":null,\"metric\":\"click\",\"value\":0.25}\n");
	o.id = "order-77/\"x\"";
	check_outcome(&o, "{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
			  "\"exp\":\"ranker-v2\",\"variant\":\"treatment\",\"unit\":null,"
			  "\"rid\":null,\"metric\":\"click\",\"value\":0.25,"
			  "\"id\":\"order-77/\\\"x\\\"\"}\n");
	o.pending = true;
	check_outcome(&o, "{\"v\":1,\"type\":\"pending_outcome\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
			  "\"exp\":\"ranker-v2\",\"variant\":null,\"unit\":null,"
			  "\"rid\":null,\"metric\":\"click\",\"value\":0.25,"
			  "\"id\":\"order-77/\\\"x\\\"\"}\n");
	o.pending = false;
	o.id = NULL;

	static const struct {
		double v;
		const char *text;
	} vals[] = {
	    {0, "0"},
	    {-0.0, "0"},
	    {12.5, "12.5"},
	    {-2, "-2"},
	    {0.1, "0.1"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {1.0 / 3, "0.3333333333333333"},
	    {123456789.125, "123456789.125"},
	    {4503599627370497.0, "4503599627370497"},
	    {9007199254740992.0, "9007199254740992"},
	    {1e300, "1e+300"},
	    {-2.5e-7, "-2.5e-07"},
	    {1.0 / 0.0, "null"},
	    {-1.0 / 0.0, "null"},
	    {0.0 / 0.0, "null"},
	};
	char buf[512], want[512];
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		o.value = vals[i].v;
		snprintf(want, sizeof(want),
			 "{\"v\":1,\"type\":\"outcome\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
			 "\"exp\":\"ranker-v2\",\"variant\":\"treatment\",\"unit\":null,"
			 "\"rid\":null,\"metric\":\"click\",\"value\":%s}\n",
			 vals[i].text);
		outlog_format_outcome(buf, sizeof(buf), &o);
		CHECK_STR(buf, want);
		CHECK(json_line_ok(buf));
	}

	/* Finite values read back exactly (shortest round-trip form). */
	unsigned seed = 7;
	int bad = 0;
	for (int i = 0; i < 10000; i++) {
		uint64_t bits = ((uint64_t)rand_r(&seed) << 33) ^ ((uint64_t)rand_r(&seed) << 11) ^
				(uint64_t)rand_r(&seed);
		double v;
		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			continue;
		o.value = v;
		outlog_format_outcome(buf, sizeof(buf), &o);
		cJSON *j = cJSON_Parse(buf);
		cJSON *val = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "value") : NULL;
		if (val == NULL || !cJSON_IsNumber(val) ||
		    strtod(strstr(buf, "\"value\":") + 8, NULL) != v)
			bad++;
		cJSON_Delete(j);
	}
	CHECK_INT(bad, 0);
}

static void check_config(uint64_t gen, const char *exp, const char *const *names,
			 const uint32_t *bp, size_t n, const char *want)
{
	char buf[1024];

	CHECK_INT(outlog_format_config(buf, sizeof(buf), &ts0, gen, exp, names, bp, n),
		  strlen(want));
	CHECK_STR(buf, want);
	CHECK(json_line_ok(buf));
	CHECK_CAPS(outlog_format_config(dst, cap, &ts0, gen, exp, names, bp, n), strlen(want));
}

static void test_config(void)
{
	const char *const two[] = {"control", "treatment"};
	const uint32_t two_bp[] = {9000, 1000};
	const char *const many[] = {"a", "b", "c", "d", "e\"", "f"};
	const uint32_t many_bp[] = {1250, 3333, 5, 10, 5402, 0};

	check_config(3, "ranker-v2", two, two_bp, 2,
		     "{\"v\":1,\"type\":\"config\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
		     "\"generation\":3,\"exp\":\"ranker-v2\","
		     "\"weights\":{\"control\":90,\"treatment\":10}}\n");
	check_config(18446744073709551615ULL, "x", many, many_bp, 6,
		     "{\"v\":1,\"type\":\"config\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
		     "\"generation\":18446744073709551615,\"exp\":\"x\",\"weights\":{\"a\":12.5,"
		     "\"b\":33.33,\"c\":0.05,\"d\":0.1,\"e\\\"\":54.02,\"f\":0}}\n");
	check_config(0, "empty", NULL, NULL, 0,
		     "{\"v\":1,\"type\":\"config\",\"ts\":\"2026-11-22T18:50:15.123456Z\","
		     "\"generation\":0,\"exp\":\"empty\",\"weights\":{}}\n");

	char buf[512];
	outlog_format_config(buf, sizeof(buf), &ts0, 1, "x", many, many_bp, 6);
	cJSON *j = cJSON_Parse(buf);
	cJSON *w = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "weights") : NULL;
	CHECK(w != NULL && cJSON_GetArraySize(w) == 6);
	if (w != NULL) {
		CHECK(cJSON_GetObjectItemCaseSensitive(w, "b")->valuedouble == 33.33);
		CHECK(cJSON_GetObjectItemCaseSensitive(w, "e\"")->valuedouble == 54.02);
	}
	cJSON_Delete(j);
}

/* ---- the writer ---- */

struct file_lines {
	char **line; /* each NUL-terminated, with its '\n' (if it had one) */
	size_t n;
	size_t bytes;
	size_t bad; /* lines without '\n' or not valid JSON */
};

static void lines_read(struct file_lines *fl, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t n;

	memset(fl, 0, sizeof(*fl));
	if (f == NULL)
		return;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (fl->n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			fl->line = realloc(fl->line, alloc * sizeof(*fl->line));
		}
		fl->line[fl->n++] = strdup(line);
		fl->bytes += (size_t)n;
		if (!json_line_ok(line))
			fl->bad++;
	}
	free(line);
	fclose(f);
}

static void lines_free(struct file_lines *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		free(fl->line[i]);
	free(fl->line);
}

static size_t format_seq(char *dst, size_t cap, const char *unit, uint64_t seq)
{
	struct outlog_request r = {
	    .ts = {.tv_sec = 1795373415 + (time_t)(seq / 1000), .tv_usec = (long)(seq % 1000)},
	    .exp = S("exp"),
	    .variant = S("control"),
	    .unit = unit,
	    .unit_len = strlen(unit),
	    .rid = S("r"),
	    .status = 200,
	    .latency_ms = 1.5,
	    .bytes_in = seq,
	};
	return outlog_format_request(dst, cap, &r);
}

/* Sequence number of a line written by format_seq(), and its unit in unit (cap 16); -1 when
 * the line is not one of them. */
static long long line_seq(const char *line, char *unit)
{
	cJSON *j = cJSON_Parse(line);
	cJSON *u = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "unit") : NULL;
	cJSON *b = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "bytes_in") : NULL;
	long long seq = -1;

	if (cJSON_IsString(u) && cJSON_IsNumber(b)) {
		snprintf(unit, 16, "%s", u->valuestring);
		seq = (long long)b->valuedouble;
	}
	cJSON_Delete(j);
	return seq;
}

#define NTHREADS 4
#define PER_THREAD 100000

struct stager {
	struct outlog *ol;
	int id;
	size_t bufsize;
	uint64_t refused; /* outlog_reserve() returned NULL */
	uint64_t bytes;	  /* bytes committed */
};

static void *stager_main(void *arg)
{
	struct stager *st = arg;
	struct outlog_buf *b = outlog_buf_new(st->ol, st->bufsize);
	char unit[16];

	snprintf(unit, sizeof(unit), "t%d", st->id);
	for (uint64_t seq = 0; seq < PER_THREAD; seq++) {
		char *p;
		/* A refusal drops the record; this test retries it to keep every sequence. */
		while ((p = outlog_reserve(b, 512)) == NULL) {
			st->refused++;
			usleep(200);
		}
		size_t n = format_seq(p, 512, unit, seq);
		outlog_commit(b, n);
		st->bytes += n;
		if (seq % 997 == 0)
			outlog_flush(b);
	}
	outlog_buf_free(b);
	return NULL;
}

static void test_writer_threads(void)
{
	char path[512];
	struct stager st[NTHREADS];
	pthread_t th[NTHREADS];
	uint64_t refused = 0, bytes = 0;

	tmp_path(path, sizeof(path), "threads.jsonl");
	struct outlog *ol = outlog_open(path, 20, 0);
	CHECK(ol != NULL);
	if (ol == NULL)
		return;
	for (int i = 0; i < NTHREADS; i++) {
		st[i] = (struct stager){.ol = ol, .id = i, .bufsize = (i % 2) ? 0 : 4096};
		pthread_create(&th[i], NULL, stager_main, &st[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		refused += st[i].refused;
		bytes += st[i].bytes;
	}
	CHECK_INT(outlog_dropped(ol), refused);
	outlog_close(ol);

	/* Every line complete, valid JSON, and each thread's records in order. */
	FILE *f = fopen(path, "r");
	char *line = NULL, unit[16];
	size_t cap = 0, lines = 0, bad = 0, order_bad = 0, total = 0;
	long long next[NTHREADS] = {0};
	ssize_t n;
	CHECK(f != NULL);
	while (f != NULL && (n = getline(&line, &cap, f)) > 0) {
		lines++;
		total += (size_t)n;
		if (!json_line_ok(line)) {
			bad++;
			continue;
		}
		long long seq = line_seq(line, unit);
		int t = unit[0] == 't' ? atoi(unit + 1) : -1;
		if (seq < 0 || t < 0 || t >= NTHREADS || seq != next[t]) {
			order_bad++;
			continue;
		}
		next[t]++;
	}
	free(line);
	if (f != NULL)
		fclose(f);
	CHECK_INT(lines, NTHREADS * PER_THREAD);
	CHECK_INT(total, bytes);
	CHECK_INT(bad, 0);
	CHECK_INT(order_bad, 0);
	for (int i = 0; i < NTHREADS; i++)
		CHECK_INT(next[i], PER_THREAD);
	unlink(path);
}

/* Fills the pipe behind rfd's FIFO so that the next write to it blocks. Returns the bytes
 * written. */
static size_t fifo_fill(const char *path)
{
	int wfd = open(path, O_WRONLY | O_NONBLOCK);
	char chunk[4096];
	size_t total = 0;

	memset(chunk, '#', sizeof(chunk));
	for (size_t sz = sizeof(chunk); sz >= 1; sz /= 2) {
		ssize_t n;
		while ((n = write(wfd, chunk, sz)) > 0)
			total += (size_t)n;
	}
	close(wfd);
	return total;
}

/* Reads exactly len bytes from the non-blocking rfd into dst, waiting up to 10 s. */
static size_t fifo_read(int rfd, char *dst, size_t len)
{
	size_t got = 0;
	struct pollfd pfd = {.fd = rfd, .events = POLLIN};

	while (got < len) {
		ssize_t n = read(rfd, dst + got, len - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			break;
		if (poll(&pfd, 1, 10000) <= 0)
			break;
	}
	return got;
}

/* A JSON line of exactly len bytes (len >= 10) tagged with c. */
static void block_line(char *dst, size_t len, char c)
{
	memcpy(dst, "{\"p\":\"", 6);
	memset(dst + 6, c, len - 9);
	memcpy(dst + len - 3, "\"}\n", 3);
}

static void test_write_block_full(void)
{
	char fifo[512], a[90], b[90], c[10], d[11], big[200];

	tmp_path(fifo, sizeof(fifo), "fifo");
	CHECK(mkfifo(fifo, 0600) == 0);
	int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
	CHECK(rfd >= 0);
	if (rfd < 0)
		return;
	struct outlog *ol = outlog_open(fifo, 0, 100);
	CHECK(ol != NULL);
	if (ol == NULL) {
		close(rfd);
		return;
	}
	size_t filler = fifo_fill(fifo);
	CHECK(filler > 0);

	block_line(a, sizeof(a), 'a');
	block_line(b, sizeof(b), 'b');
	block_line(c, sizeof(c), 'c');
	block_line(d, sizeof(d), 'd');
	block_line(big, sizeof(big), 'g');
	/* The writer is stuck on a full pipe: a stays pending, so the queue holds 90 of 100. */
	CHECK_INT(outlog_write_block(ol, a, sizeof(a)), 0);
	CHECK_INT(outlog_write_block(ol, b, sizeof(b)), -1);
	CHECK_INT(outlog_write_block(ol, c, sizeof(c)), 0); /* exactly 100 */
	CHECK_INT(outlog_write_block(ol, d, sizeof(d)), -1);
	CHECK_INT(outlog_write_block(ol, d, 1), -1);		 /* not a whole line */
	CHECK_INT(outlog_write_block(ol, big, sizeof(big)), -1); /* larger than the bound */
	CHECK_INT(outlog_write_block(ol, NULL, 0), 0);
	CHECK_INT(outlog_dropped(ol), 0); /* refused blocks are the caller's, not drops */

	/* Staging: the buffer is clamped to the bound; a hand-over that does not fit drops the
	 * new record (counted) and keeps the staged ones. */
	struct outlog_buf *sb = outlog_buf_new(ol, 0);
	CHECK(sb != NULL);
	char *p = outlog_reserve(sb, 80);
	CHECK(p != NULL);
	if (p == NULL)
		return;
	static const char r1[] = "{\"n\":1}\n", r2[] = "{\"n\":2}\n", r3[] = "{\"n\":3}\n";
	memcpy(p, r1, sizeof(r1) - 1);
	outlog_commit(sb, sizeof(r1) - 1);
	CHECK(outlog_reserve(sb, 101) == NULL); /* larger than the buffer */
	CHECK_INT(outlog_dropped(ol), 1);
	p = outlog_reserve(sb, 95); /* needs a hand-over: queue full */
	CHECK(p == NULL);
	CHECK_INT(outlog_dropped(ol), 2);
	p = outlog_reserve(sb, 50); /* still fits in the staging buffer */
	CHECK(p != NULL);
	if (p != NULL) {
		memcpy(p, r2, sizeof(r2) - 1);
		outlog_commit(sb, sizeof(r2) - 1);
	}
	outlog_flush(sb); /* refused for now, kept staged */
	CHECK_INT(outlog_dropped(ol), 2);

	/* Drain the pipe: the filler, then exactly a and c. */
	char *got = malloc(filler + 256);
	CHECK_INT(fifo_read(rfd, got, filler), filler);
	CHECK_INT(fifo_read(rfd, got, sizeof(a) + sizeof(c)), sizeof(a) + sizeof(c));
	CHECK(memcmp(got, a, sizeof(a)) == 0);
	CHECK(memcmp(got + sizeof(a), c, sizeof(c)) == 0);
	outlog_sync(ol);
	CHECK_INT(outlog_written(ol), sizeof(a) + sizeof(c));

	/* Now the staged records go through, in order, followed by a new one. */
	outlog_flush(sb);
	p = outlog_reserve(sb, 20);
	CHECK(p != NULL);
	if (p != NULL) {
		memcpy(p, r3, sizeof(r3) - 1);
		outlog_commit(sb, sizeof(r3) - 1);
	}
	outlog_buf_free(sb);
	outlog_sync(ol);
	size_t tail = 3 * (sizeof(r1) - 1);
	CHECK_INT(fifo_read(rfd, got, tail), tail);
	CHECK(memcmp(got, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n", tail) == 0);
	CHECK_INT(outlog_written(ol), sizeof(a) + sizeof(c) + tail);
	CHECK_INT(outlog_dropped(ol), 2);
	outlog_close(ol);
	/* Nothing else came: b, d and big were refused whole. */
	CHECK_INT(read(rfd, got, 256), 0);
	free(got);
	close(rfd);
	unlink(fifo);
}

/* Stages count records of unit with sequence numbers from first, then flushes. */
static size_t stage_seq(struct outlog_buf *b, const char *unit, uint64_t first, uint64_t count)
{
	size_t bytes = 0;

	for (uint64_t s = first; s < first + count; s++) {
		char *p = outlog_reserve(b, 400);
		if (p == NULL)
			continue;
		size_t n = format_seq(p, 400, unit, s);
		outlog_commit(b, n);
		bytes += n;
	}
	outlog_flush(b);
	return bytes;
}

/* Checks that fl holds exactly the records of unit numbered first .. first + count - 1. */
static void check_seq_lines(const struct file_lines *fl, const char *unit, long long first,
			    size_t count)
{
	size_t bad = 0;
	char u[16];

	CHECK_INT(fl->n, count);
	CHECK_INT(fl->bad, 0);
	for (size_t i = 0; i < fl->n; i++)
		if (line_seq(fl->line[i], u) != first + (long long)i || strcmp(u, unit) != 0)
			bad++;
	CHECK_INT(bad, 0);
}

static void test_reopen(void)
{
	char path[512], rotated[512], rotated2[512];
	struct file_lines fl;
	struct stat sa, sb2;

	tmp_path(path, sizeof(path), "out.jsonl");
	tmp_path(rotated, sizeof(rotated), "out.jsonl.1");
	tmp_path(rotated2, sizeof(rotated2), "out.jsonl.2");
	struct outlog *ol = outlog_open(path, 5, 0);
	struct outlog_buf *b = ol != NULL ? outlog_buf_new(ol, 8192) : NULL;
	CHECK(ol != NULL && b != NULL);
	if (b == NULL) {
		outlog_close(ol);
		return;
	}
	/* Queued before the rename and the reopen: they belong to the old file even when the
	 * writer has not written them yet. */
	size_t bytes = stage_seq(b, "u", 0, 3000);
	CHECK(rename(path, rotated) == 0);
	outlog_reopen(ol);
	bytes += stage_seq(b, "u", 3000, 2000);
	outlog_sync(ol);
	CHECK_INT(outlog_written(ol), bytes);
	CHECK_INT(outlog_dropped(ol), 0);

	lines_read(&fl, rotated);
	check_seq_lines(&fl, "u", 0, 3000);
	lines_free(&fl);
	lines_read(&fl, path);
	check_seq_lines(&fl, "u", 3000, 2000);
	lines_free(&fl);

	/* A second rotation, with a reopen while the writer may still be busy, and a reopen
	 * with no rotation at all (same file again). */
	bytes += stage_seq(b, "u", 5000, 1000);
	CHECK(rename(path, rotated2) == 0);
	outlog_reopen(ol);
	outlog_reopen(ol);
	bytes += stage_seq(b, "u", 6000, 500);
	CHECK_INT(outlog_write_block(ol, "{\"last\":true}\n", 14), 0);
	outlog_sync(ol);
	CHECK_INT(outlog_written(ol), bytes + 14);
	CHECK(stat(rotated2, &sa) == 0 && stat(path, &sb2) == 0);
	lines_read(&fl, rotated2);
	check_seq_lines(&fl, "u", 3000, 3000); /* the whole previous file */
	lines_free(&fl);
	lines_read(&fl, path);
	CHECK_INT(fl.n, 501);
	CHECK_INT(fl.bad, 0);
	if (fl.n == 501)
		CHECK_STR(fl.line[500], "{\"last\":true}\n");
	lines_free(&fl);

	outlog_buf_free(b);
	outlog_close(ol);
	unlink(path);
	unlink(rotated);
	unlink(rotated2);
}

/* sync, close with data still staged or queued, fsync off, drop counting on a plain file. */
static void test_sync_close(void)
{
	char path[512];
	struct file_lines fl;
	struct stat st;

	tmp_path(path, sizeof(path), "sync.jsonl");
	for (int fsync_ms = 0; fsync_ms <= 1000; fsync_ms += 1000) {
		struct outlog *ol = outlog_open(path, (uint32_t)fsync_ms, 0);
		struct outlog_buf *b = ol != NULL ? outlog_buf_new(ol, 1024) : NULL;
		CHECK(b != NULL);
		if (b == NULL) {
			outlog_close(ol);
			return;
		}
		outlog_sync(ol); /* nothing queued: returns at once */
		CHECK_INT(outlog_written(ol), 0);
		size_t bytes = stage_seq(b, "s", 0, 100);
		outlog_sync(ol);
		CHECK_INT(outlog_written(ol), bytes);
		CHECK(stat(path, &st) == 0 && (size_t)st.st_size == bytes);
		/* A record that can never fit the buffer is dropped and counted. */
		CHECK(outlog_reserve(b, 4096) == NULL);
		CHECK_INT(outlog_dropped(ol), 1);
		/* Staged but not flushed: outlog_buf_free hands it over, close writes it. */
		char *p = outlog_reserve(b, 400);
		CHECK(p != NULL);
		bytes += format_seq(p, 400, "s", 100);
		outlog_commit(b, strlen(p));
		outlog_buf_free(b);
		outlog_buf_free(NULL);
		outlog_close(ol);

		lines_read(&fl, path);
		check_seq_lines(&fl, "s", 0, 101);
		CHECK_INT(fl.bytes, bytes);
		lines_free(&fl);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
		unlink(path);
	}
	outlog_close(NULL);

	/* Opening a path that cannot be created fails with errno set. */
	tmp_path(path, sizeof(path), "no/such/dir/x.jsonl");
	errno = 0;
	CHECK(outlog_open(path, 0, 0) == NULL);
	CHECK_INT(errno, ENOENT);
}

/* A file that refuses every write (disk full): nothing blocks the producers, and close gives up
 * on what it cannot write instead of hanging. */
static void test_write_error(void)
{
	struct outlog *ol;

	if (access("/dev/full", W_OK) != 0)
		return;
	log_open("/dev/null"); /* the expected warnings are not test output */
	ol = outlog_open("/dev/full", 10, 1000);
	CHECK(ol != NULL);
	if (ol == NULL) {
		log_open(NULL);
		return;
	}
	struct outlog_buf *b = outlog_buf_new(ol, 0);
	CHECK(b != NULL);
	size_t n = stage_seq(b, "f", 0, 3);
	CHECK(n > 0);
	usleep(20000); /* let the writer fail once and start its retry pause */
	CHECK_INT(outlog_write_block(ol, "{\"x\":1}\n", 8), 0);
	/* The failing batch stays queued: the bound still holds. */
	char big[500];
	block_line(big, sizeof(big), 'z');
	CHECK_INT(outlog_write_block(ol, big, sizeof(big)), -1);
	CHECK_INT(outlog_written(ol), 0);
	outlog_buf_free(b);
	outlog_close(ol);
	log_open(NULL);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_outlog.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	umask(022);
	test_ts();
	test_json_str();
	test_request();
	test_outcome();
	test_config();
	test_writer_threads();
	test_write_block_full();
	test_reopen();
	test_sync_close();
	test_write_error();
	tmp_cleanup();
	return check_summary("test_outlog");
}
