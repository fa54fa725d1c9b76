#include "model_handle.h"

#include "checkpoint/archive.h"
#include "checkpoint_handle.h"
#include "js_convert.h"
#include "model_glue.h"
#include "ops/state_dict.h"
#include "ops/training.h"
#include "ops/weight_edits.h"

#include <set>

namespace spurmem {

namespace {

using glue::Done;
using glue::numbers;
using glue::undefinedOf;
using glue::channelList;

/// The arguments of a method that runs one batch: (batch, options) with options.targets, one class index
/// per sample; the batch's typed array is kept alive in `keep`.
struct BatchCall {
  BatchCall(const Napi::CallbackInfo& info, const char* what)
      : batch(batchArg(info.Env(), JsOptions(info, 0, "batch").object, keep)),
        options(info, 1, what),
        targets(int32List(info.Env(), options.value("targets"), batch.n, "targets")) {}
  std::vector<Napi::Value> keep;
  BatchIn batch;
  JsOptions options;
  std::vector<int64_t> targets;
};

Napi::Array stringArray(Napi::Env env, const std::vector<std::string>& v) {
  auto a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

}  // namespace

Napi::Function ModelHandle::Init(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelHandle::Info>("info"),
                         InstanceMethod<&ModelHandle::LoadStateDict>("loadStateDict"),
                         InstanceMethod<&ModelHandle::Forward>("forward"),
                         InstanceMethod<&ModelHandle::ReleaseActivations>("releaseActivations"),
                         InstanceMethod<&ModelHandle::TrainStep>("trainStep"),
                         InstanceMethod<&ModelHandle::Gradients>("gradients"),
                         InstanceMethod<&ModelHandle::SetOptimizer>("setOptimizer"),
                         InstanceMethod<&ModelHandle::SetLearningRate>("setLearningRate"),
                         InstanceMethod<&ModelHandle::LoadOptimizerState>("loadOptimizerState"),
                         InstanceMethod<&ModelHandle::ChannelNorms>("channelNorms"),
                         InstanceMethod<&ModelHandle::GetTensor>("tensor"),
                         InstanceMethod<&ModelHandle::SetTensor>("setTensor"),
                         InstanceMethod<&ModelHandle::Snapshot>("snapshot"),
                         InstanceMethod<&ModelHandle::SnapshotChannels>("snapshotChannels"),
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

// new Model({arch, family, numClasses, head, lnEps, imageSize, device, channelsLast, amp, seed?} plus, for
// family 'resnet', {block, layers}, for 'vit', {width, depth, heads, patchSize})
ModelHandle::ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info), s_(std::make_shared<ModelState>()) {
  JsOptions o(info, 0, "Model options");
  NetOptions no;
  no.arch = o.str("arch");
  no.family = o.str("family");
  no.numClasses = o.integer("numClasses");
  no.softmaxHead = o.str("head") == "softmax";
  no.lnEps = o.num("lnEps");
  no.imageSize = o.integer("imageSize");
  if (no.family == "resnet") {
    no.block = o.str("block");
    auto layers = o.value("layers");
    if (!layers.IsArray()) throw Napi::TypeError::New(info.Env(), "Model options: 'layers' must be an array of integers");
    for (uint32_t i = 0; i < layers.As<Napi::Array>().Length(); ++i)
      no.layers.push_back(static_cast<int64_t>(layers.As<Napi::Array>().Get(i).ToNumber().DoubleValue()));
  } else if (no.family == "vit") {
    no.width = o.integer("width");
    no.depth = o.integer("depth");
    no.heads = o.integer("heads");
    no.patchSize = o.integer("patchSize");
  }
  const std::string device = o.str("device"), amp = o.str("amp");
  const bool channelsLast = o.flag("channelsLast"), seeded = o.has("seed");
  const uint64_t seed = seeded ? static_cast<uint64_t>(o.integer("seed")) : 0;
  locked(info.Env(), [&](ModelState& s) {
    initModel(s, no, device, channelsLast, amp, seeded, seed);
    return info.Env().Undefined();
  });
}

Napi::Value ModelHandle::Info(const Napi::CallbackInfo& info) {
  return locked(info.Env(), [&](ModelState& s) -> Napi::Value {
    Napi::Env env = info.Env();
    const NetOptions& no = s.net->opts;
    auto o = Napi::Object::New(env);
    o.Set("arch", no.arch);
    o.Set("family", no.family);
    o.Set("device", s.deviceName);
    o.Set("head", no.softmaxHead ? "softmax" : "linear");
    o.Set("headName", s.net->headName());
    o.Set("numClasses", static_cast<double>(no.numClasses));
    o.Set("lnEps", no.lnEps);
    o.Set("imageSize", static_cast<double>(no.imageSize));
    if (no.family == "vit") o.Set("depth", static_cast<double>(no.depth));
    o.Set("stages", static_cast<double>(s.net->numStages()));
    auto params = Napi::Array::New(env);
    uint32_t i = 0;
    std::set<std::string> paramNames;
    for (auto& p : s.net->namedParameters()) {
      auto m = tensorMeta(env, p.second);
      m.Set("name", p.first);
      m.Set("maskable", s.net->maskSlots.count(p.first) > 0);
      m.Set("stage", static_cast<double>(s.net->stageOf(p.first)));
      params.Set(i++, m);
      paramNames.insert(p.first);
    }
    o.Set("parameters", params);
    auto bufs = Napi::Array::New(env);
    i = 0;
    for (auto& e : s.net->stateDict()) {
      if (paramNames.count(e.first)) continue;
      auto m = tensorMeta(env, e.second);
      m.Set("name", e.first);
      m.Set("stage", static_cast<double>(s.net->stageOf(e.first)));
      bufs.Set(i++, m);
    }
    o.Set("buffers", bufs);
    return o;
  });
}

// loadStateDict({checkpoint, path, strict, skip, interpolatePosEmbed}) -> Promise<report> (ops/state_dict.h)
Napi::Value ModelHandle::LoadStateDict(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "loadStateDict options");
  auto* ck = CheckpointHandle::From(o.value("checkpoint"), "options.checkpoint");
  auto path = pathArg(o.value("path"));
  LoadOptions lo;
  lo.strict = o.flag("strict");
  lo.interpolatePosEmbed = o.flag("interpolatePosEmbed");
  lo.skip = o.strings("skip");
  return queue(
      info.Env(), {o.value("checkpoint")},
      [ck, path, lo](ModelState& s) { return loadStateDict(s, ck->at(path), ck->ckpt.path, path.empty() ? "" : path.back(), lo); },
      [](Napi::Env env, const LoadReport& r) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("loaded", stringArray(env, r.loaded));
        out.Set("missing", stringArray(env, r.missing));
        out.Set("unexpected", stringArray(env, r.unexpected));
        out.Set("skipped", stringArray(env, r.skipped));
        out.Set("filled", stringArray(env, r.filled));
        out.Set("resized", stringArray(env, r.resized));
        return out;
      });
}

