/*
 * upstream.c - server registry and per-worker keep-alive pools (see include/upstream.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "net.h"
#include "upstream.h"

#define MAX_SERVERS 4096

struct server {
	char *name; /* "host:port" as written */
	char *host; /* the host part, for SNI and certificate checks */
	size_t name_len;
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool tls;
	atomic_uint_fast64_t errors[UPSTREAM_ERR_COUNT];
	atomic_uint failures;  /* consecutive failed exchanges or checks */
	atomic_uint successes; /* consecutive good checks (active checks only) */
	atomic_bool down;
	atomic_bool probing;   /* a probe request was let through and has not failed yet */
	atomic_uint_fast64_t retry_at_ms; /* while down: when the next probe may go */
	uint32_t backoff_ms;   /* under health_lock */
};

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Registry entries are written under the lock and never move or change once published, so
 * workers read them without locking (they learn of a new id only through a new generation,
 * which is handed over under a lock). */
static struct server *servers[MAX_SERVERS];
static int nservers;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

struct pool {
	struct upconn *idle; /* LIFO: the most recently used connection is the warmest */
	uint32_t nidle;
};

struct upstream_pools {
	struct event_base *base; /* (ref) */
	upstream_event_cb cb;
	uint32_t max_idle;
	struct pool *pool; /* indexed by server id, grown on demand */
	int npool;
	size_t total_idle;
};

static int register_server(const struct conf_server *cs)
{
	for (int i = 0; i < nservers; i++) {
		const struct server *s = servers[i];
		if (s->tls == cs->tls && strcmp(s->name, cs->addr.text) == 0 &&
		    s->sslen == cs->addr.sslen && memcmp(&s->ss, &cs->addr.ss, s->sslen) == 0)
			return i;
	}
	if (nservers == MAX_SERVERS)
		return -1;
	struct server *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->name = strdup(cs->addr.text)) == NULL) {
		free(s);
		return -1;
	}
	s->name_len = strlen(s->name);
	const char *colon = strrchr(s->name, ':');
	size_t hl = colon ? (size_t)(colon - s->name) : s->name_len;
	if (hl >= 2 && s->name[0] == '[') {
		s->host = strndup(s->name + 1, hl - 2);
	} else {
		s->host = strndup(s->name, hl);
	}
	if (s->host == NULL) {
		free(s->name);
		free(s);
		return -1;
	}
	s->ss = cs->addr.ss;
	s->sslen = cs->addr.sslen;
	s->tls = cs->tls;
	servers[nservers] = s;
	return nservers++;
}

