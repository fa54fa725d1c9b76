// Small helpers shared by the Model glue files (model_handle.cc, model_edits.cc): no libtorch work here.
#pragma once

#include "js_convert.h"
#include "ops/weight_edits.h"

#include <napi.h>

#include <initializer_list>
#include <utility>
#include <vector>

namespace spurmem::glue {

struct Done {};

inline Napi::Value undefinedOf(Napi::Env env, const Done&) { return env.Undefined(); }

/// {key: number, ...} as a JS object.
inline Napi::Object numbers(Napi::Env env, std::initializer_list<std::pair<const char*, double>> fields) {
  auto o = Napi::Object::New(env);
  for (const auto& f : fields) o.Set(f.first, f.second);
  return o;
}

/// [{name, index}] at options.<key> as channel edits.
inline std::vector<ChannelEdit> channelList(const JsOptions& o, const char* key) {
  std::vector<ChannelEdit> out;
  for (const auto& e : o.objects(key)) out.push_back({e.str("name"), e.integer("index")});
  return out;
}

}  // namespace spurmem::glue
