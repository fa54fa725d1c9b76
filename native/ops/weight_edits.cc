#include "ops/weight_edits.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <stdexcept>

namespace spurmem {

namespace {

torch::Tensor tensorFromSource(const RewindSource& src, const std::string& name, const torch::Tensor& like) {
  ValuePtr v = src.stateDict ? src.stateDict->get(name) : nullptr;
  if (!v || v->kind != Kind::Tensor) throw std::invalid_argument(src.file + ": rewind source has no tensor '" + name + "'");
  if (v->tensor.sizes() != like.sizes()) throw std::invalid_argument(src.file + ": rewind source '" + name + "' has another shape");
  return v->tensor.to(like.options());
}

/// Exactly k elements of `absPool` (1-D) by |value|: the largest (or smallest); ties go to the lower index.
torch::Tensor selectExactly(const torch::Tensor& absPool, int64_t k, bool largest) {
  const int64_t n = absPool.numel();
  if (k <= 0) return torch::zeros({n}, absPool.options().dtype(torch::kBool));
  if (k >= n) return torch::ones({n}, absPool.options().dtype(torch::kBool));
  // kthvalue is 1-based over ascending order
  int64_t pos = largest ? n - k + 1 : k;
  auto t = std::get<0>(torch::kthvalue(absPool.to(torch::kCPU), pos)).to(absPool.device());
  auto strict = largest ? absPool.gt(t) : absPool.lt(t);
  int64_t need = k - strict.sum().item<int64_t>();
  auto eq = absPool.eq(t);
  auto rank = eq.to(torch::kLong).cumsum(0);
  return strict.logical_or(eq.logical_and(rank.le(need)));
}

/// The named parameters' |w|, concatenated, with each one's name and size.
struct Pool {
  std::vector<std::string> names;
  std::vector<int64_t> sizes;
  torch::Tensor abs;
};

Pool makePool(ModelState& s, const std::vector<std::string>& names) {
  Pool p;
  std::vector<torch::Tensor> parts;
  for (const auto& n : names) {
    auto& w = paramRef(s, n);
    parts.push_back(w.detach().abs().flatten().to(torch::kFloat));
    p.names.push_back(n);
    p.sizes.push_back(w.numel());
  }
  if (parts.empty()) throw std::invalid_argument("no parameters to pool");
  p.abs = torch::cat(parts);
  return p;
}

void checkCount(int64_t k, int64_t n) {
  if (k < 0 || k > n) throw std::invalid_argument("count " + std::to_string(k) + " outside [0, " + std::to_string(n) + "]");
}

void checkMaskable(ModelState& s, const std::string& name) {
  if (!s.net->maskSlots.count(name)) throw std::invalid_argument("'" + name + "' cannot be masked");
}

}  // namespace

int64_t parameterCount(ModelState& s, const std::vector<std::string>& names) {
  int64_t n = 0;
  for (const auto& name : names) n += paramRef(s, name).numel();
  return n;
}

void modifyChannels(ModelState& s, const std::vector<ChannelEdit>& edits, const ModifyOptions& o) {
  const std::string& mode = o.mode;
  if (mode != "zero" && mode != "random_init" && mode != "random_noise" && mode != "rewind" && mode != "layer_rewind")
    throw std::invalid_argument("unknown modification mode '" + mode + "'");
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(o.seed);
  for (const auto& e : edits) {
    auto& p = paramRef(s, e.name);
    if (e.index >= p.size(0) || e.index < -1)
      throw std::invalid_argument("channel " + std::to_string(e.index) + " of '" + e.name + "' does not exist (" + std::to_string(p.size(0)) + " channels)");
    torch::Tensor row = (e.index >= 0 && mode != "layer_rewind") ? p[e.index] : p;
    if (mode == "zero") row.zero_();
    else if (mode == "random_init") row.copy_(torch::randn(row.sizes(), gen, torch::kFloat) * o.std);
    else if (mode == "random_noise") row.add_((torch::randn(row.sizes(), gen, torch::kFloat) * o.std).to(row.device()));
    else {
      auto src = tensorFromSource(o.source, e.name, p);
      if (mode == "layer_rewind" || e.index < 0) p.copy_(src);
      else row.copy_(src[e.index]);
    }
  }
}

ThresholdResult modifyThreshold(ModelState& s, const ThresholdOptions& o) {
  const std::string& mode = o.modify.mode;
  if (mode != "zero" && mode != "random_init" && mode != "random_noise" && mode != "rewind")
    throw std::invalid_argument("unknown modification mode '" + mode + "' for the threshold ranking");
  torch::NoGradGuard g;
  ThresholdResult r;
  Pool pool = makePool(s, o.names);
  const int64_t n = pool.abs.numel();
  checkCount(o.k, n);
  r.k = o.k;
  std::vector<std::pair<std::string, torch::Tensor>> targets;  // name -> bool selection
  if (!o.faithful) {
    auto sel = selectExactly(pool.abs, r.k, !o.smallest);
    if (r.k > 0) {
      auto chosen = pool.abs.masked_select(sel);
      r.threshold = (o.smallest ? chosen.max() : chosen.min()).item<double>();
    }
    int64_t off = 0;
    for (size_t i = 0; i < pool.names.size(); ++i) {
      auto& p = paramRef(s, pool.names[i]);
      targets.emplace_back(pool.names[i], sel.narrow(0, off, pool.sizes[i]).view(p.sizes()));
      off += pool.sizes[i];
    }
  } else {
    int64_t idx = o.smallest ? std::min<int64_t>(r.k, n - 1) : (r.k == 0 ? 0 : n - r.k);
    auto t = std::get<0>(torch::kthvalue(pool.abs.to(torch::kCPU), idx + 1)).item<double>();
    r.threshold = t;
    for (auto& p : s.net->namedParameters()) {
      auto a = p.second.detach().abs();
      targets.emplace_back(p.first, o.smallest ? a.le(t) : a.ge(t));
    }
  }
  auto gen = at::detail::createCPUGenerator(o.modify.seed);
  for (auto& tg : targets) {
    auto& p = paramRef(s, tg.first);
    torch::Tensor sel = tg.second;
    if (o.dropoutP > 0) {
      auto keepMask = torch::bernoulli(torch::full(p.sizes(), 1.0 - o.dropoutP, torch::kFloat), gen).to(torch::kBool);
      sel = sel.logical_and(keepMask.to(sel.device()));
    }
    r.selected.emplace_back(tg.first, sel.sum().item<int64_t>());
    if (mode == "zero") {
      p.masked_fill_(sel, 0);
    } else if (mode == "rewind") {
      p.copy_(torch::where(sel, tensorFromSource(o.modify.source, tg.first, p), p));
    } else {
      auto noise = (o.uniform ? torch::rand(p.sizes(), gen, torch::kFloat) : torch::randn(p.sizes(), gen, torch::kFloat)) * o.modify.std;
      noise = noise.to(p.device(), p.scalar_type());
      if (mode == "random_init") p.copy_(torch::where(sel, noise, p));
      else p.add_(noise * sel.to(p.scalar_type()));
    }
  }
  return r;
}

void maskMagnitude(ModelState& s, const std::vector<std::string>& names, int64_t k, bool largest) {
  torch::NoGradGuard g;
  for (const auto& n : names) checkMaskable(s, n);
  Pool pool = makePool(s, names);
  checkCount(k, pool.abs.numel());
  auto sel = selectExactly(pool.abs, k, largest);
  int64_t off = 0;
  for (size_t i = 0; i < pool.names.size(); ++i) {
    auto& p = paramRef(s, pool.names[i]);
    auto keepM = sel.narrow(0, off, pool.sizes[i]).logical_not().to(p.scalar_type()).view(p.sizes());
    off += pool.sizes[i];
    auto it = s.masks.find(pool.names[i]);
    if (it == s.masks.end()) s.masks[pool.names[i]] = keepM;
    else it->second.mul_(keepM);
  }
}

void maskChannels(ModelState& s, const std::vector<ChannelEdit>& channels) {
  torch::NoGradGuard g;
  for (const auto& c : channels) {
    checkMaskable(s, c.name);
    auto& p = paramRef(s, c.name);
    if (c.index < 0 || c.index >= p.size(0)) throw std::invalid_argument("channel " + std::to_string(c.index) + " of '" + c.name + "' does not exist");
  }
  for (const auto& c : channels) {
    auto it = s.masks.find(c.name);
    if (it == s.masks.end()) it = s.masks.emplace(c.name, torch::ones_like(paramRef(s, c.name))).first;
    it->second[c.index].zero_();
  }
}

std::map<std::string, double> maskStats(ModelState& s) {
  std::map<std::string, double> out;
  for (auto& kv : s.masks) out[kv.first] = 1.0 - kv.second.to(torch::kDouble).mean().item<double>();
  return out;
}

}  // namespace spurmem
