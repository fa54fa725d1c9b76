// spurmem's native module: checkpoints, models, devices and the PIL-exact image transform. Loaded by src/native.ts only.
#include "async.h"
#include "checkpoint/archive.h"
#include "checkpoint_handle.h"
#include "cpu_cache.h"
#include "data/file_index.h"
#include "device.h"
#include "image_ops.h"
#include "js_convert.h"
#include "losses.h"
#include "metrics/bootstrap.h"
#include "model_handle.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
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
    throw Napi::Error::New(env, errorText(e));
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
    requestedThreads().store(n);
    torch::set_num_threads(n);
  }
  return info.Env().Undefined();
}

// setTf32(enabled): TF32 in cuDNN convolutions and cuBLAS matrix products (PyTorch's defaults: conv on,
// matmul off). Parity checks turn it off on both sides.
Napi::Value SetTf32(const Napi::CallbackInfo& info) {
  bool on = info[0].ToBoolean().Value();
  at::globalContext().setAllowTF32CuDNN(on);
  at::globalContext().setAllowTF32CuBLAS(on);
  return info.Env().Undefined();
}

Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    parseDevice(info[0].ToString().Utf8Value());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, errorText(e));
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

// bootstrapCorrect({state: Uint32Array(4), count: Int32Array(G), correct: Int32Array(G), draws}) -> Int32Array
// (draws x G, replicate-major): the group-stratified bootstrap's correct draws (metrics/bootstrap.h), from
// the sfc32 state of src/util/random.ts. Synchronous: 2000 draws of 20,000 samples take about 0.1 s.
Napi::Value BootstrapCorrect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  JsOptions o(info, 0, "bootstrapCorrect options");
  auto st = o.value("state");
  if (!st.IsTypedArray() || st.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array || st.As<Napi::Uint32Array>().ElementLength() != 4)
    throw Napi::TypeError::New(env, "bootstrapCorrect options: 'state' must be a Uint32Array of 4 words (the sfc32 state)");
  auto words = st.As<Napi::Uint32Array>();
  Sfc32 rng{words[0], words[1], words[2], words[3]};
  auto countV = o.value("count");
  const int64_t groups = countV.IsTypedArray() ? static_cast<int64_t>(countV.As<Napi::TypedArray>().ElementLength()) : -1;
  auto count = int32List(env, countV, groups, "bootstrapCorrect options.count");
  auto correct = int32List(env, o.value("correct"), groups, "bootstrapCorrect options.correct");
  std::vector<int32_t> hits;
  try {
    hits = bootstrapCorrect(rng, count, correct, o.integer("draws"));
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  auto out = Napi::Int32Array::New(env, hits.size());
  std::copy(hits.begin(), hits.end(), out.Data());
  return out;
}

// listFolders({dirs: string[]}) -> Promise<FolderListing>: the folders read on a worker thread
// (data/file_index.h), to hand to presentFiles later; opaque to JS.
Napi::Value ListFolders(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto dirs = std::make_shared<std::vector<std::string>>(JsOptions(info, 0, "listFolders options").strings("dirs"));
  auto listing = std::make_shared<FolderListing>();
  return runAsync(
      env, [dirs, listing]() { *listing = listFolders(*dirs); },
      [listing](Napi::Env env) -> Napi::Value {
        return Napi::External<FolderListing>::New(env, new FolderListing(std::move(*listing)), [](Napi::Env, FolderListing* l) { delete l; });
      });
}

