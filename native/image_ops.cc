// pilTransform: the JS-facing glue of image/pil_resample.h (reads the options, runs on a worker, no algorithm here).
#include "image_ops.h"

#include "async.h"
#include "js_convert.h"
#include "image/pil_resample.h"

#include <ATen/Parallel.h>

#include <memory>
#include <string>
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

}  // namespace

void registerImageOps(Napi::Env env, Napi::Object exports) { exports.Set("pilTransform", Napi::Function::New(env, PilTransform)); }

}  // namespace spurmem
