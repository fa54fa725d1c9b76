#include "checkpoint_handle.h"

#include "async.h"
#include "js_convert.h"

namespace spurmem {

Napi::FunctionReference* CheckpointHandle::constructor = nullptr;

Napi::Function CheckpointHandle::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "Checkpoint",
                                 {
                                     InstanceAccessor<&CheckpointHandle::Format>("format"),
                                     InstanceAccessor<&CheckpointHandle::Path>("path"),
                                     InstanceMethod<&CheckpointHandle::Entries>("entries"),
                                     InstanceMethod<&CheckpointHandle::ToObject>("toObject"),
                                     InstanceMethod<&CheckpointHandle::Tensor>("tensor"),
                                     InstanceMethod<&CheckpointHandle::Keys>("keys"),
                                     InstanceMethod<&CheckpointHandle::StripKeyPrefix>("stripKeyPrefix"),
                                 });
  constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

CheckpointHandle::CheckpointHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CheckpointHandle>(info) {}

Napi::Object CheckpointHandle::Wrap(Napi::Env env, Checkpoint c) {
  Napi::Object o = constructor->New({});
  CheckpointHandle* h = From(o, "checkpoint");
  h->ckpt = std::move(c);
  // tell V8 how much memory the object holds, so that dropped checkpoints are collected soon
  h->external_ = static_cast<int64_t>(h->ckpt.storageBytes);
  if (h->external_) Napi::MemoryManagement::AdjustExternalMemory(env, h->external_);
  return o;
}

CheckpointHandle::~CheckpointHandle() {
  if (external_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_);
}

CheckpointHandle* CheckpointHandle::From(const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(constructor->Value()))
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Checkpoint");
  return Napi::ObjectWrap<CheckpointHandle>::Unwrap(v.As<Napi::Object>());
}

// The item of a list or tuple at index text `k` ("3"), or null when `k` is not an index into it.
static ValuePtr listItem(const ValuePtr& v, const std::string& k) {
  char* end = nullptr;
  long idx = std::strtol(k.c_str(), &end, 10);
  if (k.empty() || *end || idx < 0 || static_cast<size_t>(idx) >= v->items.size()) return nullptr;
  return v->items[idx];
}

ValuePtr CheckpointHandle::at(const std::vector<std::string>& path) const {
  ValuePtr v = ckpt.root;
  std::string sofar;
  for (const auto& k : path) {
    ValuePtr next;
    if (v->kind == Kind::Dict) {
      for (const auto& e : v->entries)
        if (keyText(*e.first) == k) {
          next = e.second;
          break;
        }
    } else if (v->kind == Kind::List || v->kind == Kind::Tuple) {
      next = listItem(v, k);
    }
    if (!next)
      throw std::invalid_argument(ckpt.path + ": no key '" + k + "'" + (sofar.empty() ? "" : " under '" + sofar + "'"));
    sofar += (sofar.empty() ? "" : ".") + k;
    v = next;
  }
  return v;
}

// A dotted key path as entries() prints it ("model_state_dict.layer1.0.conv1.weight"): at each dict the
// longest key that the rest of the text starts with (state-dict keys hold dots), at each list an index.
ValuePtr CheckpointHandle::atDotted(const std::string& dotted) const {
  ValuePtr v = ckpt.root;
  std::string rest = dotted;
  std::string sofar;
  while (!rest.empty()) {
    ValuePtr next;
    size_t used = 0;
    if (v->kind == Kind::Dict) {
      for (const auto& e : v->entries) {
        std::string k = keyText(*e.first);
        bool fits = rest == k || (rest.size() > k.size() && rest.compare(0, k.size(), k) == 0 && rest[k.size()] == '.');
        if (fits && k.size() > used) {
          next = e.second;
          used = k.size();
        }
      }
    } else if (v->kind == Kind::List || v->kind == Kind::Tuple) {
      std::string k = rest.substr(0, rest.find('.'));
      next = listItem(v, k);
      if (next) used = k.size();
    }
    if (!next)
      throw std::invalid_argument(ckpt.path + ": no key path '" + dotted + "' (nothing matches '" + rest + "'" +
                                  (sofar.empty() ? "" : " under '" + sofar + "'") + ")");
    sofar += (sofar.empty() ? "" : ".") + rest.substr(0, used);
    rest = used < rest.size() ? rest.substr(used + 1) : "";
    v = next;
  }
  return v;
}

