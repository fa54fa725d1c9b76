#include "model_handle.h"

#include "async.h"
#include "checkpoint/archive.h"
#include "checkpoint_handle.h"
#include "device.h"
#include "js_convert.h"
#include "losses.h"
#include "models/vit.h"
#include "torch_compat.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <cmath>
#include <functional>
#include <set>
#include <sstream>

namespace spurmem {

std::string errorText(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

namespace {

using State = ModelHandle::State;

// ---- argument helpers (JS thread) ---------------------------------------------------------------

Napi::Object objArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

std::string strOpt(const Napi::Object& o, const char* k, const std::string& dflt) {
  auto v = o.Get(k);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : dflt;
}
double numOpt(const Napi::Object& o, const char* k, double dflt) {
  auto v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
}
bool boolOpt(const Napi::Object& o, const char* k, bool dflt) {
  auto v = o.Get(k);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}
std::vector<std::string> strList(const Napi::Object& o, const char* k) {
  std::vector<std::string> out;
  auto v = o.Get(k);
  if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToString().Utf8Value());
  }
  return out;
}

/// A batch of images handed over from JS: uint8 NHWC RGB (`images`, shape [n,h,w,3]) or an already
/// normalised float32 NCHW tensor (`tensor`, shape [n,3,h,w]).
struct BatchIn {
  const void* ptr = nullptr;
  bool u8 = true;
  int64_t n = 0, h = 0, w = 0;
};

BatchIn batchArg(Napi::Env env, const Napi::Object& o, std::vector<Napi::Value>& keep) {
  BatchIn b;
  auto shapeV = o.Get("shape");
  if (!shapeV.IsArray()) throw Napi::TypeError::New(env, "batch.shape must be an array");
  auto sa = shapeV.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < sa.Length(); ++i) shape.push_back(static_cast<int64_t>(sa.Get(i).As<Napi::Number>().DoubleValue()));
  if (shape.size() != 4) throw Napi::TypeError::New(env, "batch.shape must have 4 dimensions");
  Napi::Value data;
  if (o.Get("images").IsTypedArray()) {
    data = o.Get("images");
    auto ta = data.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "batch.images must be a Uint8Array");
    if (shape[3] != 3) throw Napi::TypeError::New(env, "batch.images must be [n, h, w, 3] RGB");
    b.u8 = true;
    b.n = shape[0]; b.h = shape[1]; b.w = shape[2];
    if (ta.ByteLength() != static_cast<size_t>(b.n * b.h * b.w * 3))
      throw Napi::RangeError::New(env, "batch.images length does not match batch.shape");
    b.ptr = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  } else if (o.Get("tensor").IsTypedArray()) {
    data = o.Get("tensor");
    auto ta = data.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(env, "batch.tensor must be a Float32Array");
    if (shape[1] != 3) throw Napi::TypeError::New(env, "batch.tensor must be [n, 3, h, w]");
    b.u8 = false;
    b.n = shape[0]; b.h = shape[2]; b.w = shape[3];
    if (ta.ElementLength() != static_cast<size_t>(b.n * 3 * b.h * b.w))
      throw Napi::RangeError::New(env, "batch.tensor length does not match batch.shape");
    b.ptr = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  } else {
    throw Napi::TypeError::New(env, "batch needs images (Uint8Array) or tensor (Float32Array)");
  }
  if (b.n <= 0 || b.h <= 0 || b.w <= 0) throw Napi::RangeError::New(env, "batch must not be empty");
  keep.push_back(data);
  return b;
}

std::vector<int64_t> int32List(Napi::Env env, const Napi::Value& v, int64_t n, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, std::string(what) + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n)
    throw Napi::RangeError::New(env, std::string(what) + " has " + std::to_string(a.ElementLength()) + " entries, the batch " + std::to_string(n));
  return std::vector<int64_t>(a.Data(), a.Data() + a.ElementLength());
}

std::vector<float> float32List(Napi::Env env, const Napi::Value& v, int64_t n, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, std::string(what) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) throw Napi::RangeError::New(env, std::string(what) + " length does not match the batch");
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

/// The state dict that a rewind copies from: options.source (a Checkpoint) at options.sourcePath. The
/// checkpoint object is kept alive (`keep`) until the work has finished.
ValuePtr rewindSourceArg(Napi::Env env, const Napi::Object& o, std::string& file, std::vector<Napi::Value>& keep) {
  auto* ck = CheckpointHandle::From(o.Get("source"), "options.source");
  ValuePtr sd;
  try {
    sd = ck->at(pathArg(o.Get("sourcePath")));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  file = ck->ckpt.path;
  keep.push_back(o.Get("source"));
  return sd;
}

Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& t0) {
  auto t = t0.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto a = Napi::Float32Array::New(env, static_cast<size_t>(t.numel()));
  std::memcpy(a.Data(), t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  return a;
}

// ---- device-side helpers (worker thread) ---------------------------------------------------------

/// Enables bf16 autocast on CUDA for the scope (a no-op unless amp == "bf16" on a CUDA device).
struct AutocastScope {
  bool on = false;
  AutocastScope(const State& s) {
    if (s.amp != "bf16" || !s.device.is_cuda()) return;
    on = true;
    compat::setCudaBf16Autocast(true);
  }
  ~AutocastScope() {
    if (on) compat::setCudaBf16Autocast(false);
  }
};

torch::Tensor inputTensor(State& s, const BatchIn& b) {
  torch::Tensor x;
  if (b.u8) {
    auto raw = torch::from_blob(const_cast<void*>(b.ptr), {b.n, b.h, b.w, 3}, torch::kUInt8);
    // uint8 goes to the device; conversion and normalisation happen there (as ToTensor + Normalize)
    x = raw.to(s.device).permute({0, 3, 1, 2}).to(torch::kFloat).div_(255.0);
    x = x.sub_(s.mean).div_(s.std);
  } else {
    x = torch::from_blob(const_cast<void*>(b.ptr), {b.n, 3, b.h, b.w}, torch::kFloat).to(s.device);
    if (!s.device.is_cuda()) x = x.clone();
  }
  return s.channelsLast ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x.contiguous();
}

torch::Tensor runNet(State& s, const torch::Tensor& x) {
  AutocastScope ac(s);
  return s.net->forward(x).to(torch::kFloat);
}

torch::Tensor targetsTensor(State& s, const std::vector<int64_t>& t, int64_t classes) {
  for (auto v : t)
    if (v < 0 || v >= classes) throw std::invalid_argument("target class " + std::to_string(v) + " outside [0, " + std::to_string(classes) + ")");
  return torch::tensor(t, torch::kLong).to(s.device);
}

void setMasksActive(State& s, bool on) {
  for (auto& kv : s.net->maskSlots) {
    auto it = s.masks.find(kv.first);
    *kv.second = (on && it != s.masks.end()) ? it->second : torch::Tensor();
  }
}

void setBnUpdate(torch::nn::Module& m, bool on) {
  if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(&m)) bn->update_stats = on;
  for (auto& c : m.children()) setBnUpdate(*c, on);
}

