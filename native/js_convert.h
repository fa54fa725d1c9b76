// Conversions between checkpoint Values / tensors and JS values, and the one reader of the arguments
// JavaScript passes to native methods (an options object that TypeScript has validated and completed).
#pragma once

#include "checkpoint/value.h"
#include "ops/model_state.h"

#include <napi.h>

#include <string>
#include <vector>

namespace spurmem {

/// PyTorch's name of a dtype ("float32", "int64", "bfloat16", ...).
std::string dtypeName(c10::ScalarType t);
/// Inverse of dtypeName; throws std::invalid_argument for an unknown name.
c10::ScalarType dtypeFromName(const std::string& name);

/// {dtype, shape, data}: data is a typed array of the tensor's values in row-major order (float16 and
/// bfloat16 are widened to a Float32Array; bool becomes a Uint8Array; int64 a BigInt64Array).
Napi::Object tensorToJs(Napi::Env env, const torch::Tensor& t);
/// {dtype, shape} only.
Napi::Object tensorMeta(Napi::Env env, const torch::Tensor& t);

/// A Value as a JS value. Tensors become {dtype, shape} (and `data` when withData). Dict keys that are
/// not strings are rendered as text. Throws for graphs deeper than 512 levels.
Napi::Value valueToJs(Napi::Env env, const ValuePtr& v, bool withData, int depth = 0);

/// A JS value as a Value: null/undefined -> None, boolean -> bool, integer number or bigint -> int,
/// other number -> float, {__float__: x} -> float, string -> str, array -> list, {__tuple__: [...]} ->
/// tuple, {__ordered__: {...}} -> OrderedDict, {dtype, shape, data} -> tensor, other object -> dict.
ValuePtr jsToValue(const Napi::Value& v, int depth = 0);

/// Tensor from a {dtype, shape, data} object (copies the data).
torch::Tensor jsToTensor(const Napi::Object& o);

/// A plain options object from JavaScript. TypeScript passes every field a method reads (native code
/// keeps no defaults of its own): a missing field or one of another type is a TypeError naming the key and
/// the object ("forward options: 'masked' must be a boolean").
class JsOptions {
 public:
  /// info[i], which must be an object.
  JsOptions(const Napi::CallbackInfo& info, size_t i, std::string what);
  JsOptions(Napi::Env env, Napi::Object o, std::string what);

  std::string str(const char* key) const;
  double num(const char* key) const;
  int64_t integer(const char* key) const;
  bool flag(const char* key) const;
  std::vector<std::string> strings(const char* key) const;
  /// An array of exactly n integers; `shape` names them in the error ("[width, height]").
  std::vector<int64_t> integers(const char* key, size_t n, const char* shape) const;
  /// An array of objects, each read as JsOptions named "<what>.<key>[i]".
  std::vector<JsOptions> objects(const char* key) const;
  /// Whether the field is there (neither undefined nor null): for the few fields that are optional by
  /// meaning (a rewind source, an init seed, extra checkpoint entries), never for a default.
  bool has(const char* key) const;
  Napi::Value value(const char* key) const;

  Napi::Env env;
  Napi::Object object;
  std::string what;

 private:
  Napi::Value need(const char* key, bool ok, const char* type) const;
};

/// A JS array of strings as a path (undefined or null: the empty path); throws a TypeError otherwise.
std::vector<std::string> pathArg(const Napi::Value& v);

/// A batch {images: Uint8Array, shape: [n,h,w,3]} or {tensor: Float32Array, shape: [n,3,h,w]}; the typed
/// array is pushed onto `keep` (it must stay referenced while a worker reads it).
BatchIn batchArg(Napi::Env env, const Napi::Object& o, std::vector<Napi::Value>& keep);
/// An Int32Array of exactly n entries, as int64.
std::vector<int64_t> int32List(Napi::Env env, const Napi::Value& v, int64_t n, const char* what);
/// A Float32Array of exactly n entries; undefined or null: empty.
std::vector<float> float32List(Napi::Env env, const Napi::Value& v, int64_t n, const char* what);
/// A tensor's values as a Float32Array (converted to float32 on the CPU).
Napi::Float32Array toFloat32Array(Napi::Env env, const torch::Tensor& t);

}  // namespace spurmem