// forward(batch | null, {train, masked, from, to, keep}) -> Promise<Float32Array>: stages [from, to) of the
// net (models/net.h). from 0 reads the batch; a later `from` reads the input of that stage kept by an
// earlier call (batch null). `keep` (stages within [from, to]) replaces the kept inputs. The result is
// the output of stage to - 1 flattened ([n * numClasses] when `to` is the last stage), or empty when
// `keep` is given and `to` stops before the last stage.
Napi::Value ModelHandle::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keepAlive;
  JsOptions o(info, 1, "forward options");
  const bool train = o.flag("train"), masked = o.flag("masked");
  const int64_t from = o.integer("from"), to = o.integer("to");
  std::vector<int64_t> keep;
  {
    auto v = o.value("keep");
    if (!v.IsArray()) throw Napi::TypeError::New(env, "forward options: 'keep' must be an array of stage numbers");
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      auto e = a.Get(i);
      if (!e.IsNumber()) throw Napi::TypeError::New(env, "forward options: 'keep' must be an array of stage numbers");
      const double d = e.As<Napi::Number>().DoubleValue();
      if (d != static_cast<double>(static_cast<int64_t>(d)) || d < from || d > to)
        throw Napi::RangeError::New(env, "forward options: kept stage " + e.ToString().Utf8Value() + " is not within [from, to] = [" + std::to_string(from) + ", " + std::to_string(to) + "]");
      keep.push_back(static_cast<int64_t>(d));
    }
  }
  const bool fromBatch = from == 0;
  BatchIn b;
  if (fromBatch) {
    b = batchArg(env, JsOptions(info, 0, "batch").object, keepAlive);
  } else if (info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined()) {
    throw Napi::TypeError::New(env, "forward: a batch is read only from stage 0; from stage " + std::to_string(from) + " pass null (the kept input is used)");
  }
  return queue(
      env, keepAlive,
      [b, train, masked, from, to, keep, fromBatch](ModelState& s) {
        // eval forwards run in inference mode (no autograd records, no version counters); a training-mode
        // forward updates BatchNorm buffers in place, which stays under a plain no-grad guard
        c10::optional<c10::InferenceMode> inference;
        if (!train) inference.emplace();
        torch::NoGradGuard g;
        s.net->train(train);
        checkStageRange(s.net->opts.arch, from, to, s.net->numStages());
        torch::Tensor x;
        if (fromBatch) {
          x = inputTensor(s, b);
        } else {
          auto it = s.kept.find(from);
          if (it == s.kept.end()) throw std::invalid_argument("forward from stage " + std::to_string(from) + ": no kept input of that stage (run a forward with keep first)");
          x = it->second;
        }
        setMasksActive(s, masked);
        torch::Tensor out;
        try {
          out = runStages(s, x, from, to, keep);
        } catch (...) {
          setMasksActive(s, false);
          throw;
        }
        setMasksActive(s, false);
        if (!keep.empty() && to < s.net->numStages()) return torch::Tensor();
        return out.to(torch::kFloat).to(torch::kCPU).contiguous();
      },
      [](Napi::Env env, const torch::Tensor& out) -> Napi::Value {
        return out.defined() ? toFloat32Array(env, out) : Napi::Float32Array::New(env, 0);
      });
}

