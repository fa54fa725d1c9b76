#include "js_convert.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace spurmem {

namespace {
/// PyTorch's dtype names; `fromJs`: a tensor of that dtype can be built from JS data.
struct DtypeName {
  c10::ScalarType type;
  const char* name;
  bool fromJs;
};
constexpr DtypeName kDtypes[] = {
    {c10::ScalarType::Float, "float32", true},       {c10::ScalarType::Double, "float64", true},
    {c10::ScalarType::Half, "float16", true},        {c10::ScalarType::BFloat16, "bfloat16", true},
    {c10::ScalarType::Long, "int64", true},          {c10::ScalarType::Int, "int32", true},
    {c10::ScalarType::Short, "int16", true},         {c10::ScalarType::Char, "int8", true},
    {c10::ScalarType::Byte, "uint8", true},          {c10::ScalarType::Bool, "bool", true},
    {c10::ScalarType::ComplexFloat, "complex64", false}, {c10::ScalarType::ComplexDouble, "complex128", false},
};
}  // namespace

std::string dtypeName(c10::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  return c10::toString(t);
}

c10::ScalarType dtypeFromName(const std::string& n) {
  for (const auto& d : kDtypes)
    if (d.fromJs && n == d.name) return d.type;
  throw std::invalid_argument("unknown dtype '" + n + "'");
}

static Napi::Array shapeOf(Napi::Env env, const torch::Tensor& t) {
  auto a = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  return a;
}

Napi::Object tensorMeta(Napi::Env env, const torch::Tensor& t) {
  auto o = Napi::Object::New(env);
  o.Set("dtype", dtypeName(t.scalar_type()));
  o.Set("shape", shapeOf(env, t));
  return o;
}

Napi::Object tensorToJs(Napi::Env env, const torch::Tensor& t0) {
  auto o = tensorMeta(env, t0);
  torch::Tensor t = t0.detach().to(torch::kCPU);
  auto st = t.scalar_type();
  if (st == c10::ScalarType::Half || st == c10::ScalarType::BFloat16) t = t.to(torch::kFloat);
  if (st == c10::ScalarType::Bool) t = t.to(torch::kUInt8);
  t = t.contiguous();
  size_t n = static_cast<size_t>(t.numel());
  size_t nbytes = n * t.element_size();
  Napi::Value data;
  switch (t.scalar_type()) {
    case c10::ScalarType::Float: { auto a = Napi::Float32Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    case c10::ScalarType::Double: { auto a = Napi::Float64Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    case c10::ScalarType::Long: { auto a = Napi::BigInt64Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    case c10::ScalarType::Int: { auto a = Napi::Int32Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    case c10::ScalarType::Short: { auto a = Napi::Int16Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    case c10::ScalarType::Char: { auto a = Napi::Int8Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    case c10::ScalarType::Byte: { auto a = Napi::Uint8Array::New(env, n); std::memcpy(a.Data(), t.data_ptr(), nbytes); data = a; break; }
    default: throw Napi::Error::New(env, "tensor of dtype " + dtypeName(st) + " cannot be converted to a typed array");
  }
  o.Set("data", data);
  return o;
}

Napi::Value valueToJs(Napi::Env env, const ValuePtr& v, bool withData, int depth) {
  if (depth > 512) throw Napi::Error::New(env, "object nested deeper than 512 levels");
  switch (v->kind) {
    case Kind::None: return env.Null();
    case Kind::Bool: return Napi::Boolean::New(env, v->b);
    case Kind::Int:
      if (v->i > (int64_t(1) << 53) || v->i < -(int64_t(1) << 53)) return Napi::BigInt::New(env, v->i);
      return Napi::Number::New(env, static_cast<double>(v->i));
    case Kind::Float: return Napi::Number::New(env, v->f);
    case Kind::String: return Napi::String::New(env, v->s);
    case Kind::Bytes: return Napi::Buffer<char>::Copy(env, v->s.data(), v->s.size());
    case Kind::List:
    case Kind::Tuple: {
      auto a = Napi::Array::New(env, v->items.size());
      for (size_t i = 0; i < v->items.size(); ++i) a.Set(static_cast<uint32_t>(i), valueToJs(env, v->items[i], withData, depth + 1));
      return a;
    }
    case Kind::Dict: {
      auto o = Napi::Object::New(env);
      for (const auto& e : v->entries) o.Set(keyText(*e.first), valueToJs(env, e.second, withData, depth + 1));
      return o;
    }
    case Kind::Tensor: return withData ? tensorToJs(env, v->tensor) : tensorMeta(env, v->tensor);
    default: throw Napi::Error::New(env, std::string("cannot convert a ") + kindName(v->kind));
  }
}

torch::Tensor jsToTensor(const Napi::Object& o) {
  auto dtype = dtypeFromName(o.Get("dtype").As<Napi::String>().Utf8Value());
  auto shapeA = o.Get("shape").As<Napi::Array>();
  std::vector<int64_t> shape;
  int64_t numel = 1;
  for (uint32_t i = 0; i < shapeA.Length(); ++i) {
    double d = shapeA.Get(i).As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d))) throw std::invalid_argument("tensor shape must hold non-negative integers");
    shape.push_back(static_cast<int64_t>(d));
    numel *= shape.back();
  }
  auto data = o.Get("data");
  if (!data.IsTypedArray()) throw std::invalid_argument("tensor data must be a typed array");
  auto ta = data.As<Napi::TypedArray>();
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  size_t want = static_cast<size_t>(numel) * t.element_size();
  // float16 / bfloat16 / bool may be given as Float32Array / Uint8Array
  if (ta.ByteLength() == want && ta.TypedArrayType() != napi_float32_array) {
    std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), want);
  } else if (ta.TypedArrayType() == napi_float32_array && ta.ElementLength() == static_cast<size_t>(numel)) {
    auto f = torch::from_blob(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), shape, torch::kFloat);
    t.copy_(f);
  } else {
    throw std::invalid_argument("tensor data holds " + std::to_string(ta.ByteLength()) + " bytes, shape and dtype need " + std::to_string(want));
  }
  return t;
}

