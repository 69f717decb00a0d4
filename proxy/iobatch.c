/*
 * iobatch.c - batched socket writes over io_uring (include/iobatch.h).
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "iobatch.h"
#include "log.h"

struct iobatch_op {
	bool recv;        /* a read into iov[0], else a write of msg */
	bool done;        /* its result is in (while reaping) */
	struct msghdr msg;
	struct iovec iov[IOBATCH_MAX_IOV];
	uint64_t tag;
	uint32_t total;
	int fd;
};

struct iobatch {
	struct io_uring ring;
	unsigned depth, n;
	bool ring_up; /* the ring was set up (and is to be torn down) */
	bool broken;  /* no ring, or it failed once: operations go call by call */
	struct iobatch_op *ops;
	struct iobatch_result *res; /* the last submit's results */
};

struct iobatch *iobatch_new(unsigned depth, bool ring, char *why, size_t whylen)
{
	struct iobatch *b = calloc(1, sizeof(*b));

	if (b == NULL || (b->ops = calloc(depth, sizeof(*b->ops))) == NULL ||
	    (b->res = calloc(depth, sizeof(*b->res))) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	b->depth = depth;
	if (!ring) {
		b->broken = true;
		return b;
	}
	/* one thread submits; completions are reaped only right after submitting. These flags
	 * need Linux 6.0, whose sends and receives honour MSG_DONTWAIT (they never wait in the
	 * kernel for the socket); an older kernel refuses them and gets the direct calls. */
	int r = io_uring_queue_init(depth, &b->ring,
				    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
					    IORING_SETUP_SUBMIT_ALL);
	if (r < 0) {
		snprintf(why, whylen, "io_uring: %s", strerror(-r));
		goto fail;
	}
	b->ring_up = true;
	struct io_uring_probe *probe = io_uring_get_probe_ring(&b->ring);
	bool ops = probe != NULL && io_uring_opcode_supported(probe, IORING_OP_SENDMSG) &&
		   io_uring_opcode_supported(probe, IORING_OP_RECV);
	io_uring_free_probe(probe);
	if (!ops) {
		snprintf(why, whylen, "io_uring without sendmsg and recv");
		goto fail;
	}
	return b;
fail:
	if (b != NULL && b->ring_up)
		io_uring_queue_exit(&b->ring);
	if (b != NULL) {
		free(b->ops);
		free(b->res);
	}
	free(b);
	return NULL;
}

void iobatch_free(struct iobatch *b)
{
	if (b == NULL)
		return;
	if (b->ring_up)
		io_uring_queue_exit(&b->ring);
	free(b->ops);
	free(b->res);
	free(b);
}

unsigned iobatch_pending(const struct iobatch *b)
{
	return b->n;
}

bool iobatch_send(struct iobatch *b, int fd, const struct iovec *iov, int iovcnt, uint64_t tag)
{
	if (b->n == b->depth || iovcnt < 1 || iovcnt > IOBATCH_MAX_IOV)
		return false;
	struct iobatch_op *op = &b->ops[b->n];
	uint32_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		op->iov[i] = iov[i];
		total += (uint32_t)iov[i].iov_len;
	}
	memset(&op->msg, 0, sizeof(op->msg));
	op->msg.msg_iov = op->iov;
	op->msg.msg_iovlen = (size_t)iovcnt;
	op->recv = false;
	op->tag = tag;
	op->total = total;
	op->fd = fd;
	b->n++;
	return true;
}

bool iobatch_recv(struct iobatch *b, int fd, void *buf, uint32_t len, uint64_t tag)
{
	if (b->n == b->depth)
		return false;
	struct iobatch_op *op = &b->ops[b->n++];
	op->recv = true;
	op->iov[0].iov_base = buf;
	op->iov[0].iov_len = len;
	op->tag = tag;
	op->total = len;
	op->fd = fd;
	return true;
}

/* Writes ops [from, b->n) one at a time into out[at...], the fallback should io_uring fail;
 * returns the next free slot of out. */
static unsigned send_each(struct iobatch *b, unsigned from, struct iobatch_result *out,
			  unsigned at)
{
	for (unsigned i = from; i < b->n; i++) {
		struct iobatch_op *op = &b->ops[i];
		ssize_t w;
		do
			w = op->recv ? recv(op->fd, op->iov[0].iov_base, op->iov[0].iov_len, MSG_DONTWAIT)
				     : sendmsg(op->fd, &op->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		out[at++] = (struct iobatch_result){op->tag, w < 0 ? -errno : (int)w, op->total};
	}
	return at;
}

const struct iobatch_result *iobatch_submit(struct iobatch *b, unsigned *count)
{
	struct iobatch_result *out = b->res;
	unsigned n = b->n, got = 0;

	*count = 0;
	if (n == 0)
		return out;
	if (b->broken) {
		*count = send_each(b, 0, out, 0);
		b->n = 0;
		return out;
	}
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
		/* the ring has depth entries and holds nothing between calls */
		struct iobatch_op *op = &b->ops[i];
		if (op->recv)
			io_uring_prep_recv(sqe, op->fd, op->iov[0].iov_base, op->iov[0].iov_len,
					   MSG_DONTWAIT);
		else
			io_uring_prep_sendmsg(sqe, op->fd, &op->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, i);
	}
	int r;
	do
		r = io_uring_submit_and_wait(&b->ring, n);
	while (r == -EINTR);
	unsigned taken = r < 0 ? 0 : (unsigned)r;
	if (taken < n) {
		/* the ring itself failed (such as ENOMEM): what it did not take is done directly,
		 * and so is everything from now on */
		log_warnx("io_uring took %u of %u operations (%s): socket I/O is made call by call "
			  "from now on", taken, n, r < 0 ? strerror(-r) : "short submit");
		b->broken = true;
		got = send_each(b, taken, out, 0);
	}
	n = got + taken;
	for (unsigned i = 0; i < taken; i++)
		b->ops[i].done = false;
	while (got < n) {
		struct io_uring_cqe *cqe;
		unsigned head, k = 0;
		io_uring_for_each_cqe(&b->ring, head, cqe) {
			struct iobatch_op *op = &b->ops[cqe->user_data];
			out[got++] = (struct iobatch_result){op->tag, cqe->res, op->total};
			op->done = true;
			k++;
		}
		io_uring_cq_advance(&b->ring, k);
		if (got < n) {
			do
				r = io_uring_wait_cqe(&b->ring, &cqe);
			while (r == -EINTR);
			if (r < 0) {
				log_warnx("io_uring wait failed (%s): socket I/O is made call by call "
					  "from now on", strerror(-r));
				b->broken = true;
				/* the kernel made those operations, but what they did is unknown:
				 * their connections must not go on as if nothing happened */
				for (unsigned i = 0; i < taken; i++)
					if (!b->ops[i].done)
						out[got++] = (struct iobatch_result){
							b->ops[i].tag, -EIO, b->ops[i].total};
				break;
			}
		}
	}
	b->n = 0;
	*count = got;
	return out;
}
