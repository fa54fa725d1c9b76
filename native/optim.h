// Adam and SGD with PyTorch's update rules (torch/optim/adam.py and sgd.py, single-tensor path), and
// their state dicts in the layout torch.optim writes, so that spurmem's checkpoints resume in PyTorch.
#pragma once

#include "checkpoint/value.h"

#include <string>
#include <vector>

namespace spurmem {

/// Every value comes from TypeScript (Model.setOptimizer holds torch.optim's defaults).
struct OptimizerOptions {
  std::string type;  // adam | sgd
  double lr = 0;
  double beta1 = 0, beta2 = 0, eps = 0;
  double weightDecay = 0.0;
  double momentum = 0.0, dampening = 0.0;
  bool nesterov = false;
};

class Optimizer {
 public:
  Optimizer(std::vector<torch::Tensor> params, OptimizerOptions o);
  /// One update from the parameters' .grad (parameters without a gradient are skipped, as in PyTorch).
  void step();
  void zeroGrad();
  OptimizerOptions opts;
  /// {'state': {i: {...}}, 'param_groups': [{..., 'params': [0..n-1]}]} as torch.optim's state_dict().
  ValuePtr stateDict() const;
  /// Restores the state written by stateDict() (or by PyTorch for the same parameter order).
  /// Throws std::invalid_argument naming the bad entry.
  void loadStateDict(const ValuePtr& sd);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<int64_t> step_;
  std::vector<torch::Tensor> expAvg_, expAvgSq_, momentum_;
};

}  // namespace spurmem
