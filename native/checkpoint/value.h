// Plain data tree that a checkpoint's object pickle decodes to.
//
// A restricted unpickler (pickle.cc) turns the pickle into Values; tensors are materialised from the
// archive's storages (archive.cc). Nothing in a Value can execute code: globals are resolved to data by
// an allow-list before a Value is made.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace spurmem {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// Global, Storage, NumpyDType and Invalid exist only while a pickle is being decoded; the reader refuses a
// finished tree that still holds one. Invalid is a value whose construction failed (`s` says why): it is
// reported with its key path once the tree is complete.
enum class Kind { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Tensor, Global, Storage, NumpyDType, Invalid };

struct PendingStorage;

/// One node of a decoded checkpoint. Containers keep insertion order (state dicts are OrderedDicts).
struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                                     // String (UTF-8) or Bytes
  std::vector<ValuePtr> items;                       // List, Tuple
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict
  bool ordered = false;                              // Dict came from collections.OrderedDict
  torch::Tensor tensor;                              // Tensor
  bool parameter = false;                            // Tensor was an nn.Parameter
  std::shared_ptr<PendingStorage> storage;           // Storage (while decoding)
  uint32_t height = 0;                               // containers: levels of containers below (while decoding)

  Value() = default;
  explicit Value(Kind k) : kind(k) {}
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  // Dismantles children iteratively, so that a deeply nested tree cannot overflow the stack.
  ~Value();

  static ValuePtr none() { return std::make_shared<Value>(Kind::None); }
  static ValuePtr boolean(bool v) { auto p = std::make_shared<Value>(Kind::Bool); p->b = v; return p; }
  static ValuePtr integer(int64_t v) { auto p = std::make_shared<Value>(Kind::Int); p->i = v; return p; }
  static ValuePtr real(double v) { auto p = std::make_shared<Value>(Kind::Float); p->f = v; return p; }
  static ValuePtr string(std::string v) { auto p = std::make_shared<Value>(Kind::String); p->s = std::move(v); return p; }
  static ValuePtr bytes(std::string v) { auto p = std::make_shared<Value>(Kind::Bytes); p->s = std::move(v); return p; }
  static ValuePtr list() { return std::make_shared<Value>(Kind::List); }
  static ValuePtr tuple(std::vector<ValuePtr> v = {}) { auto p = std::make_shared<Value>(Kind::Tuple); p->items = std::move(v); return p; }
  static ValuePtr dict(bool ordered = false) { auto p = std::make_shared<Value>(Kind::Dict); p->ordered = ordered; return p; }
  static ValuePtr fromTensor(torch::Tensor t, bool parameter = false) {
    auto p = std::make_shared<Value>(Kind::Tensor); p->tensor = std::move(t); p->parameter = parameter; return p;
  }

  bool isContainer() const { return kind == Kind::List || kind == Kind::Tuple || kind == Kind::Dict; }
  /// Dict lookup by string key; nullptr when absent or not a dict.
  ValuePtr get(const std::string& key) const;
  /// Sets (or replaces) a string-keyed entry of a dict, keeping the first position.
  void set(const std::string& key, ValuePtr v);
};

const char* kindName(Kind k);

/// Renders a dict key as the text used in key paths ("layer1.0.conv1.weight", "state.3.exp_avg").
std::string keyText(const Value& key);

/// Calls fn(path, parts, value) for every leaf (non-container) in depth-first, insertion order: parts are
/// the keys (list indices as text) from the root, path is them joined with '.'. Throws if the tree is
/// deeper than maxDepth or holds a cycle. Also throws after maxVisits nodes (a small file can describe an
/// exponentially large shared graph).
void forEachLeaf(const ValuePtr& root,
                 const std::function<void(const std::string&, const std::vector<std::string>&, const ValuePtr&)>& fn,
                 int maxDepth = 512, int64_t maxVisits = 20000000);

}  // namespace spurmem
