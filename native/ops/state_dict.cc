#include "ops/state_dict.h"

#include <set>
#include <sstream>
#include <stdexcept>

namespace spurmem {

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// At most 8 quoted keys, then "... (N in all)", as PyTorch lists them.
std::string quoted(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i == 8) {
      out += ", ... (" + std::to_string(v.size()) + " in all)";
      break;
    }
    out += (i ? ", " : "") + std::string("\"") + v[i] + "\"";
  }
  return out;
}

}  // namespace

LoadReport loadStateDict(ModelState& s, const ValuePtr& sd, const std::string& file, const std::string& at,
                         const LoadOptions& o) {
  if (sd->kind != Kind::Dict)
    throw std::invalid_argument(file + ": the state dict" + (at.empty() ? "" : " at '" + at + "'") + " is a " + kindName(sd->kind) + ", not a dict");
  LoadReport r;
  auto isSkipped = [&](const std::string& k) {
    for (const auto& p : o.skip)
      if (k.rfind(p, 0) == 0) return true;
    return false;
  };
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  std::set<std::string> seen;
  for (const auto& e : sd->entries) {
    std::string k = keyText(*e.first);
    if (isSkipped(k)) { r.skipped.push_back(k); continue; }
    auto it = s.entries.find(k);
    if (it == s.entries.end()) { r.unexpected.push_back(k); continue; }
    if (e.second->kind != Kind::Tensor) { r.mismatched.push_back(k + ": not a tensor"); seen.insert(k); continue; }
    torch::Tensor src = e.second->tensor;
    const torch::Tensor& dst = it->second;
    std::string note;
    if (o.interpolatePosEmbed && s.net->adaptEntry(k, src, dst, note)) r.resized.push_back(note);
    if (src.sizes() != dst.sizes()) {
      std::ostringstream m;
      m << k << ": checkpoint " << src.sizes() << ", model " << dst.sizes();
      r.mismatched.push_back(m.str());
      seen.insert(k);  // reported once, as a mismatch, not again as missing
      continue;
    }
    copies.emplace_back(dst, src);
    seen.insert(k);
    r.loaded.push_back(k);
  }
  for (const auto& e : s.net->stateDict()) {
    if (seen.count(e.first) || isSkipped(e.first)) continue;
    if (endsWith(e.first, "num_batches_tracked")) {
      r.filled.push_back(e.first);  // PyTorch fills it for old checkpoints too
      continue;
    }
    r.missing.push_back(e.first);
  }
  std::string err;
  if (!r.mismatched.empty()) err += " Size mismatch for " + quoted(r.mismatched) + ".";
  if (o.strict && !r.missing.empty()) err += " Missing key(s) in state_dict: " + quoted(r.missing) + ".";
  if (o.strict && !r.unexpected.empty()) err += " Unexpected key(s) in state_dict: " + quoted(r.unexpected) + ".";
  if (!err.empty()) throw std::invalid_argument(file + ": error(s) in loading the state dict into " + s.net->opts.arch + ":" + err);
  torch::NoGradGuard g;
  for (auto& cp : copies) cp.first.copy_(cp.second);
  for (const auto& f : r.filled) s.entries[f].zero_();
  return r;
}

ValuePtr checkpointValue(ModelState& s, const SaveOptions& o) {
  auto root = Value::dict();
  root->set("epoch", Value::integer(o.epoch));
  auto sd = Value::dict(true);
  for (auto& e : s.net->stateDict()) sd->entries.emplace_back(Value::string(e.first), Value::fromTensor(e.second));
  root->set("model_state_dict", sd);
  if (o.optimizer && s.optimizer) root->set("optimizer_state_dict", s.optimizer->stateDict());
  root->set("loss", Value::real(o.loss));
  if (o.extra) root->set("spurmem", o.extra);
  return root;
}

}  // namespace spurmem
