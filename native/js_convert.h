// Conversions between checkpoint Values / tensors and JS values.
#pragma once

#include "checkpoint/value.h"

#include <napi.h>

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

}  // namespace spurmem