// releaseActivations(): drops the stage inputs kept by forward.
Napi::Value ModelHandle::ReleaseActivations(const Napi::CallbackInfo& info) {
  return locked(info.Env(), [&](ModelState& s) {
    s.kept.clear();
    return info.Env().Undefined();
  });
}

// trainStep(batch, {targets: Int32Array, weights?: Float32Array}) -> Promise<{loss, outputs}> (ops/training.h)
Napi::Value ModelHandle::TrainStep(const Napi::CallbackInfo& info) {
  BatchCall c(info, "trainStep options");
  auto weights = float32List(info.Env(), c.options.value("weights"), c.batch.n, "weights");
  if (!s_->optimizer) throw Napi::Error::New(info.Env(), "trainStep: call setOptimizer first");
  return queue(
      info.Env(), c.keep, [b = c.batch, targets = c.targets, weights](ModelState& s) { return trainStep(s, b, targets, weights); },
      [](Napi::Env env, const StepResult& r) -> Napi::Value {
        auto o = numbers(env, {{"loss", r.loss}});
        if (r.outputs.defined()) o.Set("outputs", toFloat32Array(env, r.outputs));
        return o;
      });
}

// gradients(batch, {targets, names, train, raw, loss: 'probabilities' | 'logits'})
//   -> Promise<{loss, scaleLog2, norms: {name: Float32Array}, grads?: {name: tensor}}> (ops/training.h)
Napi::Value ModelHandle::Gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BatchCall c(info, "gradients options");
  const JsOptions& o = c.options;
  GradientsOptions go;
  go.names = o.strings("names");
  go.train = o.flag("train");
  go.raw = o.flag("raw");
  const std::string lossName = o.str("loss");
  if (lossName != "probabilities" && lossName != "logits")
    throw Napi::TypeError::New(env, "gradients: loss must be 'probabilities' or 'logits', got '" + lossName + "'");
  go.logits = lossName == "logits";
  return queue(
      env, c.keep, [b = c.batch, targets = c.targets, go](ModelState& s) { return gradients(s, b, targets, go); },
      [](Napi::Env env, const GradientsResult& r) -> Napi::Value {
        auto o = numbers(env, {{"loss", r.loss}, {"scaleLog2", static_cast<double>(r.scaleLog2)}});
        auto norms = Napi::Object::New(env);
        auto grads = Napi::Object::New(env);
        for (size_t i = 0; i < r.names.size(); ++i) {
          norms.Set(r.names[i], toFloat32Array(env, r.norms[i]));
          if (!r.grads.empty()) grads.Set(r.names[i], tensorToJs(env, r.grads[i]));
        }
        o.Set("norms", norms);
        if (!r.grads.empty()) o.Set("grads", grads);
        return o;
      });
}

