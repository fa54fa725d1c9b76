// Losses of the original code, written once for every caller.
#pragma once

#include <torch/torch.h>

namespace spurmem {

/// CrossEntropyLoss(reduction='none') of `outputs` [B, C] treated as logits, against class indices
/// `targets` [B]: -log_softmax(outputs)[target]. With the original's softmax head the outputs are
/// probabilities, so this is its double softmax (loss bounded in [0.3133, 1.3133] for two classes).
/// With the one-hot [y, 1-y] float targets of the original it is the same number.
inline torch::Tensor perSampleCrossEntropy(const torch::Tensor& outputs, const torch::Tensor& targets) {
  return -torch::log_softmax(outputs, 1).gather(1, targets.unsqueeze(1)).squeeze(1);
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
