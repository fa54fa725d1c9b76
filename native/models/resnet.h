// torchvision ResNets (models/resnet.py): the same module tree, parameter and buffer names, and
// initialisation (kaiming-normal fan_out convs, BatchNorm weight 1 / bias 0, no zero-init of residuals).
#pragma once

#include "models/net.h"

namespace spurmem {

/// BasicBlock (ResNet-18/34): conv3x3-bn-relu-conv3x3-bn + identity or downsample (conv1x1-bn).
struct BasicBlockImpl : torch::nn::Module {
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
  Container downsample{nullptr};
  Conv2d dsConv{nullptr};
  BatchNorm2d dsBn{nullptr};
};
TORCH_MODULE(BasicBlock);

/// Bottleneck (ResNet-50/101), torchvision v1.5: the stride sits on the 3x3 conv.
struct BottleneckImpl : torch::nn::Module {
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  Container downsample{nullptr};
  Conv2d dsConv{nullptr};
  BatchNorm2d dsBn{nullptr};
};
TORCH_MODULE(Bottleneck);

/// resnet18 | resnet34 | resnet50 | resnet101 with a `fc` head (see NetOptions::softmaxHead).
struct ResNet : Net {
  explicit ResNet(const NetOptions& o);
  torch::Tensor forward(const torch::Tensor& x) override;
  std::string headName() const override { return "fc"; }

  Conv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr};
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> blocks;
};

}  // namespace spurmem
