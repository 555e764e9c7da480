// N-API glue: argument checking, AsyncWorkers returning Promises, and system errors turned
// into JS Errors with `code`, `errno`, `syscall` and `path` (the shape of Node's fs errors,
// errno negative as in Node). The work itself is in sys.cc and procparse.cc.
#include "workers.h"

#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <utility>

#include "procformat.h"
#include "procparse.h"
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
  UnloadWorker(Napi::Env env, std::string name, bool force)
      : PromiseWorker(env), name_(std::move(name)), force_(force) {}

 protected:
  bool Run(SysError &err) override { return unload_module(name_, force_ ? O_TRUNC : 0, err); }

 private:
  std::string name_;
  bool force_;
};

Napi::Buffer<char> ToBuffer(Napi::Env env, Bytes &data) {
  if (data.size() == 0) return Napi::Buffer<char>::New(env, 0);
  // Hand the bytes over without a copy where external buffers are allowed.
  size_t n = data.size();
  return Napi::Buffer<char>::NewOrCopy(env, data.release(), n, [](Napi::Env, char *p) { std::free(p); });
}

template <typename T>
Napi::TypedArrayOf<T> ToTypedArray(Napi::Env env, const std::vector<T> &v, napi_typedarray_type type) {
  auto arr = Napi::TypedArrayOf<T>::New(env, v.size(), type);
  if (!v.empty()) std::memcpy(arr.Data(), v.data(), v.size() * sizeof(T));
  return arr;
}

Napi::Value ColumnsToJs(Napi::Env env, const Columns &c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", Napi::Number::New(env, static_cast<double>(c.rows)));
  o.Set("countersPerRow", Napi::Number::New(env, c.counters_per_row));
  o.Set("keys", ToTypedArray(env, c.keys, napi_uint32_array));
  o.Set("counters", ToTypedArray(env, c.counters, napi_biguint64_array));
  Napi::Array sums = Napi::Array::New(env, c.counters_per_row);
  for (unsigned i = 0; i < c.counters_per_row; i++) {
    uint64_t words[2] = {static_cast<uint64_t>(c.sums[i]), static_cast<uint64_t>(c.sums[i] >> 64)};
    sums.Set(i, Napi::BigInt::New(env, 0, words[1] ? 2 : 1, words));
  }
  o.Set("sums", sums);
  return o;
}

class ReadWorker : public PromiseWorker {
 public:
  ReadWorker(Napi::Env env, std::string path, bool clear, size_t max_bytes, int kind)
      : PromiseWorker(env), path_(std::move(path)), clear_(clear), max_bytes_(max_bytes), kind_(kind) {}

 protected:
  bool Run(SysError &err) override {
    if (!read_file(path_, clear_, max_bytes_, data_, err)) return false;
    if (kind_ >= 0) parsed_ = parse_columns(data_.data(), data_.size(), static_cast<TableKind>(kind_), columns_);
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    if (kind_ < 0) return ToBuffer(env, data_);
    Napi::Object o = Napi::Object::New(env);
    o.Set("columns", parsed_ ? ColumnsToJs(env, columns_) : env.Undefined());
    o.Set("text", ToBuffer(env, data_));
    return o;
  }

 private:
  std::string path_;
  bool clear_;
  size_t max_bytes_;
  int kind_;  // -1: raw read
  Bytes data_;
  Columns columns_;
  bool parsed_ = false;
};

std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

int KindArg(const Napi::CallbackInfo &info, size_t i) {
  std::string k = StringArg(info, i, "kind");
  if (k == "traffic") return static_cast<int>(TableKind::Traffic);
  if (k == "ipconn") return static_cast<int>(TableKind::IpConn);
  if (k == "portconn") return static_cast<int>(TableKind::PortConn);
  throw Napi::TypeError::New(info.Env(), "kind must be traffic, ipconn or portconn");
}

struct ReadOpts {
  bool clear = false;
  size_t max_bytes = 0;
};

ReadOpts ReadOptsArg(const Napi::CallbackInfo &info, size_t i) {
  ReadOpts o;
  if (info.Length() <= i || info[i].IsUndefined()) return o;
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  Napi::Object obj = info[i].As<Napi::Object>();
  Napi::Value clear = obj.Get("clear");
  if (!clear.IsUndefined()) o.clear = clear.ToBoolean().Value();
  Napi::Value max = obj.Get("maxBytes");
  if (!max.IsUndefined()) {
    if (!max.IsNumber() || max.As<Napi::Number>().DoubleValue() < 0)
      throw Napi::TypeError::New(info.Env(), "maxBytes must be a non-negative number");
    o.max_bytes = static_cast<size_t>(max.As<Napi::Number>().DoubleValue());
  }
  return o;
}

