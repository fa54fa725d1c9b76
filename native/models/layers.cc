#include "models/layers.h"

namespace spurmem {

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t stride_, int64_t padding_, bool withBias)
    : stride(stride_), padding(padding_) {
  weight = register_parameter("weight", torch::empty({out, in, k, k}));
  torch::NoGradGuard g;
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
  if (withBias) {
    bias = register_parameter("bias", torch::empty({out}));
    double bound = 1.0 / std::sqrt(static_cast<double>(in * k * k));
    bias.uniform_(-bound, bound);
  }
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor w = mask.defined() ? weight * mask : weight;
  return torch::conv2d(x, w, bias, {stride, stride}, {padding, padding});
}

BatchNorm2dImpl::BatchNorm2dImpl(int64_t c) {
  weight = register_parameter("weight", torch::ones({c}));
  bias = register_parameter("bias", torch::zeros({c}));
  running_mean = register_buffer("running_mean", torch::zeros({c}));
  running_var = register_buffer("running_var", torch::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (is_training() && update_stats) {
    {
      torch::NoGradGuard g;
      num_batches_tracked.add_(1);
    }
    return torch::batch_norm(x, weight, bias, running_mean, running_var, true, 0.1, 1e-5, true);
  }
  if (is_training()) return torch::batch_norm(x, weight, bias, {}, {}, true, 0.1, 1e-5, true);
  return torch::batch_norm(x, weight, bias, running_mean, running_var, false, 0.1, 1e-5, true);
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool withBias) {
  weight = register_parameter("weight", torch::empty({out, in}));
  torch::NoGradGuard g;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (withBias) {
    bias = register_parameter("bias", torch::empty({out}));
    double bound = in > 0 ? 1.0 / std::sqrt(static_cast<double>(in)) : 0.0;
    bias.uniform_(-bound, bound);
  }
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor w = mask.defined() ? weight * mask : weight;
  return torch::linear(x, w, bias);
}

LayerNormImpl::LayerNormImpl(int64_t d, double e) : eps(e), dim(d) {
  weight = register_parameter("weight", torch::ones({d}));
  bias = register_parameter("bias", torch::zeros({d}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {dim}, weight, bias, eps);
}

}  // namespace spurmem
