// pilTransform: the JS-facing glue of image/pil_resample.h (reads the options, runs on a worker, no algorithm here).
#include "image_ops.h"

#include "async.h"
#include "js_convert.h"
#include "image/jpeg_decode.h"
#include "image/pil_resample.h"
#include "image/task_pool.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace spurmem {
namespace {

image::ToRgb parseToRgb(Napi::Env env, const std::string& s, size_t i) {
  static const std::pair<const char*, image::ToRgb> kNames[] = {
      {"grey", image::ToRgb::Grey},          {"rgb", image::ToRgb::Rgb},
      {"cmyk", image::ToRgb::Cmyk},          {"grey16-clip", image::ToRgb::Grey16Clip},
      {"grey16-high", image::ToRgb::High16Grey}, {"rgb16-high", image::ToRgb::High16Rgb},
  };
  for (const auto& n : kNames)
    if (s == n.first) return n.second;
  throw Napi::TypeError::New(env, "pilTransform: images[" + std::to_string(i) + "].toRgb must be grey, rgb, cmyk, grey16-clip, grey16-high or rgb16-high, got '" + s + "'");
}

image::Rect rectField(const JsOptions& e, const char* key) {
  auto r = e.integers(key, 4, "[left, top, width, height]");
  return image::Rect{static_cast<int>(r[0]), static_cast<int>(r[1]), static_cast<int>(r[2]), static_cast<int>(r[3])};
}

// pilTransform({images: [{data, width, height, channels, toRgb, box, size, window, flip}], out}) -> Promise<void>
Napi::Value PilTransform(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "pilTransform(options): options must be an object");
  auto o = info[0].As<Napi::Object>();
  auto outV = o.Get("out");
  if (!outV.IsTypedArray() || outV.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "pilTransform: out must be a Uint8Array");
  auto out = outV.As<Napi::Uint8Array>();

  std::vector<Napi::Value> keep{outV};
  auto srcs = std::make_shared<std::vector<image::SourceImage>>();
  auto specs = std::make_shared<std::vector<image::TransformSpec>>();
  std::vector<size_t> offsets;
  size_t total = 0;
  const auto entries = JsOptions(env, o, "pilTransform").objects("images");
  for (size_t i = 0; i < entries.size(); i++) {
    const JsOptions& e = entries[i];
    auto data = e.value("data");
    if (!data.IsTypedArray()) throw Napi::TypeError::New(env, e.what + ".data must be a Uint8Array or Uint16Array");
    auto ta = data.As<Napi::TypedArray>();
    image::SourceImage s;
    if (ta.TypedArrayType() == napi_uint8_array) s.bytesPerSample = 1;
    else if (ta.TypedArrayType() == napi_uint16_array) s.bytesPerSample = 2;
    else throw Napi::TypeError::New(env, e.what + ".data must be a Uint8Array or Uint16Array");
    s.data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    s.width = static_cast<int>(e.integer("width"));
    s.height = static_cast<int>(e.integer("height"));
    s.channels = static_cast<int>(e.integer("channels"));
    s.toRgb = parseToRgb(env, e.str("toRgb"), i);
    if (s.width <= 0 || s.height <= 0 || s.channels <= 0 ||
        ta.ElementLength() != static_cast<size_t>(s.width) * s.height * s.channels)
      throw Napi::RangeError::New(env, e.what + ".data holds " + std::to_string(ta.ElementLength()) +
                                           " samples, expected width * height * channels = " +
                                           std::to_string(static_cast<double>(s.width) * s.height * s.channels));
    image::TransformSpec t;
    t.box = rectField(e, "box");
    auto size = e.integers("size", 2, "[width, height]");
    t.outWidth = static_cast<int>(size[0]);
    t.outHeight = static_cast<int>(size[1]);
    t.window = rectField(e, "window");
    t.flip = e.flag("flip");
    try {
      image::checkTransform(s, t);
    } catch (const std::exception& ex) {
      throw Napi::RangeError::New(env, "pilTransform: images[" + std::to_string(i) + "]: " + errorText(ex));
    }
    offsets.push_back(total);
    total += static_cast<size_t>(t.window.width) * t.window.height * 3;
    srcs->push_back(s);
    specs->push_back(t);
    keep.push_back(data);
  }
  if (out.ByteLength() != total)
    throw Napi::RangeError::New(env, "pilTransform: out holds " + std::to_string(out.ByteLength()) + " bytes, the windows need " + std::to_string(total));
  uint8_t* dst = out.Data();
  return runAsync(
      env,
      [srcs, specs, offsets, dst]() {
        const int64_t n = static_cast<int64_t>(srcs->size());
        if (n == 1) {
          image::pilTransform((*srcs)[0], (*specs)[0], dst);
          return;
        }
        // images side by side on libtorch's intra-op threads
        at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; i++) image::pilTransform((*srcs)[i], (*specs)[i], dst + offsets[i]);
        });
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, keep);
}

