// Device selection: "cpu", "cuda", "cuda:N".
#pragma once

#include <torch/torch.h>

#include <string>

namespace spurmem {

/// Parses and checks a device string. Throws std::invalid_argument with a message that says what to do:
/// "this libtorch was built without CUDA", "no CUDA device N (found K)", or a malformed name.
torch::Device parseDevice(const std::string& name);

/// True when the linked libtorch has CUDA compiled in (whether or not a GPU is present).
bool libtorchHasCuda();

/// Number of visible CUDA devices (0 without CUDA).
int64_t cudaDeviceCount();

}  // namespace spurmem