int upstream_register_conf(struct conf *c)
{
	int rc = 0;

	pthread_mutex_lock(&registry_lock);
	for (size_t b = 0; b < c->nbackends && rc == 0; b++) {
		struct conf_backend *be = &c->backends[b];
		for (size_t i = 0; i < be->nservers; i++) {
			be->servers[i].id = register_server(&be->servers[i]);
			if (be->servers[i].id < 0) {
				rc = -1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

const char *upstream_server_name(int id, size_t *len)
{
	if (len != NULL)
		*len = servers[id]->name_len;
	return servers[id]->name;
}

void upstream_server_addr(int id, struct sockaddr_storage *ss, socklen_t *len)
{
	*ss = servers[id]->ss;
	*len = servers[id]->sslen;
}

int upstream_server_count(void)
{
	pthread_mutex_lock(&registry_lock);
	int n = nservers;
	pthread_mutex_unlock(&registry_lock);
	return n;
}

struct upstream_pools *upstream_pools_new(struct event_base *base, upstream_event_cb cb,
					  uint32_t max_idle_per_server)
{
	struct upstream_pools *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->base = base;
	p->cb = cb;
	p->max_idle = max_idle_per_server;
	return p;
}

static void upconn_free(struct upconn *u)
{
	conn_close(&u->c);
	free(u);
}

void upstream_pools_free(struct upstream_pools *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->npool; i++) {
		struct upconn *u = p->pool[i].idle, *next;
		for (; u != NULL; u = next) {
			next = u->next_idle;
			upconn_free(u);
		}
	}
	free(p->pool);
	free(p);
}

static void unlink_idle(struct upconn *u)
{
	struct pool *pl = &u->pools->pool[u->server];

	for (struct upconn **pp = &pl->idle; *pp != NULL; pp = &(*pp)->next_idle) {
		if (*pp == u) {
			*pp = u->next_idle;
			pl->nidle--;
			u->pools->total_idle--;
			break;
		}
	}
	u->next_idle = NULL;
}

/* An idle connection has an edge: the server closed it, or sent something unasked. Either way
 * it cannot carry another request. */
static void idle_event(struct upconn *u, short what)
{
	char probe[64];

	if (!(what & (EV_READ | EV_CLOSED)))
		return;
	ssize_t n = conn_read(&u->c, probe, sizeof(probe));
	if (n < 0 && errno == EAGAIN)
		return;
	unlink_idle(u);
	upconn_free(u);
}

static void upconn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upconn *u = arg;

	conn_event(&u->c, what);
	if (u->owner != NULL)
		u->pools->cb(u->owner, what);
	else
		idle_event(u, what);
}

static int grow(struct upstream_pools *p, int server)
{
	if (server < p->npool)
		return 0;
	int n = server + 16;
	struct pool *np = realloc(p->pool, (size_t)n * sizeof(*np));
	if (np == NULL)
		return -1;
	memset(np + p->npool, 0, (size_t)(n - p->npool) * sizeof(*np));
	p->pool = np;
	p->npool = n;
	return 0;
}

struct upconn *upstream_acquire(struct upstream_pools *p, int server, void *tls_ctx, bool verify,
			       void *owner, bool *reused)
{
	struct upconn *u;
	bool in_progress;

	if (grow(p, server) < 0)
		return NULL;
	struct pool *pl = &p->pool[server];
	while ((u = pl->idle) != NULL) {
		pl->idle = u->next_idle;
		pl->nidle--;
		p->total_idle--;
		u->next_idle = NULL;
		if (servers[server]->tls && u->tls_ctx != tls_ctx) {
			/* made under an earlier generation's CA or verification settings: the
			 * connection holds that context, so the pointers cannot be confused */
			upconn_free(u);
			continue;
		}
		u->owner = owner;
		*reused = true;
		return u;
	}
	*reused = false;
	const struct server *s = servers[server];
	int fd = net_connect((const struct sockaddr *)&s->ss, s->sslen, &in_progress);
	if (fd < 0)
		return NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	u->c.fd = fd;
	u->pools = p;
	u->server = server;
	u->owner = owner;
	u->connecting = in_progress;
	u->c.writable = !in_progress;
	u->c.name = s->name;
	u->c.ev = event_new(p->base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET,
			    upconn_cb, u);
	u->tls_ctx = s->tls ? tls_ctx : NULL;
	if (s->tls && (tls_ctx == NULL || conn_tls_connect(&u->c, tls_ctx, s->host, verify) < 0)) {
		upconn_free(u);
		errno = EPROTO;
		return NULL;
	}
	if (u->c.ev == NULL || event_add(u->c.ev, NULL) < 0) {
		upconn_free(u);
		errno = ENOMEM;
		return NULL;
	}
	return u;
}

void upstream_release(struct upconn *u, bool reusable)
{
	struct upstream_pools *p = u->pools;
	struct pool *pl = &p->pool[u->server];

	u->owner = NULL;
	if (!reusable || u->connecting || pl->nidle >= p->max_idle || u->c.fd < 0) {
		upconn_free(u);
		return;
	}
	u->next_idle = pl->idle;
	pl->idle = u;
	pl->nidle++;
	p->total_idle++;
}

/* Marks s down (or, already down, lengthens its back-off). health_lock held. */
static void mark_down(struct server *s, const char *why)
{
	bool was_down = atomic_load(&s->down);

	s->backoff_ms = was_down ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	atomic_store(&s->retry_at_ms, mono_ms() + s->backoff_ms);
	if (!was_down) {
		atomic_store(&s->down, true);
		log_warnx("upstream %s marked down (%s); probing again in %u ms", s->name, why,
			  s->backoff_ms);
	}
}

static void mark_up(struct server *s, const char *why)
{
	atomic_store(&s->probing, false);
	if (atomic_load(&s->down)) {
		atomic_store(&s->down, false);
		s->backoff_ms = 0;
		log_info("upstream %s is up again (%s)", s->name, why);
	}
}

void upstream_note_error(int server, enum upstream_err why, uint32_t fall)
{
	struct server *s = servers[server];

	atomic_fetch_add_explicit(&s->errors[why], 1, memory_order_relaxed);
	unsigned f = atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed) + 1;
	bool down = atomic_load_explicit(&s->down, memory_order_relaxed);
	/* once down, only a failed probe lengthens the back-off: requests that were already in
	 * flight when the server went down say nothing new */
	if (down ? atomic_exchange(&s->probing, false) : f >= (fall ? fall : 1)) {
		char reason[64];
		snprintf(reason, sizeof(reason), "%u failed exchanges, last: %s", f,
			 upstream_err_name(why));
		pthread_mutex_lock(&health_lock);
		/* another thread may have marked it down since we looked: once is enough */
		if (down || !atomic_load(&s->down))
			mark_down(s, reason);
		pthread_mutex_unlock(&health_lock);
	}
}

void upstream_note_success(int server)
{
	struct server *s = servers[server];

	if (atomic_load_explicit(&s->failures, memory_order_relaxed) != 0)
		atomic_store_explicit(&s->failures, 0, memory_order_relaxed);
	if (atomic_load_explicit(&s->down, memory_order_relaxed)) {
		pthread_mutex_lock(&health_lock);
		mark_up(s, "a request succeeded");
		pthread_mutex_unlock(&health_lock);
	}
}

void upstream_health_result(int server, bool ok, uint32_t rise, uint32_t fall)
{
	struct server *s = servers[server];

	pthread_mutex_lock(&health_lock);
	if (ok) {
		atomic_store(&s->failures, 0);
		unsigned n = atomic_fetch_add(&s->successes, 1) + 1;
		if (n >= (rise ? rise : 1))
			mark_up(s, "health check passed");
	} else {
		atomic_store(&s->successes, 0);
		unsigned f = atomic_fetch_add(&s->failures, 1) + 1;
		if (f >= (fall ? fall : 1))
			mark_down(s, "health check failed");
	}
	pthread_mutex_unlock(&health_lock);
}

bool upstream_server_usable(int server)
{
	struct server *s = servers[server];

	if (!atomic_load_explicit(&s->down, memory_order_relaxed))
		return true;
	uint64_t now = mono_ms();
	uint64_t at = atomic_load(&s->retry_at_ms);
	if (now < at)
		return false;
	/* the first caller past the back-off probes; the others keep waiting */
	if (!atomic_compare_exchange_strong(&s->retry_at_ms, &at, now + BACKOFF_MIN_MS))
		return false;
	atomic_store(&s->probing, true);
	return true;
}

uint64_t upstream_error_count(int server, enum upstream_err why)
{
	return atomic_load_explicit(&servers[server]->errors[why], memory_order_relaxed);
}

bool upstream_server_up(int server)
{
	return !atomic_load_explicit(&servers[server]->down, memory_order_relaxed);
}

const char *upstream_err_name(enum upstream_err why)
{
	static const char *const names[UPSTREAM_ERR_COUNT] = {"connect", "timeout", "closed",
							      "invalid_response"};
	return names[why];
}

size_t upstream_idle_count(const struct upstream_pools *p)
{
	return p->total_idle;
}