torch::Tensor& paramRef(State& s, const std::string& name) {
  auto it = s.params.find(name);
  if (it == s.params.end()) throw std::invalid_argument("model " + s.net->opts.arch + " has no parameter '" + name + "'");
  return it->second;
}

torch::Tensor channelNorm(const torch::Tensor& t) {
  if (t.dim() >= 2) return t.detach().flatten(1).to(torch::kFloat).norm(2, {1});
  return t.detach().to(torch::kFloat).abs();
}

torch::Tensor tensorFromSource(const ValuePtr& sd, const std::string& name, const torch::Tensor& like, const std::string& file) {
  ValuePtr v = sd ? sd->get(name) : nullptr;
  if (!v || v->kind != Kind::Tensor) throw std::invalid_argument(file + ": rewind source has no tensor '" + name + "'");
  if (v->tensor.sizes() != like.sizes()) throw std::invalid_argument(file + ": rewind source '" + name + "' has another shape");
  return v->tensor.to(like.options());
}

/// Exactly k elements of `pool` (1-D) by |value|: the largest (or smallest); ties go to the lower index.
torch::Tensor selectExactly(const torch::Tensor& absPool, int64_t k, bool largest) {
  const int64_t n = absPool.numel();
  if (k <= 0) return torch::zeros({n}, absPool.options().dtype(torch::kBool));
  if (k >= n) return torch::ones({n}, absPool.options().dtype(torch::kBool));
  // kthvalue is 1-based over ascending order
  int64_t pos = largest ? n - k + 1 : k;
  auto t = std::get<0>(torch::kthvalue(absPool.to(torch::kCPU), pos)).to(absPool.device());
  auto strict = largest ? absPool.gt(t) : absPool.lt(t);
  int64_t need = k - strict.sum().item<int64_t>();
  auto eq = absPool.eq(t);
  auto rank = eq.to(torch::kLong).cumsum(0);
  return strict.logical_or(eq.logical_and(rank.le(need)));
}

struct Pool {
  std::vector<std::string> names;
  std::vector<int64_t> sizes;
  torch::Tensor abs;  // concatenated |w|
};

Pool makePool(State& s, const std::vector<std::string>& names) {
  Pool p;
  std::vector<torch::Tensor> parts;
  for (const auto& n : names) {
    auto& w = paramRef(s, n);
    parts.push_back(w.detach().abs().flatten().to(torch::kFloat));
    p.names.push_back(n);
    p.sizes.push_back(w.numel());
  }
  if (parts.empty()) throw std::invalid_argument("no parameters to pool");
  p.abs = torch::cat(parts);
  return p;
}

int64_t ceilCount(double fraction, int64_t n) {
  if (!(fraction >= 0 && fraction <= 1)) throw std::invalid_argument("fraction must be within [0, 1]");
  // ceil(P*N) without being pushed up by the rounding error of P*N
  long double x = static_cast<long double>(fraction) * static_cast<long double>(n);
  long double r = std::nearbyint(x);
  if (std::fabs(static_cast<double>(x - r)) < 1e-9 * std::max<long double>(1, x)) return static_cast<int64_t>(r);
  return static_cast<int64_t>(std::ceil(x));
}

void refreshMaps(State& s) {
  s.params.clear();
  s.entries.clear();
  for (auto& p : s.net->namedParameters()) s.params[p.first] = p.second;
  for (auto& e : s.net->stateDict()) s.entries[e.first] = e.second;
}

std::vector<torch::Tensor> orderedParams(State& s) {
  std::vector<torch::Tensor> out;
  for (auto& p : s.net->namedParameters()) out.push_back(p.second);
  return out;
}

}  // namespace

// ---- class ---------------------------------------------------------------------------------------

Napi::Function ModelHandle::Init(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelHandle::Info>("info"),
                         InstanceMethod<&ModelHandle::LoadStateDict>("loadStateDict"),
                         InstanceMethod<&ModelHandle::Forward>("forward"),
                         InstanceMethod<&ModelHandle::TrainStep>("trainStep"),
                         InstanceMethod<&ModelHandle::Gradients>("gradients"),
                         InstanceMethod<&ModelHandle::SetOptimizer>("setOptimizer"),
                         InstanceMethod<&ModelHandle::SetLearningRate>("setLearningRate"),
                         InstanceMethod<&ModelHandle::LoadOptimizerState>("loadOptimizerState"),
                         InstanceMethod<&ModelHandle::ChannelNorms>("channelNorms"),
                         InstanceMethod<&ModelHandle::GetTensor>("tensor"),
                         InstanceMethod<&ModelHandle::SetTensor>("setTensor"),
                         InstanceMethod<&ModelHandle::Snapshot>("snapshot"),
                         InstanceMethod<&ModelHandle::Restore>("restore"),
                         InstanceMethod<&ModelHandle::ReleaseSnapshot>("releaseSnapshot"),
                         InstanceMethod<&ModelHandle::ModifyChannels>("modifyChannels"),
                         InstanceMethod<&ModelHandle::ModifyThreshold>("modifyThreshold"),
                         InstanceMethod<&ModelHandle::MaskMagnitude>("maskMagnitude"),
                         InstanceMethod<&ModelHandle::MaskChannels>("maskChannels"),
                         InstanceMethod<&ModelHandle::ClearMasks>("clearMasks"),
                         InstanceMethod<&ModelHandle::MaskStats>("maskStats"),
                         InstanceMethod<&ModelHandle::FinetuneStep>("finetuneStep"),
                         InstanceMethod<&ModelHandle::Save>("save"),
                     });
}

