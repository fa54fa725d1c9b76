// JS class `Model` (native side; TypeScript's Model class in src/model/model.ts owns it): one network on
// one device. Glue only: each method reads one plain options object that TypeScript has validated and
// completed into the structs of ops/*.h, runs the algorithm (on a worker thread for long work, returning a
// Promise) and marshals the result. Calls on one Model are serialised by a mutex.
#pragma once

#include "async.h"
#include "ops/model_state.h"

#include <napi.h>

#include <memory>
#include <mutex>
#include <utility>

namespace spurmem {

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ModelHandle(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<ModelState> s_;

  /// The skeleton of every asynchronous method: `work(ModelState&)` runs on a worker thread with the
  /// model's lock held and returns a result; `marshal(env, result)` turns it into the Promise's value on
  /// the JS thread. `keep` stays referenced until then (typed arrays and checkpoints the work reads).
  template <class Work, class Marshal>
  Napi::Value queue(Napi::Env env, std::vector<Napi::Value> keep, Work work, Marshal marshal) {
    using R = decltype(work(std::declval<ModelState&>()));
    auto s = s_;
    auto r = std::make_shared<R>();
    return runAsync(
        env,
        [s, r, work]() {
          std::lock_guard<std::mutex> lock(s->mu);
          *r = work(*s);
        },
        [r, marshal](Napi::Env env) -> Napi::Value { return marshal(env, *r); }, std::move(keep));
  }

  /// A short method on the JS thread: `f(ModelState&)` with the lock held; a native error becomes an Error
  /// with its text (no libtorch backtrace).
  template <class F>
  Napi::Value locked(Napi::Env env, F f) {
    std::lock_guard<std::mutex> lock(s_->mu);
    try {
      return f(*s_);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, errorText(e));
    }
  }

  // the model and its weights
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  // batches: forward, training steps, gradients
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ReleaseActivations(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value FinetuneStep(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);
  // the optimizer
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info);
  Napi::Value SetLearningRate(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info);
  // tensors and snapshots
  Napi::Value ChannelNorms(const Napi::CallbackInfo& info);
  Napi::Value GetTensor(const Napi::CallbackInfo& info);
  Napi::Value SetTensor(const Napi::CallbackInfo& info);
  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value SnapshotChannels(const Napi::CallbackInfo& info);
  Napi::Value Restore(const Napi::CallbackInfo& info);
  Napi::Value ReleaseSnapshot(const Napi::CallbackInfo& info);
  // weight edits
  Napi::Value ModifyChannels(const Napi::CallbackInfo& info);
  Napi::Value ModifyThreshold(const Napi::CallbackInfo& info);
  // masks (finetune-prune)
  Napi::Value MaskMagnitude(const Napi::CallbackInfo& info);
  Napi::Value MaskChannels(const Napi::CallbackInfo& info);
  Napi::Value ClearMasks(const Napi::CallbackInfo& info);
  Napi::Value MaskStats(const Napi::CallbackInfo& info);
};

}  // namespace spurmem
