// The adapter's epoll(7): instances, interest lists, edge-triggered and
// one-shot reports over the same readiness as poll.
#include <cerrno>
#include <chrono>

#include "adapter.hpp"

namespace weft::pd {

// ------------------------------------------------------------------ epoll
// epoll(7) over the same readiness as poll: level-triggered by default;
// EPOLLET reports an event once per edge (see Interest); EPOLLONESHOT
// disables the descriptor after one report until EPOLL_CTL_MOD. Nested
// epoll descriptors are not offered (EINVAL).

int Adapter::epoll_create(int size) {
  Lock lk(mu_);
  if (size <= 0) return -EINVAL;  // epoll_create(2)
  Fd f;
  f.kind = Fd::Kind::epoll;
  const int n = add_fd(f);
  epolls_[fds_[n].serial];
  return n;
}

void Adapter::track_edges() {
  for (auto& [serial, ep] : epolls_) {
    for (auto& [fd, in] : ep.interest) {
      const Fd* f = find(fd);
      if (!f || !(in.events & EPOLLET)) continue;
      const std::uint32_t cur = static_cast<std::uint16_t>(revents(f->id));
      const std::size_t inq = tcp().readable(f->id);
      std::uint32_t fresh = cur & ~in.seen;
      if (inq > in.seen_inq) fresh |= cur & EPOLLIN;
      in.pending |= fresh;
      in.seen = cur;
      in.seen_inq = inq;
    }
  }
}

int Adapter::epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  Lock lk(mu_);
  Fd* e = find_any(epfd);
  Fd* t = find_any(fd);
  if (!e || !t) return -EBADF;
  if (e->kind != Fd::Kind::epoll || epfd == fd || t->kind != Fd::Kind::socket) return -EINVAL;
  if (op != EPOLL_CTL_DEL && !ev) return -EFAULT;
  auto& set = epolls_[e->serial].interest;
  const auto it = set.find(fd);
  switch (op) {
    case EPOLL_CTL_ADD:
      if (it != set.end()) return -EEXIST;
      set[fd] = Interest{ev->events, ev->data};
      break;
    case EPOLL_CTL_MOD:
      if (it == set.end()) return -ENOENT;
      // Linux re-polls the descriptor on MOD: what is ready now is an edge.
      it->second = Interest{ev->events, ev->data};
      break;
    case EPOLL_CTL_DEL:
      if (it == set.end()) return -ENOENT;
      set.erase(it);
      return 0;
    default:
      return -EINVAL;
  }
  track_edges();
  return 0;
}

int Adapter::collect(Epoll& ep, epoll_event* out, int max) {
  int n = 0;
  for (auto& [fd, in] : ep.interest) {
    if (n == max) break;
    const Fd* f = find(fd);
    if (!f || in.disabled) continue;
    // EPOLLERR and EPOLLHUP are reported whether asked for or not (epoll_ctl(2)).
    std::uint32_t m = static_cast<std::uint16_t>(revents(f->id)) & (in.events | EPOLLERR | EPOLLHUP);
    if (in.events & EPOLLET) {
      m &= in.pending;
      in.pending &= ~m;
    }
    if (!m) continue;
    if (in.events & EPOLLONESHOT) in.disabled = true;
    out[n].events = m;
    out[n].data = in.data;
    ++n;
  }
  return n;
}

int Adapter::epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms) {
  Lock lk(mu_);
  const Fd* e = find_any(epfd);
  if (!e) return -EBADF;
  if (e->kind != Fd::Kind::epoll || maxevents <= 0) return -EINVAL;
  if (!events) return -EFAULT;
  const std::uint64_t serial = e->serial;
  const std::optional<Instant> deadline =
      timeout_ms > 0 ? std::optional<Instant>(now_ + std::chrono::milliseconds{timeout_ms}) : std::nullopt;
  auto attempt = [&]() -> std::optional<int> {
    const auto it = epolls_.find(serial);
    if (it == epolls_.end()) return -EBADF;  // closed while we waited
    const int n = collect(it->second, events, maxevents);
    if (n > 0 || timeout_ms == 0 || (deadline && now_ >= *deadline)) return n;
    return std::nullopt;
  };
  return block<int>(lk, deadline, 0, attempt);
}

}  // namespace weft::pd
