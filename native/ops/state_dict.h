// Loading a checkpoint's state dict into a model (PyTorch's load_state_dict, with its error text) and
// the layout spurmem saves a training checkpoint in. N-API-free.
#pragma once

#include "checkpoint/value.h"
#include "ops/model_state.h"

#include <string>
#include <vector>

namespace spurmem {

/// Every value comes from TypeScript (Model.loadStateDict holds the defaults).
struct LoadOptions {
  bool strict = false;               // missing or unexpected keys are errors
  bool interpolatePosEmbed = false;  // let the model adapt entries of another size (a ViT's pos_embed)
  std::vector<std::string> skip;     // key prefixes dropped on purpose
};

/// What a load did: keys loaded, missing, unexpected, skipped on purpose, filled (num_batches_tracked),
/// resized (a ViT's pos_embed, "pos_embed 14x14 -> 2x2").
struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected, skipped, filled, resized, mismatched;
};

/// Copies the dict `sd` into the model's tensors (all or nothing). `file` and `at` (the last key of the
/// path to the dict, or "") name it in errors. Throws std::invalid_argument with PyTorch's wording:
/// "<file>: error(s) in loading the state dict into <arch>: Size mismatch for ... Missing key(s) in
/// state_dict: ... Unexpected key(s) in state_dict: ...", or when `sd` is not a dict.
LoadReport loadStateDict(ModelState& s, const ValuePtr& sd, const std::string& file, const std::string& at,
                         const LoadOptions& o);

struct SaveOptions {
  int64_t epoch = 0;
  double loss = 0;
  bool optimizer = false;  // include optimizer_state_dict (when an optimizer is set)
  ValuePtr extra;         // the `spurmem` entry, or null
};

/// The original's checkpoint layout: {epoch, model_state_dict, optimizer_state_dict, loss[, spurmem]}.
ValuePtr checkpointValue(ModelState& s, const SaveOptions& o);

}  // namespace spurmem
