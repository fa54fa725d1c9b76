// Image transforms exposed to JS (glue of image/pil_resample.h).
#pragma once

#include <napi.h>

namespace spurmem {

/// Adds pilTransform to the module's exports.
void registerImageOps(Napi::Env env, Napi::Object exports);

}  // namespace spurmem
