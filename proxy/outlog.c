/*
 * outlog.c - the outcome log writer and its record formatters (see include/outlog.h).
 *
 * Data flow: an event-loop thread formats records straight into the batch its outlog_buf is
 * filling (no lock, no copy). When the batch is full, or on outlog_flush(), the whole batch is
 * linked onto the writer's queue under the mutex, and in the same critical section a recycled
 * batch is taken from the free list to stage the next records. The writer thread takes the whole
 * queue at once, write(2)s each batch, fsyncs at most every fsync_ms, then gives the batches back
 * to the free list. Nothing on the producer side ever waits for the writer: when the queue holds
 * max_pending bytes, a hand-over is refused and the caller drops (and counts) its record.
 *
 * Ordering: batches and reopen markers carry a sequence number given when they are queued.
 * outlog_sync() waits for the writer to report that everything up to the number current at the
 * call is written (and fsynced unless fsync is off); a reopen marker switches files exactly at
 * its place in the queue.
 *
 * Choices within the header's contract:
 * - fsync_ms = 0 means no fsync at all, so outlog_sync() and outlog_close() then only wait for
 *   write(2); otherwise they fsync too.
 * - A staging buffer is never larger than max_pending (it could never be handed over), and a
 *   record larger than the buffer is dropped and counted.
 * - outlog_buf_free() hands over its last records even past max_pending (by at most one
 *   buffer) rather than wait or lose them.
 * - A write(2) error keeps the data queued and retries; see writer_main().
 *
 * The formatters write through a small bounded cursor (struct out) with hand-written integer and
 * fixed-point routines; the only printf-family call is for outcome values that are not integers
 * (so the process must keep the "C" numeric locale). Like outlog_format_ts(), every formatter
 * ends its output with a NUL that its return value does not count: cap must exceed the length.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outlog.h"

#define OUTLOG_DEFAULT_BUF (64u << 10)	   /* staging size when the caller passes 0 */
#define OUTLOG_FREE_MAX (1u << 20)	   /* bytes of idle batches kept for reuse */
#define OUTLOG_RETRY_MS 500		   /* pause before retrying a failed write(2) */

/* One unit of the queue: a batch of complete lines, or (cap == 0) a reopen marker. */
struct ol_batch {
	struct ol_batch *next;
	uint64_t seq; /* position in the queue (1, 2, ...), given when queued */
	size_t len;   /* bytes of records held in data */
	size_t off;   /* bytes of data already written (a write failed midway) */
	size_t cap;   /* capacity of data; 0 marks a reopen request */
	char data[];
};

struct outlog {
	char *path;	    /* the file, reopened by path on outlog_reopen() */
	int fd;		    /* touched by the writer thread only once it runs */
	uint32_t fsync_ms;  /* 0: never fsync */
	size_t max_pending; /* bound on queued, not yet written bytes */
	pthread_t thread;

	pthread_mutex_t lock; /* guards every field down to free_bytes */
	pthread_cond_t wake;  /* producers -> writer: work queued, sync or stop requested */
	pthread_cond_t done;  /* writer -> outlog_sync(): synced_seq moved */
	struct ol_batch *head, **tail; /* the queue, oldest first */
	size_t pending;		       /* bytes queued or being written */
	uint64_t enq_seq;	       /* sequence number of the last queued item */
	uint64_t synced_seq;	       /* everything up to here is written (and fsynced) */
	uint64_t sync_want;	       /* highest sequence number an outlog_sync() waits for */
	bool reopen_flag;	       /* reopen at once (a marker could not be allocated) */
	bool stop;		       /* outlog_close(): drain and exit */
	struct ol_batch *free_list;    /* idle batches, for reuse */
	size_t free_bytes;	       /* their total capacity */

	_Atomic uint64_t dropped; /* records refused by outlog_reserve() */
	_Atomic uint64_t written; /* bytes written to the file(s) */
};

struct outlog_buf {
	struct outlog *ol;    /* (ref) */
	struct ol_batch *cur; /* the batch being staged; NULL after an allocation failure */
	size_t size;	      /* bytes staged before a hand-over (<= max_pending) */
	size_t reserved;      /* maxlen of the last successful outlog_reserve() */
};

/* ---- batches and the free list ---- */

