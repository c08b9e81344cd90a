#include "control/fdpass.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weft::control {

ssize_t send_with_fd(int sock, const void* data, std::size_t len, int fd, int flags) {
  iovec iov{const_cast<void*>(data), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  }
  ssize_t n;
  do n = ::sendmsg(sock, &mh, flags);
  while (n < 0 && errno == EINTR);
  return n;
}

ssize_t recv_with_fd(int sock, void* data, std::size_t len, int flags, int* fd_out, int* msg_flags) {
  iovec iov{data, len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof ctl;
  ssize_t n;
  do n = ::recvmsg(sock, &mh, flags);
  while (n < 0 && errno == EINTR);
  if (fd_out) *fd_out = -1;
  if (msg_flags) *msg_flags = n < 0 ? 0 : mh.msg_flags;
  if (n < 0) return n;
  const int saved = errno;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t j = 0; j < k; ++j) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof fd);
      if (fd_out && *fd_out < 0) {
        *fd_out = fd;
      } else {
        ::close(fd);
      }
    }
  }
  errno = saved;
  return n;
}

}  // namespace weft::control