ValuePtr CheckpointHandle::atArg(const Napi::Value& v) const {
  if (v.IsString()) return atDotted(v.As<Napi::String>().Utf8Value());
  return at(pathArg(v));
}

ValuePtr CheckpointHandle::atJs(Napi::Env env, const Napi::Value& v) const {
  try {
    return atArg(v);
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, errorText(e));
  }
}

Napi::Value CheckpointHandle::Format(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), formatName(ckpt.format));
}

Napi::Value CheckpointHandle::Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ckpt.path); }

// entries(): every leaf as {key, kind, dtype?, shape?, value?} in file order.
Napi::Value CheckpointHandle::Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Array::New(env);
  uint32_t n = 0;
  try {
    forEachLeaf(ckpt.root, [&](const std::string& path, const std::vector<std::string>& parts, const ValuePtr& v) {
      auto o = Napi::Object::New(env);
      o.Set("key", path);
      auto pa = Napi::Array::New(env, parts.size());
      for (size_t i = 0; i < parts.size(); ++i) pa.Set(static_cast<uint32_t>(i), parts[i]);
      o.Set("path", pa);
      o.Set("kind", kindName(v->kind));
      if (v->kind == Kind::Tensor) {
        auto m = tensorMeta(env, v->tensor);
        o.Set("dtype", m.Get("dtype"));
        o.Set("shape", m.Get("shape"));
      } else {
        o.Set("value", valueToJs(env, v, false));
      }
      out.Set(n++, o);
    });
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, ckpt.path + ": " + errorText(e));
  }
  return out;
}

// toObject(path?, withData?): the subtree as plain JS (tensors as {dtype, shape[, data]}).
Napi::Value CheckpointHandle::ToObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    bool withData = info.Length() > 1 && info[1].ToBoolean().Value();
    return valueToJs(env, atArg(info.Length() > 0 ? info[0] : env.Undefined()), withData);
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, errorText(e));
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, ckpt.path + ": " + errorText(e));
  }
}

// keys(path?): the keys of the dict at path, in order.
Napi::Value CheckpointHandle::Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ValuePtr v = atJs(env, info.Length() > 0 ? info[0] : env.Undefined());
  auto out = Napi::Array::New(env);
  if (v->kind == Kind::Dict)
    for (size_t i = 0; i < v->entries.size(); ++i) out.Set(static_cast<uint32_t>(i), keyText(*v->entries[i].first));
  return out;
}

// tensor(path): {dtype, shape, data} of the tensor at path.
Napi::Value CheckpointHandle::Tensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ValuePtr v = atJs(env, info[0]);
  if (v->kind != Kind::Tensor) throw Napi::Error::New(env, ckpt.path + ": value at that key is a " + kindName(v->kind) + ", not a tensor");
  try {
    return tensorToJs(env, v->tensor);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    // e.g. an expanded (stride-0) tensor too large to copy out
    throw Napi::Error::New(env, ckpt.path + ": cannot convert the tensor (" + errorText(e) + ")");
  }
}

// stripKeyPrefix(path, prefix): when every key of the dict at path is a string starting with prefix,
// renames them without it (in place, keeping their order) and returns how many; otherwise changes nothing
// and returns 0. For the `module.` of nn.DataParallel / DistributedDataParallel state dicts and the
// `_orig_mod.` of torch.compile. Call it before the checkpoint is handed to any asynchronous operation.
Napi::Value CheckpointHandle::StripKeyPrefix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ValuePtr v = atJs(env, info.Length() > 0 ? info[0] : env.Undefined());
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "stripKeyPrefix(path, prefix): prefix must be a string");
  std::string prefix = info[1].As<Napi::String>().Utf8Value();
  if (prefix.empty() || v->kind != Kind::Dict || v->entries.empty()) return Napi::Number::New(env, 0);
  for (const auto& e : v->entries)
    if (e.first->kind != Kind::String || e.first->s.size() <= prefix.size() || e.first->s.compare(0, prefix.size(), prefix) != 0)
      return Napi::Number::New(env, 0);
  // keys may be shared with other places of the tree (pickle memo): each gets a new string value
  for (auto& e : v->entries) e.first = Value::string(e.first->s.substr(prefix.size()));
  return Napi::Number::New(env, static_cast<double>(v->entries.size()));
}

}  // namespace spurmem
