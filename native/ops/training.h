// Training steps and gradients of one batch: the loss compositions of the original code (ERM's weighted
// cross-entropy, Part II's NT-Xent + CE), one backward pass and one optimizer step. N-API-free; each runs
// with the model's lock held.
#pragma once

#include "ops/model_state.h"

#include <string>
#include <vector>

namespace spurmem {

struct StepResult {
  double loss = 0;
  torch::Tensor outputs;  // [n, classes] on the CPU; undefined when the loss was not finite (no step taken)
};

/// loss = mean_i(w_i * CE(output_i, target_i)) (w = 1 when `weights` is empty) with CE on the head's
/// output (the original's double softmax with the softmax head); backward and one optimizer step unless
/// the loss is not finite (the weights are then left as they were).
StepResult trainStep(ModelState& s, const BatchIn& b, const std::vector<int64_t>& targets, const std::vector<float>& weights);

struct GradientsOptions {
  std::vector<std::string> names;  // parameters (every one when empty)
  bool train = false;              // BatchNorm in training mode (else running statistics)
  bool raw = false;                // return the gradients too
  bool logits = false;             // CE on the head's Linear output, scaled (see losses.h), else on its output
};

struct GradientsResult {
  double loss = 0;
  int64_t scaleLog2 = 0;
  std::vector<std::string> names;
  std::vector<torch::Tensor> norms, grads;  // CPU; norms: the L2 norm of each output channel's gradient
};

/// One backward pass of the batch-mean cross-entropy. With `logits` the gradient is 2^scaleLog2 times the
/// true one (so that it does not underflow when every sample is fitted with a huge margin).
GradientsResult gradients(ModelState& s, const BatchIn& b, const std::vector<int64_t>& targets, const GradientsOptions& o);

/// Every value comes from TypeScript (the option table holds the defaults: temperature 0.5, CE weight 0.2).
struct FinetuneOptions {
  double temperature = 0;
  double ceWeight = 0;
  bool denseOnlyBn = false;  // BatchNorm statistics updated by the dense pass only
};

struct FinetuneResult {
  double total = 0, ntxent = 0, ce = 0;
};

/// The original's Part II step: f1 = dense output (no grad), f2 = masked output, L = NTXent(f1, f2) +
/// NTXent(f1', sg(f2)) + ceWeight * CE(f1', y) with f1' = dense output with grad; one optimizer step
/// when L is finite.
FinetuneResult finetuneStep(ModelState& s, const BatchIn& b, const std::vector<int64_t>& targets, const FinetuneOptions& o);

/// L2 norm of each output channel (row) of `t` ([c, ...] -> [c]); |t| for 1-D tensors.
torch::Tensor channelNorm(const torch::Tensor& t);

}  // namespace spurmem