/// One file of decodeTransformFiles: where its bytes come from and its transform.
struct FileJob {
  std::string file;
  const uint8_t* bytes = nullptr;  ///< the file's bytes when JS read them (else read from `file`)
  size_t size = 0;
  bool wholeImage = false;         ///< box = the whole decoded image
  image::TransformSpec spec;
  size_t offset = 0;               ///< where its window's bytes go in `out`
};

/// Per-file outcome: 0 done, 1 not a file the native decoder handles, 2 failed (`message` says why).
struct FileResult {
  int status = 0;
  std::string message;
};

bool readWholeFile(const std::string& path, std::vector<uint8_t>& buf, std::string& why) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    why = std::string("cannot read image (") + (errno == ENOENT ? "no such file" : std::strerror(errno)) + ")";
    return false;
  }
  buf.clear();
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) buf.insert(buf.end(), chunk, chunk + n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) {
    why = "cannot read image (read error)";
    return false;
  }
  if (buf.empty()) {
    why = "cannot decode image (the file is empty)";
    return false;
  }
  return true;
}

/// Reads, decodes and transforms one file; its window's bytes go to `window`.
void runFileJob(const FileJob& job, uint8_t* window, std::vector<uint8_t>& buf, FileResult& r) {
  const uint8_t* bytes = job.bytes;
  size_t size = job.size;
  if (!bytes) {
    if (!readWholeFile(job.file, buf, r.message)) {
      r.status = 2;
      return;
    }
    bytes = buf.data();
    size = buf.size();
  }
  image::JpegPixels px;
  try {
    if (!image::decodeJpeg(bytes, size, px)) {
      r.status = 1;
      return;
    }
  } catch (const std::exception& e) {
    r.status = 2;
    r.message = std::string("cannot decode image (") + e.what() + ")";
    return;
  }
  image::SourceImage src;
  src.data = px.data.data();
  src.width = px.width;
  src.height = px.height;
  src.channels = px.channels;
  src.toRgb = px.channels == 1 ? image::ToRgb::Grey : image::ToRgb::Rgb;
  image::TransformSpec t = job.spec;
  if (job.wholeImage) t.box = image::Rect{0, 0, px.width, px.height};
  try {
    image::checkTransform(src, t);
    image::pilTransform(src, t, window);
  } catch (const std::exception& e) {
    r.status = 2;
    r.message = errorText(e);
  }
}

/// The files and thread count of a decodeTransformFiles call, read from its options (on the JS thread).
struct FileJobs {
  std::vector<FileJob> jobs;
  uint8_t* dst = nullptr;
  std::vector<Napi::Value> keep;  ///< the JS buffers the jobs read and write
  int64_t threads = 1;
};