// setOptimizer({type, lr, betas, eps, weightDecay, momentum, dampening, nesterov})
Napi::Value ModelHandle::SetOptimizer(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "optimizer options");
  OptimizerOptions oo;
  oo.type = o.str("type");
  oo.lr = o.num("lr");
  auto betas = o.value("betas");
  if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) throw Napi::TypeError::New(info.Env(), "optimizer options: 'betas' must be [beta1, beta2]");
  oo.beta1 = betas.As<Napi::Array>().Get(0u).ToNumber().DoubleValue();
  oo.beta2 = betas.As<Napi::Array>().Get(1u).ToNumber().DoubleValue();
  oo.eps = o.num("eps");
  oo.weightDecay = o.num("weightDecay");
  oo.momentum = o.num("momentum");
  oo.dampening = o.num("dampening");
  oo.nesterov = o.flag("nesterov");
  return locked(info.Env(), [&](ModelState& s) {
    s.optimizer = std::make_unique<Optimizer>(orderedParams(s), oo);
    return info.Env().Undefined();
  });
}

Napi::Value ModelHandle::SetLearningRate(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setLearningRate(lr): lr must be a number");
  const double lr = info[0].As<Napi::Number>().DoubleValue();
  return locked(info.Env(), [&](ModelState& s) {
    if (!s.optimizer) throw std::invalid_argument("setLearningRate: no optimizer");
    s.optimizer->opts.lr = lr;
    return info.Env().Undefined();
  });
}

// loadOptimizerState({checkpoint, path}) -> the learning rate it holds
Napi::Value ModelHandle::LoadOptimizerState(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "options");
  auto* ck = CheckpointHandle::From(o.value("checkpoint"), "options.checkpoint");
  auto path = pathArg(o.value("path"));
  return locked(info.Env(), [&](ModelState& s) -> Napi::Value {
    if (!s.optimizer) throw std::invalid_argument("loadOptimizerState: call setOptimizer first");
    try {
      s.optimizer->loadStateDict(ck->at(path));
    } catch (const std::exception& e) {
      throw std::invalid_argument(ck->ckpt.path + ": " + errorText(e));
    }
    return Napi::Number::New(info.Env(), s.optimizer->opts.lr);
  });
}

// channelNorms(names) -> {name: Float32Array}: L2 norm of each output channel (row) of the weight.
Napi::Value ModelHandle::ChannelNorms(const Napi::CallbackInfo& info) {
  auto names = pathArg(info[0]);
  return locked(info.Env(), [&](ModelState& s) -> Napi::Value {
    auto o = Napi::Object::New(info.Env());
    for (const auto& n : names) o.Set(n, toFloat32Array(info.Env(), channelNorm(paramRef(s, n))));
    return o;
  });
}

Napi::Value ModelHandle::GetTensor(const Napi::CallbackInfo& info) {
  std::string name = info[0].ToString().Utf8Value();
  return locked(info.Env(), [&](ModelState& s) -> Napi::Value { return tensorToJs(info.Env(), entryRef(s, name)); });
}

Napi::Value ModelHandle::SetTensor(const Napi::CallbackInfo& info) {
  std::string name = info[0].ToString().Utf8Value();
  return locked(info.Env(), [&](ModelState& s) {
    auto& dst = entryRef(s, name);
    auto t = jsToTensor(info[1].As<Napi::Object>());
    if (t.sizes() != dst.sizes()) throw std::invalid_argument("shape differs from '" + name + "'");
    torch::NoGradGuard g;
    dst.copy_(t);
    return info.Env().Undefined();
  });
}

