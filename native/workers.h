// N-API entry points of the binding (the only file besides addon.cc that includes napi.h).
#ifndef XTT_NATIVE_WORKERS_H
#define XTT_NATIVE_WORKERS_H

#include <napi.h>

namespace xtt {

Napi::Value LoadModule(const Napi::CallbackInfo &info);
Napi::Value UnloadModule(const Napi::CallbackInfo &info);

}  // namespace xtt

#endif