// new Model({arch, numClasses, head: 'softmax'|'linear', lnEps, imageSize, depth, device, seed, channelsLast, amp, mean, std})
ModelHandle::ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info), s_(std::make_shared<State>()) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "Model options");
  try {
    NetOptions no;
    no.arch = strOpt(o, "arch", "");
    no.numClasses = static_cast<int64_t>(numOpt(o, "numClasses", 2));
    no.softmaxHead = strOpt(o, "head", "softmax") == "softmax";
    no.lnEps = numOpt(o, "lnEps", 1e-6);
    no.imageSize = static_cast<int64_t>(numOpt(o, "imageSize", 224));
    no.depth = static_cast<int64_t>(numOpt(o, "depth", 0));
    s_->deviceName = strOpt(o, "device", "cpu");
    s_->device = parseDevice(s_->deviceName);
    s_->channelsLast = boolOpt(o, "channelsLast", false);
    s_->amp = strOpt(o, "amp", "");
    if (o.Get("seed").IsNumber()) torch::manual_seed(static_cast<uint64_t>(numOpt(o, "seed", 0)));
    s_->net = makeNet(no);
    s_->net->to(s_->device);
    if (s_->channelsLast) {
      torch::NoGradGuard g;
      for (auto& p : s_->net->parameters())
        if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
    }
    std::vector<float> mean = {0.485f, 0.456f, 0.406f}, stdv = {0.229f, 0.224f, 0.225f};
    s_->mean = torch::tensor(mean).view({1, 3, 1, 1}).to(s_->device);
    s_->std = torch::tensor(stdv).view({1, 3, 1, 1}).to(s_->device);
    refreshMaps(*s_);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, errorText(e));
  }
}

Napi::Value ModelHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(s_->mu);
  auto o = Napi::Object::New(env);
  o.Set("arch", s_->net->opts.arch);
  o.Set("device", s_->deviceName);
  o.Set("head", s_->net->opts.softmaxHead ? "softmax" : "linear");
  o.Set("headName", s_->net->headName());
  o.Set("numClasses", static_cast<double>(s_->net->opts.numClasses));
  o.Set("lnEps", s_->net->opts.lnEps);
  o.Set("imageSize", static_cast<double>(s_->net->opts.imageSize));
  if (auto* vit = dynamic_cast<VisionTransformer*>(s_->net.get())) o.Set("depth", static_cast<double>(vit->depth));
  auto params = Napi::Array::New(env);
  uint32_t i = 0;
  std::set<std::string> paramNames;
  for (auto& p : s_->net->namedParameters()) {
    auto m = tensorMeta(env, p.second);
    m.Set("name", p.first);
    m.Set("maskable", s_->net->maskSlots.count(p.first) > 0);
    params.Set(i++, m);
    paramNames.insert(p.first);
  }
  o.Set("parameters", params);
  auto bufs = Napi::Array::New(env);
  i = 0;
  for (auto& e : s_->net->stateDict()) {
    if (paramNames.count(e.first)) continue;
    auto m = tensorMeta(env, e.second);
    m.Set("name", e.first);
    bufs.Set(i++, m);
  }
  o.Set("buffers", bufs);
  return o;
}

