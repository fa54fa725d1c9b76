// Restricted unpickler for PyTorch checkpoints, and a protocol-2 pickler for the ones spurmem writes.
//
// Decoding never calls anything named in the file: GLOBAL/STACK_GLOBAL names are looked up in an
// allow-list (the data types PyTorch's `torch.load(weights_only=True)` accepts for state dicts, plus the
// numpy scalars and argparse.Namespace found in real checkpoints) and turned into plain data. Any other
// global is refused with an error that names it. Lengths and counts are checked against the bytes that
// are really there before anything is allocated.
#pragma once

#include "checkpoint/value.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace spurmem {

/// A storage named by a persistent id: ('storage', type, key, location, numel[, view_metadata]).
struct PendingStorage {
  std::string key;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::string typeName;  // e.g. "FloatStorage"
  int64_t numel = 0;
  std::string location;
  // Legacy format only: this storage is a view of `viewOf` starting at element viewOffset.
  bool hasView = false;
  std::string viewOf;
  int64_t viewOffset = 0;
  torch::Tensor data;  // 1-D, numel elements, filled in by the archive reader
};

/// A tensor whose storage bytes are read after the pickle (legacy files put them after every pickle).
struct PendingTensor {
  ValuePtr value;
  std::shared_ptr<PendingStorage> storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

struct UnpickleResult {
  ValuePtr root;
  size_t consumed = 0;  // bytes read up to and including STOP
  std::vector<PendingTensor> tensors;
  std::map<std::string, std::shared_ptr<PendingStorage>> storages;
};

/// Error raised for anything wrong in a checkpoint; the message names what was wrong and where.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
  CheckpointError(const std::string& what, bool truncated_) : std::runtime_error(what), truncated(truncated_) {}
  /// The bytes ended before the pickle did (more of the file might complete it).
  bool truncated = false;
};

/// Decodes one pickle from data[0..size). Throws CheckpointError (message prefixed with `where`).
UnpickleResult unpickle(const uint8_t* data, size_t size, const std::string& where);

/// Element size in bytes of a storage dtype.
size_t storageElementSize(c10::ScalarType t);

/// Serialises `root` as a protocol-2 pickle the way torch.save lays out data.pkl. Tensors become
/// persistent ids ('storage', torch.<T>Storage, key, 'cpu', numel) and are appended to `storagesOut`
/// (contiguous CPU copies) in key order "0", "1", ...
std::string picklePth(const ValuePtr& root, std::vector<torch::Tensor>& storagesOut);

}  // namespace spurmem
