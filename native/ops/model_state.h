// The state of one model on one device, and the small device-side helpers every operation on it uses.
// N-API-free: model_handle.cc (the JS glue) reads options into the structs of ops/*.h and calls these on a
// worker thread with `mu` held.
#pragma once

#include "models/net.h"
#include "optim.h"

#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace spurmem {

/// Everything the model's operations share (kept alive by shared_ptr while work is in flight).
struct ModelState {
  std::mutex mu;
  std::shared_ptr<Net> net;
  torch::Device device{torch::kCPU};
  std::string deviceName;
  std::unique_ptr<Optimizer> optimizer;
  torch::Tensor mean, std;  // [1,3,1,1] on the device
  bool channelsLast = false;
  std::string amp;  // "" or "bf16"
  std::map<std::string, torch::Tensor> masks;  // name -> 0/1 float mask on the device
  /// Saved copies: (name, output channel or -1 for the whole tensor, values).
  std::map<int64_t, std::vector<std::tuple<std::string, int64_t, torch::Tensor>>> snapshots;
  /// Inputs of stages kept by a forward with `keep` (stage -> activation on the device), for later
  /// forwards that start there (see Net::forwardStages).
  std::map<int64_t, torch::Tensor> kept;
  int64_t nextSnapshot = 1;
  std::map<std::string, torch::Tensor> params;   // name -> parameter
  std::map<std::string, torch::Tensor> entries;  // state-dict name -> tensor
};

/// A batch of images in memory owned by the caller: uint8 NHWC RGB ([n,h,w,3], normalised on the device
/// as ToTensor + Normalize) or an already normalised float32 NCHW tensor ([n,3,h,w]).
struct BatchIn {
  const void* ptr = nullptr;
  bool u8 = true;
  int64_t n = 0, h = 0, w = 0;
};

/// Builds the net on the device (channels-last conv weights when asked), the ImageNet mean/std and the
/// name maps. Throws std::invalid_argument for bad options (see makeNet, parseDevice).
void initModel(ModelState& s, const NetOptions& no, const std::string& device, bool channelsLast,
               const std::string& amp, bool seeded, uint64_t seed);

/// The batch as a [n,3,h,w] float tensor on the device.
torch::Tensor inputTensor(ModelState& s, const BatchIn& b);
/// The net's output as float32 (bf16 autocast on CUDA when amp is "bf16").
torch::Tensor runNet(ModelState& s, const torch::Tensor& x);
/// Stages [from, to) of the net on x (the input of stage `from`); the inputs of the stages in `keep`
/// (within [from, to], `to` meaning the output) replace s.kept when `keep` is not empty. The output is float32 when `to` is the last stage (bf16 autocast on CUDA as runNet).
torch::Tensor runStages(ModelState& s, const torch::Tensor& x, int64_t from, int64_t to, const std::vector<int64_t>& keep);
/// Class indices [n] on the device; throws std::invalid_argument for one outside [0, classes).
torch::Tensor targetsTensor(ModelState& s, const std::vector<int64_t>& t, int64_t classes);
/// Installs the stored masks into the maskable modules (on) or removes them (off).
void setMasksActive(ModelState& s, bool on);
/// Whether BatchNorm layers update their running statistics in training mode.
void setBnUpdate(torch::nn::Module& m, bool on);
/// The parameter called `name`; throws std::invalid_argument naming the architecture otherwise.
torch::Tensor& paramRef(ModelState& s, const std::string& name);
/// The state-dict entry called `name`; throws std::invalid_argument otherwise.
torch::Tensor& entryRef(ModelState& s, const std::string& name);
/// Rebuilds `params` and `entries` from the net.
void refreshMaps(ModelState& s);
/// Parameters in registration order (the optimiser's order).
std::vector<torch::Tensor> orderedParams(ModelState& s);

}  // namespace spurmem
