#include "checkpoint/pickle.h"

#include "errors.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

namespace spurmem {
namespace {

// Upper bounds that keep a hostile file from growing memory or time without limit.
constexpr size_t kMaxStack = 1u << 18;         // items on the pickle stack (torch.save batches by 1000)
constexpr size_t kMaxMarks = 4096;             // nested MARKs
constexpr size_t kMaxContainers = 1u << 24;    // containers created by one pickle
constexpr int64_t kMaxTensorDims = 64;
constexpr size_t kMaxMemo = 1u << 20;          // memo entries
constexpr uint32_t kMaxDepth = 512;            // levels of nested containers (as forEachLeaf)
// Nodes of the decoded tree, counting every path to a shared container: a pickle of a few hundred bytes
// can describe 2^64 paths by memo references (a list holding the same list twice, 64 times over).
// Without sharing a tree has fewer nodes than the pickle has bytes, so this only refuses such graphs.
constexpr int64_t kMinTreeNodes = 1 << 20;
constexpr int64_t kTreeNodesPerByte = 16;

struct StorageType {
  const char* name;
  c10::ScalarType dtype;
};
const StorageType kStorageTypes[] = {
    {"FloatStorage", c10::ScalarType::Float},     {"DoubleStorage", c10::ScalarType::Double},
    {"HalfStorage", c10::ScalarType::Half},       {"BFloat16Storage", c10::ScalarType::BFloat16},
    {"LongStorage", c10::ScalarType::Long},       {"IntStorage", c10::ScalarType::Int},
    {"ShortStorage", c10::ScalarType::Short},     {"CharStorage", c10::ScalarType::Char},
    {"ByteStorage", c10::ScalarType::Byte},       {"BoolStorage", c10::ScalarType::Bool},
    {"ComplexFloatStorage", c10::ScalarType::ComplexFloat},
    {"ComplexDoubleStorage", c10::ScalarType::ComplexDouble},
};

const char* kTorchDTypes[] = {"float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64",
                              "long", "int32", "int", "int16", "short", "int8", "uint8", "bool",
                              "complex64", "complex128"};

// Globals accepted by name. Everything else is refused.
const std::unordered_set<std::string>& allowedGlobals() {
  static const std::unordered_set<std::string> s = [] {
    std::unordered_set<std::string> a = {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter",
        "torch.Tensor",
        "torch.device",
        "torch.Size",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.dtype",
        "_codecs.encode",
        "argparse.Namespace",
        "builtins.set",
        "builtins.frozenset",
        "__builtin__.set",
    };
    for (const auto& t : kStorageTypes) a.insert(std::string("torch.") + t.name);
    for (const auto* d : kTorchDTypes) a.insert(std::string("torch.") + d);
    return a;
  }();
  return s;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& where) : p_(data), end_(data + size), begin_(data), where_(where) {}

  UnpickleResult run() {
    try {
      runLoop();
    } catch (...) {
      dismantle();
      throw;
    }
    result_.consumed = static_cast<size_t>(p_ - begin_);
    try {
      validate(result_.root);
    } catch (const CheckpointError&) {
      dismantle();
      throw;
    } catch (const std::exception& e) {
      dismantle();
      fail(errorText(e));
    }
    containers_.clear();
    memo_.clear();
    return std::move(result_);
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  std::string where_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::vector<ValuePtr> containers_;  // every container made, so that cycles can be broken on failure
  UnpickleResult result_;
  uint8_t op_ = 0;
  size_t opPos_ = 0;
  // None, True and False are never changed once decoded: one of each serves the whole pickle
  const ValuePtr none_ = Value::none(), true_ = Value::boolean(true), false_ = Value::boolean(false);

  /// A value that a REDUCE could not build (thrown only while reduceDepth_ > 0, caught by reduce()).
  struct ValueFault {
    std::string reason;
  };
  int reduceDepth_ = 0;

  /// Fails: inside a REDUCE the value being built becomes an Invalid value, reported with its key path
  /// when the pickle is complete (validate); anywhere else the whole pickle fails at once.
  [[noreturn]] void fail(const std::string& what) const {
    std::string text = what + " (pickle byte offset " + std::to_string(opPos_) + ")";
    if (reduceDepth_ > 0) throw ValueFault{text};
    throw CheckpointError(where_ + ": " + text);
  }
  /// Fails the whole pickle, also inside a REDUCE (limits on memory and nesting).
  [[noreturn]] void failLimit(const std::string& what) const {
    throw CheckpointError(where_ + ": " + what + " (pickle byte offset " + std::to_string(opPos_) + ")");
  }
  /// Fails because the bytes end before the pickle does.
  [[noreturn]] void failTruncated(const std::string& what) const {
    throw CheckpointError(where_ + ": " + what + " (pickle byte offset " + std::to_string(opPos_) + ")", true);
  }

  void dismantle() {
    // Breaks every reference between containers so that cycles and deep chains are freed without recursion.
    for (auto& c : containers_) {
      c->items.clear();
      c->entries.clear();
    }
    containers_.clear();
    memo_.clear();
    stack_.clear();
    result_.root.reset();
    result_.tensors.clear();
  }

  ValuePtr track(ValuePtr v) {
    if (containers_.size() >= kMaxContainers) failLimit("too many containers");
    containers_.push_back(v);
    for (const auto& x : v->items) raise(v, x);
    for (const auto& e : v->entries) raise(v, e.second);
    return v;
  }

  /// Notes that `child` now hangs under `parent`, failing as soon as a chain of containers gets deeper
  /// than the tree walk accepts (so that 1,000,000 nested tuples stop at the 513th, not after all are
  /// built). A container filled after it was put in another is only caught by the walk in validate().
  void raise(const ValuePtr& parent, const ValuePtr& child) {
    uint32_t h = (child->isContainer() ? child->height : 0) + 1;
    if (h > parent->height) {
      parent->height = h;
      if (h > kMaxDepth) failLimit("object nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
  }

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  void need(size_t n) {
    if (n > remaining()) failTruncated("truncated: needs " + std::to_string(n) + " more bytes, " + std::to_string(remaining()) + " left");
  }
  uint8_t u8() { need(1); return *p_++; }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > remaining()) failTruncated("truncated: string of " + std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return s;
  }
  std::string line() {
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', remaining()));
    if (!nl) failTruncated("truncated: text argument without a newline");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(nl - p_));
    p_ = nl + 1;
    return s;
  }

  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) failLimit("pickle stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> popMark() {
    if (marks_.empty()) fail("MARK expected");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }

