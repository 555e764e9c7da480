// N-API glue: argument checking, AsyncWorkers returning Promises, and system errors turned
// into JS Errors with `code`, `errno`, `syscall` and `path` (the shape of Node's fs errors,
// errno negative as in Node). The work itself is in sys.cc.
#include "workers.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "sys.h"

namespace xtt {

namespace {

Napi::Error MakeSysError(Napi::Env env, const SysError &e) {
  // Node's wording: "ENOENT: no such file or directory, open '/x'".
  std::string text = std::strerror(e.err);
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z' && (text.size() < 2 || text[1] < 'A' || text[1] > 'Z'))
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  std::string msg = std::string(errno_name(e.err)) + ": " + text + ", " + e.syscall;
  if (!e.path.empty()) msg += " '" + e.path + "'";
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, errno_name(e.err)));
  err.Set("errno", Napi::Number::New(env, -e.err));
  err.Set("syscall", Napi::String::New(env, e.syscall));
  if (!e.path.empty()) err.Set("path", Napi::String::New(env, e.path));
  return err;
}

// A worker that settles a Promise: Run() does the blocking part off the event loop and fills
// `err_` on failure; Result() builds the value on the JS thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual bool Run(SysError &err) = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  void Execute() override { failed_ = !Run(err_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(MakeSysError(env, err_).Value());
      return;
    }
    deferred_.Resolve(Result(env));
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  SysError err_;
  bool failed_ = false;
};

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, std::string params, int flags)
      : PromiseWorker(env), path_(std::move(path)), params_(std::move(params)), flags_(flags) {}

 protected:
  bool Run(SysError &err) override { return load_module(path_, params_, flags_, err); }

 private:
  std::string path_, params_;
  int flags_;
};

class UnloadWorker : public PromiseWorker {
 public:
  UnloadWorker(Napi::Env env, std::string name) : PromiseWorker(env), name_(std::move(name)) {}

 protected:
  bool Run(SysError &err) override { return unload_module(name_, err); }

 private:
  std::string name_;
};

std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

}  // namespace

// loadModule(path, params, flags): Promise<void>
Napi::Value LoadModule(const Napi::CallbackInfo &info) {
  std::string path = StringArg(info, 0, "path");
  std::string params = info.Length() > 1 && !info[1].IsUndefined() ? StringArg(info, 1, "params") : "";
  int flags = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
  auto *w = new LoadWorker(info.Env(), std::move(path), std::move(params), flags);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// unloadModule(name): Promise<void>
Napi::Value UnloadModule(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "name");
  auto *w = new UnloadWorker(info.Env(), std::move(name));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace xtt
