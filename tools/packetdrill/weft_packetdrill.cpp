// libweft_packetdrill.so: one weft Stack behind packetdrill's --so_filename
// interface, in virtual time.
//
// packetdrill drives the table from two threads. Its main thread injects
// packets (netdev_send), sniffs what the stack sends (netdev_receive), sleeps
// (usleep) and reads the clock (gettimeofday); its system-call thread makes
// the blocking socket calls. So:
//
// - One mutex around everything. The clock is `now_`, moved only by usleep,
//   gettimeofday (+1 us per call: the tool spins on it), netdev_receive (to
//   the next deadline when nothing is queued) and a blocking call made by
//   the clock's own thread. Moving time steps through every deadline in
//   order: Stack::poll(deadline), then the packets it sent are queued with
//   that deadline as their send time.
// - The clock thread is the tool's main thread: the first to read the clock
//   (the tool does so before anything else), or the one that injects and
//   sniffs packets. The system-call thread also sleeps and reads the clock:
//   for a line like `+.1...0.2 connect(...)` it waits the .1 s itself
//   (packetdrill's wait_for_event() runs on that thread while the main
//   thread waits for it to start the call), so its usleep moves time too,
//   but it never becomes the clock thread: its blocking call then waits for
//   the packets the script injects instead of running the clock through
//   every retransmission.
// - Every change to the stack bumps `gen_` and wakes `cv_`. A blocked call
//   waits on `cv_` and retries its operation after each change. Before the
//   clock moves on, the mover lets every blocked call retry once at the
//   current instant (settle_waiters): a call that completes does so at the
//   right virtual time, and what it sends is sniffed with the right time.
// - File descriptors are the lowest free numbers from 3, as POSIX has them.
//
// Flags: see flags.hpp. The adapter itself (adapter.hpp) is split by
// concern: clock.cpp, socket_calls.cpp, epoll.cpp; this file holds the
// trampolines the tool calls and packetdrill_interface_init.
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "adapter.hpp"
#include "packetdrill_interface.h"

