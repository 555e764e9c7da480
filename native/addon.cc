// xttraffic N-API addon: registers the exports only (see workers.cc, sys.cc).
#include <napi.h>

#include <linux/netfilter/xt_traffic.h>

#include "workers.h"

#define XTT_BINDING_ABI 2

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abi", Napi::Number::New(env, XTT_BINDING_ABI));
  // The uapi header's constants, so the TypeScript side can check its copies against them.
  Napi::Object c = Napi::Object::New(env);
  c.Set("NAME_LEN", Napi::Number::New(env, XT_TRAFFIC_NAME_LEN));
  c.Set("HASHSIZE_MAX", Napi::Number::New(env, XT_TRAFFIC_HASHSIZE_MAX));
  c.Set("SUFFIX_IPCONN", Napi::String::New(env, XT_TRAFFIC_SUFFIX_IPCONN));
  c.Set("SUFFIX_PORTCONN", Napi::String::New(env, XT_TRAFFIC_SUFFIX_PORTCONN));
  c.Set("SUFFIX_INFO", Napi::String::New(env, XT_TRAFFIC_SUFFIX_INFO));
  c.Set("PROC_DIR", Napi::String::New(env, XT_TRAFFIC_PROC_DIR));
  c.Set("TRAFFIC", Napi::Number::New(env, XT_TRAFFIC_TRAFFIC));
  c.Set("PORTCONN", Napi::Number::New(env, XT_TRAFFIC_PORTCONN));
  c.Set("IPCONN", Napi::Number::New(env, XT_TRAFFIC_IPCONN));
  c.Set("CLEARONREAD", Napi::Number::New(env, XT_TRAFFIC_CLEARONREAD));
  c.Set("NOINTERNAL", Napi::Number::New(env, XT_TRAFFIC_NOINTERNAL));
  c.Set("ONLYINTERNAL", Napi::Number::New(env, XT_TRAFFIC_ONLYINTERNAL));
  exports.Set("constants", c);
  exports.Set("loadModule", Napi::Function::New(env, xtt::LoadModule, "loadModule"));
  exports.Set("unloadModule", Napi::Function::New(env, xtt::UnloadModule, "unloadModule"));
  return exports;
}

NODE_API_MODULE(xttraffic, Init)