  static std::string utf8Check(std::string s) { return s; }

  ValuePtr makeGlobal(const std::string& module, const std::string& name) {
    std::string full = module + "." + name;
    if (module == "__builtin__" && name == "set") full = "builtins.set";
    if (!allowedGlobals().count(full))
      fail("refused pickle global '" + full + "': not in the allow-list of data types (spurmem never runs code from a checkpoint)");
    if (module == "torch") {
      for (const auto* d : kTorchDTypes)
        if (name == d) return Value::string(full);
    }
    auto g = std::make_shared<Value>(Kind::Global);
    g->s = full;
    return g;
  }

  int64_t asInt(const ValuePtr& v, const char* what) {
    if (v->kind == Kind::Int) return v->i;
    if (v->kind == Kind::Bool) return v->b ? 1 : 0;
    fail(std::string(what) + " must be an int, got " + kindName(v->kind));
  }

  std::vector<int64_t> intTuple(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::Tuple && v->kind != Kind::List) fail(std::string(what) + " must be a tuple of ints");
    if (static_cast<int64_t>(v->items.size()) > kMaxTensorDims) fail(std::string(what) + " has too many dimensions");
    std::vector<int64_t> out;
    for (const auto& x : v->items) out.push_back(asInt(x, what));
    return out;
  }

  ValuePtr rebuildTensor(const std::vector<ValuePtr>& a, bool v2) {
    if (a.size() < 4) fail("_rebuild_tensor expects at least 4 arguments");
    if (a[0]->kind != Kind::Storage) fail("_rebuild_tensor: first argument is not a storage");
    PendingTensor t;
    t.storage = a[0]->storage;
    t.offset = asInt(a[1], "storage_offset");
    t.size = intTuple(a[2], "size");
    t.stride = intTuple(a[3], "stride");
    if (t.size.size() != t.stride.size()) fail("tensor size and stride have different lengths");
    if (t.offset < 0) fail("negative storage offset");
    // extent = offset + sum((size_i - 1) * stride_i) + 1, checked without overflow
    bool empty = false;
    int64_t last = t.offset;
    for (size_t i = 0; i < t.size.size(); ++i) {
      if (t.size[i] < 0) fail("negative tensor size");
      if (t.stride[i] < 0) fail("negative tensor stride");
      if (t.size[i] == 0) empty = true;
    }
    if (!empty) {
      for (size_t i = 0; i < t.size.size(); ++i) {
        int64_t step;
        if (__builtin_mul_overflow(t.size[i] - 1, t.stride[i], &step) || __builtin_add_overflow(last, step, &last))
          fail("tensor extent overflows");
      }
      if (last >= t.storage->numel)
        fail("tensor (offset " + std::to_string(t.offset) + ", extent " + std::to_string(last + 1) +
             ") reaches beyond its storage '" + t.storage->key + "' of " + std::to_string(t.storage->numel) + " elements");
    }
    int64_t numel = 1;
    for (auto s : t.size)
      if (__builtin_mul_overflow(numel, s, &numel)) fail("tensor element count overflows");
    (void)v2;
    t.value = std::make_shared<Value>(Kind::Tensor);
    result_.tensors.push_back(t);
    return t.value;
  }

