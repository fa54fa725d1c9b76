#include "ops/model_state.h"

#include "device.h"
#include "torch_compat.h"

#include <stdexcept>

namespace spurmem {

namespace {

/// Enables bf16 autocast on CUDA for the scope (a no-op unless amp == "bf16" on a CUDA device).
struct AutocastScope {
  bool on = false;
  explicit AutocastScope(const ModelState& s) {
    if (s.amp != "bf16" || !s.device.is_cuda()) return;
    on = true;
    compat::setCudaBf16Autocast(true);
  }
  ~AutocastScope() {
    if (on) compat::setCudaBf16Autocast(false);
  }
};

}  // namespace

void initModel(ModelState& s, const NetOptions& no, const std::string& device, bool channelsLast,
               const std::string& amp, bool seeded, uint64_t seed) {
  s.deviceName = device;
  s.device = parseDevice(device);
  s.channelsLast = channelsLast;
  s.amp = amp;
  if (seeded) torch::manual_seed(seed);
  s.net = makeNet(no);
  s.net->to(s.device);
  if (s.channelsLast) {
    torch::NoGradGuard g;
    for (auto& p : s.net->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  std::vector<float> mean = {0.485f, 0.456f, 0.406f}, stdv = {0.229f, 0.224f, 0.225f};
  s.mean = torch::tensor(mean).view({1, 3, 1, 1}).to(s.device);
  s.std = torch::tensor(stdv).view({1, 3, 1, 1}).to(s.device);
  refreshMaps(s);
}

torch::Tensor inputTensor(ModelState& s, const BatchIn& b) {
  torch::Tensor x;
  if (b.u8) {
    auto raw = torch::from_blob(const_cast<void*>(b.ptr), {b.n, b.h, b.w, 3}, torch::kUInt8);
    // uint8 goes to the device; conversion and normalisation happen there (as ToTensor + Normalize)
    x = raw.to(s.device).permute({0, 3, 1, 2}).to(torch::kFloat).div_(255.0);
    x = x.sub_(s.mean).div_(s.std);
  } else {
    x = torch::from_blob(const_cast<void*>(b.ptr), {b.n, 3, b.h, b.w}, torch::kFloat).to(s.device);
    if (!s.device.is_cuda()) x = x.clone();
  }
  return s.channelsLast ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x.contiguous();
}

torch::Tensor runNet(ModelState& s, const torch::Tensor& x) {
  AutocastScope ac(s);
  return s.net->forward(x).to(torch::kFloat);
}

torch::Tensor runStages(ModelState& s, const torch::Tensor& x, int64_t from, int64_t to, const std::vector<int64_t>& keep) {
  AutocastScope ac(s);
  Net::StageInput onInput;
  if (!keep.empty()) {
    s.kept.clear();
    onInput = [&s, &keep](int64_t stage, const torch::Tensor& in) {
      for (auto k : keep)
        if (k == stage) s.kept[stage] = in;
    };
  }
  auto y = s.net->forwardStages(x, from, to, onInput);
  for (auto k : keep)
    if (k == to) s.kept[to] = y;
  return to == s.net->numStages() ? y.to(torch::kFloat) : y;
}

torch::Tensor targetsTensor(ModelState& s, const std::vector<int64_t>& t, int64_t classes) {
  for (auto v : t)
    if (v < 0 || v >= classes) throw std::invalid_argument("target class " + std::to_string(v) + " outside [0, " + std::to_string(classes) + ")");
  return torch::tensor(t, torch::kLong).to(s.device);
}

void setMasksActive(ModelState& s, bool on) {
  for (auto& kv : s.net->maskSlots) {
    auto it = s.masks.find(kv.first);
    *kv.second = (on && it != s.masks.end()) ? it->second : torch::Tensor();
  }
}

void setBnUpdate(torch::nn::Module& m, bool on) {
  if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(&m)) bn->update_stats = on;
  for (auto& c : m.children()) setBnUpdate(*c, on);
}

torch::Tensor& paramRef(ModelState& s, const std::string& name) {
  auto it = s.params.find(name);
  if (it == s.params.end()) throw std::invalid_argument("model " + s.net->opts.arch + " has no parameter '" + name + "'");
  return it->second;
}

torch::Tensor& entryRef(ModelState& s, const std::string& name) {
  auto it = s.entries.find(name);
  if (it == s.entries.end()) throw std::invalid_argument("model has no state entry '" + name + "'");
  return it->second;
}

void refreshMaps(ModelState& s) {
  s.params.clear();
  s.entries.clear();
  for (auto& p : s.net->namedParameters()) s.params[p.first] = p.second;
  for (auto& e : s.net->stateDict()) s.entries[e.first] = e.second;
}

std::vector<torch::Tensor> orderedParams(ModelState& s) {
  std::vector<torch::Tensor> out;
  for (auto& p : s.net->namedParameters()) out.push_back(p.second);
  return out;
}

}  // namespace spurmem