ValuePtr jsToValue(const Napi::Value& v, int depth) {
  if (depth > 512) throw std::invalid_argument("object nested deeper than 512 levels");
  if (v.IsNull() || v.IsUndefined()) return Value::none();
  if (v.IsBoolean()) return Value::boolean(v.As<Napi::Boolean>().Value());
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d == static_cast<double>(static_cast<int64_t>(d)) && std::abs(d) < 9.007199254740992e15)
      return Value::integer(static_cast<int64_t>(d));
    return Value::real(d);
  }
  if (v.IsBigInt()) {
    bool lossless;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw std::invalid_argument("bigint does not fit 64 bits");
    return Value::integer(x);
  }
  if (v.IsString()) return Value::string(v.As<Napi::String>().Utf8Value());
  if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    auto l = Value::list();
    for (uint32_t i = 0; i < a.Length(); ++i) l->items.push_back(jsToValue(a.Get(i), depth + 1));
    return l;
  }
  if (v.IsObject()) {
    auto o = v.As<Napi::Object>();
    if (o.Has("__float__")) return Value::real(o.Get("__float__").As<Napi::Number>().DoubleValue());
    if (o.Has("__tuple__")) {
      auto a = o.Get("__tuple__").As<Napi::Array>();
      auto t = Value::tuple();
      for (uint32_t i = 0; i < a.Length(); ++i) t->items.push_back(jsToValue(a.Get(i), depth + 1));
      return t;
    }
    bool ordered = false;
    if (o.Has("__ordered__")) {
      o = o.Get("__ordered__").As<Napi::Object>();
      ordered = true;
    } else if (o.Has("dtype") && o.Has("shape") && o.Has("data")) {
      return Value::fromTensor(jsToTensor(o));
    }
    auto d = Value::dict(ordered);
    auto names = o.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      auto k = names.Get(i);
      std::string ks = k.ToString().Utf8Value();
      d->entries.emplace_back(Value::string(ks), jsToValue(o.Get(k), depth + 1));
    }
    return d;
  }
  throw std::invalid_argument("cannot convert this JS value to a checkpoint value");
}

}  // namespace spurmem

// ---- argument readers -----------------------------------------------------------------------------