FileJobs fileJobs(Napi::Env env, const JsOptions& o, const char* what) {
  FileJobs r;
  r.threads = o.integer("threads");
  if (r.threads < 1) throw Napi::RangeError::New(env, std::string(what) + ": threads must be >= 1");
  auto outV = o.value("out");
  if (!outV.IsTypedArray() || outV.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, std::string(what) + ": out must be a Uint8Array");
  auto out = outV.As<Napi::Uint8Array>();
  r.keep.push_back(outV);
  size_t total = 0;
  for (const JsOptions& e : o.objects("files")) {
    FileJob j;
    j.file = e.str("file");
    if (e.has("bytes")) {
      auto b = e.value("bytes");
      if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw Napi::TypeError::New(env, e.what + ".bytes must be a Uint8Array");
      auto ta = b.As<Napi::Uint8Array>();
      j.bytes = ta.Data();
      j.size = ta.ByteLength();
      r.keep.push_back(b);
    }
    j.wholeImage = !e.has("box");
    if (!j.wholeImage) j.spec.box = rectField(e, "box");
    auto size = e.integers("size", 2, "[width, height]");
    j.spec.outWidth = static_cast<int>(size[0]);
    j.spec.outHeight = static_cast<int>(size[1]);
    j.spec.window = rectField(e, "window");
    j.spec.flip = e.flag("flip");
    if (j.spec.window.width <= 0 || j.spec.window.height <= 0)
      throw Napi::RangeError::New(env, e.what + ".window must have a positive width and height");
    j.offset = total;
    total += static_cast<size_t>(j.spec.window.width) * j.spec.window.height * 3;
    r.jobs.push_back(std::move(j));
  }
  if (out.ByteLength() != total)
    throw Napi::RangeError::New(env, std::string(what) + ": out holds " + std::to_string(out.ByteLength()) + " bytes, the windows need " + std::to_string(total));
  r.dst = out.Data();
  return r;
}

/// One file's job, where any exception (out of memory) fails that file only.
void runFileJobSafely(const FileJob& job, uint8_t* window, std::vector<uint8_t>& buf, FileResult& r) {
  try {
    runFileJob(job, window, buf, r);
  } catch (const std::exception& e) {
    r = FileResult{2, errorText(e)};
  }
}

/// Per file: 0, 1, or the reason it failed (decodeTransformFiles' result).
Napi::Array statusArray(Napi::Env env, const std::vector<FileResult>& results) {
  auto arr = Napi::Array::New(env, results.size());
  for (size_t i = 0; i < results.size(); i++) {
    const FileResult& r = results[i];
    if (r.status == 2) arr.Set(i, Napi::String::New(env, r.message));
    else arr.Set(i, Napi::Number::New(env, r.status));
  }
  return arr;
}

// decodeTransformFiles({files: [{file, bytes?, box?, size, window, flip}], out, threads}) -> Promise<(0|1|string)[]>
// Reads, decodes (JPEG, libjpeg) and transforms (PIL's resize) every file on `threads` threads; per file:
// 0 done (its window's bytes are in out), 1 not a JPEG this decoder handles (out untouched), or the reason
// it failed. A missing box means the whole decoded image.
Napi::Value DecodeTransformFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileJobs fj = fileJobs(env, JsOptions(info, 0, "decodeTransformFiles"), "decodeTransformFiles");
  auto jobs = std::make_shared<std::vector<FileJob>>(std::move(fj.jobs));
  uint8_t* dst = fj.dst;
  auto results = std::make_shared<std::vector<FileResult>>(jobs->size());
  const int nThreads = static_cast<int>(std::min<int64_t>(fj.threads, std::max<size_t>(1, jobs->size())));
  return runAsync(
      env,
      [jobs, results, dst, nThreads]() {
        std::atomic<size_t> next{0};
        auto worker = [&]() {
          std::vector<uint8_t> buf;
          for (size_t i = next++; i < jobs->size(); i = next++) runFileJobSafely((*jobs)[i], dst + (*jobs)[i].offset, buf, (*results)[i]);
        };
        std::vector<std::thread> pool;
        for (int t = 1; t < nThreads; t++) pool.emplace_back(worker);
        worker();
        for (auto& t : pool) t.join();
      },
      [results](Napi::Env env) -> Napi::Value { return statusArray(env, *results); }, fj.keep);
}