// loadStateDict({checkpoint, path, strict, skip, interpolatePosEmbed}) -> Promise<report>
Napi::Value ModelHandle::LoadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "loadStateDict options");
  auto* ck = CheckpointHandle::From(o.Get("checkpoint"), "options.checkpoint");
  auto path = pathArg(o.Get("path"));
  bool strict = boolOpt(o, "strict", true);
  bool interpolate = boolOpt(o, "interpolatePosEmbed", true);
  auto skip = strList(o, "skip");
  auto s = s_;
  Checkpoint* c = &ck->ckpt;
  struct Report {
    std::vector<std::string> loaded, missing, unexpected, skipped, filled, resized;
    std::vector<std::string> mismatched;
  };
  auto r = std::make_shared<Report>();
  return runAsync(
      env,
      [s, c, ck, path, strict, interpolate, skip, r]() {
        std::lock_guard<std::mutex> lock(s->mu);
        ValuePtr sd = ck->at(path);
        if (sd->kind != Kind::Dict)
          throw std::invalid_argument(c->path + ": the state dict" + (path.empty() ? "" : " at '" + path.back() + "'") + " is a " + kindName(sd->kind) + ", not a dict");
        auto isSkipped = [&](const std::string& k) {
          for (const auto& p : skip)
            if (k.rfind(p, 0) == 0) return true;
          return false;
        };
        std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
        std::set<std::string> seen;
        for (const auto& e : sd->entries) {
          std::string k = keyText(*e.first);
          if (isSkipped(k)) { r->skipped.push_back(k); continue; }
          auto it = s->entries.find(k);
          if (it == s->entries.end()) { r->unexpected.push_back(k); continue; }
          if (e.second->kind != Kind::Tensor) { r->mismatched.push_back(k + ": not a tensor"); seen.insert(k); continue; }
          torch::Tensor src = e.second->tensor;
          const torch::Tensor& dst = it->second;
          if (k == "pos_embed" && interpolate && src.dim() == 3 && dst.dim() == 3 && src.size(2) == dst.size(2) &&
              src.size(1) != dst.size(1)) {
            // timm's resample_abs_pos_embed: keep the class token, resize the grid bicubically (antialiased)
            int64_t oldG = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(src.size(1) - 1))));
            int64_t newG = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(dst.size(1) - 1))));
            if (oldG * oldG + 1 == src.size(1) && newG * newG + 1 == dst.size(1)) {
              auto cls = src.narrow(1, 0, 1).to(torch::kFloat);
              auto grid = src.narrow(1, 1, oldG * oldG).to(torch::kFloat).reshape({1, oldG, oldG, -1}).permute({0, 3, 1, 2});
              namespace F = torch::nn::functional;
              grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{newG, newG})
                                              .mode(torch::kBicubic)
                                              .align_corners(false)
                                              .antialias(true));
              grid = grid.permute({0, 2, 3, 1}).reshape({1, newG * newG, -1});
              src = torch::cat({cls, grid}, 1);
              r->resized.push_back(k + " " + std::to_string(oldG) + "x" + std::to_string(oldG) + " -> " + std::to_string(newG) + "x" + std::to_string(newG));
            }
          }
          if (src.sizes() != dst.sizes()) {
            std::ostringstream m;
            m << k << ": checkpoint " << src.sizes() << ", model " << dst.sizes();
            r->mismatched.push_back(m.str());
            seen.insert(k);  // reported once, as a mismatch, not again as missing
            continue;
          }
          copies.emplace_back(dst, src);
          seen.insert(k);
          r->loaded.push_back(k);
        }
        for (const auto& e : s->net->stateDict()) {
          if (seen.count(e.first)) continue;
          if (isSkipped(e.first)) continue;
          const std::string suffix = "num_batches_tracked";
          if (e.first.size() >= suffix.size() && e.first.compare(e.first.size() - suffix.size(), suffix.size(), suffix) == 0) {
            r->filled.push_back(e.first);  // PyTorch fills it for old checkpoints too
            continue;
          }
          r->missing.push_back(e.first);
        }
        auto join = [](const std::vector<std::string>& v) {
          std::string out;
          for (size_t i = 0; i < v.size(); ++i) {
            if (i == 8) { out += ", ... (" + std::to_string(v.size()) + " in all)"; break; }
            out += (i ? ", " : "") + std::string("\"") + v[i] + "\"";
          }
          return out;
        };
        std::string err;
        if (!r->mismatched.empty()) err += " Size mismatch for " + join(r->mismatched) + ".";
        if (strict && !r->missing.empty()) err += " Missing key(s) in state_dict: " + join(r->missing) + ".";
        if (strict && !r->unexpected.empty()) err += " Unexpected key(s) in state_dict: " + join(r->unexpected) + ".";
        if (!err.empty())
          throw std::invalid_argument(c->path + ": error(s) in loading the state dict into " + s->net->opts.arch + ":" + err);
        torch::NoGradGuard g;
        for (auto& cp : copies) cp.first.copy_(cp.second);
        for (const auto& f : r->filled) s->entries[f].zero_();
      },
      [r](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        auto arr = [&](const std::vector<std::string>& v) {
          auto a = Napi::Array::New(env, v.size());
          for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
          return a;
        };
        o.Set("loaded", arr(r->loaded));
        o.Set("missing", arr(r->missing));
        o.Set("unexpected", arr(r->unexpected));
        o.Set("skipped", arr(r->skipped));
        o.Set("filled", arr(r->filled));
        o.Set("resized", arr(r->resized));
        return o;
      },
      {o.Get("checkpoint")});
}

// forward(batch, {train?: false, masked?: false}) -> Promise<Float32Array [n * numClasses]>
Napi::Value ModelHandle::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto b = batchArg(env, objArg(info, 0, "batch"), keep);
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  bool train = boolOpt(o, "train", false), masked = boolOpt(o, "masked", false);
  auto s = s_;
  auto out = std::make_shared<torch::Tensor>();
  return runAsync(
      env,
      [s, b, train, masked, out]() {
        std::lock_guard<std::mutex> lock(s->mu);
        // eval forwards run in inference mode (no autograd records, no version counters); a training-mode
        // forward updates BatchNorm buffers in place, which stays under a plain no-grad guard
        c10::optional<c10::InferenceMode> inference;
        if (!train) inference.emplace();
        torch::NoGradGuard g;
        s->net->train(train);
        setMasksActive(*s, masked);
        auto x = inputTensor(*s, b);
        *out = runNet(*s, x).to(torch::kCPU);
        setMasksActive(*s, false);
      },
      [out](Napi::Env env) -> Napi::Value { return toFloat32Array(env, *out); }, keep);
}

// trainStep(batch, {targets: Int32Array, weights?: Float32Array}) -> Promise<{loss, outputs}>
// loss = mean_i(w_i * CE(output_i, target_i)) with CE on the head's output (the original's double softmax
// when the head ends in a softmax); then backward and one optimizer step.
Napi::Value ModelHandle::TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto b = batchArg(env, objArg(info, 0, "batch"), keep);
  auto o = objArg(info, 1, "trainStep options");
  auto targets = int32List(env, o.Get("targets"), b.n, "targets");
  auto weights = float32List(env, o.Get("weights"), b.n, "weights");
  if (!s_->optimizer) throw Napi::Error::New(env, "trainStep: call setOptimizer first");
  auto s = s_;
  struct R { double loss; torch::Tensor outputs; };
  auto r = std::make_shared<R>();
  return runAsync(
      env,
      [s, b, targets, weights, r]() {
        std::lock_guard<std::mutex> lock(s->mu);
        s->net->train(true);
        setMasksActive(*s, false);
        auto x = inputTensor(*s, b);
        auto t = targetsTensor(*s, targets, s->net->opts.numClasses);
        auto out = runNet(*s, x);
        auto per = perSampleCrossEntropy(out, t);
        if (!weights.empty()) per = per * torch::tensor(weights).to(s->device);
        auto loss = per.mean();
        s->optimizer->zeroGrad();
        loss.backward();
        r->loss = loss.item<double>();
        if (!std::isfinite(r->loss)) return;  // the caller stops; the weights are left as they were
        s->optimizer->step();
        r->outputs = out.detach().to(torch::kCPU);
      },
      [r](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("loss", r->loss);
        if (r->outputs.defined()) o.Set("outputs", toFloat32Array(env, r->outputs));
        return o;
      },
      keep);
}

