// One message with descriptors attached (SCM_RIGHTS), both ways: the
// control protocol's responses carry a socket's descriptor, a listener's
// AcceptRecords carry the accepted connection's. Shared by the daemon and
// the client library, so the control-message layout is written once.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace weft::control {

// Sends `len` bytes as one message with `fd` attached (none when fd < 0).
// `flags` go to sendmsg (MSG_DONTWAIT, MSG_NOSIGNAL, ...); retried on
// EINTR. Returns what sendmsg returns; errors: its errno. The descriptor
// stays open here: the receiver gets a duplicate.
ssize_t send_with_fd(int sock, const void* data, std::size_t len, int fd, int flags);

// The most descriptors taken from one message; the kernel does not install
// any beyond what the control buffer holds.
inline constexpr std::size_t kMaxPassedFds = 4;

// Receives one message of at most `len` bytes into `data`, retried on
// EINTR. The first descriptor attached goes to *fd_out (-1 when none);
// every other one, and the first when fd_out is null, is closed: a peer
// cannot make the receiver hold descriptors it did not ask for.
// *msg_flags (when not null) receives msghdr.msg_flags (MSG_TRUNC, ...).
// Returns what recvmsg returns; errors: its errno.
ssize_t recv_with_fd(int sock, void* data, std::size_t len, int flags, int* fd_out, int* msg_flags = nullptr);

}  // namespace weft::control
