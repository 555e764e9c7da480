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

bool unload_module(const std::string &name, int extra_flags, SysError &err) {
  if (::syscall(SYS_delete_module, name.c_str(), O_NONBLOCK | extra_flags) != 0) {
    set_err(err, errno, "delete_module", name);
    return false;
  }
  return true;
}

bool Bytes::reserve(size_t cap) {
  if (cap <= cap_) return true;
  char *p = static_cast<char *>(std::realloc(p_, cap));
  if (p == nullptr) return false;
  p_ = p;
  cap_ = cap;
  return true;
}

bool read_file(const std::string &path, bool rdwr, size_t max_bytes, Bytes &out, SysError &err) {
  int fd_raw;
  do {
    fd_raw = ::open(path.c_str(), (rdwr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  } while (fd_raw < 0 && errno == EINTR);
  Fd fd(fd_raw);
  if (fd.get() < 0) {
    set_err(err, errno, "open", path);
    return false;
  }
  // A regular file: its size plus one byte, so the read that sees EOF needs no growth.
  // /proc files report size 0: start with 64 KiB and double.
  struct stat st;
  size_t cap = 64 * 1024;
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    cap = static_cast<size_t>(st.st_size) + 1;
  if (max_bytes != 0 && cap > max_bytes + 1) cap = max_bytes + 1;
  size_t len = 0;
  for (;;) {
    if (len == out.capacity() || out.capacity() == 0) {
      size_t want = out.capacity() == 0 ? cap : out.capacity() * 2;
      if (max_bytes != 0 && len > max_bytes) {
        set_err(err, EFBIG, "read", path);
        return false;
      }
      if (!out.reserve(want)) {
        set_err(err, ENOMEM, "read", path);
        return false;
      }
    }
    ssize_t n = ::read(fd.get(), out.data() + len, out.capacity() - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      set_err(err, errno, "read", path);
      return false;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  if (max_bytes != 0 && len > max_bytes) {
    set_err(err, EFBIG, "read", path);
    return false;
  }
  out.set_size(len);
  return true;
}

}  // namespace xtt
