// JS class `Checkpoint`: a decoded .pth file held in native memory.
#pragma once

#include "checkpoint/archive.h"

#include <napi.h>

namespace spurmem {

class CheckpointHandle : public Napi::ObjectWrap<CheckpointHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::FunctionReference* constructor;
  /// Wraps an already decoded checkpoint in a new JS object.
  static Napi::Object Wrap(Napi::Env env, Checkpoint c);
  static CheckpointHandle* From(const Napi::Value& v, const char* what);

  explicit CheckpointHandle(const Napi::CallbackInfo& info);
  ~CheckpointHandle() override;
  Checkpoint ckpt;

  /// The Value at a path of dict keys / list indices; throws naming the first missing component.
  ValuePtr at(const std::vector<std::string>& path) const;
  /// A dotted key path as entries() gives it; the longest matching key wins at each dict.
  ValuePtr atDotted(const std::string& dotted) const;
  /// at() for an array of keys, atDotted() for a string.
  ValuePtr atArg(const Napi::Value& v) const;
  /// atArg with a missing key thrown as a JS Error.
  ValuePtr atJs(Napi::Env env, const Napi::Value& v) const;

 private:
  int64_t external_ = 0;  // bytes reported to V8 with AdjustExternalMemory
  Napi::Value Format(const Napi::CallbackInfo& info);
  Napi::Value Path(const Napi::CallbackInfo& info);
  Napi::Value Entries(const Napi::CallbackInfo& info);
  Napi::Value ToObject(const Napi::CallbackInfo& info);
  Napi::Value Tensor(const Napi::CallbackInfo& info);
  Napi::Value Keys(const Napi::CallbackInfo& info);
  Napi::Value StripKeyPrefix(const Napi::CallbackInfo& info);
};

}  // namespace spurmem