// presentFiles(paths: string, count, listing?: FolderListing) -> Promise<Uint8Array>: 1 for each of the
// `count` absolute paths (joined with NUL characters: one string crosses over, not 202,599) whose folder
// lists it as something other than a folder (data/file_index.h); folders that `listing` holds are not read
// again, the others are read on a worker thread.
Napi::Value PresentFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "presentFiles(paths, count): paths must be a string of NUL-separated paths and count a number");
  auto paths = std::make_shared<std::vector<std::string>>();
  {
    const std::string joined = info[0].As<Napi::String>().Utf8Value();
    const int64_t count = info[1].As<Napi::Number>().Int64Value();
    paths->reserve(static_cast<std::size_t>(std::max<int64_t>(0, count)));
    if (count > 0) {
      std::size_t from = 0;
      for (;;) {
        const auto end = joined.find('\0', from);
        paths->push_back(joined.substr(from, end == std::string::npos ? std::string::npos : end - from));
        if (end == std::string::npos) break;
        from = end + 1;
      }
    }
    if (static_cast<int64_t>(paths->size()) != count)
      throw Napi::RangeError::New(env, "presentFiles(paths, count): " + std::to_string(paths->size()) + " paths, count " + std::to_string(count));
  }
  std::vector<Napi::Value> keep;
  const FolderListing* listed = nullptr;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsExternal()) throw Napi::TypeError::New(env, "presentFiles(paths, count, listing): listing must be what listFolders gave");
    listed = info[2].As<Napi::External<FolderListing>>().Data();
    keep.push_back(info[2]);
  }
  auto present = std::make_shared<std::vector<uint8_t>>();
  return runAsync(
      env, [paths, present, listed]() { *present = listed ? presentFiles(*paths, *listed) : presentFiles(*paths); },
      [present](Napi::Env env) -> Napi::Value {
        auto out = Napi::Uint8Array::New(env, present->size());
        std::copy(present->begin(), present->end(), out.Data());
        return out;
      },
      keep);
}

// cpuCache() -> {limitBytes, cachedBytes, liveBytes, hits, misses}; cpuCache(limitBytes) sets the limit first.
Napi::Value CpuCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    double v = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(v >= 0)) throw Napi::RangeError::New(env, "cpuCache(limitBytes): limitBytes must be a number >= 0");
    setCpuCacheLimit(static_cast<std::size_t>(v));
  }
  auto s = cpuCacheStats();
  auto o = Napi::Object::New(env);
  o.Set("limitBytes", static_cast<double>(s.limitBytes));
  o.Set("cachedBytes", static_cast<double>(s.cachedBytes));
  o.Set("liveBytes", static_cast<double>(s.liveBytes));
  o.Set("hits", static_cast<double>(s.hits));
  o.Set("misses", static_cast<double>(s.misses));
  return o;
}

/// SPURMEM_CPU_CACHE_MB (default 1024; 0 turns the cache off): see cpu_cache.h.
std::size_t cpuCacheLimitFromEnv() {
  const char* v = std::getenv("SPURMEM_CPU_CACHE_MB");
  if (!v || !*v) return std::size_t(1024) << 20;
  char* end = nullptr;
  double mb = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(mb >= 0)) return std::size_t(1024) << 20;
  return static_cast<std::size_t>(mb * 1024 * 1024);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static const bool cacheInstalled = (installCpuCache(cpuCacheLimitFromEnv()), true);
  (void)cacheInstalled;
  exports.Set("Checkpoint", CheckpointHandle::Init(env));
  exports.Set("Model", ModelHandle::Init(env));
  exports.Set("readCheckpoint", Napi::Function::New(env, ReadCheckpoint));
  exports.Set("writeCheckpoint", Napi::Function::New(env, WriteCheckpoint));
  exports.Set("versions", Napi::Function::New(env, Versions));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice));
  exports.Set("setTf32", Napi::Function::New(env, SetTf32));
  exports.Set("ntXent", Napi::Function::New(env, NtXent));
  exports.Set("cpuCache", Napi::Function::New(env, CpuCache));
  exports.Set("listFolders", Napi::Function::New(env, ListFolders));
  exports.Set("presentFiles", Napi::Function::New(env, PresentFiles));
  exports.Set("bootstrapCorrect", Napi::Function::New(env, BootstrapCorrect));
  registerImageOps(env, exports);
  return exports;
}

}  // namespace spurmem

static Napi::Object InitSpurmem(Napi::Env env, Napi::Object exports) { return spurmem::Init(env, exports); }
NODE_API_MODULE(spurmem, InitSpurmem)
