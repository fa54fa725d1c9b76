#include "checkpoint/value.h"

#include <functional>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace spurmem {

Value::~Value() {
  if (items.empty() && entries.empty()) return;
  std::vector<ValuePtr> pending;
  pending.reserve(items.size() + 2 * entries.size());
  for (auto& v : items) pending.push_back(std::move(v));
  for (auto& e : entries) {
    pending.push_back(std::move(e.first));
    pending.push_back(std::move(e.second));
  }
  items.clear();
  entries.clear();
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) {
      for (auto& c : v->items) pending.push_back(std::move(c));
      for (auto& e : v->entries) {
        pending.push_back(std::move(e.first));
        pending.push_back(std::move(e.second));
      }
      v->items.clear();
      v->entries.clear();
    }
  }
}

ValuePtr Value::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  for (const auto& e : entries)
    if (e.first && e.first->kind == Kind::String && e.first->s == key) return e.second;
  return nullptr;
}

void Value::set(const std::string& key, ValuePtr v) {
  for (auto& e : entries)
    if (e.first && e.first->kind == Kind::String && e.first->s == key) {
      e.second = std::move(v);
      return;
    }
  entries.emplace_back(Value::string(key), std::move(v));
}

const char* kindName(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Tensor: return "tensor";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::NumpyDType: return "numpy.dtype";
    case Kind::Invalid: return "invalid value";
  }
  return "?";
}

std::string keyText(const Value& key) {
  switch (key.kind) {
    case Kind::String:
    case Kind::Bytes: return key.s;
    case Kind::Int: return std::to_string(key.i);
    case Kind::Bool: return key.b ? "True" : "False";
    case Kind::None: return "None";
    case Kind::Float: {
      std::ostringstream o;
      o << key.f;
      return o.str();
    }
    default: return std::string("<") + kindName(key.kind) + ">";
  }
}

void forEachLeaf(const ValuePtr& root,
                 const std::function<void(const std::string&, const std::vector<std::string>&, const ValuePtr&)>& fn,
                 int maxDepth, int64_t maxVisits) {
  std::unordered_set<const Value*> onPath;
  std::vector<std::string> parts;
  int64_t visits = 0;
  std::function<void(const std::string&, const ValuePtr&, int)> walk = [&](const std::string& path,
                                                                          const ValuePtr& v, int depth) {
    if (depth > maxDepth) throw std::runtime_error("object nested deeper than " + std::to_string(maxDepth) + " levels");
    if (++visits > maxVisits)
      throw std::runtime_error("object graph has more than " + std::to_string(maxVisits) + " nodes (shared references)");
    if (!v->isContainer()) {
      fn(path, parts, v);
      return;
    }
    if (!onPath.insert(v.get()).second) throw std::runtime_error("object refers to itself (cycle) at '" + path + "'");
    auto join = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
    auto step = [&](const std::string& k, const ValuePtr& child) {
      parts.push_back(k);
      walk(join(k), child, depth + 1);
      parts.pop_back();
    };
    if (v->kind == Kind::Dict) {
      for (const auto& e : v->entries) step(keyText(*e.first), e.second);
    } else {
      for (size_t i = 0; i < v->items.size(); ++i) step(std::to_string(i), v->items[i]);
    }
    onPath.erase(v.get());
  };
  walk("", root, 0);
}

}  // namespace spurmem
