/*
 * test_iobatch.c - unit tests for proxy/iobatch.c: reads and writes on TCP loopback sockets,
 * made through io_uring and call by call, must give the results read() and writev() give.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "iobatch.h"

/* A connected, non-blocking TCP pair on 127.0.0.1: fd[0] connects, fd[1] is accepted. */
static int tcp_pair(int fd[2])
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	fd[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	fd[1] = accept(l, NULL, NULL);
	close(l);
	if (fd[1] < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(fd[i], F_SETFL, O_NONBLOCK);
	}
	return 0;
}

/* The result with tag t among n results, or NULL. */
static const struct iobatch_result *find(const struct iobatch_result *r, unsigned n, uint64_t t)
{
	for (unsigned i = 0; i < n; i++)
		if (r[i].tag == t)
			return &r[i];
	return NULL;
}

/* Submits b's operations and copies their results into res; returns their number. */
static unsigned submit(struct iobatch *b, struct iobatch_result *res)
{
	unsigned n;
	const struct iobatch_result *r = iobatch_submit(b, &n);

	memcpy(res, r, n * sizeof(*r));
	return n;
}

static void exchange(bool ring)
{
	char why[128], in0[64], in1[64], in2[64];
	struct iobatch_result res[8];
	int p0[2], p1[2], p2[2];
	struct iobatch *b = iobatch_new(8, ring, why, sizeof(why));

	CHECK(b != NULL);
	if (b == NULL || tcp_pair(p0) < 0 || tcp_pair(p1) < 0 || tcp_pair(p2) < 0) {
		CHECK(0);
		return;
	}
	/* writes on three sockets in one batch, one of them gathered from two pieces */
	char hello[] = "hello", abc[] = "abc", defg[] = "defg";
	struct iovec one = {hello, 5};
	struct iovec two[2] = {{abc, 3}, {defg, 4}};
	CHECK(iobatch_send(b, p0[0], &one, 1, 10));
	CHECK(iobatch_send(b, p1[0], two, 2, 11));
	CHECK_INT(iobatch_pending(b), 2);
	unsigned n = submit(b, res);
	CHECK_INT(n, 2);
	CHECK_INT(iobatch_pending(b), 0);
	const struct iobatch_result *r = find(res, n, 10);
	CHECK(r != NULL && r->res == 5 && r->total == 5);
	r = find(res, n, 11);
	CHECK(r != NULL && r->res == 7 && r->total == 7);

	/* reads: two with data, one from an empty socket (EAGAIN, as read() says) */
	memset(in0, 0, sizeof(in0));
	memset(in1, 0, sizeof(in1));
	CHECK(iobatch_recv(b, p0[1], in0, sizeof(in0), 20));
	CHECK(iobatch_recv(b, p1[1], in1, sizeof(in1), 21));
	CHECK(iobatch_recv(b, p2[1], in2, sizeof(in2), 22));
	n = submit(b, res);
	CHECK_INT(n, 3);
	r = find(res, n, 20);
	CHECK(r != NULL && r->res == 5 && r->total == sizeof(in0));
	CHECK_STR(in0, "hello");
	r = find(res, n, 21);
	CHECK(r != NULL && r->res == 7);
	CHECK_STR(in1, "abcdefg");
	r = find(res, n, 22);
	CHECK(r != NULL && r->res == -EAGAIN);

	/* the peer's FIN reads as 0; a write to a peer that has gone is an error, not SIGPIPE */
	close(p2[0]);
	usleep(20000);
	CHECK(iobatch_recv(b, p2[1], in2, sizeof(in2), 30));
	n = submit(b, res);
	CHECK_INT(n, 1);
	CHECK(n == 1 && res[0].tag == 30 && res[0].res == 0);
	struct linger lg = {1, 0}; /* close with a reset */
	setsockopt(p1[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(p1[1]);
	usleep(20000);
	CHECK(iobatch_send(b, p1[0], &one, 1, 31));
	n = submit(b, res);
	CHECK(n == 1 && res[0].tag == 31 && (res[0].res == -EPIPE || res[0].res == -ECONNRESET));

	/* a full socket takes part of a write, then nothing (EAGAIN): never waits */
	size_t big = 8 << 20;
	char *blob = malloc(big);
	CHECK(blob != NULL);
	if (blob != NULL) {
		memset(blob, 'x', big);
		struct iovec v = {blob, big};
		CHECK(iobatch_send(b, p0[0], &v, 1, 40));
		n = submit(b, res);
		CHECK(n == 1 && res[0].res > 0 && (size_t)res[0].res < big && res[0].total == big);
		CHECK(iobatch_send(b, p0[0], &v, 1, 41));
		n = submit(b, res);
		CHECK(n == 1 && res[0].tag == 41 && res[0].res == -EAGAIN);
		free(blob);
	}

	/* the batch holds depth operations; what does not fit is refused, not lost */
	for (int i = 0; i < 8; i++)
		CHECK(iobatch_recv(b, p0[1], in0, sizeof(in0), 50 + (uint64_t)i));
	CHECK(!iobatch_recv(b, p0[1], in0, sizeof(in0), 58));
	CHECK(!iobatch_send(b, p0[0], &one, 1, 59));
	CHECK_INT(iobatch_pending(b), 8);
	n = submit(b, res);
	CHECK_INT(n, 8);
	unsigned seen = 0;
	for (unsigned i = 0; i < n; i++)
		if (res[i].tag >= 50 && res[i].tag < 58 && res[i].res == (int)sizeof(in0))
			seen |= 1u << (res[i].tag - 50);
	CHECK_INT(seen, 0xff); /* each read filled its room from the bytes waiting */
	/* nothing to submit is no call at all */
	CHECK_INT(submit(b, res), 0);
	/* pieces beyond IOBATCH_MAX_IOV, or none, are refused */
	struct iovec three[3] = {{abc, 1}, {abc + 1, 1}, {abc + 2, 1}};
	CHECK(!iobatch_send(b, p0[0], three, 3, 60));
	CHECK(!iobatch_send(b, p0[0], three, 0, 61));
	CHECK_INT(iobatch_pending(b), 0);

	close(p0[0]);
	close(p0[1]);
	close(p1[0]); /* p1[1] and p2[0] are closed above */
	close(p2[1]);
	iobatch_free(b);
}

int main(void)
{
	exchange(true);
	exchange(false);
	return check_summary("test_iobatch");
}
