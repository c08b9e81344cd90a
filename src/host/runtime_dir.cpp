#include "host/runtime_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace weft {

DirFd& DirFd::operator=(DirFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

DirFd::~DirFd() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

std::deque<std::string> split(const std::string& p) {
  std::deque<std::string> out;
  std::size_t i = 0;
  while (i < p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& c : parts) s += "/" + c;
  return s.empty() ? "/" : s;
}

std::string who(uid_t uid) { return uid == 0 ? "root" : fmt::format("uid {}", uid); }

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw std::runtime_error(fmt::format("runtime directory {}: {}", path, why));
}

// Trusted owners: root and the daemon's own user. A directory they own is
// safe when nobody else may add, rename or remove its entries: no group or
// other write bit, or the sticky bit (then only an entry's owner may).
void check_dir(const std::string& path, const std::string& at, const struct stat& st, uid_t self) {
  if (st.st_uid != 0 && st.st_uid != self)
    refuse(path, fmt::format("{} is owned by {} (mode {:04o}); it must be owned by root or {}", at, who(st.st_uid),
                             st.st_mode & 07777, who(self)));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    refuse(path, fmt::format("{} (owned by {}) is mode {:04o}: writable by {} without the sticky bit", at,
                             who(st.st_uid), st.st_mode & 07777, (st.st_mode & S_IWOTH) ? "others" : "its group"));
}

}  // namespace

DirFd open_trusted_dir(const std::string& path, uid_t self, bool create_last) {
  if (path.empty() || path[0] != '/') refuse(path, "must be an absolute path");
  // `stack` holds the descriptors of the directories walked so far (for
  // ".."), `names` their names (for messages).
  std::vector<DirFd> stack;
  std::vector<std::string> names;
  stack.emplace_back(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (stack.back().get() < 0) refuse(path, fmt::format("open /: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(stack.back().get(), &st) != 0) refuse(path, fmt::format("stat /: {}", std::strerror(errno)));
  check_dir(path, "/", st, self);

  std::deque<std::string> todo = split(path);
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (stack.size() > 1) {
        stack.pop_back();
        names.pop_back();
      }
      continue;
    }
    names.push_back(c);
    const std::string at = join(names);
    int fd = ::openat(stack.back().get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && todo.empty() && create_last) {
      // Created by us, then checked like any other: a rival mkdir between
      // the two is caught by the owner check.
      if (::mkdirat(stack.back().get(), c.c_str(), 0755) != 0 && errno != EEXIST)
        refuse(path, fmt::format("create {}: {}", at, std::strerror(errno)));
      fd = ::openat(stack.back().get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) refuse(path, fmt::format("{}: {}", at, std::strerror(errno)));
    DirFd held(fd);
    if (::fstat(fd, &st) != 0) refuse(path, fmt::format("stat {}: {}", at, std::strerror(errno)));
    if (S_ISLNK(st.st_mode)) {
      // Whoever owns a symlink decides where it points.
      if (st.st_uid != 0 && st.st_uid != self)
        refuse(path, fmt::format("{} is a symlink owned by {}; it must be owned by root or {}", at, who(st.st_uid),
                                 who(self)));
      if (++links > 40) refuse(path, "too many levels of symbolic links");
      char target[4096];
      ssize_t n = ::readlinkat(fd, "", target, sizeof target - 1);
      if (n < 0) refuse(path, fmt::format("readlink {}: {}", at, std::strerror(errno)));
      target[n] = '\0';
      names.pop_back();
      std::deque<std::string> more = split(target);
      for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_front(*it);
      if (target[0] == '/') {
        stack.resize(1);
        names.clear();
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode)) refuse(path, fmt::format("{} is not a directory", at));
    check_dir(path, at, st, self);
    stack.push_back(std::move(held));
  }
  return std::move(stack.back());
}

DirFd make_host_dir(const DirFd& parent, const std::string& parent_path, const std::string& name, uid_t self,
                    std::optional<gid_t> group) {
  const std::string at = parent_path + "/" + name;
  auto fail = [&](const std::string& why) -> void {
    throw std::runtime_error(fmt::format("host directory {}: {}", at, why));
  };
  if (::mkdirat(parent.get(), name.c_str(), 0700) != 0 && errno != EEXIST)
    fail(fmt::format("create: {}", std::strerror(errno)));
  int fd = ::openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {  // O_DIRECTORY|O_NOFOLLOW gives ENOTDIR for a symlink
      struct stat ls {};
      if (::fstatat(parent.get(), name.c_str(), &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode))
        fail("is a symlink");
      fail("is not a directory");
    }
    fail(std::strerror(errno));
  }
  DirFd d(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(fmt::format("stat: {}", std::strerror(errno)));
  if (st.st_uid != self)
    fail(fmt::format("is owned by {} (mode {:04o}), not by this daemon's {}", who(st.st_uid), st.st_mode & 07777,
                     who(self)));
  // Through the descriptor: the object checked is the object changed.
  if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0)
    fail(fmt::format("give it group {}: {}", *group, std::strerror(errno)));
  if (::fchmod(fd, group ? 02750 : 0700) != 0) fail(fmt::format("set its mode: {}", std::strerror(errno)));
  return d;
}

}  // namespace weft