namespace spurmem {

JsOptions::JsOptions(const Napi::CallbackInfo& info, size_t i, std::string w) : env(info.Env()), what(std::move(w)) {
  if (info.Length() <= i || !info[i].IsObject()) throw Napi::TypeError::New(env, what + " must be an object");
  object = info[i].As<Napi::Object>();
}

JsOptions::JsOptions(Napi::Env e, Napi::Object o, std::string w) : env(e), object(o), what(std::move(w)) {}

Napi::Value JsOptions::need(const char* key, bool ok, const char* type) const {
  if (!ok) throw Napi::TypeError::New(env, what + ": '" + key + "' must be " + type);
  return object.Get(key);
}

Napi::Value JsOptions::value(const char* key) const { return object.Get(key); }

bool JsOptions::has(const char* key) const {
  auto v = object.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

std::string JsOptions::str(const char* key) const {
  return need(key, object.Get(key).IsString(), "a string").As<Napi::String>().Utf8Value();
}

double JsOptions::num(const char* key) const {
  return need(key, object.Get(key).IsNumber(), "a number").As<Napi::Number>().DoubleValue();
}

int64_t JsOptions::integer(const char* key) const {
  auto v = object.Get(key);
  bool ok = v.IsNumber();
  double d = ok ? v.As<Napi::Number>().DoubleValue() : 0;
  need(key, ok && std::isfinite(d) && d == std::floor(d), "an integer");
  return static_cast<int64_t>(d);
}

bool JsOptions::flag(const char* key) const {
  return need(key, object.Get(key).IsBoolean(), "a boolean").As<Napi::Boolean>().Value();
}

std::vector<std::string> JsOptions::strings(const char* key) const {
  auto a = need(key, object.Get(key).IsArray(), "an array of strings").As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    auto v = a.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, what + ": '" + key + "' must be an array of strings");
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

std::vector<int64_t> JsOptions::integers(const char* key, size_t n, const char* shape) const {
  auto v = object.Get(key);
  std::vector<int64_t> out;
  if (v.IsArray() && v.As<Napi::Array>().Length() == n) {
    for (uint32_t i = 0; i < n; ++i) {
      auto e = v.As<Napi::Array>().Get(i);
      double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : 0.5;
      if (!std::isfinite(d) || d != std::floor(d)) break;
      out.push_back(static_cast<int64_t>(d));
    }
  }
  if (out.size() != n) throw Napi::TypeError::New(env, what + ": '" + key + "' must be " + shape + " (" + std::to_string(n) + " integers)");
  return out;
}

std::vector<JsOptions> JsOptions::objects(const char* key) const {
  auto a = need(key, object.Get(key).IsArray(), "an array of objects").As<Napi::Array>();
  std::vector<JsOptions> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    auto v = a.Get(i);
    std::string name = what + "." + key + "[" + std::to_string(i) + "]";
    if (!v.IsObject()) throw Napi::TypeError::New(env, name + " must be an object");
    out.emplace_back(env, v.As<Napi::Object>(), name);
  }
  return out;
}

std::vector<std::string> pathArg(const Napi::Value& v) {
  std::vector<std::string> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray())
    throw Napi::TypeError::New(v.Env(), "path must be an array of keys, e.g. ['model_state_dict', 'layer1.0.conv1.weight'] "
                                        "(state-dict keys hold dots themselves), or for checkpoint methods a dotted string");
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

namespace {
/// The bytes of a typed array of `type` (its name for errors: "batch.images must be a Uint8Array").
Napi::TypedArray typedArg(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throw Napi::TypeError::New(env, what);
  return v.As<Napi::TypedArray>();
}
const void* bytesOf(const Napi::TypedArray& ta) { return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(); }
}  // namespace

BatchIn batchArg(Napi::Env env, const Napi::Object& o, std::vector<Napi::Value>& keep) {
  BatchIn b;
  auto shapeV = o.Get("shape");
  if (!shapeV.IsArray()) throw Napi::TypeError::New(env, "batch.shape must be an array");
  auto sa = shapeV.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < sa.Length(); ++i) shape.push_back(static_cast<int64_t>(sa.Get(i).As<Napi::Number>().DoubleValue()));
  if (shape.size() != 4) throw Napi::TypeError::New(env, "batch.shape must have 4 dimensions");
  Napi::Value data;
  if (o.Get("images").IsTypedArray()) {
    data = o.Get("images");
    auto ta = typedArg(env, data, napi_uint8_array, "batch.images must be a Uint8Array");
    if (shape[3] != 3) throw Napi::TypeError::New(env, "batch.images must be [n, h, w, 3] RGB");
    b.u8 = true;
    b.n = shape[0]; b.h = shape[1]; b.w = shape[2];
    if (ta.ByteLength() != static_cast<size_t>(b.n * b.h * b.w * 3))
      throw Napi::RangeError::New(env, "batch.images length does not match batch.shape");
    b.ptr = bytesOf(ta);
  } else if (o.Get("tensor").IsTypedArray()) {
    data = o.Get("tensor");
    auto ta = typedArg(env, data, napi_float32_array, "batch.tensor must be a Float32Array");
    if (shape[1] != 3) throw Napi::TypeError::New(env, "batch.tensor must be [n, 3, h, w]");
    b.u8 = false;
    b.n = shape[0]; b.h = shape[2]; b.w = shape[3];
    if (ta.ElementLength() != static_cast<size_t>(b.n * 3 * b.h * b.w))
      throw Napi::RangeError::New(env, "batch.tensor length does not match batch.shape");
    b.ptr = bytesOf(ta);
  } else {
    throw Napi::TypeError::New(env, "batch needs images (Uint8Array) or tensor (Float32Array)");
  }
  if (b.n <= 0 || b.h <= 0 || b.w <= 0) throw Napi::RangeError::New(env, "batch must not be empty");
  keep.push_back(data);
  return b;
}

std::vector<int64_t> int32List(Napi::Env env, const Napi::Value& v, int64_t n, const char* what) {
  auto a = typedArg(env, v, napi_int32_array, std::string(what) + " must be an Int32Array").As<Napi::Int32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n)
    throw Napi::RangeError::New(env, std::string(what) + " has " + std::to_string(a.ElementLength()) + " entries, the batch " + std::to_string(n));
  return std::vector<int64_t>(a.Data(), a.Data() + a.ElementLength());
}

std::vector<float> float32List(Napi::Env env, const Napi::Value& v, int64_t n, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return {};
  auto a = typedArg(env, v, napi_float32_array, std::string(what) + " must be a Float32Array").As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) throw Napi::RangeError::New(env, std::string(what) + " length does not match the batch");
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& t0) {
  auto t = t0.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto a = Napi::Float32Array::New(env, static_cast<size_t>(t.numel()));
  std::memcpy(a.Data(), t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  return a;
}

}  // namespace spurmem