// gradients(batch, {targets, names, train?: false, raw?: false, loss?: 'probabilities' | 'logits'})
//   -> Promise<{loss, scaleLog2, norms: {name: Float32Array}, grads?: {name: tensor}}>
// One backward pass of the batch-mean cross-entropy; BatchNorm uses running statistics unless train.
// loss 'probabilities': CE on the head's output (the original's double softmax with the softmax head).
// loss 'logits': CE on the head's Linear output, its gradient scaled by 2^scaleLog2 so that it does not
// underflow when every sample is fitted with a huge margin (losses.h); norms and grads are then 2^scaleLog2
// times the true ones.
Napi::Value ModelHandle::Gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto b = batchArg(env, objArg(info, 0, "batch"), keep);
  auto o = objArg(info, 1, "gradients options");
  auto targets = int32List(env, o.Get("targets"), b.n, "targets");
  auto names = strList(o, "names");
  bool train = boolOpt(o, "train", false), raw = boolOpt(o, "raw", false);
  const std::string lossName = strOpt(o, "loss", "probabilities");
  if (lossName != "probabilities" && lossName != "logits")
    throw Napi::TypeError::New(env, "gradients: loss must be 'probabilities' or 'logits', got '" + lossName + "'");
  const bool logits = lossName == "logits";
  auto s = s_;
  struct R { double loss; int64_t scaleLog2 = 0; std::vector<torch::Tensor> norms, grads; std::vector<std::string> names; };
  auto r = std::make_shared<R>();
  return runAsync(
      env,
      [s, b, targets, names, train, raw, logits, r]() {
        std::lock_guard<std::mutex> lock(s->mu);
        std::vector<torch::Tensor> ps;
        r->names = names;
        if (r->names.empty())
          for (auto& p : s->net->namedParameters()) r->names.push_back(p.first);
        for (const auto& n : r->names) ps.push_back(paramRef(*s, n));
        s->net->train(train);
        setMasksActive(*s, false);
        auto x = inputTensor(*s, b);
        auto t = targetsTensor(*s, targets, s->net->opts.numClasses);
        std::vector<torch::Tensor> gs;
        if (logits) {
          LogitsScope scope(*s->net, true);
          auto z = runNet(*s, x);
          auto g = scaledLogitsCrossEntropyGrad(z, t, r->scaleLog2, r->loss);
          gs = torch::autograd::grad({z}, ps, {g}, false, false, true);
        } else {
          auto loss = perSampleCrossEntropy(runNet(*s, x), t).mean();
          gs = torch::autograd::grad({loss}, ps, {}, false, false, true);
          r->loss = loss.item<double>();
        }
        for (size_t i = 0; i < gs.size(); ++i) {
          torch::Tensor g = gs[i].defined() ? gs[i] : torch::zeros_like(ps[i]);
          r->norms.push_back(channelNorm(g).to(torch::kCPU));
          if (raw) r->grads.push_back(g.to(torch::kCPU));
        }
      },
      [r, raw](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("loss", r->loss);
        o.Set("scaleLog2", static_cast<double>(r->scaleLog2));
        auto norms = Napi::Object::New(env);
        auto grads = Napi::Object::New(env);
        for (size_t i = 0; i < r->names.size(); ++i) {
          norms.Set(r->names[i], toFloat32Array(env, r->norms[i]));
          if (raw) grads.Set(r->names[i], tensorToJs(env, r->grads[i]));
        }
        o.Set("norms", norms);
        if (raw) o.Set("grads", grads);
        return o;
      },
      keep);
}

// setOptimizer({type, lr, betas, eps, weightDecay, momentum, dampening, nesterov})
Napi::Value ModelHandle::SetOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "optimizer options");
  OptimizerOptions oo;
  oo.type = strOpt(o, "type", "adam");
  oo.lr = numOpt(o, "lr", 1e-3);
  if (o.Get("betas").IsArray()) {
    auto a = o.Get("betas").As<Napi::Array>();
    oo.beta1 = a.Get(0u).As<Napi::Number>().DoubleValue();
    oo.beta2 = a.Get(1u).As<Napi::Number>().DoubleValue();
  }
  oo.eps = numOpt(o, "eps", 1e-8);
  oo.weightDecay = numOpt(o, "weightDecay", 0);
  oo.momentum = numOpt(o, "momentum", 0);
  oo.dampening = numOpt(o, "dampening", 0);
  oo.nesterov = boolOpt(o, "nesterov", false);
  std::lock_guard<std::mutex> lock(s_->mu);
  try {
    s_->optimizer = std::make_unique<Optimizer>(orderedParams(*s_), oo);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, errorText(e));
  }
  return env.Undefined();
}

Napi::Value ModelHandle::SetLearningRate(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(s_->mu);
  if (!s_->optimizer) throw Napi::Error::New(info.Env(), "setLearningRate: no optimizer");
  s_->optimizer->opts.lr = info[0].As<Napi::Number>().DoubleValue();
  return info.Env().Undefined();
}

