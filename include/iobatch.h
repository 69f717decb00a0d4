/*
 * iobatch.h - socket reads and writes gathered over one pass of the event loop and handed to
 * the kernel in one system call (io_uring), for the data path (proxy.c).
 *
 * On this kind of machine a system call costs far more than the work of a small read or write,
 * and one pass of the loop typically has several sockets to serve. Every operation here is
 * non-blocking (MSG_DONTWAIT): it takes or gives what the socket has at once and is never left
 * pending in the kernel, so each result means exactly what read() or writev() on the
 * non-blocking socket would have returned. The caller keeps the buffers in place until
 * iobatch_submit() returns.
 */
#ifndef ABGATE_IOBATCH_H
#define ABGATE_IOBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define IOBATCH_MAX_IOV 2

struct iobatch;

struct iobatch_result {
	uint64_t tag;   /* as given when queued */
	int res;        /* bytes moved, 0 for the peer's FIN on a read, or -errno */
	uint32_t total; /* bytes offered (write) or room given (read) */
};

/* A batch of at most depth operations made in one io_uring call; NULL when the kernel does not
 * offer io_uring (why says why, for the log). With ring false, the batch makes its operations
 * one by one with sendmsg() and recv() (the fallback, on its own: for tests). */
struct iobatch *iobatch_new(unsigned depth, bool ring, char *why, size_t whylen);
void iobatch_free(struct iobatch *b);

/* Queues a write of iov[0..iovcnt) to fd (iovcnt <= IOBATCH_MAX_IOV), or a read of up to len
 * bytes from fd into buf. Return false when the batch is full: submit it first. */
bool iobatch_send(struct iobatch *b, int fd, const struct iovec *iov, int iovcnt, uint64_t tag);
bool iobatch_recv(struct iobatch *b, int fd, void *buf, uint32_t len, uint64_t tag);
/* Operations queued so far. */
unsigned iobatch_pending(const struct iobatch *b);
/* Hands the queued operations to the kernel and waits for all their results (each is done at
 * once, one way or the other): *n of them, in no particular order, valid until the next call.
 * Should io_uring itself fail, the operations are made one by one with sendmsg() and recv(),
 * now and from then on. */
const struct iobatch_result *iobatch_submit(struct iobatch *b, unsigned *n);

#endif
