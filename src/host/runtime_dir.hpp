// The daemon's runtime directory, opened so that no other local user can
// redirect it.
//
// The daemon runs as root for other users, and its control socket is the
// one door into the host: whoever can rename, replace or plant a symlink
// at any point on the path to it can make root chmod or chown a file of
// their choosing, or serve root's clients themselves. So the path is
// walked one component at a time from "/" with openat(O_PATH|O_NOFOLLOW)
// on the directory already checked, and every directory on it must be
// owned by root or the daemon's user and not writable by group or others
// (sticky directories such as /tmp excepted: there only an entry's owner
// may rename or delete it). A symlink on the path is followed only when
// root or the daemon's user owns it, and its target is walked the same
// way. The host's own directory is created inside and fixed through its
// descriptor (fchmod, fchown), never by a path.
//
// The same rules as OpenSSH's StrictModes and systemd's chase(): what
// another user can write, another user controls.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace weft {

// A directory descriptor that closes itself.
class DirFd {
 public:
  DirFd() = default;
  explicit DirFd(int fd) : fd_(fd) {}
  DirFd(DirFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirFd& operator=(DirFd&& o) noexcept;
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  ~DirFd();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// Opens `path` (absolute) after checking every component as above, and
// creates its last component (mode 0755) when it is missing and
// `create_last`. `self` is the uid trusted besides root (the daemon's
// effective uid).
// Errors (std::runtime_error, one line naming the component, its owner
// and its mode): a relative path, a component missing, not a directory,
// owned by another user, writable by group or others without the sticky
// bit, or a symlink owned by another user; more than 40 symlinks.
DirFd open_trusted_dir(const std::string& path, uid_t self, bool create_last);

// Creates (or reuses) the directory `name` inside `parent` for one host:
// mode 0700, or with `group` 02750 and that group (the set-group-id bit
// makes the socket made inside it the group's). An existing entry is
// reused only when it is a directory owned by `self`; its mode and group
// are then set through its descriptor.
// Errors (std::runtime_error, one line): the entry is a symlink or not a
// directory, is owned by another user, or mkdir/fchmod/fchown fail.
DirFd make_host_dir(const DirFd& parent, const std::string& parent_path, const std::string& name, uid_t self,
                    std::optional<gid_t> group);

}  // namespace weft
