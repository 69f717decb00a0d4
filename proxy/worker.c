/*
 * worker.c - event-loop threads (see include/worker.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "conf.h"
#include "iobatch.h"
#include "live.h"
#include "log.h"
#include "net.h"
#include "outlog.h"
#include "proxy.h"
#include "server.h"
#include "shadow.h"
#include "upstream.h"
#include "worker.h"

#define TICK_MS 50
#define ACCEPT_PAUSE_MS 100
#define BUF_POOL_MAX 1024
#define MAX_IDLE_PER_SERVER 512
#define WORKER_BATCH 256 /* socket writes made in one system call, at most */

enum { WAKE_DRAIN = 1, WAKE_STOP = 2 };

static uint32_t buffer_size(const struct conf *c)
{
	uint32_t size = c->limits.max_header_bytes + 4096;

	size = (size + 4095) & ~4095u;
	return size < 16384 ? 16384 : size;
}

uint64_t worker_rand(struct worker *w)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

char *worker_buf_get(struct worker *w)
{
	if (w->bufs.nfree > 0)
		return w->bufs.free[--w->bufs.nfree];
	return malloc(w->bufs.size);
}

char *worker_bigbuf_get(struct worker *w)
{
	char *b;

	if (w->big_inuse >= WORKER_BIG_MAX)
		return NULL;
	w->big_idle_ticks = 0;
	b = w->big.nfree > 0 ? w->big.free[--w->big.nfree] : malloc(WORKER_BIG_BUF);
	if (b != NULL)
		w->big_inuse++;
	return b;
}

void worker_bigbuf_put(struct worker *w, char *b)
{
	if (b == NULL)
		return;
	w->big_inuse--;
	if (w->big.nfree < w->big.cap)
		w->big.free[w->big.nfree++] = b;
	else
		free(b);
}

void worker_buf_put(struct worker *w, char *b)
{
	if (b == NULL)
		return;
	if (w->bufs.nfree < w->bufs.cap)
		w->bufs.free[w->bufs.nfree++] = b;
	else
		free(b);
}

static struct gen *gen_new(struct conf *c, uint64_t seq)
{
	struct gen *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->conf = c;
	g->seq = seq;
	return g;
}

void worker_refresh_conf(struct worker *w)
{
	uint64_t seq = atomic_load_explicit(&server_conf_seq, memory_order_acquire);

	if (seq == w->cur->seq)
		return;
	struct conf *c = server_conf_acquire(&seq);
	struct gen *g = gen_new(c, seq);
	if (g == NULL) {
		conf_unref(c);
		return; /* keep serving on the generation we have */
	}
	struct gen *old = w->cur;
	w->cur = g;
	if (old->inflight == 0) {
		conf_unref(old->conf);
		free(old);
	} else {
		old->next = w->retired;
		w->retired = old;
	}
}

struct gen *worker_gen_get(struct worker *w)
{
	worker_refresh_conf(w);
	w->cur->inflight++;
	STAT_ADD(w->stats.active, 1);
	return w->cur;
}

void worker_gen_put(struct worker *w, struct gen *g)
{
	STAT_ADD(w->stats.active, -1);
	if (--g->inflight > 0 || g == w->cur)
		return;
	for (struct gen **pp = &w->retired; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	conf_unref(g->conf);
	free(g);
}

static void listener_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker_listener *l = arg;

	proxy_accept(l->w, l);
}

static void close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].ev != NULL)
			event_free(w->listeners[i].ev);
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
		w->listeners[i].ev = NULL;
		w->listeners[i].fd = -1;
	}
}

void worker_accept_pause(struct worker *w)
{
	if (w->accept_paused)
		return;
	w->accept_paused = true;
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].ev != NULL)
			event_del(w->listeners[i].ev);
	if (errno == EMFILE || errno == ENFILE)
		log_warn("worker %d: accept paused", w->id);
}