// loadOptimizerState({checkpoint, path})
Napi::Value ModelHandle::LoadOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "options");
  auto* ck = CheckpointHandle::From(o.Get("checkpoint"), "options.checkpoint");
  std::lock_guard<std::mutex> lock(s_->mu);
  if (!s_->optimizer) throw Napi::Error::New(env, "loadOptimizerState: call setOptimizer first");
  try {
    s_->optimizer->loadStateDict(ck->at(pathArg(o.Get("path"))));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, ck->ckpt.path + ": " + errorText(e));
  }
  return Napi::Number::New(env, s_->optimizer->opts.lr);
}

// channelNorms(names) -> {name: Float32Array}: L2 norm of each output channel (row) of the weight.
Napi::Value ModelHandle::ChannelNorms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto names = pathArg(info[0]);
  std::lock_guard<std::mutex> lock(s_->mu);
  auto o = Napi::Object::New(env);
  try {
    for (const auto& n : names) o.Set(n, toFloat32Array(env, channelNorm(paramRef(*s_, n))));
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, e.what());
  }
  return o;
}

Napi::Value ModelHandle::GetTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].ToString().Utf8Value();
  std::lock_guard<std::mutex> lock(s_->mu);
  auto it = s_->entries.find(name);
  if (it == s_->entries.end()) throw Napi::Error::New(env, "model has no state entry '" + name + "'");
  return tensorToJs(env, it->second);
}

Napi::Value ModelHandle::SetTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].ToString().Utf8Value();
  std::lock_guard<std::mutex> lock(s_->mu);
  auto it = s_->entries.find(name);
  if (it == s_->entries.end()) throw Napi::Error::New(env, "model has no state entry '" + name + "'");
  try {
    auto t = jsToTensor(info[1].As<Napi::Object>());
    if (t.sizes() != it->second.sizes()) throw std::invalid_argument("shape differs from '" + name + "'");
    torch::NoGradGuard g;
    it->second.copy_(t);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, errorText(e));
  }
  return env.Undefined();
}

// snapshot(names) -> id: copies of the named tensors (parameters or buffers), restored in place by restore(id).
Napi::Value ModelHandle::Snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto names = pathArg(info[0]);
  std::lock_guard<std::mutex> lock(s_->mu);
  std::vector<std::pair<std::string, torch::Tensor>> saved;
  for (const auto& n : names) {
    auto it = s_->entries.find(n);
    if (it == s_->entries.end()) throw Napi::Error::New(env, "model has no state entry '" + n + "'");
    saved.emplace_back(n, it->second.detach().clone());
  }
  int64_t id = s_->nextSnapshot++;
  s_->snapshots[id] = std::move(saved);
  return Napi::Number::New(env, static_cast<double>(id));
}

Napi::Value ModelHandle::Restore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id = static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue());
  std::lock_guard<std::mutex> lock(s_->mu);
  auto it = s_->snapshots.find(id);
  if (it == s_->snapshots.end()) throw Napi::Error::New(env, "no snapshot " + std::to_string(id));
  torch::NoGradGuard g;
  for (auto& kv : it->second) s_->entries[kv.first].copy_(kv.second);
  return env.Undefined();
}

Napi::Value ModelHandle::ReleaseSnapshot(const Napi::CallbackInfo& info) {
  int64_t id = static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue());
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->snapshots.erase(id);
  return info.Env().Undefined();
}

// modifyChannels({edits: [{name, index}], mode, std, seed, source?, sourcePath?})
// Modes (the original's modify_weights): zero, random_init (N(0, std^2)), random_noise (+ N(0, std^2)),
// rewind (copy channel from source), layer_rewind (copy the whole tensor). Random values come from one
// CPU generator seeded with `seed`, drawn edit by edit, as torch.randn(shape, generator=g) * std.
Napi::Value ModelHandle::ModifyChannels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "modifyChannels options");
  struct Edit { std::string name; int64_t index; };
  std::vector<Edit> edits;
  auto ea = o.Get("edits").As<Napi::Array>();
  for (uint32_t i = 0; i < ea.Length(); ++i) {
    auto e = ea.Get(i).As<Napi::Object>();
    edits.push_back({strOpt(e, "name", ""), static_cast<int64_t>(numOpt(e, "index", -1))});
  }
  std::string mode = strOpt(o, "mode", "zero");
  double stdv = numOpt(o, "std", 0);
  uint64_t seed = static_cast<uint64_t>(numOpt(o, "seed", 0));
  ValuePtr source;
  std::string sourceFile;
  std::vector<Napi::Value> keep;
  if (mode == "rewind" || mode == "layer_rewind") {
    source = rewindSourceArg(env, o, sourceFile, keep);
  } else if (mode != "zero" && mode != "random_init" && mode != "random_noise") {
    throw Napi::Error::New(env, "unknown modification mode '" + mode + "'");
  }
  auto s = s_;
  return runAsync(
      env,
      [s, edits, mode, stdv, seed, source, sourceFile]() {
        std::lock_guard<std::mutex> lock(s->mu);
        torch::NoGradGuard g;
        auto gen = at::detail::createCPUGenerator(seed);
        for (const auto& e : edits) {
          auto& p = paramRef(*s, e.name);
          if (e.index >= p.size(0) || e.index < -1)
            throw std::invalid_argument("channel " + std::to_string(e.index) + " of '" + e.name + "' does not exist (" + std::to_string(p.size(0)) + " channels)");
          torch::Tensor row = (e.index >= 0 && mode != "layer_rewind") ? p[e.index] : p;
          if (mode == "zero") row.zero_();
          else if (mode == "random_init") row.copy_(torch::randn(row.sizes(), gen, torch::kFloat) * stdv);
          else if (mode == "random_noise") row.add_((torch::randn(row.sizes(), gen, torch::kFloat) * stdv).to(row.device()));
          else {
            auto src = tensorFromSource(source, e.name, p, sourceFile);
            if (mode == "layer_rewind" || e.index < 0) p.copy_(src);
            else row.copy_(src[e.index]);
          }
        }
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, keep);
}

