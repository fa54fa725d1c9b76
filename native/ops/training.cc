#include "ops/training.h"

#include "losses.h"

#include <cmath>

namespace spurmem {

torch::Tensor channelNorm(const torch::Tensor& t) {
  if (t.dim() >= 2) return t.detach().flatten(1).to(torch::kFloat).norm(2, {1});
  return t.detach().to(torch::kFloat).abs();
}

StepResult trainStep(ModelState& s, const BatchIn& b, const std::vector<int64_t>& targets, const std::vector<float>& weights) {
  StepResult r;
  s.net->train(true);
  setMasksActive(s, false);
  auto x = inputTensor(s, b);
  auto t = targetsTensor(s, targets, s.net->opts.numClasses);
  auto out = runNet(s, x);
  auto per = perSampleCrossEntropy(out, t);
  if (!weights.empty()) per = per * torch::tensor(weights).to(s.device);
  auto loss = per.mean();
  s.optimizer->zeroGrad();
  loss.backward();
  r.loss = loss.item<double>();
  if (!std::isfinite(r.loss)) return r;  // the caller stops; the weights are left as they were
  s.optimizer->step();
  r.outputs = out.detach().to(torch::kCPU);
  return r;
}

GradientsResult gradients(ModelState& s, const BatchIn& b, const std::vector<int64_t>& targets, const GradientsOptions& o) {
  GradientsResult r;
  std::vector<torch::Tensor> ps;
  r.names = o.names;
  if (r.names.empty())
    for (auto& p : s.net->namedParameters()) r.names.push_back(p.first);
  for (const auto& n : r.names) ps.push_back(paramRef(s, n));
  s.net->train(o.train);
  setMasksActive(s, false);
  auto x = inputTensor(s, b);
  auto t = targetsTensor(s, targets, s.net->opts.numClasses);
  std::vector<torch::Tensor> gs;
  if (o.logits) {
    LogitsScope scope(*s.net, true);
    auto z = runNet(s, x);
    auto g = scaledLogitsCrossEntropyGrad(z, t, r.scaleLog2, r.loss);
    gs = torch::autograd::grad({z}, ps, {g}, false, false, true);
  } else {
    auto loss = perSampleCrossEntropy(runNet(s, x), t).mean();
    gs = torch::autograd::grad({loss}, ps, {}, false, false, true);
    r.loss = loss.item<double>();
  }
  for (size_t i = 0; i < gs.size(); ++i) {
    torch::Tensor g = gs[i].defined() ? gs[i] : torch::zeros_like(ps[i]);
    r.norms.push_back(channelNorm(g).to(torch::kCPU));
    if (o.raw) r.grads.push_back(g.to(torch::kCPU));
  }
  return r;
}

FinetuneResult finetuneStep(ModelState& s, const BatchIn& b, const std::vector<int64_t>& targets, const FinetuneOptions& o) {
  FinetuneResult r;
  s.net->train(true);
  auto x = inputTensor(s, b);
  auto t = targetsTensor(s, targets, s.net->opts.numClasses);
  torch::Tensor f1;
  {
    torch::NoGradGuard g;
    setMasksActive(s, false);
    f1 = runNet(s, x).detach();
  }
  setMasksActive(s, true);
  if (o.denseOnlyBn) setBnUpdate(*s.net, false);
  torch::Tensor f2;
  try {
    f2 = runNet(s, x);
  } catch (...) {
    setBnUpdate(*s.net, true);
    setMasksActive(s, false);
    throw;
  }
  setBnUpdate(*s.net, true);
  setMasksActive(s, false);
  auto l1 = ntXent(f1, f2, o.temperature);
  auto f1b = runNet(s, x);
  auto l2 = ntXent(f1b, f2.detach(), o.temperature);
  auto ce = perSampleCrossEntropy(f1b, t).mean();
  auto total = l1 + l2 + ce * o.ceWeight;
  s.optimizer->zeroGrad();
  total.backward();
  r.total = total.item<double>();
  r.ntxent = (l1 + l2).item<double>();
  r.ce = ce.item<double>();
  if (std::isfinite(r.total)) s.optimizer->step();
  return r;
}

}  // namespace spurmem