/// A decodeTransformFilesPooled call in flight: created on the JS thread, deleted there when it settles.
struct PooledCall {
  explicit PooledCall(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> refs;
  std::vector<FileJob> jobs;
  std::vector<FileResult> results;
  uint8_t* dst = nullptr;
  double cpuSeconds = 0;
  Napi::ThreadSafeFunction settle;
};

// decodeTransformFilesPooled({files, out, threads}) -> Promise<{status: (0|1|string)[], cpuSeconds}>
// decodeTransformFiles on the process's decoding pool (image/task_pool.h): its idle-priority threads decode
// while the model runs, its normal ones while the foreground is open (setDecodeForeground). `threads` sets
// the pool's threads of each kind. cpuSeconds: the CPU time the files took.
Napi::Value DecodeTransformFilesPooled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileJobs fj = fileJobs(env, JsOptions(info, 0, "decodeTransformFilesPooled"), "decodeTransformFilesPooled");
  auto owned = std::make_unique<PooledCall>(env);
  PooledCall* call = owned.get();
  call->jobs = std::move(fj.jobs);
  call->results.resize(call->jobs.size());
  call->dst = fj.dst;
  for (auto& v : fj.keep) call->refs.push_back(Napi::Persistent(v));
  Napi::Promise promise = call->deferred.Promise();
  call->settle = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "spurmem decode", 0, 1);
  auto& pool = image::TaskPool::instance();
  pool.workers(static_cast<int>(fj.threads));
  try {
    pool.submit(
        call->jobs.size(),
        // a file may be decoded twice at once (task_pool.h): each run decodes into its own window, and the
        // run that claims the file first writes it to `out`
        [call](size_t i, const image::TaskPool::Claim& claim) {
          thread_local std::vector<uint8_t> buf;
          thread_local std::vector<uint8_t> window;
          const FileJob& job = call->jobs[i];
          window.resize(static_cast<size_t>(job.spec.window.width) * job.spec.window.height * 3);
          FileResult r;
          runFileJobSafely(job, window.data(), buf, r);
          if (!claim()) return;
          if (r.status == 0) std::memcpy(call->dst + job.offset, window.data(), window.size());
          call->results[i] = std::move(r);
        },
        [call](double cpuSeconds) {
          call->cpuSeconds = cpuSeconds;
          Napi::ThreadSafeFunction settle = call->settle;  // `call` is deleted on the JS thread
          settle.BlockingCall([call](Napi::Env env, Napi::Function) {
            auto r = Napi::Object::New(env);
            r.Set("status", statusArray(env, call->results));
            r.Set("cpuSeconds", Napi::Number::New(env, call->cpuSeconds));
            call->deferred.Resolve(r);
            delete call;
          });
          settle.Release();
        });
  } catch (const std::exception& e) {
    call->settle.Release();
    throw Napi::Error::New(env, std::string("decodeTransformFilesPooled: ") + e.what());
  }
  owned.release();  // deleted when it settles
  return promise;
}

// setDecodeForeground(open): whether the decoding pool's normal-priority threads take files (the CPU budget
// opens it whenever no model call runs on the CPU).
Napi::Value SetDecodeForeground(const Napi::CallbackInfo& info) {
  image::TaskPool::instance().setForeground(info.Length() > 0 && info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

}  // namespace

void registerImageOps(Napi::Env env, Napi::Object exports) {
  exports.Set("pilTransform", Napi::Function::New(env, PilTransform));
  exports.Set("decodeTransformFiles", Napi::Function::New(env, DecodeTransformFiles));
  exports.Set("nativeJpeg", Napi::Boolean::New(env, image::jpegDecoderAvailable()));
  exports.Set("decodeTransformFilesPooled", Napi::Function::New(env, DecodeTransformFilesPooled));
  exports.Set("setDecodeForeground", Napi::Function::New(env, SetDecodeForeground));
  // whether the decoding pool decodes at idle priority beside the model (checked once, on load)
  exports.Set("decodeInBackground", Napi::Boolean::New(env, image::jpegDecoderAvailable() && image::TaskPool::idlePriorityAvailable()));
}

}  // namespace spurmem