/*
 * Allocates a batch holding at least need bytes; NULL when out of memory. Batches are mapped,
 * not taken from the heap: when the disk falls behind, the queue grows by batches that the
 * event-loop threads allocate and the writer frees, and heap chunks freed that way stay with
 * the producers' arenas, so the process would keep the backlog's high-water mark for good.
 * Mapped, every batch beyond the free list goes back to the system once written. A batch is
 * mapped only when the free list is empty, never per record.
 */
static struct ol_batch *batch_alloc(size_t need)
{
	size_t cap = need > OUTLOG_DEFAULT_BUF ? need : OUTLOG_DEFAULT_BUF;
	void *p = mmap(NULL, sizeof(struct ol_batch) + cap, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	struct ol_batch *bt = p;
	bt->next = NULL;
	bt->len = bt->off = 0;
	bt->cap = cap;
	return bt;
}

/* Takes an idle batch of at least need bytes from the free list, or NULL. Lock held. */
static struct ol_batch *free_take(struct outlog *ol, size_t need)
{
	for (struct ol_batch **pp = &ol->free_list; *pp != NULL; pp = &(*pp)->next) {
		struct ol_batch *bt = *pp;
		if (bt->cap >= need) {
			*pp = bt->next;
			ol->free_bytes -= bt->cap;
			bt->next = NULL;
			bt->len = bt->off = 0;
			return bt;
		}
	}
	return NULL;
}

/* Keeps bt for reuse; returns false (bt untouched, still the caller's) when it is a marker or
 * the free list is big enough, so that the caller frees it after unlocking. Lock held. */
static bool free_put(struct outlog *ol, struct ol_batch *bt)
{
	if (bt->cap == 0 || ol->free_bytes + bt->cap > OUTLOG_FREE_MAX)
		return false;
	bt->next = ol->free_list;
	ol->free_list = bt;
	ol->free_bytes += bt->cap;
	return true;
}

/* Frees a batch (mapped) or a reopen marker (from the heap). NULL is fine. */
static void batch_free(struct ol_batch *bt)
{
	if (bt == NULL)
		return;
	if (bt->cap == 0)
		free(bt);
	else
		munmap(bt, sizeof(*bt) + bt->cap);
}

/* Links bt (a batch of bt->len bytes or a marker) at the end of the queue. Lock held. */
static void queue_push(struct outlog *ol, struct ol_batch *bt)
{
	bt->next = NULL;
	bt->seq = ++ol->enq_seq;
	*ol->tail = bt;
	ol->tail = &bt->next;
	ol->pending += bt->len;
	pthread_cond_signal(&ol->wake);
}

/* Whether len more bytes fit under max_pending. Lock held. */
static bool queue_room(const struct outlog *ol, size_t len)
{
	return len <= ol->max_pending && ol->pending <= ol->max_pending - len;
}

/* ---- the writer thread ---- */

static void mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static void ts_add_ms(struct timespec *ts, uint32_t ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Writes what is left of bt with as many write(2) calls as partial writes need (one when the
 * file takes it all). Returns 0, or -1 with errno set and bt->off telling how far it got. */
static int batch_write(struct outlog *ol, struct ol_batch *bt)
{
	while (bt->off < bt->len) {
		ssize_t n = write(ol->fd, bt->data + bt->off, bt->len - bt->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		bt->off += (size_t)n;
		atomic_fetch_add_explicit(&ol->written, (uint64_t)n, memory_order_relaxed);
	}
	return 0;
}

/* fsyncs the file and notes when in *last (the rate limit counts from there). A pipe or
 * character device cannot be synced (EINVAL): nothing to report. */
static void writer_fsync(struct outlog *ol, struct timespec *last)
{
	if (fsync(ol->fd) < 0 && errno != EINVAL)
		log_warn("outcome log %s: fsync", ol->path);
	mono_now(last);
}

/*
 * Opens the log for appending. A file whose last line is torn (the process before us was
 * killed in the middle of a write) first gets a line end, so that our first record starts a
 * line of its own: the torn line stays one malformed line that readers skip.
 */
static int open_log(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	char last;

	if (fd < 0)
		return -1;
	off_t size = lseek(fd, 0, SEEK_END);
	if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n' &&
	    write(fd, "\n", 1) != 1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Switches to a fresh descriptor for ol->path; keeps the old one when the open fails. */
static void writer_reopen(struct outlog *ol)
{
	int fd = open_log(ol->path);

	if (fd < 0) {
		log_warn("outcome log %s: reopen", ol->path);
		return;
	}
	close(ol->fd);
	ol->fd = fd;
}

/*
 * The writer: waits for work, takes the whole queue under the lock, writes it without the lock,
 * then (lock again) returns the batches to the free list and publishes how far it got. A failed
 * write(2) (disk full, I/O error) keeps the batch and everything after it and is retried every
 * OUTLOG_RETRY_MS, so the queue fills and producers see back-pressure instead of silent loss;
 * only at close is the remainder given up, with an error in the log.
 */
static void *writer_main(void *arg)
{
	struct outlog *ol = arg;
	struct ol_batch *work = NULL, **work_tail = &work; /* taken from the queue, not yet done */
	struct timespec last_fsync, retry_at = {0, 0}, now;
	uint64_t upto = 0;    /* sequence number of the last item written (or given up) */
	bool dirty = false;   /* written since the last fsync */
	bool failing = false; /* the last write failed; wait until retry_at */

	mono_now(&last_fsync);
	pthread_mutex_lock(&ol->lock);
	for (;;) {
		for (;;) {
			bool sync_asked = ol->sync_want > ol->synced_seq && !failing;
			if (ol->head != NULL || ol->stop || sync_asked || ol->reopen_flag)
				break;
			struct timespec deadline;
			if (failing) {
				deadline = retry_at;
			} else if (dirty) {
				deadline = last_fsync;
				ts_add_ms(&deadline, ol->fsync_ms);
			} else {
				pthread_cond_wait(&ol->wake, &ol->lock);
				continue;
			}
			if (pthread_cond_timedwait(&ol->wake, &ol->lock, &deadline) == ETIMEDOUT)
				break;
		}
		if (ol->head != NULL) {
			*work_tail = ol->head;
			work_tail = ol->tail;
			ol->head = NULL;
			ol->tail = &ol->head;
		}
		bool stopping = ol->stop;
		bool sync_asked = ol->sync_want > ol->synced_seq;
		bool reopen_now = ol->reopen_flag;
		ol->reopen_flag = false;
		pthread_mutex_unlock(&ol->lock);

		struct ol_batch *done = NULL; /* processed, to recycle */
		size_t done_bytes = 0;

		mono_now(&now);
		while (work != NULL && (!failing || stopping || !ts_before(&now, &retry_at))) {
			struct ol_batch *bt = work;
			if (bt->cap == 0) {
				if (dirty)
					writer_fsync(ol, &last_fsync);
				dirty = false;
				writer_reopen(ol);
			} else if (batch_write(ol, bt) < 0) {
				if (!failing)
					log_warn("outcome log %s: write", ol->path);
				failing = true;
				mono_now(&retry_at);
				ts_add_ms(&retry_at, OUTLOG_RETRY_MS);
				break;
			} else {
				if (failing)
					log_info("outcome log %s: writing again", ol->path);
				failing = false;
				if (ol->fsync_ms != 0 && bt->len > 0)
					dirty = true;
			}
			work = bt->next;
			bt->next = done;
			done = bt;
			done_bytes += bt->len;
			upto = bt->seq;
		}
		if (stopping && work != NULL) {
			/* Closing with a file that refuses the data: give up the rest. */
			size_t lost = 0;
			while (work != NULL) {
				struct ol_batch *bt = work;
				work = bt->next;
				lost += bt->len - bt->off;
				bt->next = done;
				done = bt;
				done_bytes += bt->len;
				upto = bt->seq;
			}
			log_error("outcome log %s: closing, %zu bytes not written", ol->path, lost);
		}
		if (work == NULL)
			work_tail = &work;
		if (reopen_now) {
			if (dirty)
				writer_fsync(ol, &last_fsync);
			dirty = false;
			writer_reopen(ol);
		}
		if (dirty) {
			struct timespec due = last_fsync;
			ts_add_ms(&due, ol->fsync_ms);
			mono_now(&now);
			if (stopping || sync_asked || !ts_before(&now, &due)) {
				writer_fsync(ol, &last_fsync);
				dirty = false;
			}
		}

		pthread_mutex_lock(&ol->lock);
		ol->pending -= done_bytes;
		struct ol_batch *spare = NULL; /* not kept: freed once the lock is released */
		while (done != NULL) {
			struct ol_batch *bt = done;
			done = bt->next;
			if (!free_put(ol, bt)) {
				bt->next = spare;
				spare = bt;
			}
		}
		/* Everything up to upto is written; with no fsync owed it is on disk too. */
		if (!dirty && upto > ol->synced_seq) {
			ol->synced_seq = upto;
			pthread_cond_broadcast(&ol->done);
		}
		bool finished = stopping && ol->head == NULL && work == NULL;
		if (spare != NULL) {
			pthread_mutex_unlock(&ol->lock);
			while (spare != NULL) {
				struct ol_batch *bt = spare;
				spare = bt->next;
				batch_free(bt);
			}
			pthread_mutex_lock(&ol->lock);
		}
		if (finished)
			break;
	}
	pthread_mutex_unlock(&ol->lock);
	return NULL;
}

/* ---- the public writer interface ---- */

struct outlog *outlog_open(const char *path, uint32_t fsync_ms, size_t max_pending)
{
	struct outlog *ol;
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	if (path == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((ol = calloc(1, sizeof(*ol))) == NULL)
		return NULL;
	ol->fsync_ms = fsync_ms;
	ol->max_pending = max_pending != 0 ? max_pending : OUTLOG_DEFAULT_MAX_PENDING;
	ol->tail = &ol->head;
	atomic_init(&ol->dropped, 0);
	atomic_init(&ol->written, 0);
	if ((ol->path = strdup(path)) == NULL) {
		err = ENOMEM;
		goto fail;
	}
	if ((ol->fd = open_log(path)) < 0) {
		err = errno;
		goto fail;
	}
	if ((err = pthread_mutex_init(&ol->lock, NULL)) != 0)
		goto fail_fd;
	if ((err = pthread_condattr_init(&ca)) != 0)
		goto fail_lock;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if ((err = pthread_cond_init(&ol->wake, &ca)) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail_lock;
	}
	err = pthread_cond_init(&ol->done, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0)
		goto fail_wake;
	/* The writer inherits a full signal mask: signals are the event loops' business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&ol->thread, NULL, writer_main, ol);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		goto fail_done;
	return ol;

fail_done:
	pthread_cond_destroy(&ol->done);
fail_wake:
	pthread_cond_destroy(&ol->wake);
fail_lock:
	pthread_mutex_destroy(&ol->lock);
fail_fd:
	close(ol->fd);
fail:
	free(ol->path);
	free(ol);
	errno = err;
	return NULL;
}

void outlog_close(struct outlog *ol)
{
	if (ol == NULL)
		return;
	pthread_mutex_lock(&ol->lock);
	ol->stop = true;
	pthread_cond_signal(&ol->wake);
	pthread_mutex_unlock(&ol->lock);
	pthread_join(ol->thread, NULL);

	while (ol->free_list != NULL) {
		struct ol_batch *bt = ol->free_list;
		ol->free_list = bt->next;
		batch_free(bt);
	}
	close(ol->fd);
	pthread_cond_destroy(&ol->done);
	pthread_cond_destroy(&ol->wake);
	pthread_mutex_destroy(&ol->lock);
	free(ol->path);
	free(ol);
}

void outlog_reopen(struct outlog *ol)
{
	/* A marker keeps the switch at this exact place in the queue. */
	struct ol_batch *mark = calloc(1, sizeof(*mark));

	pthread_mutex_lock(&ol->lock);
	if (mark != NULL) {
		queue_push(ol, mark);
	} else {
		ol->reopen_flag = true;
		pthread_cond_signal(&ol->wake);
	}
	pthread_mutex_unlock(&ol->lock);
}

void outlog_sync(struct outlog *ol)
{
	pthread_mutex_lock(&ol->lock);
	uint64_t target = ol->enq_seq;
	if (target > ol->sync_want)
		ol->sync_want = target;
	pthread_cond_signal(&ol->wake);
	while (ol->synced_seq < target)
		pthread_cond_wait(&ol->done, &ol->lock);
	pthread_mutex_unlock(&ol->lock);
}

uint64_t outlog_dropped(const struct outlog *ol)
{
	return atomic_load_explicit(&ol->dropped, memory_order_relaxed);
}

uint64_t outlog_written(const struct outlog *ol)
{
	return atomic_load_explicit(&ol->written, memory_order_relaxed);
}

/*
 * Copies the block into a batch and queues it, or refuses it as a whole. The copy is made under
 * the lock when a recycled batch is at hand (the common case: one lock, no allocation);
 * otherwise the batch is allocated outside the lock and room is checked again. A block that
 * does not end in '\n' is refused with EINVAL: it would fuse with the next line.
 */
int outlog_write_block(struct outlog *ol, const char *data, size_t len)
{
	struct ol_batch *bt;

	if (len == 0)
		return 0;
	if (data[len - 1] != '\n') {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&ol->lock);
	if (!queue_room(ol, len)) {
		pthread_mutex_unlock(&ol->lock);
		errno = EAGAIN;
		return -1;
	}
	if ((bt = free_take(ol, len)) != NULL) {
		memcpy(bt->data, data, len);
		bt->len = len;
		queue_push(ol, bt);
		pthread_mutex_unlock(&ol->lock);
		return 0;
	}
	pthread_mutex_unlock(&ol->lock);

	if ((bt = batch_alloc(len)) == NULL)
		return -1;
	memcpy(bt->data, data, len);
	bt->len = len;
	pthread_mutex_lock(&ol->lock);
	if (!queue_room(ol, len)) {
		bool kept = free_put(ol, bt);
		pthread_mutex_unlock(&ol->lock);
		if (!kept)
			batch_free(bt);
		errno = EAGAIN;
		return -1;
	}
	queue_push(ol, bt);
	pthread_mutex_unlock(&ol->lock);
	return 0;
}

struct outlog_buf *outlog_buf_new(struct outlog *ol, size_t size)
{
	struct outlog_buf *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->ol = ol;
	b->size = size != 0 ? size : OUTLOG_DEFAULT_BUF;
	/* A full buffer must fit into an empty queue, or it could never be handed over. */
	if (b->size > ol->max_pending)
		b->size = ol->max_pending;
	pthread_mutex_lock(&ol->lock);
	b->cur = free_take(ol, b->size);
	pthread_mutex_unlock(&ol->lock);
	if (b->cur == NULL && (b->cur = batch_alloc(b->size)) == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

/*
 * Hands the staged batch to the writer and puts a fresh one in its place. With force, the bound
 * is ignored (the last flush of a buffer being freed: at most one buffer over, and nothing
 * lost). Returns 0, or -1 when the queue has no room (the records stay staged).
 */
static int buf_handover(struct outlog_buf *b, bool force)
{
	struct outlog *ol = b->ol;
	struct ol_batch *next;

	if (b->cur == NULL || b->cur->len == 0)
		return 0;
	pthread_mutex_lock(&ol->lock);
	if (!force && !queue_room(ol, b->cur->len)) {
		pthread_mutex_unlock(&ol->lock);
		return -1;
	}
	queue_push(ol, b->cur);
	next = force ? NULL : free_take(ol, b->size);
	pthread_mutex_unlock(&ol->lock);
	if (next == NULL && !force)
		next = batch_alloc(b->size); /* NULL: outlog_reserve() tries again */
	b->cur = next;
	return 0;
}

void outlog_buf_free(struct outlog_buf *b)
{
	if (b == NULL)
		return;
	if (b->cur != NULL && b->cur->len > 0) {
		buf_handover(b, true);
	} else if (b->cur != NULL) {
		pthread_mutex_lock(&b->ol->lock);
		bool kept = free_put(b->ol, b->cur);
		pthread_mutex_unlock(&b->ol->lock);
		if (!kept)
			batch_free(b->cur);
	}
	free(b);
}

char *outlog_reserve(struct outlog_buf *b, size_t maxlen)
{
	b->reserved = 0;
	if (maxlen > b->size)
		goto drop;
	if (b->cur != NULL && b->size - b->cur->len < maxlen && buf_handover(b, false) < 0)
		goto drop;
	if (b->cur == NULL && (b->cur = batch_alloc(b->size)) == NULL)
		goto drop;
	b->reserved = maxlen;
	return b->cur->data + b->cur->len;

drop:
	atomic_fetch_add_explicit(&b->ol->dropped, 1, memory_order_relaxed);
	return NULL;
}

void outlog_commit(struct outlog_buf *b, size_t len)
{
	assert(len <= b->reserved);
	if (len > b->reserved)
		len = b->reserved;
	b->cur->len += len;
	b->reserved = 0;
}

void outlog_flush(struct outlog_buf *b)
{
	/* On a full queue the records stay staged and the next flush tries again. */
	(void)buf_handover(b, false);
}

/* ---- formatting ---- */

/* A bounded output cursor. On overflow it sets full and stops writing (end = p), so a formatter
 * can append unconditionally and check once at the end. */
struct out {
	char *p, *end;
	bool full;
};

static inline void put_mem(struct out *o, const void *s, size_t n)
{
	if ((size_t)(o->end - o->p) < n) {
		o->full = true;
		o->end = o->p;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

#define put_lit(o, lit) put_mem((o), (lit), sizeof(lit) - 1)

static inline void put_ch(struct out *o, char c)
{
	if (o->p == o->end) {
		o->full = true;
		return;
	}
	*o->p++ = c;
}

/* Ends the output with a NUL (not counted); returns the length or 0 when it did not fit. */
static size_t out_finish(struct out *o, char *start)
{
	if (o->full || o->p == o->end)
		return 0;
	*o->p = '\0';
	return (size_t)(o->p - start);
}

static const char digit_pairs[201] = "00010203040506070809"
				     "10111213141516171819"
				     "20212223242526272829"
				     "30313233343536373839"
				     "40414243444546474849"
				     "50515253545556575859"
				     "60616263646566676869"
				     "70717273747576777879"
				     "80818283848586878889"
				     "90919293949596979899";

/* Writes v in decimal so that it ends just before end; returns where it starts. */
static char *u64_rev(char *end, uint64_t v)
{
	while (v >= 100) {
		unsigned i = (unsigned)(v % 100) * 2;
		v /= 100;
		*--end = digit_pairs[i + 1];
		*--end = digit_pairs[i];
	}
	if (v >= 10) {
		*--end = digit_pairs[v * 2 + 1];
		*--end = digit_pairs[v * 2];
	} else {
		*--end = (char)('0' + v);
	}
	return end;
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[20];
	char *s = u64_rev(tmp + sizeof(tmp), v);

	put_mem(o, s, (size_t)(tmp + sizeof(tmp) - s));
}

static void put_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		put_ch(o, '-');
		put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(o, (uint64_t)v);
	}
}

/* Writes v (0-99) as two digits at d. */
static void put2(char *d, unsigned v)
{
	d[0] = digit_pairs[v * 2];
	d[1] = digit_pairs[v * 2 + 1];
}

/*
 * A double as its shortest round-trip decimal form (%.15g, else %.16g, else %.17g, the first
 * that reads back equal); integers up to 2^53 through the integer routine; NaN and infinities
 * as null.
 */
static void put_double(struct out *o, double v)
{
	char tmp[32];

	if (!isfinite(v)) {
		put_lit(o, "null");
		return;
	}
	if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
		put_i64(o, (int64_t)v);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		int n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (prec == 17 || strtod(tmp, NULL) == v) {
			put_mem(o, tmp, (size_t)n);
			return;
		}
	}
}

/* A duration in milliseconds with exactly three decimals ("12.345"); null when not finite. */
static void put_ms3(struct out *o, double ms)
{
	if (!isfinite(ms)) {
		put_lit(o, "null");
		return;
	}
	if (ms < 0) {
		/* Rounds to "0.000" rather than "-0.000" when tiny. */
		if (ms > -0.0005) {
			ms = 0;
		} else {
			put_ch(o, '-');
			ms = -ms;
		}
	}
	if (ms >= 1e15) {
		put_double(o, ms); /* beyond the fixed-point range; never a real latency */
		return;
	}
	uint64_t m = (uint64_t)(ms * 1000.0 + 0.5);
	char frac[3];
	unsigned f = (unsigned)(m % 1000);
	frac[0] = (char)('0' + f / 100);
	frac[1] = (char)('0' + f / 10 % 10);
	frac[2] = (char)('0' + f % 10);
	put_u64(o, m / 1000);
	put_ch(o, '.');
	put_mem(o, frac, 3);
}

/* A weight in basis points as a percentage with at most two decimals: 1250 -> 12.5. */
static void put_bp(struct out *o, uint32_t bp)
{
	unsigned frac = bp % 100;

	put_u64(o, bp / 100);
	if (frac == 0)
		return;
	put_ch(o, '.');
	put_ch(o, (char)('0' + frac / 10));
	if (frac % 10 != 0)
		put_ch(o, (char)('0' + frac % 10));
}

/* The "YYYY-MM-DDTHH:MM:SS" of the last second formatted by this thread. */
static _Thread_local struct {
	bool valid;
	time_t sec;
	char text[19];
} ts_cache;

/* Writes the 27-character UTC timestamp; sets o->full when the time is outside years 0-9999. */
static void put_ts(struct out *o, const struct timeval *tv)
{
	time_t sec = tv->tv_sec;
	long usec = (long)tv->tv_usec;
	char d[27];

	if (usec < 0 || usec >= 1000000) {
		sec += usec / 1000000;
		usec %= 1000000;
		if (usec < 0) {
			usec += 1000000;
			sec--;
		}
	}
	if (!ts_cache.valid || ts_cache.sec != sec) {
		struct tm tm;
		if (gmtime_r(&sec, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
			o->full = true;
			o->end = o->p;
			return;
		}
		unsigned year = (unsigned)(tm.tm_year + 1900);
		char *t = ts_cache.text;
		put2(t, year / 100);
		put2(t + 2, year % 100);
		t[4] = '-';
		put2(t + 5, (unsigned)tm.tm_mon + 1);
		t[7] = '-';
		put2(t + 8, (unsigned)tm.tm_mday);
		t[10] = 'T';
		put2(t + 11, (unsigned)tm.tm_hour);
		t[13] = ':';
		put2(t + 14, (unsigned)tm.tm_min);
		t[16] = ':';
		put2(t + 17, (unsigned)tm.tm_sec);
		ts_cache.sec = sec;
		ts_cache.valid = true;
	}
	memcpy(d, ts_cache.text, 19);
	d[19] = '.';
	unsigned u = (unsigned)usec;
	put2(d + 20, u / 10000);
	put2(d + 22, u / 100 % 100);
	put2(d + 24, u % 100);
	d[26] = 'Z';
	put_mem(o, d, sizeof(d));
}

/* Bytes that need care inside a JSON string: 1 for '"', '\\' and controls, 2 for >= 0x80. */
static const unsigned char json_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF) starting at s[0] >= 0x80, or 0 when s[0] does not start one.
 */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void put_esc_byte(struct out *o, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

	switch (c) {
	case '"':
		put_lit(o, "\\\"");
		return;
	case '\\':
		put_lit(o, "\\\\");
		return;
	case '\n':
		put_lit(o, "\\n");
		return;
	case '\r':
		put_lit(o, "\\r");
		return;
	case '\t':
		put_lit(o, "\\t");
		return;
	case '\b':
		put_lit(o, "\\b");
		return;
	case '\f':
		put_lit(o, "\\f");
		return;
	default:
		put_mem(o, e, sizeof(e));
	}
}

/* s (len bytes) as a quoted JSON string; NULL as null. Plain runs are copied in one piece. */
/* Whether any of the 8 bytes of w needs a closer look: a control character, '"', '\\' or a
 * byte of a multi-byte UTF-8 sequence (bit 7 set). Most strings in a record have none. */
static inline bool word_needs_care(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');

	return (((w - ones * 0x20) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | w) &
		high) != 0;
}

/* Whether none of S[0..len) needs care: whole words at once, the last one overlapping. */
static bool plain_json(const unsigned char *s, size_t len)
{
	uint64_t w;
	uint32_t head, tail;

	if (len >= 8) {
		for (size_t i = 0; i + 8 < len; i += 8) {
			memcpy(&w, s + i, 8);
			if (word_needs_care(w))
				return false;
		}
		memcpy(&w, s + len - 8, 8);
		return !word_needs_care(w);
	}
	if (len >= 4) {
		memcpy(&head, s, 4);
		memcpy(&tail, s + len - 4, 4);
		return !word_needs_care(head | (uint64_t)tail << 32);
	}
	for (size_t i = 0; i < len; i++)
		if (json_class[s[i]] != 0)
			return false;
	return true;
}

static void put_str(struct out *o, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	if (str == NULL) {
		put_lit(o, "null");
		return;
	}
	if (plain_json(s, len)) {
		put_ch(o, '"');
		put_mem(o, s, len);
		put_ch(o, '"');
		return;
	}
	put_ch(o, '"');
	while (i < len) {
		if (i + 8 <= len) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (!word_needs_care(w)) {
				i += 8;
				continue;
			}
		}
		unsigned cls = json_class[s[i]];
		size_t n;
		if (cls == 0) {
			i++;
			continue;
		}
		if (cls == 2 && (n = utf8_len(s + i, len - i)) != 0) {
			i += n;
			continue;
		}
		put_mem(o, s + run, i - run);
		put_esc_byte(o, s[i]);
		run = ++i;
	}
	put_mem(o, s + run, i - run);
	put_ch(o, '"');
}

static void put_cstr(struct out *o, const char *s)
{
	put_str(o, s, s != NULL ? strlen(s) : 0);
}

size_t outlog_format_ts(char *dst, size_t cap, const struct timeval *tv)
{
	struct out o = {dst, dst + cap, false};

	put_ts(&o, tv);
	return out_finish(&o, dst);
}

size_t outlog_json_str(char *dst, size_t cap, const char *s, size_t len)
{
	struct out o = {dst, dst + cap, false};

	put_str(&o, s, len);
	return out_finish(&o, dst);
}

size_t outlog_format_request(char *dst, size_t cap, const struct outlog_request *r)
{
	struct out o = {dst, dst + cap, false};

	put_lit(&o, "{\"v\":1,\"type\":\"request\",\"ts\":\"");
	put_ts(&o, &r->ts);
	put_lit(&o, "\",\"exp\":");
	if (r->exp != NULL) {
		put_str(&o, r->exp, r->exp_len);
		put_lit(&o, ",\"variant\":");
		put_str(&o, r->variant, r->variant_len);
	} else {
		put_lit(&o, "null,\"variant\":null");
	}
	put_lit(&o, ",\"unit\":");
	if (r->unit != NULL && r->unit_len > 0)
		put_str(&o, r->unit, r->unit_len);
	else
		put_lit(&o, "null");
	put_lit(&o, ",\"rid\":");
	put_str(&o, r->rid, r->rid_len);
	put_lit(&o, ",\"status\":");
	put_i64(&o, r->status);
	put_lit(&o, ",\"latency_ms\":");
	put_ms3(&o, r->latency_ms);
	put_lit(&o, ",\"upstream\":");
	put_str(&o, r->upstream, r->upstream_len);
	put_lit(&o, ",\"bytes_in\":");
	put_u64(&o, r->bytes_in);
	put_lit(&o, ",\"bytes_out\":");
	put_u64(&o, r->bytes_out);
	if (r->forced)
		put_lit(&o, ",\"forced\":true");
	put_lit(&o, "}\n");
	return out_finish(&o, dst);
}

size_t outlog_format_outcome(char *dst, size_t cap, const struct outlog_outcome *oc)
{
	struct out o = {dst, dst + cap, false};

	if (oc->pending) /* put_lit takes a literal's size */
		put_lit(&o, "{\"v\":1,\"type\":\"pending_outcome\",\"ts\":\"");
	else
		put_lit(&o, "{\"v\":1,\"type\":\"outcome\",\"ts\":\"");
	put_ts(&o, &oc->ts);
	put_lit(&o, "\",\"exp\":");
	put_cstr(&o, oc->exp);
	put_lit(&o, ",\"variant\":");
	put_cstr(&o, oc->pending ? NULL : oc->variant);
	put_lit(&o, ",\"unit\":");
	put_cstr(&o, oc->unit);
	put_lit(&o, ",\"rid\":");
	put_cstr(&o, oc->rid);
	put_lit(&o, ",\"metric\":");
	put_cstr(&o, oc->metric);
	put_lit(&o, ",\"value\":");
	put_double(&o, oc->value);
	if (oc->id != NULL) {
		put_lit(&o, ",\"id\":");
		put_cstr(&o, oc->id);
	}
	put_lit(&o, "}\n");
	return out_finish(&o, dst);
}

size_t outlog_format_config(char *dst, size_t cap, const struct timeval *ts, uint64_t generation,
			    const char *exp, const char *const *variants,
			    const uint32_t *weights_bp, size_t n)
{
	struct out o = {dst, dst + cap, false};

	put_lit(&o, "{\"v\":1,\"type\":\"config\",\"ts\":\"");
	put_ts(&o, ts);
	put_lit(&o, "\",\"generation\":");
	put_u64(&o, generation);
	put_lit(&o, ",\"exp\":");
	put_cstr(&o, exp);
	put_lit(&o, ",\"weights\":{");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			put_ch(&o, ',');
		/* A NULL name would make an invalid key; write it as "". */
		put_cstr(&o, variants[i] != NULL ? variants[i] : "");
		put_ch(&o, ':');
		put_bp(&o, weights_bp[i]);
	}
	put_lit(&o, "}}\n");
	return out_finish(&o, dst);
}
