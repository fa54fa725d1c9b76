// spurmem's native module: checkpoints, models and devices. Loaded by src/native.ts only.
#include "async.h"
#include "checkpoint/archive.h"
#include "checkpoint_handle.h"
#include "device.h"
#include "js_convert.h"
#include "losses.h"
#include "model_handle.h"

#include <torch/version.h>

#include <thread>

namespace spurmem {
Napi::Object Init(Napi::Env env, Napi::Object exports);
namespace {

// readCheckpoint(path, {checkStorageCrc?: true}) -> Promise<Checkpoint>
Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "readCheckpoint(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool checkStorageCrc = true;
  if (info.Length() > 1 && info[1].IsObject()) {
    auto v = info[1].As<Napi::Object>().Get("checkStorageCrc");
    if (v.IsBoolean()) checkStorageCrc = v.As<Napi::Boolean>().Value();
  }
  auto out = std::make_shared<Checkpoint>();
  return runAsync(
      env, [path, out, checkStorageCrc]() { *out = readCheckpoint(path, checkStorageCrc); },
      [out](Napi::Env env) -> Napi::Value { return CheckpointHandle::Wrap(env, std::move(*out)); });
}

// writeCheckpoint(path, value) -> Promise<void>; value converted by jsToValue (see js_convert.h).
Napi::Value WriteCheckpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "writeCheckpoint(path, value)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  ValuePtr v;
  try {
    v = jsToValue(info[1]);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return runAsync(env, [path, v]() { writeCheckpoint(path, v); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("libtorch", TORCH_VERSION);
  o.Set("cuda", libtorchHasCuda());
  o.Set("cudaDevices", static_cast<double>(cudaDeviceCount()));
  o.Set("threads", static_cast<double>(torch::get_num_threads()));
  return o;
}

// setNumThreads(n): libtorch's intra-op threads for this thread and every later native call.
Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setNumThreads(n): n must be a number");
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n > 0) {
    gNumThreads.store(n);
    torch::set_num_threads(n);
  }
  return info.Env().Undefined();
}

Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    parseDevice(info[0].ToString().Utf8Value());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

// ntXent({a: Float32Array, b: Float32Array, rows, cols, temperature}) -> number (for tests and checks)
Napi::Value NtXent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  int64_t rows = o.Get("rows").As<Napi::Number>().Int64Value(), cols = o.Get("cols").As<Napi::Number>().Int64Value();
  auto fa = o.Get("a").As<Napi::Float32Array>(), fb = o.Get("b").As<Napi::Float32Array>();
  if (static_cast<int64_t>(fa.ElementLength()) != rows * cols || static_cast<int64_t>(fb.ElementLength()) != rows * cols)
    throw Napi::RangeError::New(env, "ntXent: a and b must hold rows * cols values");
  auto a = torch::from_blob(fa.Data(), {rows, cols}, torch::kFloat).clone();
  auto b = torch::from_blob(fb.Data(), {rows, cols}, torch::kFloat).clone();
  return Napi::Number::New(env, ntXent(a, b, o.Get("temperature").As<Napi::Number>().DoubleValue()).item<double>());
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Checkpoint", CheckpointHandle::Init(env));
  exports.Set("Model", ModelHandle::Init(env));
  exports.Set("readCheckpoint", Napi::Function::New(env, ReadCheckpoint));
  exports.Set("writeCheckpoint", Napi::Function::New(env, WriteCheckpoint));
  exports.Set("versions", Napi::Function::New(env, Versions));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice));
  exports.Set("ntXent", Napi::Function::New(env, NtXent));
  return exports;
}

}  // namespace spurmem

static Napi::Object InitSpurmem(Napi::Env env, Napi::Object exports) { return spurmem::Init(env, exports); }
NODE_API_MODULE(spurmem, InitSpurmem)