  ValuePtr tensorArg(const ValuePtr& v, const char* fn) {
    if (v->kind != Kind::Tensor) fail(std::string(fn) + ": first argument is not a tensor");
    return v;
  }

  /// IEEE 754 half-precision bits as a double.
  static double halfToDouble(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? std::ldexp(m, -24)
               : e == 31 ? (m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity())
                         : std::ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
  }

  /// numpy.core.multiarray.scalar(dtype, bytes): every scalar dtype torch.load can meet, as plain data:
  /// f2/f4/f8 as floats, i1-i8 and u1-u8 as ints (u8 above 2^63-1 as a float), b1 as a bool, c8/c16 as
  /// a (real, imag) tuple. The byte order comes from the dtype's BUILD state ('>' = big-endian).
  ValuePtr numpyScalar(const std::vector<ValuePtr>& a) {
    if (a.size() != 2 || a[0]->kind != Kind::NumpyDType || a[1]->kind != Kind::Bytes)
      fail("numpy scalar expects (dtype, bytes)");
    std::string dt = a[0]->s;
    bool big = a[0]->b;
    if (!dt.empty() && (dt[0] == '<' || dt[0] == '>' || dt[0] == '|' || dt[0] == '=')) {
      big = dt[0] == '>';
      dt = dt.substr(1);
    }
    std::string raw = a[1]->s;
    auto rd = [&](size_t n) {
      if (raw.size() != n)
        fail("numpy scalar of dtype '" + dt + "' has " + std::to_string(raw.size()) + " bytes, expected " + std::to_string(n));
    };
    // little-endian value of bytes [at, at + n)
    auto le = [&](size_t at, size_t n) {
      uint64_t v = 0;
      for (size_t i = 0; i < n; ++i) {
        size_t k = big ? at + n - 1 - i : at + i;
        v |= static_cast<uint64_t>(static_cast<uint8_t>(raw[k])) << (8 * i);
      }
      return v;
    };
    auto f32 = [&](size_t at) { uint32_t b = static_cast<uint32_t>(le(at, 4)); float d; std::memcpy(&d, &b, 4); return static_cast<double>(d); };
    auto f64 = [&](size_t at) { uint64_t b = le(at, 8); double d; std::memcpy(&d, &b, 8); return d; };
    if (dt == "f2") { rd(2); return Value::real(halfToDouble(static_cast<uint16_t>(le(0, 2)))); }
    if (dt == "f4") { rd(4); return Value::real(f32(0)); }
    if (dt == "f8") { rd(8); return Value::real(f64(0)); }
    if (dt == "i1") { rd(1); return Value::integer(static_cast<int8_t>(le(0, 1))); }
    if (dt == "i2") { rd(2); return Value::integer(static_cast<int16_t>(le(0, 2))); }
    if (dt == "i4") { rd(4); return Value::integer(static_cast<int32_t>(le(0, 4))); }
    if (dt == "i8") { rd(8); return Value::integer(static_cast<int64_t>(le(0, 8))); }
    if (dt == "u1" || dt == "u2" || dt == "u4" || dt == "u8") {
      size_t n = static_cast<size_t>(dt[1] - '0');
      rd(n);
      uint64_t v = le(0, n);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Value::real(static_cast<double>(v));
      return Value::integer(static_cast<int64_t>(v));
    }
    if (dt == "b1") { rd(1); return Value::boolean(raw[0] != 0); }
    if (dt == "c8") { rd(8); return track(Value::tuple({Value::real(f32(0)), Value::real(f32(4))})); }
    if (dt == "c16") { rd(16); return track(Value::tuple({Value::real(f64(0)), Value::real(f64(8))})); }
    fail("numpy scalar of unsupported dtype '" + dt + "' (expected f2, f4, f8, i1-i8, u1-u8, b1, c8 or c16)");
  }

