/*
 * net.h - socket helpers: listening sockets, non-blocking connects, address formatting.
 */
#ifndef ABGATE_NET_H
#define ABGATE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Opens a non-blocking, close-on-exec listening TCP socket on sa (SO_REUSEADDR, and
 * SO_REUSEPORT when reuseport is set). Returns the descriptor or -1 (errno set). */
int net_listen(const struct sockaddr *sa, socklen_t salen, bool reuseport, int backlog);

/* Starts a non-blocking connect to sa (TCP_NODELAY set). Returns the descriptor and sets
 * *in_progress when the connection is not yet established; -1 on immediate failure (errno). */
int net_connect(const struct sockaddr *sa, socklen_t salen, bool *in_progress);

/* Pending error of a socket (SO_ERROR): 0 when connected. */
int net_socket_error(int fd);

/* Formats the address (without port) into dst: "127.0.0.1", "::1". Returns the length. */
size_t net_addr_str(const struct sockaddr *sa, char *dst, size_t cap);

/* Parses "host:port", "[v6]:port" or ":port"/"port" (127.0.0.1) numerically into ss; returns 0
 * or -1. For tests and command-line options; configuration addresses go through conf. */
int net_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Lingering close, for a connection closed after an answer while its peer may still be sending
 * (a body not read, a request refused before it was read): the write side is shut, and the
 * peer's bytes are read and dropped for at most NET_LINGER_MS and NET_LINGER_BYTES, or until
 * it closes. Closing at once would reset the connection, and a reset makes the peer's stack
 * throw away the answer it has not read yet. The admin listener and the data path both use it.
 */
#define NET_LINGER_MS 5000
#define NET_LINGER_BYTES (64u << 20)

/* Reads and drops what fd holds, taking the bytes from *budget. Returns true to go on waiting
 * (the socket is empty for now), false to close now: the peer closed, an error, or the budget
 * is spent. */
bool net_linger_read(int fd, size_t *budget);

#endif
