// Plain C++ (no napi.h): system calls and /proc reads. See sys.h.
#include "sys.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace xtt {

namespace {

void set_err(SysError &e, int err, const char *syscall, const std::string &path) {
  e.err = err;
  e.syscall = syscall;
  e.path = path;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

const char *errno_name(int err) {
  switch (err) {
#define X(e) \
  case e:    \
    return #e;
    X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) X(ENOEXEC) X(EBADF)
    X(ECHILD) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT) X(EBUSY) X(EEXIST) X(EXDEV)
    X(ENODEV) X(ENOTDIR) X(EISDIR) X(EINVAL) X(ENFILE) X(EMFILE) X(ETXTBSY) X(EFBIG)
    X(ENOSPC) X(ESPIPE) X(EROFS) X(ERANGE) X(ENOSYS) X(ENAMETOOLONG) X(ENOKEY)
    X(EKEYEXPIRED) X(EKEYREVOKED) X(EKEYREJECTED) X(EBADMSG) X(EOVERFLOW) X(ENOTSUP)
    X(ELOOP) X(ETIMEDOUT) X(ENODATA)
#undef X
    default:
      break;
  }
  static thread_local char buf[24];
  std::snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

bool load_module(const std::string &path, const std::string &params, int flags, SysError &err) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    set_err(err, errno, "open", path);
    return false;
  }
  if (::syscall(SYS_finit_module, fd.get(), params.c_str(), flags) != 0) {
    set_err(err, errno, "finit_module", path);
    return false;
  }
  return true;
}

bool unload_module(const std::string &name, SysError &err) {
  if (::syscall(SYS_delete_module, name.c_str(), O_NONBLOCK) != 0) {
    set_err(err, errno, "delete_module", name);
    return false;
  }
  return true;
}

}  // namespace xtt