// The rows a format call reads: kind, keys and counters (as readTable returns them), and the
// optional `order` (row indexes), all checked so the C++ side never reads out of bounds.
RowSource RowSourceArgs(const Napi::CallbackInfo &info, Napi::Value order_v) {
  Napi::Env env = info.Env();
  RowSource src{};
  src.kind = static_cast<TableKind>(KindArg(info, 0));
  src.per = src.kind == TableKind::Traffic ? 8 : 10;
  if (info.Length() < 3 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env, "keys must be a Uint32Array");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array)
    throw Napi::TypeError::New(env, "counters must be a BigUint64Array");
  auto keys = info[1].As<Napi::Uint32Array>();
  auto counters = info[2].As<Napi::TypedArrayOf<uint64_t>>();
  src.rows = keys.ElementLength();
  if (counters.ElementLength() != src.rows * src.per)
    throw Napi::RangeError::New(env, "counters must hold " + std::to_string(src.per) + " values per key");
  src.keys = keys.Data();
  src.counters = counters.Data();
  src.count = src.rows;
  if (!order_v.IsUndefined() && !order_v.IsNull()) {
    if (!order_v.IsTypedArray() || order_v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      throw Napi::TypeError::New(env, "order must be a Uint32Array");
    auto order = order_v.As<Napi::Uint32Array>();
    src.order = order.Data();
    src.count = order.ElementLength();
    for (size_t j = 0; j < src.count; j++)
      if (src.order[j] >= src.rows) throw Napi::RangeError::New(env, "order: row index out of range");
  }
  return src;
}

Napi::Value OptionGet(const Napi::CallbackInfo &info, size_t i, const char *key) {
  if (info.Length() <= i || info[i].IsUndefined()) return info.Env().Undefined();
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  return info[i].As<Napi::Object>().Get(key);
}

std::string OptionString(const Napi::CallbackInfo &info, size_t i, const char *key) {
  Napi::Value v = OptionGet(info, i, key);
  if (v.IsUndefined()) return "";
  if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace

// cellWidths(kind, keys, counters, order?): number[] (widest key, then widest of each counter)
Napi::Value CellWidths(const Napi::CallbackInfo &info) {
  RowSource src = RowSourceArgs(info, info.Length() > 3 ? info[3] : info.Env().Undefined());
  unsigned w[11];
  cell_widths(src, w);
  Napi::Array a = Napi::Array::New(info.Env(), src.per + 1);
  for (unsigned c = 0; c <= src.per; c++) a.Set(c, Napi::Number::New(info.Env(), w[c]));
  return a;
}

// formatRows(kind, keys, counters, style, {order?, widths?, prefix?, suffix?}): Buffer
Napi::Value FormatRows(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RowSource src = RowSourceArgs(info, OptionGet(info, 4, "order"));
  std::string s = StringArg(info, 3, "style");
  RowStyle style;
  if (s == "json") style = RowStyle::Json;
  else if (s == "csv") style = RowStyle::Csv;
  else if (s == "table") style = RowStyle::Table;
  else throw Napi::TypeError::New(env, "style must be json, csv or table");
  unsigned widths[11] = {};
  if (style == RowStyle::Table) {
    Napi::Value wv = OptionGet(info, 4, "widths");
    if (!wv.IsArray() || wv.As<Napi::Array>().Length() != src.per + 1)
      throw Napi::TypeError::New(env, "widths must be an array of " + std::to_string(src.per + 1) + " numbers");
    unsigned need[11];
    cell_widths(src, need);
    Napi::Array wa = wv.As<Napi::Array>();
    for (unsigned c = 0; c <= src.per; c++) {
      Napi::Value x = wa.Get(c);
      double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= need[c] && d <= 4096)) throw Napi::RangeError::New(env, "widths: narrower than a cell, or not a number");
      widths[c] = static_cast<unsigned>(d);
    }
  }
  std::string prefix = OptionString(info, 4, "prefix");
  std::string suffix = OptionString(info, 4, "suffix");
  char *out;
  size_t len;
  if (!format_rows(src, style, widths, prefix, suffix, &out, &len)) throw Napi::Error::New(env, "formatRows: out of memory");
  return Napi::Buffer<char>::NewOrCopy(env, out, len, [](Napi::Env, char *p) { std::free(p); });
}

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

// unloadModule(name, force): Promise<void>
Napi::Value UnloadModule(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "name");
  bool force = info.Length() > 1 && info[1].ToBoolean().Value();
  auto *w = new UnloadWorker(info.Env(), std::move(name), force);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// readFile(path, {clear, maxBytes}): Promise<Buffer>
Napi::Value ReadFile(const Napi::CallbackInfo &info) {
  std::string path = StringArg(info, 0, "path");
  ReadOpts o = ReadOptsArg(info, 1);
  auto *w = new ReadWorker(info.Env(), std::move(path), o.clear, o.max_bytes, -1);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// readTable(path, kind, {clear, maxBytes}): Promise<{text: Buffer, columns?: Columns}>
Napi::Value ReadTable(const Napi::CallbackInfo &info) {
  std::string path = StringArg(info, 0, "path");
  int kind = KindArg(info, 1);
  ReadOpts o = ReadOptsArg(info, 2);
  auto *w = new ReadWorker(info.Env(), std::move(path), o.clear, o.max_bytes, kind);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// parseColumns(buffer, kind): Columns | undefined (synchronous; for tests and benchmarks)
Napi::Value ParseColumns(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw Napi::TypeError::New(info.Env(), "text must be a Buffer or Uint8Array");
  auto buf = info[0].As<Napi::Uint8Array>();
  int kind = KindArg(info, 1);
  Columns c;
  if (!parse_columns(reinterpret_cast<const char *>(buf.Data()), buf.ByteLength(), static_cast<TableKind>(kind), c))
    return info.Env().Undefined();
  return ColumnsToJs(info.Env(), c);
}

}  // namespace xtt
