// Plain C++ (no napi.h): the system calls and /proc reads of the binding.
// Every function returns true on success, or false with `err` filled in.
#ifndef XTT_NATIVE_SYS_H
#define XTT_NATIVE_SYS_H

#include <cstddef>
#include <cstdlib>
#include <string>

namespace xtt {

struct SysError {
  int err = 0;            // errno (positive)
  std::string syscall;    // "open", "read", "finit_module", "delete_module"
  std::string path;       // file or module name, if any
};

// errno name, e.g. "EPERM"; "E<number>" for unknown values.
const char *errno_name(int err);

// Loads the module file at `path` with `params` ("key=value key2=value2") through
// finit_module(2). `flags`: MODULE_INIT_* (0 normally).
bool load_module(const std::string &path, const std::string &params, int flags, SysError &err);

// Unloads module `name` through delete_module(2) with O_NONBLOCK (fails with EWOULDBLOCK
// instead of waiting while the module is in use) plus `extra_flags` (e.g. O_TRUNC to force).
bool unload_module(const std::string &name, int extra_flags, SysError &err);

// A malloc'd byte buffer grown with realloc (which moves large blocks by remapping pages
// rather than copying them). release() hands the memory over; free() it.
class Bytes {
 public:
  Bytes() = default;
  ~Bytes() { std::free(p_); }
  Bytes(const Bytes &) = delete;
  Bytes &operator=(const Bytes &) = delete;
  char *data() const { return p_; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  bool reserve(size_t cap);
  void set_size(size_t n) { size_ = n; }
  char *release() {
    char *p = p_;
    p_ = nullptr;
    size_ = cap_ = 0;
    return p;
  }

 private:
  char *p_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

// Reads the whole file at `path` in one open: O_RDONLY, or O_RDWR when `rdwr` (for
// /proc/net/xt_traffic files: read and clear atomically). A regular file is read into a buffer
// of its size; a /proc file (size 0) into one that doubles as it fills, so a large table costs
// O(size) and few read(2) calls. `max_bytes` caps the size (0 = no cap; exceeding it fails
// with EFBIG).
bool read_file(const std::string &path, bool rdwr, size_t max_bytes, Bytes &out, SysError &err);

}  // namespace xtt

#endif
