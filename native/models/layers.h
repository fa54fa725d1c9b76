// Layers with PyTorch's parameter names and initialisation, written out so that a weight mask can
// multiply the weight in the forward pass (finetune-prune) without touching the stored weight.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <string>

namespace spurmem {

/// Conv2d without bias (as every torchvision ResNet conv) or with bias (the ViT patch embedding).
/// weight: [out, in, kh, kw]. Init: kaiming_normal_(fan_out, relu) as torchvision's ResNet does.
struct Conv2dImpl : torch::nn::Module {
  Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  torch::Tensor mask;  // same shape as weight, or undefined (no mask)
  int64_t stride, padding;
};
TORCH_MODULE(Conv2d);

/// BatchNorm2d with PyTorch's names (weight, bias, running_mean, running_var, num_batches_tracked),
/// momentum 0.1, eps 1e-5. In training mode it updates the running statistics and the counter.
struct BatchNorm2dImpl : torch::nn::Module {
  explicit BatchNorm2dImpl(int64_t c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  /// When false, a training-mode forward normalises with batch statistics but leaves the running
  /// statistics alone (finetune-prune's `--bn-update dense-only` for the masked pass).
  bool update_stats = true;
};
TORCH_MODULE(BatchNorm2d);

/// Linear: weight [out, in], bias [out]. Init as torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) for the
/// weight, U(-1/sqrt(in), 1/sqrt(in)) for the bias.
struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  torch::Tensor mask;
};
TORCH_MODULE(Linear);

/// LayerNorm over the last dimension with elementwise affine weight and bias.
struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  double eps;
  int64_t dim;
};
TORCH_MODULE(LayerNorm);

/// A module that only holds named children ("0", "1", ...), like torch.nn.Sequential's naming.
struct ContainerImpl : torch::nn::Module {};
TORCH_MODULE(Container);

}  // namespace spurmem
