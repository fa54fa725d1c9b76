#include "models/net.h"

#include "models/resnet.h"
#include "models/vit.h"

#include <functional>
#include <stdexcept>

namespace spurmem {

std::vector<std::pair<std::string, torch::Tensor>> Net::stateDict() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::function<void(torch::nn::Module&, const std::string&)> walk = [&](torch::nn::Module& m, const std::string& prefix) {
    for (const auto& p : m.named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : m.named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
    for (const auto& c : m.named_children()) walk(*c.value(), prefix + c.key() + ".");
  };
  walk(*this, "");
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> Net::namedParameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::function<void(torch::nn::Module&, const std::string&)> walk = [&](torch::nn::Module& m, const std::string& prefix) {
    for (const auto& p : m.named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& c : m.named_children()) walk(*c.value(), prefix + c.key() + ".");
  };
  walk(*this, "");
  return out;
}

torch::Tensor Net::forwardStages(const torch::Tensor& x, int64_t from, int64_t to, const StageInput& onInput) {
  checkStageRange(opts.arch, from, to, numStages());
  torch::Tensor y = x;
  for (int64_t st = from; st < to; ++st) {
    if (onInput) onInput(st, y);
    y = runStage(st, y);
  }
  return y;
}

torch::Tensor Net::head(const torch::Tensor& features) {
  torch::Tensor y = headLinear->forward(features);
  return opts.softmaxHead && !headLogits ? torch::softmax(y, 1) : y;
}

void Net::registerHead(const std::string& name, int64_t features) {
  headLinear = Linear(features, opts.numClasses);
  if (opts.softmaxHead) {
    Container c;
    c->register_module("0", headLinear);
    register_module(name, c);
  } else {
    register_module(name, headLinear);
  }
}

void Net::collectMaskSlots() {
  maskSlots.clear();
  std::function<void(torch::nn::Module&, const std::string&)> walk = [&](torch::nn::Module& m, const std::string& prefix) {
    if (auto* conv = dynamic_cast<Conv2dImpl*>(&m)) maskSlots[prefix + "weight"] = &conv->mask;
    for (const auto& c : m.named_children()) walk(*c.value(), prefix + c.key() + ".");
  };
  walk(*this, "");
}

void checkStageRange(const std::string& arch, int64_t from, int64_t to, int64_t stages) {
  if (from < 0 || to > stages || from >= to)
    throw std::invalid_argument(arch + ": stage range [" + std::to_string(from) + ", " + std::to_string(to) + ") is not within [0, " +
                                std::to_string(stages) + ") or is empty");
}

std::shared_ptr<Net> makeNet(const NetOptions& o) {
  if (o.family == "resnet") return std::make_shared<ResNet>(o);
  if (o.family == "vit") return std::make_shared<VisionTransformer>(o);
  throw std::invalid_argument("unknown model family '" + o.family + "' for " + o.arch);
}

}  // namespace spurmem