  /// REDUCE: callGlobal, except that a value it cannot build becomes an Invalid value (reported with its
  /// key path by validate) and an Invalid function or argument passes its fault on.
  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind == Kind::Invalid) return fn;
    if (args->kind == Kind::Tuple)
      for (const auto& x : args->items)
        if (x->kind == Kind::Invalid) return x;
    struct Depth {
      int& d;
      explicit Depth(int& d_) : d(d_) { ++d; }
      ~Depth() { --d; }
    } depth(reduceDepth_);
    try {
      return callGlobal(fn, args);
    } catch (const ValueFault& f) {
      auto v = std::make_shared<Value>(Kind::Invalid);
      v->s = f.reason;
      return v;
    }
  }

  ValuePtr callGlobal(const ValuePtr& fn, const ValuePtr& argsV) {
    if (fn->kind != Kind::Global) fail(std::string("REDUCE on a ") + kindName(fn->kind) + ", not a global");
    if (argsV->kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
    const auto& a = argsV->items;
    const std::string& g = fn->s;
    if (g == "collections.OrderedDict") {
      auto d = track(Value::dict(true));
      if (!a.empty()) {
        if (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple) fail("OrderedDict argument is not a list of pairs");
        for (const auto& kv : a[0]->items) {
          if ((kv->kind != Kind::Tuple && kv->kind != Kind::List) || kv->items.size() != 2) fail("OrderedDict item is not a pair");
          d->entries.emplace_back(kv->items[0], kv->items[1]);
          raise(d, kv->items[1]);
        }
      }
      return d;
    }
    if (g == "torch._utils._rebuild_tensor_v2") return rebuildTensor(a, true);
    if (g == "torch._utils._rebuild_tensor") return rebuildTensor(a, false);
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state" ||
        g == "torch.nn.parameter.Parameter") {
      if (a.empty()) fail(g + " without arguments");
      auto t = tensorArg(a[0], g.c_str());
      t->parameter = true;
      return t;
    }
    if (g == "torch._tensor._rebuild_from_type_v2") {
      if (a.size() < 3 || a[2]->kind != Kind::Tuple) fail("_rebuild_from_type_v2 expects (func, type, args, state)");
      // torch.save names a tensor-rebuilding function here; letting it name _rebuild_from_type_v2 again
      // would let a file nest the call (and this C++ recursion) as deep as it likes
      if (a[0]->kind == Kind::Global && a[0]->s == g) fail("_rebuild_from_type_v2 nested in itself");
      if (a[1]->kind != Kind::Global || (a[1]->s != "torch.Tensor" && a[1]->s != "torch.nn.parameter.Parameter"))
        fail("_rebuild_from_type_v2 for an unsupported tensor type");
      auto t = callGlobal(a[0], a[2]);
      if (t->kind != Kind::Tensor) fail("_rebuild_from_type_v2 did not rebuild a tensor");
      if (a[1]->s == "torch.nn.parameter.Parameter") t->parameter = true;
      return t;
    }
    if (g == "torch.device") {
      if (a.empty() || a[0]->kind != Kind::String) fail("torch.device expects a string");
      std::string s = a[0]->s;
      if (a.size() > 1 && a[1]->kind == Kind::Int) s += ":" + std::to_string(a[1]->i);
      return Value::string(s);
    }
    if (g == "torch.Size") {
      if (a.size() != 1) fail("torch.Size expects one argument");
      return track(Value::tuple(intTupleValues(a[0])));
    }
    if (g == "numpy.core.multiarray.scalar" || g == "numpy._core.multiarray.scalar") return numpyScalar(a);
    if (g == "numpy.dtype") {
      if (a.empty() || a[0]->kind != Kind::String) fail("numpy.dtype expects a type string");
      auto d = std::make_shared<Value>(Kind::NumpyDType);
      d->s = a[0]->s;
      return d;
    }
    if (g == "_codecs.encode") {
      if (a.size() != 2 || a[0]->kind != Kind::String || a[1]->kind != Kind::String) fail("_codecs.encode expects (str, encoding)");
      if (a[1]->s != "latin1" && a[1]->s != "latin-1") fail("_codecs.encode with encoding '" + a[1]->s + "'");
      // Text was decoded from UTF-8; latin1 maps each code point < 256 back to one byte.
      std::string out;
      const std::string& s = a[0]->s;
      for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) { out.push_back(static_cast<char>(c)); i += 1; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
          unsigned cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
          if (cp > 0xFF) fail("_codecs.encode: character outside latin1");
          out.push_back(static_cast<char>(cp));
          i += 2;
        } else fail("_codecs.encode: character outside latin1");
      }
      return Value::bytes(out);
    }
    if (g == "argparse.Namespace") return track(Value::dict(false));
    if (g == "builtins.set" || g == "builtins.frozenset") {
      auto l = track(Value::list());
      if (!a.empty()) {
        if (!a[0]->isContainer() || a[0]->kind == Kind::Dict) fail("set() expects a list");
        l->items = a[0]->items;
        for (const auto& x : l->items) raise(l, x);
      }
      return l;
    }
    fail("global '" + g + "' cannot be called");
  }

  std::vector<ValuePtr> intTupleValues(const ValuePtr& v) {
    std::vector<ValuePtr> out;
    for (auto x : intTuple(v, "torch.Size")) out.push_back(Value::integer(x));
    return out;
  }

  ValuePtr persistent(const ValuePtr& pid) {
    if (pid->kind != Kind::Tuple || pid->items.size() < 5) fail("persistent id is not a ('storage', ...) tuple");
    const auto& a = pid->items;
    if (a[0]->kind != Kind::String || a[0]->s != "storage") fail("persistent id of unknown kind");
    if (a[1]->kind != Kind::Global) fail("storage type is not a global");
    const std::string& tn = a[1]->s;
    const StorageType* st = nullptr;
    for (const auto& t : kStorageTypes)
      if (tn == std::string("torch.") + t.name) st = &t;
    if (!st) fail("unsupported storage type '" + tn + "'");
    std::string key;
    if (a[2]->kind == Kind::String || a[2]->kind == Kind::Bytes) key = a[2]->s;
    else if (a[2]->kind == Kind::Int) key = std::to_string(a[2]->i);
    else fail("storage key is not a string");
    if (key.empty() || key.size() > 256) fail("storage key of bad length");
    std::string location = a[3]->kind == Kind::String ? a[3]->s : "";
    int64_t numel = asInt(a[4], "storage size");
    if (numel < 0) fail("negative storage size");
    auto it = result_.storages.find(key);
    std::shared_ptr<PendingStorage> s;
    if (it != result_.storages.end()) {
      s = it->second;
      if (s->dtype != st->dtype) fail("storage '" + key + "' is named with two element types");
    } else {
      s = std::make_shared<PendingStorage>();
      s->key = key;
      s->dtype = st->dtype;
      s->typeName = st->name;
      s->numel = numel;
      s->location = location;
      result_.storages[key] = s;
    }
    if (a.size() >= 6 && a[5]->kind != Kind::None) {
      // legacy view: (view_key, offset, size)
      const auto& vm = a[5];
      if (vm->kind != Kind::Tuple || vm->items.size() != 3) fail("storage view metadata is not (key, offset, size)");
      std::string vk = vm->items[0]->kind == Kind::String ? vm->items[0]->s : "";
      int64_t off = asInt(vm->items[1], "view offset"), sz = asInt(vm->items[2], "view size");
      if (off < 0 || sz < 0 || off > s->numel || sz > s->numel - off) fail("storage view outside its storage");
      auto vit = result_.storages.find(vk);
      std::shared_ptr<PendingStorage> v;
      if (vit == result_.storages.end()) {
        v = std::make_shared<PendingStorage>();
        v->key = vk;
        v->dtype = st->dtype;
        v->typeName = st->name;
        v->numel = sz;
        v->hasView = true;
        v->viewOf = key;
        v->viewOffset = off;
        result_.storages[vk] = v;
      } else v = vit->second;
      s = v;
    }
    auto out = std::make_shared<Value>(Kind::Storage);
    out->storage = s;
    return out;
  }

  void setItem(const ValuePtr& d, ValuePtr k, ValuePtr v) {
    if (d->kind != Kind::Dict) fail(std::string("SETITEM on a ") + kindName(d->kind));
    if (k->kind == Kind::Invalid) fail("dict key: " + k->s);
    if (k->isContainer() || k->kind == Kind::Tensor) fail("dict key of unhashable type");
    raise(d, v);
    d->entries.emplace_back(std::move(k), std::move(v));
  }

  void build(const ValuePtr& obj, const ValuePtr& state) {
    if (obj->kind == Kind::Dict) {
      // OrderedDict state (e.g. {'_metadata': ...} of a state dict) is ignored; a Namespace's state is its fields.
      if (!obj->ordered && state->kind == Kind::Dict) {
        for (const auto& e : state->entries) {
          raise(obj, e.second);
          obj->entries.push_back(e);
        }
      }
      return;
    }
    if (obj->kind == Kind::NumpyDType) {
      // numpy's dtype state: (version, byte order, ...); '>' marks a big-endian dtype
      if (state->kind == Kind::Tuple && state->items.size() > 1 && state->items[1]->kind == Kind::String)
        obj->b = state->items[1]->s == ">";
      return;
    }
    if (obj->kind == Kind::Tensor || obj->kind == Kind::Invalid) return;  // tensor attributes; a value already failed
    fail(std::string("BUILD on a ") + kindName(obj->kind));
  }

  void runLoop() {
    for (;;) {
      opPos_ = static_cast<size_t>(p_ - begin_);
      op_ = u8();
      switch (op_) {
        case 0x80: {  // PROTO
          uint8_t v = u8();
          if (v > 5) fail("unsupported pickle protocol " + std::to_string(v));
          break;
        }
        case 0x95: {  // FRAME
          uint64_t n = le(8);
          if (n > remaining()) failTruncated("truncated frame");
          break;
        }
        case '.':  // STOP
          result_.root = pop();
          return;
        case '(': {
          if (marks_.size() >= kMaxMarks) fail("too many nested MARKs");
          marks_.push_back(stack_.size());
          break;
        }
        case '0': pop(); break;
        case '1': popMark(); break;
        case '2': push(top()); break;
        case 'N': push(none_); break;
        case 0x88: push(true_); break;
        case 0x89: push(false_); break;
        case 'J': push(Value::integer(static_cast<int32_t>(le(4)))); break;
        case 'K': push(Value::integer(static_cast<int64_t>(le(1)))); break;
        case 'M': push(Value::integer(static_cast<int64_t>(le(2)))); break;
        case 0x8a: case 0x8b: {  // LONG1, LONG4
          uint64_t n = op_ == 0x8a ? le(1) : le(4);
          if (n > 8) fail("integer wider than 64 bits");
          need(static_cast<size_t>(n));
          uint64_t v = 0;
          for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
          if (n > 0 && n < 8 && (p_[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          p_ += n;
          push(Value::integer(static_cast<int64_t>(v)));
          break;
        }
        case 'I': case 'L': {  // text INT / LONG
          std::string s = line();
          if (!s.empty() && s.back() == 'L') s.pop_back();
          if (s == "00") { push(Value::boolean(false)); break; }
          if (s == "01") { push(Value::boolean(true)); break; }
          if (s.empty() || s.size() > 20) fail("bad text integer");
          char* e = nullptr;
          errno = 0;
          long long v = std::strtoll(s.c_str(), &e, 10);
          if (errno || *e) fail("bad text integer '" + s + "'");
          push(Value::integer(v));
          break;
        }
        case 'G': {
          need(8);
          uint64_t b = 0;
          for (int i = 0; i < 8; ++i) b = (b << 8) | p_[i];
          p_ += 8;
          double d;
          std::memcpy(&d, &b, 8);
          push(Value::real(d));
          break;
        }
        case 'F': {
          std::string s = line();
          char* e = nullptr;
          double d = std::strtod(s.c_str(), &e);
          if (s.empty() || *e) fail("bad text float");
          push(Value::real(d));
          break;
        }
        case 0x8c: push(Value::string(bytes(le(1)))); break;  // SHORT_BINUNICODE
        case 'X': push(Value::string(bytes(le(4)))); break;   // BINUNICODE
        case 0x8d: push(Value::string(bytes(le(8)))); break;  // BINUNICODE8
        case 'V': push(Value::string(line())); break;         // UNICODE (raw-unicode-escape; ASCII in practice)
        // Python 2 byte strings: state-dict keys in old files. Decoded as text.
        case 'U': push(Value::string(bytes(le(1)))); break;
        case 'T': {
          int32_t n = static_cast<int32_t>(le(4));
          if (n < 0) fail("negative string length");
          push(Value::string(bytes(static_cast<uint64_t>(n))));
          break;
        }
        case 'S': {
          std::string s = line();
          if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front())
            s = s.substr(1, s.size() - 2);
          push(Value::string(s));
          break;
        }
        case 'C': push(Value::bytes(bytes(le(1)))); break;
        case 'B': push(Value::bytes(bytes(le(4)))); break;
        case 0x8e: push(Value::bytes(bytes(le(8)))); break;
        case 0x96: push(Value::bytes(bytes(le(8)))); break;  // BYTEARRAY8
        case ']': push(track(Value::list())); break;
        case 'l': {
          auto items = popMark();
          auto l = track(Value::list());
          l->items = std::move(items);
          for (const auto& x : l->items) raise(l, x);
          push(l);
          break;
        }
        case 'a': {
          ValuePtr v = pop();
          ValuePtr& l = top();
          if (l->kind != Kind::List) fail(std::string("APPEND to a ") + kindName(l->kind));
          raise(l, v);
          l->items.push_back(std::move(v));
          break;
        }
        case 'e': {
          auto items = popMark();
          ValuePtr& l = top();
          if (l->kind != Kind::List) fail(std::string("APPENDS to a ") + kindName(l->kind));
          for (auto& v : items) {
            raise(l, v);
            l->items.push_back(std::move(v));
          }
          break;
        }
        case 0x8f: push(track(Value::list())); break;  // EMPTY_SET
        case 0x90: {                                    // ADDITEMS
          auto items = popMark();
          ValuePtr& l = top();
          if (l->kind != Kind::List) fail("ADDITEMS to a non-set");
          for (auto& v : items) {
            raise(l, v);
            l->items.push_back(std::move(v));
          }
          break;
        }
        case 0x91: {  // FROZENSET
          auto t = track(Value::tuple(popMark()));
          push(t);
          break;
        }
        case ')': push(track(Value::tuple())); break;
        case 't': push(track(Value::tuple(popMark()))); break;
        case 0x85: { auto a = pop(); push(track(Value::tuple({a}))); break; }
        case 0x86: { auto b = pop(); auto a = pop(); push(track(Value::tuple({a, b}))); break; }
        case 0x87: { auto c = pop(); auto b = pop(); auto a = pop(); push(track(Value::tuple({a, b, c}))); break; }
        case '}': push(track(Value::dict())); break;
        case 'd': {
          auto items = popMark();
          if (items.size() % 2) fail("DICT with an odd number of items");
          auto d = track(Value::dict());
          for (size_t i = 0; i < items.size(); i += 2) setItem(d, items[i], items[i + 1]);
          push(d);
          break;
        }
        case 's': {
          ValuePtr v = pop();
          ValuePtr k = pop();
          setItem(top(), std::move(k), std::move(v));
          break;
        }
        case 'u': {
          auto items = popMark();
          if (items.size() % 2) fail("SETITEMS with an odd number of items");
          ValuePtr d = top();
          for (size_t i = 0; i < items.size(); i += 2) setItem(d, items[i], items[i + 1]);
          break;
        }
        case 'c': {  // GLOBAL
          std::string module = line();
          std::string name = line();
          push(makeGlobal(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop();
          ValuePtr module = pop();
          if (name->kind != Kind::String || module->kind != Kind::String) fail("STACK_GLOBAL with non-string names");
          push(makeGlobal(module->s, name->s));
          break;
        }
        case 'R': {
          ValuePtr args = pop();
          ValuePtr fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ cls.__new__(cls, *args)
          ValuePtr args = pop();
          ValuePtr cls = pop();
          if (cls->kind != Kind::Global || (cls->s != "argparse.Namespace" && cls->s != "collections.OrderedDict"))
            fail("NEWOBJ of '" + (cls->kind == Kind::Global ? cls->s : std::string(kindName(cls->kind))) + "' is not allowed");
          push(track(Value::dict(cls->s == "collections.OrderedDict")));
          break;
        }
        case 'b': {
          ValuePtr state = pop();
          build(top(), state);
          break;
        }
        case 'Q': push(persistent(pop())); break;
        case 'P': fail("text persistent ids are not used by PyTorch checkpoints");
        case 'q': memoPut(le(1)); break;
        case 'r': memoPut(le(4)); break;
        case 'p': {
          std::string s = line();
          char* e = nullptr;
          unsigned long long v = std::strtoull(s.c_str(), &e, 10);
          if (s.empty() || *e) fail("bad PUT index");
          memoPut(v);
          break;
        }
        case 0x94: memoPut(memo_.size()); break;  // MEMOIZE
        case 'h': memoGet(le(1)); break;
        case 'j': memoGet(le(4)); break;
        case 'g': {
          std::string s = line();
          char* e = nullptr;
          unsigned long long v = std::strtoull(s.c_str(), &e, 10);
          if (s.empty() || *e) fail("bad GET index");
          memoGet(v);
          break;
        }
        case 'i': case 'o': fail("INST/OBJ opcodes (class instances) are not allowed");
        case 0x82: case 0x83: case 0x84: fail("EXT opcodes (extension registry) are not allowed");
        case 0x92: fail("NEWOBJ_EX is not allowed");
        case 0x97: case 0x98: fail("out-of-band buffers are not allowed");
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op_);
          fail(std::string("unknown pickle opcode ") + buf);
        }
      }
    }
  }

  void memoPut(uint64_t idx) {
    if (memo_.size() >= kMaxMemo && !memo_.count(idx)) fail("too many memo entries (more than " + std::to_string(kMaxMemo) + ")");
    memo_[idx] = top();
  }
  void memoGet(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo key " + std::to_string(idx) + " is not defined");
    push(it->second);
  }

  void validate(const ValuePtr& root) {
    if (!root) fail("empty pickle");
    if (!stack_.empty()) {
      // Python tolerates leftovers; PyTorch never writes them.
    }
    const int64_t maxNodes = kMinTreeNodes + kTreeNodesPerByte * static_cast<int64_t>(end_ - begin_);
    forEachLeaf(
        root,
        [&](const std::string& path, const std::vector<std::string>&, const ValuePtr& v) {
          if (v->kind == Kind::Invalid)
            throw CheckpointError(where_ + ": the value at key path " + (path.empty() ? std::string("(the whole object)") : "'" + path + "'") +
                                  " cannot be read: " + v->s);
          if (v->kind == Kind::Global || v->kind == Kind::Storage || v->kind == Kind::NumpyDType)
            fail(std::string("unsupported object (") + kindName(v->kind) + (v->kind == Kind::Global ? " " + v->s : "") +
                 ") at '" + path + "'");
        },
        512, maxNodes);
  }
};

}  // namespace

