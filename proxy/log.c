/*
 * log.c - the error log (see include/log.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_fd = 2;
static _Atomic enum log_level log_level = LOG_INFO;
static char *log_path; /* NULL for stderr */
static pthread_mutex_t log_path_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

static int open_path(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int log_open(const char *path)
{
	int fd = 2;
	char *copy = NULL;

	if (path != NULL && strcmp(path, "stderr") != 0) {
		if ((fd = open_path(path)) < 0)
			return -1;
		if ((copy = strdup(path)) == NULL) {
			close(fd);
			return -1;
		}
	}
	pthread_mutex_lock(&log_path_lock);
	int old = atomic_exchange(&log_fd, fd);
	free(log_path);
	log_path = copy;
	pthread_mutex_unlock(&log_path_lock);
	if (old != 2)
		close(old);
	return 0;
}

int log_reopen(void)
{
	int rc = 0;

	pthread_mutex_lock(&log_path_lock);
	if (log_path != NULL) {
		int fd = open_path(log_path);
		if (fd < 0) {
			rc = -1;
		} else {
			int old = atomic_exchange(&log_fd, fd);
			if (old != 2)
				close(old);
		}
	}
	pthread_mutex_unlock(&log_path_lock);
	return rc;
}

__attribute__((format(printf, 3, 0))) static void vlog(enum log_level level, int err, const char *fmt,
						   va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] ", (long)tv.tv_usec / 1000,
			      level_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m > 0)
		n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
	if (err != 0 && n < sizeof(line) - 1)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(log_fd, line, n);
	(void)w;
}

#define LOG_FN(fn, level, use_errno)                                                               \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		int err = use_errno ? errno : 0;                                                   \
		va_list ap;                                                                        \
		if ((level) > log_level)                                                           \
			return;                                                                    \
		va_start(ap, fmt);                                                                 \
		vlog(level, err, fmt, ap);                                                         \
		va_end(ap);                                                                        \
	}

LOG_FN(log_error, LOG_ERROR, 0)
LOG_FN(log_warn, LOG_WARN, 1)
LOG_FN(log_warnx, LOG_WARN, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_debug, LOG_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(2);
}
