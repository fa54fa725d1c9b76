// The Model glue of the weight edits and masks (Part I's modifications, Part II's masks): reads the options,
// runs ops/weight_edits.h on the model's queue and marshals the results. ModelHandle's other methods are in
// model_handle.cc.
#include "checkpoint_handle.h"
#include "errors.h"
#include "js_convert.h"
#include "model_glue.h"
#include "model_handle.h"
#include "ops/weight_edits.h"

namespace spurmem {

namespace {

using glue::channelList;
using glue::Done;
using glue::numbers;
using glue::undefinedOf;

/// The state dict of a checkpoint at a path (options.<ckKey> at options.<pathKey>), the checkpoint kept
/// alive in `keep` until the work has finished.
RewindSource sourceArg(const JsOptions& o, const char* ckKey, const char* pathKey, std::vector<Napi::Value>& keep) {
  auto* ck = CheckpointHandle::From(o.value(ckKey), (o.what + "." + ckKey).c_str());
  RewindSource src;
  try {
    src.stateDict = ck->at(pathArg(o.value(pathKey)));
  } catch (const std::exception& e) {
    throw Napi::Error::New(o.env, errorText(e));
  }
  src.file = ck->ckpt.path;
  keep.push_back(o.value(ckKey));
  return src;
}


ModifyOptions modifyArg(const JsOptions& o, std::vector<Napi::Value>& keep) {
  ModifyOptions m;
  m.mode = o.str("mode");
  m.std = o.num("std");
  m.seed = static_cast<uint64_t>(o.integer("seed"));
  if (m.mode == "rewind" || m.mode == "layer_rewind") m.source = sourceArg(o, "source", "sourcePath", keep);
  return m;
}

}  // namespace

// modifyChannels({edits: [{name, index}], mode, std, seed, source?, sourcePath?}) (ops/weight_edits.h)
Napi::Value ModelHandle::ModifyChannels(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "modifyChannels options");
  auto edits = channelList(o, "edits");
  std::vector<Napi::Value> keep;
  auto mo = modifyArg(o, keep);
  return queue(
      info.Env(), keep,
      [edits, mo](ModelState& s) {
        modifyChannels(s, edits, mo);
        return Done{};
      },
      undefinedOf);
}

// modifyThreshold({names, k, smallest, dropoutP, mode, std, seed, distribution, faithful, source?, sourcePath?})
//   -> {k, threshold, selected: {name: count}} (ops/weight_edits.h)
Napi::Value ModelHandle::ModifyThreshold(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "modifyThreshold options");
  std::vector<Napi::Value> keep;
  ThresholdOptions to;
  to.names = o.strings("names");
  to.k = o.integer("k");
  to.smallest = o.flag("smallest");
  to.faithful = o.flag("faithful");
  to.dropoutP = o.num("dropoutP");
  to.uniform = o.str("distribution") == "uniform";
  to.modify = modifyArg(o, keep);
  return queue(
      info.Env(), keep, [to](ModelState& s) { return modifyThreshold(s, to); },
      [](Napi::Env env, const ThresholdResult& r) -> Napi::Value {
        auto o = numbers(env, {{"k", static_cast<double>(r.k)}, {"threshold", r.threshold}});
        auto c = Napi::Object::New(env);
        for (auto& kv : r.selected) c.Set(kv.first, static_cast<double>(kv.second));
        o.Set("selected", c);
        return o;
      });
}

// maskMagnitude({names, k, largest}) -> {k} (ops/weight_edits.h)
Napi::Value ModelHandle::MaskMagnitude(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "maskMagnitude options");
  auto names = o.strings("names");
  const int64_t k = o.integer("k");
  const bool largest = o.flag("largest");
  return queue(
      info.Env(), {},
      [names, k, largest](ModelState& s) {
        maskMagnitude(s, names, k, largest);
        return k;
      },
      [](Napi::Env env, int64_t k) -> Napi::Value { return numbers(env, {{"k", static_cast<double>(k)}}); });
}

// maskChannels({channels: [{name, index}]}): zero whole output channels of the masks (AND).
Napi::Value ModelHandle::MaskChannels(const Napi::CallbackInfo& info) {
  JsOptions o(info, 0, "maskChannels options");
  auto channels = channelList(o, "channels");
  return locked(info.Env(), [&](ModelState& s) {
    maskChannels(s, channels);
    return info.Env().Undefined();
  });
}

Napi::Value ModelHandle::ClearMasks(const Napi::CallbackInfo& info) {
  return locked(info.Env(), [&](ModelState& s) {
    s.masks.clear();
    setMasksActive(s, false);
    return info.Env().Undefined();
  });
}

// maskStats() -> {name: share of the weight that is masked}
Napi::Value ModelHandle::MaskStats(const Napi::CallbackInfo& info) {
  return locked(info.Env(), [&](ModelState& s) -> Napi::Value {
    auto o = Napi::Object::New(info.Env());
    for (auto& kv : maskStats(s)) o.Set(kv.first, kv.second);
    return o;
  });
}

}  // namespace spurmem