// modifyThreshold({names, fraction, smallest, dropoutP, mode, std, seed, distribution, faithful, source?, sourcePath?})
//   -> {k, threshold, selected: {name: count}}
// Spurmem's default selects exactly ceil(P*N) weights of the pooled `names` by |w| (ties to the lower
// index) and edits only those. faithful=true reproduces the original: threshold at sorted position N-k
// (largest; k=0 wraps to 0) or k (smallest), applied to every parameter of the model.
Napi::Value ModelHandle::ModifyThreshold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "modifyThreshold options");
  auto names = strList(o, "names");
  double fraction = numOpt(o, "fraction", 0);
  bool smallest = boolOpt(o, "smallest", false), faithful = boolOpt(o, "faithful", false);
  double dropoutP = numOpt(o, "dropoutP", 0);
  std::string mode = strOpt(o, "mode", "zero");
  double stdv = numOpt(o, "std", 0);
  uint64_t seed = static_cast<uint64_t>(numOpt(o, "seed", 0));
  bool uniform = strOpt(o, "distribution", "normal") == "uniform";
  ValuePtr source;
  std::string sourceFile;
  std::vector<Napi::Value> keep;
  if (mode == "rewind") {
    source = rewindSourceArg(env, o, sourceFile, keep);
  } else if (mode != "zero" && mode != "random_init" && mode != "random_noise") {
    throw Napi::Error::New(env, "unknown modification mode '" + mode + "' for the threshold ranking");
  }
  auto s = s_;
  struct R { int64_t k = 0; double threshold = 0; std::vector<std::pair<std::string, int64_t>> counts; };
  auto r = std::make_shared<R>();
  return runAsync(
      env,
      [=]() {
        std::lock_guard<std::mutex> lock(s->mu);
        torch::NoGradGuard g;
        Pool pool = makePool(*s, names);
        const int64_t n = pool.abs.numel();
        r->k = ceilCount(fraction, n);
        std::vector<std::pair<std::string, torch::Tensor>> targets;  // name -> bool selection
        if (!faithful) {
          auto sel = selectExactly(pool.abs, r->k, !smallest);
          if (r->k > 0) {
            auto chosen = pool.abs.masked_select(sel);
            r->threshold = (smallest ? chosen.max() : chosen.min()).item<double>();
          }
          int64_t off = 0;
          for (size_t i = 0; i < pool.names.size(); ++i) {
            auto& p = paramRef(*s, pool.names[i]);
            targets.emplace_back(pool.names[i], sel.narrow(0, off, pool.sizes[i]).view(p.sizes()));
            off += pool.sizes[i];
          }
        } else {
          int64_t idx = smallest ? std::min<int64_t>(r->k, n - 1) : (r->k == 0 ? 0 : n - r->k);
          auto t = std::get<0>(torch::kthvalue(pool.abs.to(torch::kCPU), idx + 1)).item<double>();
          r->threshold = t;
          for (auto& p : s->net->namedParameters()) {
            auto a = p.second.detach().abs();
            targets.emplace_back(p.first, smallest ? a.le(t) : a.ge(t));
          }
        }
        auto gen = at::detail::createCPUGenerator(seed);
        for (auto& tg : targets) {
          auto& p = paramRef(*s, tg.first);
          torch::Tensor sel = tg.second;
          if (dropoutP > 0) {
            auto keepMask = torch::bernoulli(torch::full(p.sizes(), 1.0 - dropoutP, torch::kFloat), gen).to(torch::kBool);
            sel = sel.logical_and(keepMask.to(sel.device()));
          }
          r->counts.emplace_back(tg.first, sel.sum().item<int64_t>());
          if (mode == "zero") {
            p.masked_fill_(sel, 0);
          } else if (mode == "rewind") {
            p.copy_(torch::where(sel, tensorFromSource(source, tg.first, p, sourceFile), p));
          } else {
            auto noise = (uniform ? torch::rand(p.sizes(), gen, torch::kFloat) : torch::randn(p.sizes(), gen, torch::kFloat)) * stdv;
            noise = noise.to(p.device(), p.scalar_type());
            if (mode == "random_init") p.copy_(torch::where(sel, noise, p));
            else p.add_(noise * sel.to(p.scalar_type()));
          }
        }
      },
      [r](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("k", static_cast<double>(r->k));
        o.Set("threshold", r->threshold);
        auto c = Napi::Object::New(env);
        for (auto& kv : r->counts) c.Set(kv.first, static_cast<double>(kv.second));
        o.Set("selected", c);
        return o;
      },
      keep);
}

// maskMagnitude({names, fraction, largest}) -> {k}: masks exactly ceil(P*N) of the pooled weights by
// magnitude (smallest by default, as the original's Mask.magnitude_pruning), AND-ed with existing masks.
Napi::Value ModelHandle::MaskMagnitude(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "maskMagnitude options");
  auto names = strList(o, "names");
  double fraction = numOpt(o, "fraction", 0);
  bool largest = boolOpt(o, "largest", false);
  auto s = s_;
  auto k = std::make_shared<int64_t>(0);
  return runAsync(
      env,
      [s, names, fraction, largest, k]() {
        std::lock_guard<std::mutex> lock(s->mu);
        torch::NoGradGuard g;
        for (const auto& n : names)
          if (!s->net->maskSlots.count(n)) throw std::invalid_argument("'" + n + "' cannot be masked");
        Pool pool = makePool(*s, names);
        *k = ceilCount(fraction, pool.abs.numel());
        auto sel = selectExactly(pool.abs, *k, largest);
        int64_t off = 0;
        for (size_t i = 0; i < pool.names.size(); ++i) {
          auto& p = paramRef(*s, pool.names[i]);
          auto keepM = sel.narrow(0, off, pool.sizes[i]).logical_not().to(p.scalar_type()).view(p.sizes());
          off += pool.sizes[i];
          auto it = s->masks.find(pool.names[i]);
          if (it == s->masks.end()) s->masks[pool.names[i]] = keepM;
          else it->second.mul_(keepM);
        }
      },
      [k](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("k", static_cast<double>(*k));
        return o;
      });
}