namespace weft::pd {
namespace {

// ------------------------------------------------------------ trampolines

Adapter* A(void* u) { return static_cast<Adapter*>(u); }

template <class T>
T ret(T r) {
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

int unsupported() {
  errno = ENOSYS;
  return -1;
}

void pd_free(void* u) { delete A(u); }
int pd_socket(void* u, int d, int t, int p) { return ret(A(u)->socket(d, t, p)); }
int pd_bind(void* u, int fd, const sockaddr* a, socklen_t l) { return ret(A(u)->bind(fd, a, l)); }
int pd_listen(void* u, int fd, int b) { return ret(A(u)->listen(fd, b)); }
int pd_accept(void* u, int fd, sockaddr* a, socklen_t* l) { return ret(A(u)->accept(fd, a, l)); }
int pd_connect(void* u, int fd, const sockaddr* a, socklen_t l) { return ret(A(u)->connect(fd, a, l)); }
ssize_t pd_read(void* u, int fd, void* b, size_t n) { return ret(A(u)->recv(fd, b, n, 0)); }
ssize_t pd_readv(void* u, int fd, const iovec* v, int n) { return ret(A(u)->recv_iov(fd, v, n, 0)); }
ssize_t pd_recv(void* u, int fd, void* b, size_t n, int fl) { return ret(A(u)->recv(fd, b, n, fl)); }
ssize_t pd_recvfrom(void* u, int fd, void* b, size_t n, int fl, sockaddr*, socklen_t* al) {
  const ssize_t r = ret(A(u)->recv(fd, b, n, fl));
  if (r >= 0 && al) *al = 0;  // TCP reports no source address (as Linux)
  return r;
}
ssize_t pd_recvmsg(void* u, int fd, msghdr* m, int fl) {
  if (!m) return ret<ssize_t>(-EFAULT);
  const ssize_t r = ret(A(u)->recv_iov(fd, m->msg_iov, static_cast<int>(m->msg_iovlen), fl));
  if (r >= 0) {
    m->msg_namelen = 0;
    m->msg_flags = 0;
    std::size_t used = 0;
    if (const auto inq = A(u)->inq_hint(fd)) {
      // TCP_INQ: a TCP_CM_INQ control message with the bytes left
      // (tcp_recvmsg's put_cmsg); MSG_CTRUNC when it does not fit.
      if (m->msg_control && m->msg_controllen >= CMSG_SPACE(sizeof(int))) {
        auto* c = static_cast<cmsghdr*>(m->msg_control);
        c->cmsg_len = CMSG_LEN(sizeof(int));
        c->cmsg_level = SOL_TCP;
        c->cmsg_type = TCP_CM_INQ;
        std::memcpy(CMSG_DATA(c), &*inq, sizeof(int));
        used = CMSG_SPACE(sizeof(int));
      } else {
        m->msg_flags |= MSG_CTRUNC;
      }
    }
    m->msg_controllen = used;
  }
  return r;
}
ssize_t pd_write(void* u, int fd, const void* b, size_t n) { return ret(A(u)->send(fd, b, n, 0)); }
ssize_t pd_writev(void* u, int fd, const iovec* v, int n) { return ret(A(u)->send_iov(fd, v, n, 0)); }
ssize_t pd_send(void* u, int fd, const void* b, size_t n, int fl) { return ret(A(u)->send(fd, b, n, fl)); }
ssize_t pd_sendto(void* u, int fd, const void* b, size_t n, int fl, const sockaddr*, socklen_t) {
  // A connected TCP socket ignores the address, as Linux does.
  return ret(A(u)->send(fd, b, n, fl));
}
ssize_t pd_sendmsg(void* u, int fd, const msghdr* m, int fl) {
  if (!m) return ret<ssize_t>(-EFAULT);
  return ret(A(u)->send_iov(fd, m->msg_iov, static_cast<int>(m->msg_iovlen), fl));
}
int pd_fcntl(void* u, int fd, int cmd, ...) {
  int arg = 0;
  if (cmd == F_SETFL || cmd == F_SETFD) {
    va_list ap;
    va_start(ap, cmd);
    arg = va_arg(ap, int);
    va_end(ap);
  }
  return ret(A(u)->fcntl(fd, cmd, arg));
}
int pd_ioctl(void* u, int fd, unsigned long request, ...) {
  // Every request answered here takes a pointer (packetdrill's three-
  // argument form); the two-argument form passes none, and none is read
  // for a request that is refused first.
  void* arg = nullptr;
  if (request == FIONBIO || request == SIOCINQ || request == SIOCOUTQ || request == SIOCOUTQNSD) {
    va_list ap;
    va_start(ap, request);
    arg = va_arg(ap, void*);
    va_end(ap);
  }
  return ret(A(u)->ioctl(fd, request, arg));
}
int pd_close(void* u, int fd) { return ret(A(u)->close(fd)); }
int pd_shutdown(void* u, int fd, int how) { return ret(A(u)->shutdown(fd, how)); }
int pd_getsockopt(void* u, int fd, int lv, int nm, void* v, socklen_t* l) {
  return ret(A(u)->getsockopt(fd, lv, nm, v, l));
}
int pd_setsockopt(void* u, int fd, int lv, int nm, const void* v, socklen_t l) {
  return ret(A(u)->setsockopt(fd, lv, nm, v, l));
}
int pd_poll(void* u, pollfd* f, nfds_t n, int t) { return ret(A(u)->poll(f, n, t)); }
int pd_netdev_send(void* u, const void* b, size_t n) { return ret(A(u)->netdev_send(b, n)); }
int pd_netdev_receive(void* u, void* b, size_t* n, long long* t) { return ret(A(u)->netdev_receive(b, n, t)); }
int pd_usleep(void* u, useconds_t us) { return ret(A(u)->usleep(us)); }
int pd_gettimeofday(void* u, timeval* tv, struct timezone* tz) {
  if (tz) *tz = {};
  return ret(A(u)->gettimeofday(tv));
}
int pd_epoll_create(void* u, int size) { return ret(A(u)->epoll_create(size)); }
int pd_epoll_ctl(void* u, int epfd, int op, int fd, epoll_event* ev) { return ret(A(u)->epoll_ctl(epfd, op, fd, ev)); }
int pd_epoll_wait(void* u, int epfd, epoll_event* ev, int max, int t) {
  return ret(A(u)->epoll_wait(epfd, ev, max, t));
}
int pd_pipe(void*, int*) { return unsupported(); }
int pd_splice(void*, int, loff_t*, int, loff_t*, size_t, unsigned int) { return unsupported(); }

}  // namespace
}  // namespace weft::pd

extern "C" WEFT_PD_EXPORT void packetdrill_interface_init(const char* flags, struct packetdrill_interface* ifc) {
  using namespace weft::pd;
  std::string error;
  const auto f = parse_flags(flags, error);
  if (!f) {
    // The tool gives this function no way to fail; it would die on the
    // first call anyway, so say why and stop as packetdrill's die() does.
    std::fprintf(stderr, "weft_packetdrill: bad flags: %s\n", error.c_str());
    std::exit(EXIT_FAILURE);
  }
  *ifc = packetdrill_interface{};
  ifc->userdata = new Adapter(*f);
  ifc->free = pd_free;
  ifc->socket = pd_socket;
  ifc->bind = pd_bind;
  ifc->listen = pd_listen;
  ifc->accept = pd_accept;
  ifc->connect = pd_connect;
  ifc->read = pd_read;
  ifc->readv = pd_readv;
  ifc->recv = pd_recv;
  ifc->recvfrom = pd_recvfrom;
  ifc->recvmsg = pd_recvmsg;
  ifc->write = pd_write;
  ifc->writev = pd_writev;
  ifc->send = pd_send;
  ifc->sendto = pd_sendto;
  ifc->sendmsg = pd_sendmsg;
  ifc->fcntl = pd_fcntl;
  ifc->ioctl = pd_ioctl;
  ifc->close = pd_close;
  ifc->shutdown = pd_shutdown;
  ifc->getsockopt = pd_getsockopt;
  ifc->setsockopt = pd_setsockopt;
  ifc->poll = pd_poll;
  ifc->netdev_send = pd_netdev_send;
  ifc->netdev_receive = pd_netdev_receive;
  ifc->usleep = pd_usleep;
  ifc->gettimeofday = pd_gettimeofday;
  ifc->epoll_create = pd_epoll_create;
  ifc->epoll_ctl = pd_epoll_ctl;
  ifc->epoll_wait = pd_epoll_wait;
  ifc->pipe = pd_pipe;
  ifc->splice = pd_splice;
}
