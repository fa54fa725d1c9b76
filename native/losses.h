// Losses of the original code, written once for every caller.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace spurmem {

/// CrossEntropyLoss(reduction='none') of `outputs` [B, C] treated as logits, against class indices
/// `targets` [B]: -log_softmax(outputs)[target]. With the original's softmax head the outputs are
/// probabilities, so this is its double softmax (loss bounded in [0.3133, 1.3133] for two classes).
/// With the one-hot [y, 1-y] float targets of the original it is the same number.
inline torch::Tensor perSampleCrossEntropy(const torch::Tensor& outputs, const torch::Tensor& targets) {
  return -torch::log_softmax(outputs, 1).gather(1, targets.unsqueeze(1)).squeeze(1);
}

/// The gradient of the batch-mean cross-entropy on logits, `mean_i CE(logits_i, target_i)`, with respect
/// to `logits` [B, C], multiplied by 2^scaleLog2 so that it survives float32 when every sample is fitted
/// with a huge margin. The exact gradient of sample i is (p_i - onehot_i) / B with p = softmax(z); PyTorch
/// computes its wrong-class entries as exp(log_softmax(z)), which become exactly 0 once a margin passes
/// about 104 (exp underflows; the true-class entry p_t - 1 is already 0 past a margin of about 17), so a
/// batch of such samples has no gradient at all. Here the wrong-class entries are
/// exp(log_softmax(z) + scaleLog2 * ln 2) / B and the true-class entry is minus their sum (the exact value
/// of p_t - 1, which does not round to 0). scaleLog2 is 0 unless even the least-fitted sample's largest
/// wrong-class log-probability q is below -30; then it is floor(-q / ln 2), which brings that sample's
/// terms near 1. Scaling by a power of two is exact in floating point, so the backward pass gives
/// 2^scaleLog2 times the gradients (rankings are unchanged); callers divide what they report by
/// 2^scaleLog2. With scaleLog2 = 0 the result equals PyTorch's within float32 rounding wherever PyTorch's
/// does not round to 0. `loss` receives the unscaled mean cross-entropy.
inline torch::Tensor scaledLogitsCrossEntropyGrad(const torch::Tensor& logits, const torch::Tensor& targets, int64_t& scaleLog2, double& loss) {
  auto z = logits.detach().to(torch::kFloat);
  const int64_t B = z.size(0), C = z.size(1);
  auto logp = torch::log_softmax(z, 1);
  auto isTarget = torch::zeros_like(logp).scatter_(1, targets.unsqueeze(1), 1.0).to(torch::kBool);
  loss = (-logp.gather(1, targets.unsqueeze(1))).mean().item<double>();
  // the wrong-class log-probabilities (-inf at the targets, so exp gives 0 there and never overflows)
  auto wrong = logp.masked_fill(isTarget, -std::numeric_limits<float>::infinity());
  scaleLog2 = 0;
  if (C > 1) {
    double q = std::get<0>(wrong.max(1)).max().item<double>();  // the least-fitted sample's
    if (std::isfinite(q) && q < -30.0) scaleLog2 = static_cast<int64_t>(std::floor(-q / std::log(2.0)));
  }
  auto wrongPart = torch::exp(wrong + static_cast<double>(scaleLog2) * std::log(2.0));
  auto g = torch::where(isTarget, -wrongPart.sum(1, true).expand_as(wrongPart), wrongPart);
  return g / static_cast<double>(B);
}

/// NT-Xent with two views (the original's nt_xent, SimCLR form). a, b: [B, D]. Rows are L2-normalised,
/// the 2B rows are compared by cosine / temperature; row i's positive is its partner in the other view,
/// its negatives the other 2B-2 rows (self excluded). Returns the mean over the 2B rows of
/// -log(e^pos / (e^pos + sum e^neg)).
inline torch::Tensor ntXent(const torch::Tensor& a, const torch::Tensor& b, double temperature) {
  const int64_t B = a.size(0);
  auto z = torch::nn::functional::normalize(torch::cat({a, b}, 0), torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto sim = torch::matmul(z, z.t()) / temperature;
  auto self = torch::eye(2 * B, torch::TensorOptions().dtype(torch::kBool).device(sim.device()));
  sim = sim.masked_fill(self, -std::numeric_limits<double>::infinity());
  auto idx = torch::arange(2 * B, torch::TensorOptions().dtype(torch::kLong).device(sim.device()));
  auto partner = torch::where(idx.lt(B), idx + B, idx - B);
  return torch::nll_loss(torch::log_softmax(sim, 1), partner);
}

}  // namespace spurmem
