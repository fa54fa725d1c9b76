// torchvision ResNets (models/resnet.py): the same module tree, parameter and buffer names, and
// initialisation (kaiming-normal fan_out convs, BatchNorm weight 1 / bias 0, no zero-init of residuals).
#pragma once

#include "models/net.h"

namespace spurmem {

/// A ResNet of NetOptions::block and NetOptions::layers (resnet18: basic 2-2-2-2, resnet50: bottleneck
/// 3-4-6-3) with a `fc` head (see NetOptions::softmaxHead).
struct ResNet : Net {
  explicit ResNet(const NetOptions& o);
  torch::Tensor runStage(int64_t stage, const torch::Tensor& x) override;
  int64_t numStages() const override { return static_cast<int64_t>(blocks.size()) + 2; }
  /// conv1/bn1: 0; layer<l>.<b>.*: 1 + the blocks before it; fc: the last stage.
  int64_t stageOf(const std::string& name) const override;
  std::string headName() const override { return "fc"; }

  Conv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr};
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> blocks;
};

}  // namespace spurmem
