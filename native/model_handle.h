// JS class `Model`: one network on one device, with everything spurmem does to it in native code
// (forward, training steps, gradients, channel statistics, weight edits, masks, checkpoints).
//
// Every method takes one plain options object that TypeScript has already validated. Long work runs on
// a worker thread and returns a Promise; calls on one Model are serialised by a mutex.
#pragma once

#include "models/net.h"
#include "optim.h"

#include <napi.h>

#include <map>
#include <memory>
#include <mutex>

namespace spurmem {

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ModelHandle(const Napi::CallbackInfo& info);

  /// State shared with worker threads (kept alive by shared_ptr while work is in flight).
  struct State {
    std::mutex mu;
    std::shared_ptr<Net> net;
    torch::Device device{torch::kCPU};
    std::string deviceName;
    std::unique_ptr<Optimizer> optimizer;
    torch::Tensor mean, std;  // [1,3,1,1] on the device
    bool channelsLast = false;
    std::string amp;  // "" or "bf16"
    std::map<std::string, torch::Tensor> masks;  // name -> 0/1 float mask on the device
    std::map<int64_t, std::vector<std::pair<std::string, torch::Tensor>>> snapshots;
    int64_t nextSnapshot = 1;
    std::map<std::string, torch::Tensor> params;  // name -> parameter
    std::map<std::string, torch::Tensor> entries;  // state-dict name -> tensor
  };

 private:
  std::shared_ptr<State> s_;

  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info);
  Napi::Value SetLearningRate(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value ChannelNorms(const Napi::CallbackInfo& info);
  Napi::Value GetTensor(const Napi::CallbackInfo& info);
  Napi::Value SetTensor(const Napi::CallbackInfo& info);
  Napi::Value Snapshot(const Napi::CallbackInfo& info);
  Napi::Value Restore(const Napi::CallbackInfo& info);
  Napi::Value ReleaseSnapshot(const Napi::CallbackInfo& info);
  Napi::Value ModifyChannels(const Napi::CallbackInfo& info);
  Napi::Value ModifyThreshold(const Napi::CallbackInfo& info);
  Napi::Value MaskMagnitude(const Napi::CallbackInfo& info);
  Napi::Value MaskChannels(const Napi::CallbackInfo& info);
  Napi::Value ClearMasks(const Napi::CallbackInfo& info);
  Napi::Value MaskStats(const Napi::CallbackInfo& info);
  Napi::Value FinetuneStep(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
};

}  // namespace spurmem
