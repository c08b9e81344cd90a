/* libweft-client: Berkeley sockets over a weft host daemon.
 *
 * Each function mirrors its POSIX namesake: same arguments, -1 and errno on
 * failure with the errno values POSIX gives (EACCES, EADDRINUSE,
 * ECONNREFUSED, ETIMEDOUT, ECONNRESET, EAGAIN, EINPROGRESS, ...). Only
 * AF_INET is supported (EAFNOSUPPORT otherwise); SOCK_STREAM is TCP,
 * SOCK_DGRAM UDP, and SOCK_DGRAM with IPPROTO_ICMP an ICMP echo ("ping")
 * socket as on Linux.
 *
 * The descriptors returned by weft_socket/weft_accept are real descriptors
 * of this process: poll/epoll/select them, make them non-blocking with
 * fcntl(O_NONBLOCK) or SOCK_NONBLOCK, set SO_RCVTIMEO/SO_SNDTIMEO. Use the
 * weft_ calls for everything else (read/write work for TCP data, but end of
 * stream after a reset only shows as ECONNRESET through weft_recv, and
 * SO_ERROR only through weft_getsockopt). Never close() one directly: use
 * weft_close, or the host daemon keeps the connection until the process
 * exits. No call raises SIGPIPE (EPIPE instead).
 *
 * The host is WEFT_HOST (a name, or a path to its control socket; default
 * "default"), or what weft_set_host chose before the first socket. If the
 * daemon cannot be reached calls fail with ENETDOWN; if it speaks another
 * protocol version, with EPROTONOSUPPORT; if the process serving the
 * control socket runs as a uid other than root or the caller's own
 * (SO_PEERCRED), with EACCES: it is not trusted with the program's data.
 * weft_last_detail() then has a one-line explanation. Thread-safe. See
 * docs/client-design.md.
 */
#ifndef WEFT_CLIENT_H
#define WEFT_CLIENT_H

#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weft's own TCP-level option (IPPROTO_TCP): an int, nonzero to request ECN
 * (RFC 3168) when this socket connects; set before weft_connect (EISCONN
 * after). Without it the host's --ecn decides. A peer's request is always
 * accepted. Chosen outside the range of Linux's TCP options. */
#define WEFT_TCP_ECN 0x5745

int weft_socket(int domain, int type, int protocol);
int weft_bind(int fd, const struct sockaddr *addr, socklen_t len);
int weft_listen(int fd, int backlog);
int weft_accept(int fd, struct sockaddr *addr, socklen_t *len);
int weft_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t weft_send(int fd, const void *buf, size_t len, int flags);
ssize_t weft_recv(int fd, void *buf, size_t len, int flags);
ssize_t weft_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen);
ssize_t weft_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);
int weft_shutdown(int fd, int how);
int weft_close(int fd);
int weft_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int weft_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
int weft_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int weft_getsockopt(int fd, int level, int name, void *val, socklen_t *len);

/* Chooses the host (name or control socket path) for sockets opened from
 * now on; 0, or -1 with EBUSY once connected to a host. */
int weft_set_host(const char *name_or_path);
/* A one-line explanation of the last ENETDOWN/EPROTONOSUPPORT from the
 * daemon connection in this thread ("" if none). */
const char *weft_last_detail(void);
/* The TTL of the last echo reply received on an ICMP socket, or -1. */
int weft_last_ttl(int fd);

#ifdef __cplusplus
}
#endif

#endif
