#include "js_convert.h"

#include <cstring>
#include <stdexcept>

namespace spurmem {

std::string dtypeName(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::Double: return "float64";
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Long: return "int64";
    case c10::ScalarType::Int: return "int32";
    case c10::ScalarType::Short: return "int16";
    case c10::ScalarType::Char: return "int8";
    case c10::ScalarType::Byte: return "uint8";
    case c10::ScalarType::Bool: return "bool";
    case c10::ScalarType::ComplexFloat: return "complex64";
    case c10::ScalarType::ComplexDouble: return "complex128";
    default: return c10::toString(t);
  }
}

c10::ScalarType dtypeFromName(const std::string& n) {
  if (n == "float32") return c10::ScalarType::Float;
  if (n == "float64") return c10::ScalarType::Double;
  if (n == "float16") return c10::ScalarType::Half;
  if (n == "bfloat16") return c10::ScalarType::BFloat16;
  if (n == "int64") return c10::ScalarType::Long;
  if (n == "int32") return c10::ScalarType::Int;
  if (n == "int16") return c10::ScalarType::Short;
  if (n == "int8") return c10::ScalarType::Char;
  if (n == "uint8") return c10::ScalarType::Byte;
  if (n == "bool") return c10::ScalarType::Bool;
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