static void accept_resume(struct worker *w)
{
	w->accept_paused = false;
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].ev == NULL)
			continue;
		event_add(w->listeners[i].ev, NULL);
		proxy_accept(w, &w->listeners[i]); /* the backlog gives no new edge */
	}
}

void worker_wall_refresh(struct worker *w)
{
	struct timespec wall;

	clock_gettime(CLOCK_REALTIME, &wall);
	int64_t wall_us = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
	w->wall_offset_us = wall_us - (int64_t)worker_clock_us();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	worker_wall_refresh(w);

	if (w->olb != NULL)
		outlog_flush(w->olb);
	if (w->alb != NULL)
		outlog_flush(w->alb);
	live_publish(w->live);
	/* large buffers nobody took for a while go back to the system */
	if (w->big.nfree > 0 && ++w->big_idle_ticks * TICK_MS >= WORKER_BIG_IDLE_MS) {
		while (w->big.nfree > 0)
			free(w->big.free[--w->big.nfree]);
	}
	if (w->accept_paused && !w->draining &&
	    STAT_GET(w->stats.sessions) < w->cur->conf->limits.max_connections) {
		if (++w->pause_ticks * TICK_MS >= ACCEPT_PAUSE_MS) {
			w->pause_ticks = 0;
			accept_resume(w);
		}
	}
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t v = 0;

	if (read(w->wake_fd, &v, sizeof(v)) != sizeof(v))
		return;
	if (v >= WAKE_STOP) {
		event_base_loopbreak(w->base);
		return;
	}
	if (!w->draining) {
		w->draining = true; /* the loop drains after this pass (worker_main) */
		close_listeners(w);
	}
}

struct worker *worker_new(int id, struct conf *conf, struct outlog *ol, struct outlog *access)
{
	struct worker *w = calloc(1, sizeof(*w));
	uint64_t seq;

	if (w == NULL)
		return NULL;
	w->id = id;
	w->wake_fd = -1;
	struct event_config *cfg = event_config_new();
	if (cfg != NULL) {
		/* one thread per base: no locking inside libevent. Not the precise timer: it
		 * re-arms a timerfd on every pass of the loop; timeouts need only milliseconds,
		 * and request latencies are timed with worker_clock_us(). */
		event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
		w->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (w->base == NULL)
		goto fail;
	worker_wall_refresh(w);
	struct conf *c = server_conf_acquire(&seq);
	if ((w->cur = gen_new(c, seq)) == NULL) {
		conf_unref(c);
		goto fail;
	}
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || w->rng == 0)
		w->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)getpid() << 16) ^ (uint64_t)id;
	w->bufs.size = buffer_size(conf);
	w->bufs.cap = BUF_POOL_MAX;
	if ((w->bufs.free = calloc(BUF_POOL_MAX, sizeof(char *))) == NULL)
		goto fail;
	w->big.size = WORKER_BIG_BUF;
	w->big.cap = WORKER_BIG_KEEP;
	if ((w->big.free = calloc(WORKER_BIG_KEEP, sizeof(char *))) == NULL)
		goto fail;
	w->pools = upstream_pools_new(w->base, proxy_upstream_event, MAX_IDLE_PER_SERVER);
	if (w->pools == NULL)
		goto fail;
	if (ol != NULL && (w->olb = outlog_buf_new(ol, 0)) == NULL)
		goto fail;
	if (access != NULL && (w->alb = outlog_buf_new(access, 0)) == NULL)
		goto fail;
	if ((w->live = live_shard_new()) == NULL)
		goto fail;
	w->nlisteners = conf->nlistens;
	if ((w->listeners = calloc(conf->nlistens, sizeof(*w->listeners))) == NULL)
		goto fail;
	for (size_t i = 0; i < conf->nlistens; i++)
		w->listeners[i].fd = -1;
	for (size_t i = 0; i < conf->nlistens; i++) {
		struct worker_listener *l = &w->listeners[i];
		const struct conf_addr *a = &conf->listens[i].addr;
		l->w = w;
		l->index = i;
		l->fd = net_listen((const struct sockaddr *)&a->ss, a->sslen, true, 4096);
		if (l->fd < 0) {
			log_warn("listen on %s", a->text);
			goto fail;
		}
		l->ev = event_new(w->base, l->fd, EV_READ | EV_PERSIST | EV_ET, listener_cb, l);
		if (l->ev == NULL || event_add(l->ev, NULL) < 0)
			goto fail;
	}
	struct timeval tv = {0, TICK_MS * 1000};
	w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
	if (w->tick == NULL || event_add(w->tick, &tv) < 0)
		goto fail;
	if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto fail;
	w->wake = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
	if (w->wake == NULL || event_add(w->wake, NULL) < 0)
		goto fail;
	return w;
