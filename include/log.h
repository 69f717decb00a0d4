/*
 * log.h - the error log: a small, printf-checked vocabulary shared by every module.
 *
 * Lines look like "2026-11-22T18:50:15.123Z [warn] upstream 127.0.0.1:9001: connect: Connection
 * refused". The destination is stderr until log_open() names a file; log_reopen() (SIGUSR1)
 * reopens it for logrotate. Safe to call from any thread: each line is one write(2).
 */
#ifndef ABGATE_LOG_H
#define ABGATE_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sends the log to PATH ("stderr" or NULL for standard error). Returns 0 or -1 (errno set). */
int log_open(const char *path);
/* Reopens the current file (after a rotation). Returns 0 or -1; the old descriptor stays on error. */
int log_reopen(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)" when errno is set at the call. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at error level and exits with status 2 (runtime failure). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