// snapshot(names) -> id: copies of the named tensors (parameters or buffers), restored in place by restore(id).
Napi::Value ModelHandle::Snapshot(const Napi::CallbackInfo& info) {
  auto names = pathArg(info[0]);
  return locked(info.Env(), [&](ModelState& s) {
    std::vector<std::tuple<std::string, int64_t, torch::Tensor>> saved;
    for (const auto& n : names) saved.emplace_back(n, -1, entryRef(s, n).detach().clone());
    int64_t id = s.nextSnapshot++;
    s.snapshots[id] = std::move(saved);
    return Napi::Number::New(info.Env(), static_cast<double>(id));
  });
}

// snapshotChannels([{name, index}]) -> id: copies of single output channels (rows) of parameters, restored
// in place by restore(id): the memory of the rows, not of whole tensors.
Napi::Value ModelHandle::SnapshotChannels(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("channels", info.Length() > 0 ? info[0] : info.Env().Undefined());
  JsOptions jo(info.Env(), o, "snapshotChannels");
  auto channels = channelList(jo, "channels");
  return locked(info.Env(), [&](ModelState& s) {
    std::vector<std::tuple<std::string, int64_t, torch::Tensor>> saved;
    for (const auto& c : channels) {
      auto& p = paramRef(s, c.name);
      if (p.dim() == 0 || c.index < 0 || c.index >= p.size(0))
        throw std::invalid_argument("'" + c.name + "' has no output channel " + std::to_string(c.index));
      saved.emplace_back(c.name, c.index, p.detach()[c.index].clone());
    }
    int64_t id = s.nextSnapshot++;
    s.snapshots[id] = std::move(saved);
    return Napi::Number::New(info.Env(), static_cast<double>(id));
  });
}

Napi::Value ModelHandle::Restore(const Napi::CallbackInfo& info) {
  int64_t id = static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue());
  return locked(info.Env(), [&](ModelState& s) {
    auto it = s.snapshots.find(id);
    if (it == s.snapshots.end()) throw std::invalid_argument("no snapshot " + std::to_string(id));
    torch::NoGradGuard g;
    for (auto& e : it->second) {
      auto& dst = s.entries[std::get<0>(e)];
      const int64_t index = std::get<1>(e);
      if (index < 0) dst.copy_(std::get<2>(e));
      else dst.select(0, index).copy_(std::get<2>(e));
    }
    return info.Env().Undefined();
  });
}

Napi::Value ModelHandle::ReleaseSnapshot(const Napi::CallbackInfo& info) {
  int64_t id = static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue());
  return locked(info.Env(), [&](ModelState& s) {
    s.snapshots.erase(id);
    return info.Env().Undefined();
  });
}

// finetuneStep(batch, {targets, temperature, ceWeight, bnUpdate: 'all'|'dense-only'}) -> {total, ntxent, ce}
// (ops/training.h)
Napi::Value ModelHandle::FinetuneStep(const Napi::CallbackInfo& info) {
  BatchCall c(info, "finetuneStep options");
  FinetuneOptions fo;
  fo.temperature = c.options.num("temperature");
  fo.ceWeight = c.options.num("ceWeight");
  fo.denseOnlyBn = c.options.str("bnUpdate") == "dense-only";
  if (!s_->optimizer) throw Napi::Error::New(info.Env(), "finetuneStep: call setOptimizer first");
  return queue(
      info.Env(), c.keep, [b = c.batch, targets = c.targets, fo](ModelState& s) { return finetuneStep(s, b, targets, fo); },
      [](Napi::Env env, const FinetuneResult& r) -> Napi::Value {
        return numbers(env, {{"total", r.total}, {"ntxent", r.ntxent}, {"ce", r.ce}});
      });
}

// save(path, {epoch, loss, optimizer, extra?}) -> Promise: the original's layout (ops/state_dict.h) in the
// zip format, atomically (temporary file + rename).
Napi::Value ModelHandle::Save(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "save(path, options): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  JsOptions o(info, 1, "save options");
  SaveOptions so;
  so.epoch = o.integer("epoch");
  so.loss = o.num("loss");
  so.optimizer = o.flag("optimizer");
  try {
    if (o.has("extra")) so.extra = jsToValue(o.value("extra"));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), errorText(e));
  }
  return queue(
      info.Env(), {},
      [path, so](ModelState& s) {
        writeCheckpoint(path, checkpointValue(s, so));
        return Done{};
      },
      undefinedOf);
}

}  // namespace spurmem