size_t storageElementSize(c10::ScalarType t) { return c10::elementSize(t); }

UnpickleResult unpickle(const uint8_t* data, size_t size, const std::string& where) {
  return Unpickler(data, size, where).run();
}

// ------------------------------------------------------------------------------------------------
// Writer

namespace {

class Pickler {
 public:
  explicit Pickler(std::vector<torch::Tensor>& storages) : storages_(storages) {}
  std::string out;

  void run(const ValuePtr& root) {
    out.push_back('\x80');
    out.push_back('\x02');
    write(root, 0);
    out.push_back('.');
  }

 private:
  std::vector<torch::Tensor>& storages_;

  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void global(const char* module, const char* name) {
    out.push_back('c');
    out += module;
    out.push_back('\n');
    out += name;
    out.push_back('\n');
  }
  void str(const std::string& s) {
    out.push_back('X');
    u32(static_cast<uint32_t>(s.size()));
    out += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      out.push_back('K');
      out.push_back(static_cast<char>(v));
    } else if (v >= 0 && v < 65536) {
      out.push_back('M');
      out.push_back(static_cast<char>(v & 0xff));
      out.push_back(static_cast<char>((v >> 8) & 0xff));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out.push_back('J');
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      out.push_back('\x8a');
      out.push_back(8);
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
    }
  }
  void real(double d) {
    out.push_back('G');
    uint64_t b;
    std::memcpy(&b, &d, 8);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((b >> (8 * i)) & 0xff));
  }
  void intTuple(at::IntArrayRef v) {
    out.push_back('(');
    for (auto x : v) integer(x);
    out.push_back('t');
  }

  static const char* storageName(c10::ScalarType t) {
    switch (t) {
      case c10::ScalarType::Float: return "FloatStorage";
      case c10::ScalarType::Double: return "DoubleStorage";
      case c10::ScalarType::Half: return "HalfStorage";
      case c10::ScalarType::BFloat16: return "BFloat16Storage";
      case c10::ScalarType::Long: return "LongStorage";
      case c10::ScalarType::Int: return "IntStorage";
      case c10::ScalarType::Short: return "ShortStorage";
      case c10::ScalarType::Char: return "CharStorage";
      case c10::ScalarType::Byte: return "ByteStorage";
      case c10::ScalarType::Bool: return "BoolStorage";
      default: throw std::runtime_error(std::string("cannot save tensors of type ") + c10::toString(t));
    }
  }

  void tensor(const torch::Tensor& t0) {
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    if (t.storage_offset() != 0 || t.numel() != static_cast<int64_t>(t.storage().nbytes() / t.element_size()))
      t = t.clone();
    std::string key = std::to_string(storages_.size());
    storages_.push_back(t);
    global("torch._utils", "_rebuild_tensor_v2");
    out.push_back('(');
    // persistent id ('storage', torch.<T>Storage, key, 'cpu', numel)
    out.push_back('(');
    str("storage");
    global("torch", storageName(t.scalar_type()));
    str(key);
    str("cpu");
    integer(t.numel());
    out.push_back('t');
    out.push_back('Q');
    integer(0);
    intTuple(t.sizes());
    intTuple(t.strides());
    out.push_back('\x89');  // requires_grad False
    global("collections", "OrderedDict");
    out.push_back(')');
    out.push_back('R');
    out.push_back('t');
    out.push_back('R');
  }

  void write(const ValuePtr& v, int depth) {
    if (depth > 512) throw std::runtime_error("object nested too deeply to save");
    switch (v->kind) {
      case Kind::None: out.push_back('N'); break;
      case Kind::Bool: out.push_back(v->b ? '\x88' : '\x89'); break;
      case Kind::Int: integer(v->i); break;
      case Kind::Float: real(v->f); break;
      case Kind::String: str(v->s); break;
      case Kind::Bytes:
        // protocol 2 has no bytes opcode; torch.load(weights_only) reads _codecs.encode(text, 'latin1')
        throw std::runtime_error("cannot save bytes values");
      case Kind::List:
        out.push_back(']');
        if (!v->items.empty()) {
          out.push_back('(');
          for (const auto& x : v->items) write(x, depth + 1);
          out.push_back('e');
        }
        break;
      case Kind::Tuple:
        out.push_back('(');
        for (const auto& x : v->items) write(x, depth + 1);
        out.push_back('t');
        break;
      case Kind::Dict:
        if (v->ordered) {
          global("collections", "OrderedDict");
          out.push_back(')');
          out.push_back('R');
        } else {
          out.push_back('}');
        }
        for (size_t i = 0; i < v->entries.size(); i += 1000) {
          out.push_back('(');
          for (size_t j = i; j < std::min(v->entries.size(), i + 1000); ++j) {
            write(v->entries[j].first, depth + 1);
            write(v->entries[j].second, depth + 1);
          }
          out.push_back('u');
        }
        break;
      case Kind::Tensor: tensor(v->tensor); break;
      default: throw std::runtime_error(std::string("cannot save a value of kind ") + kindName(v->kind));
    }
  }
};

}  // namespace

std::string picklePth(const ValuePtr& root, std::vector<torch::Tensor>& storagesOut) {
  Pickler p(storagesOut);
  p.run(root);
  return std::move(p.out);
}

}  // namespace spurmem