fail:
	worker_free(w);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* The batch for socket reads and writes is made here, by the thread that submits to
	 * it. Without it (io_uring: false, no io_uring in the kernel, no memory), each read and
	 * write is a system call made at once. */
	char why[128];
	if (!w->cur->conf->io_uring)
		snprintf(why, sizeof(why), "io_uring: false");
	else
		w->iob = iobatch_new(WORKER_BATCH, true, why, sizeof(why));
	atomic_store(&w->io_uring_on, w->iob != NULL);
	if (w->id == 0) {
		if (w->iob != NULL)
			log_info("socket reads and writes: one io_uring call per pass of the loop");
		else
			log_info("socket reads and writes: one system call each (%s)", why);
	}
	/* one pass of the loop at a time: the writes it queued are made together after it */
	while (event_base_loop(w->base, EVLOOP_ONCE) == 0) {
		proxy_flush(w);
		w->clock_read = false; /* the next pass reads the time afresh */
		/* between passes, with no I/O queued: idle sessions close, the others close
		 * after their response; the tick wakes the loop to look again */
		if (w->draining && proxy_drain(w) == 0)
			break;
		if (event_base_got_break(w->base))
			break;
	}
	proxy_close_all(w);
	shadow_close_all(w);
	if (w->olb != NULL)
		outlog_flush(w->olb);
	if (w->alb != NULL)
		outlog_flush(w->alb);
	live_publish(w->live);
	atomic_store(&w->stopped, true);
	return NULL;
}

int worker_start(struct worker *w)
{
	int err = pthread_create(&w->thread, NULL, worker_main, w);

	if (err != 0) {
		errno = err;
		return -1;
	}
	w->started = true;
	return 0;
}

void worker_stop(struct worker *w, bool graceful)
{
	uint64_t v = graceful ? WAKE_DRAIN : WAKE_STOP;

	if (w->wake_fd >= 0 && write(w->wake_fd, &v, sizeof(v)) != sizeof(v))
		log_warn("worker %d: wake", w->id);
}

void worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->started)
		pthread_join(w->thread, NULL);
	proxy_close_all(w);
	shadow_close_all(w);
	close_listeners(w);
	free(w->listeners);
	if (w->tick != NULL)
		event_free(w->tick);
	if (w->wake != NULL)
		event_free(w->wake);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	outlog_buf_free(w->olb);
	outlog_buf_free(w->alb);
	live_shard_free(w->live);
	upstream_pools_free(w->pools);
	iobatch_free(w->iob);
	free(w->wq);
	free(w->wq_run);
	free(w->rr);
	while (w->retired != NULL) {
		struct gen *g = w->retired;
		w->retired = g->next;
		conf_unref(g->conf);
		free(g);
	}
	if (w->cur != NULL) {
		conf_unref(w->cur->conf);
		free(w->cur);
	}
	for (uint32_t i = 0; i < w->bufs.nfree; i++)
		free(w->bufs.free[i]);
	free(w->bufs.free);
	for (uint32_t i = 0; i < w->big.nfree; i++)
		free(w->big.free[i]);
	free(w->big.free);
	if (w->base != NULL)
		event_base_free(w->base);
	free(w);
}