// maskChannels({channels: [{name, index}]}): zero whole output channels of the masks (AND).
Napi::Value ModelHandle::MaskChannels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = objArg(info, 0, "maskChannels options");
  auto ca = o.Get("channels").As<Napi::Array>();
  std::lock_guard<std::mutex> lock(s_->mu);
  torch::NoGradGuard g;
  try {
    for (uint32_t i = 0; i < ca.Length(); ++i) {
      auto c = ca.Get(i).As<Napi::Object>();
      std::string name = strOpt(c, "name", "");
      int64_t index = static_cast<int64_t>(numOpt(c, "index", -1));
      if (!s_->net->maskSlots.count(name)) throw std::invalid_argument("'" + name + "' cannot be masked");
      auto& p = paramRef(*s_, name);
      if (index < 0 || index >= p.size(0)) throw std::invalid_argument("channel " + std::to_string(index) + " of '" + name + "' does not exist");
      auto it = s_->masks.find(name);
      if (it == s_->masks.end()) it = s_->masks.emplace(name, torch::ones_like(p)).first;
      it->second[index].zero_();
    }
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, errorText(e));
  }
  return env.Undefined();
}

Napi::Value ModelHandle::ClearMasks(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->masks.clear();
  setMasksActive(*s_, false);
  return info.Env().Undefined();
}

// maskStats() -> {name: share of the weight that is masked}
Napi::Value ModelHandle::MaskStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(s_->mu);
  auto o = Napi::Object::New(env);
  for (auto& kv : s_->masks) {
    double masked = 1.0 - kv.second.to(torch::kDouble).mean().item<double>();
    o.Set(kv.first, masked);
  }
  return o;
}

// finetuneStep(batch, {targets, temperature, ceWeight, bnUpdate: 'all'|'dense-only'}) -> {total, ntxent, ce}
// The original's Part II step: f1 = dense output (no grad), f2 = masked output, L = NTXent(f1, f2) +
// NTXent(f1', sg(f2)) + ceWeight * CE(f1', y) with f1' = dense output with grad; one optimizer step.
Napi::Value ModelHandle::FinetuneStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto b = batchArg(env, objArg(info, 0, "batch"), keep);
  auto o = objArg(info, 1, "finetuneStep options");
  auto targets = int32List(env, o.Get("targets"), b.n, "targets");
  double temperature = numOpt(o, "temperature", 0.5), ceWeight = numOpt(o, "ceWeight", 0.2);
  bool denseOnly = strOpt(o, "bnUpdate", "all") == "dense-only";
  if (!s_->optimizer) throw Napi::Error::New(env, "finetuneStep: call setOptimizer first");
  auto s = s_;
  struct R { double total, ntxent, ce; };
  auto r = std::make_shared<R>();
  return runAsync(
      env,
      [=]() {
        std::lock_guard<std::mutex> lock(s->mu);
        s->net->train(true);
        auto x = inputTensor(*s, b);
        auto t = targetsTensor(*s, targets, s->net->opts.numClasses);
        torch::Tensor f1;
        {
          torch::NoGradGuard g;
          setMasksActive(*s, false);
          f1 = runNet(*s, x).detach();
        }
        setMasksActive(*s, true);
        if (denseOnly) setBnUpdate(*s->net, false);
        torch::Tensor f2;
        try {
          f2 = runNet(*s, x);
        } catch (...) {
          setBnUpdate(*s->net, true);
          setMasksActive(*s, false);
          throw;
        }
        setBnUpdate(*s->net, true);
        setMasksActive(*s, false);
        auto l1 = ntXent(f1, f2, temperature);
        auto f1b = runNet(*s, x);
        auto l2 = ntXent(f1b, f2.detach(), temperature);
        auto ce = perSampleCrossEntropy(f1b, t).mean();
        auto total = l1 + l2 + ce * ceWeight;
        s->optimizer->zeroGrad();
        total.backward();
        r->total = total.item<double>();
        r->ntxent = (l1 + l2).item<double>();
        r->ce = ce.item<double>();
        if (std::isfinite(r->total)) s->optimizer->step();
      },
      [r](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("total", r->total);
        o.Set("ntxent", r->ntxent);
        o.Set("ce", r->ce);
        return o;
      },
      keep);
}

// save(path, {epoch, loss, optimizer: bool, extra}) -> Promise: {epoch, model_state_dict,
// optimizer_state_dict, loss[, spurmem: extra]} in the zip layout, atomically (temporary file + rename).
Napi::Value ModelHandle::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].ToString().Utf8Value();
  auto o = objArg(info, 1, "save options");
  int64_t epoch = static_cast<int64_t>(numOpt(o, "epoch", 0));
  double loss = numOpt(o, "loss", 0);
  bool withOpt = boolOpt(o, "optimizer", true);
  ValuePtr extra;
  try {
    if (o.Get("extra").IsObject()) extra = jsToValue(o.Get("extra"));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  auto s = s_;
  return runAsync(
      env,
      [s, path, epoch, loss, withOpt, extra]() {
        std::lock_guard<std::mutex> lock(s->mu);
        auto root = Value::dict();
        root->set("epoch", Value::integer(epoch));
        auto sd = Value::dict(true);
        for (auto& e : s->net->stateDict()) sd->entries.emplace_back(Value::string(e.first), Value::fromTensor(e.second));
        root->set("model_state_dict", sd);
        if (withOpt && s->optimizer) root->set("optimizer_state_dict", s->optimizer->stateDict());
        root->set("loss", Value::real(loss));
        if (extra) root->set("spurmem", extra);
        writeCheckpoint(path, root);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace spurmem
