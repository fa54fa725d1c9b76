// Weight edits of the paper's Part I (original-behaviour §5) and the weight masks of Part II: whole
// output channels (zero, re-initialise, add noise, rewind) and exactly k pooled weights chosen by
// magnitude. N-API-free; each runs with the model's lock held. How many weights (k) is decided by the
// caller (TypeScript's ceilCount).
#pragma once

#include "checkpoint/value.h"
#include "ops/model_state.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace spurmem {

/// The state dict a rewind copies from and the file it came from (for errors).
struct RewindSource {
  ValuePtr stateDict;
  std::string file;
};

/// One output channel of a parameter; index -1: the whole tensor.
struct ChannelEdit {
  std::string name;
  int64_t index = -1;
};

struct ModifyOptions {
  std::string mode;  // zero | random_init | random_noise | rewind | layer_rewind
  double std = 0;
  uint64_t seed = 0;
  RewindSource source;  // rewind, layer_rewind
};

/// The original's modify_weights, edit by edit: zero, random_init (N(0, std^2)), random_noise (+ N(0,
/// std^2)), rewind (the channel from the source), layer_rewind (the whole tensor from the source). Random
/// values come from one CPU generator seeded with `seed`, as torch.randn(shape, generator=g) * std.
/// Throws std::invalid_argument for an unknown mode, a channel or tensor that does not exist.
void modifyChannels(ModelState& s, const std::vector<ChannelEdit>& edits, const ModifyOptions& o);

struct ThresholdOptions {
  std::vector<std::string> names;  // the pooled parameters
  int64_t k = 0;                   // how many weights (ceil(P*N), counted by the caller)
  bool smallest = false;
  double dropoutP = 0;
  bool uniform = false;            // random values from U(0,1) * std instead of N(0,1) * std
  bool faithful = false;
  ModifyOptions modify;            // mode zero | random_init | random_noise | rewind
};

struct ThresholdResult {
  int64_t k = 0;
  double threshold = 0;
  std::vector<std::pair<std::string, int64_t>> selected;  // parameter -> weights edited
};

/// spurmem's default selects exactly k of the pooled `names` by |w| (ties to the lower index) and edits
/// only those. faithful reproduces the original: threshold at sorted position N-k (largest; k=0 wraps to
/// 0) or k (smallest), applied to every parameter of the model. dropoutP keeps each selected weight out
/// with that probability.
ThresholdResult modifyThreshold(ModelState& s, const ThresholdOptions& o);

/// Masks exactly k of the pooled weights of `names` by magnitude (the smallest unless `largest`, as the
/// original's Mask.magnitude_pruning), AND-ed with existing masks. Throws for a parameter that cannot be
/// masked.
void maskMagnitude(ModelState& s, const std::vector<std::string>& names, int64_t k, bool largest);
/// Zeroes whole output channels of the masks (AND).
void maskChannels(ModelState& s, const std::vector<ChannelEdit>& channels);
/// Per masked parameter, the share of its weights that is masked.
std::map<std::string, double> maskStats(ModelState& s);

/// Total number of elements of the named parameters.
int64_t parameterCount(ModelState& s, const std::vector<std::string>& names);

}  // namespace spurmem
