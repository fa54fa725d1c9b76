// Image transforms exposed to JS (glue of image/pil_resample.h).
#pragma once

#include <napi.h>

namespace spurmem {

/// Adds pilTransform, decodeTransformFiles and nativeJpeg (whether libjpeg was found at build time) to the module's exports.
void registerImageOps(Napi::Env env, Napi::Object exports);

}  // namespace spurmem
