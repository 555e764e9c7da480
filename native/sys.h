// Plain C++ (no napi.h): the system calls of the binding.
// Every function returns true on success, or false with `err` filled in.
#ifndef XTT_NATIVE_SYS_H
#define XTT_NATIVE_SYS_H

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
// instead of waiting while the module is in use).
bool unload_module(const std::string &name, SysError &err);

}  // namespace xtt

#endif
