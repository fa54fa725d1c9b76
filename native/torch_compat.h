// The libtorch APIs that changed between 1.13 (Debian's) and 2.x (the official zips and pip torch), in one
// place: every other file calls these and names no libtorch version.
//
//   API                                   1.13                              2.x
//   bf16 autocast on CUDA                 set_autocast_gpu_dtype,           set_autocast_dtype(kCUDA, ..),
//                                         set_enabled (until 2.3)           set_autocast_enabled(kCUDA, ..) (2.4+)
//   fused attention                       none (op by op)                   at::scaled_dot_product_attention (2.0+)
//   c10::Allocator::allocate              `DataPtr allocate(size_t) const`  non-const, plus a pure virtual
//                                                                           copy_data (2.3+)
//   "was libtorch built with CUDA"        at::detail::getCUDAHooks().versionCUDART() throws in CPU builds, in both
#pragma once

#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>

/// True when the libtorch being compiled against is at least major.minor.
#define SPURMEM_TORCH_AT_LEAST(major, minor) \
  ((TORCH_VERSION_MAJOR > (major)) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// c10::Allocator::allocate is const before 2.3 and not const from 2.3 on; an allocator declares
// `c10::DataPtr allocate(std::size_t n) SPURMEM_ALLOCATE_CONST override` and, from 2.3 on, copy_data.
#if SPURMEM_TORCH_AT_LEAST(2, 3)
#define SPURMEM_ALLOCATE_CONST
#define SPURMEM_ALLOCATOR_HAS_COPY_DATA 1
#else
#define SPURMEM_ALLOCATE_CONST const
#define SPURMEM_ALLOCATOR_HAS_COPY_DATA 0
#endif

namespace spurmem::compat {

/// Turns bf16 autocast for CUDA on (and sets its dtype) or off. Off also clears autocast's weight cache.
inline void setCudaBf16Autocast(bool on) {
#if SPURMEM_TORCH_AT_LEAST(2, 4)
  if (on) at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
  if (on) at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(on);
#endif
  if (!on) at::autocast::clear_cache();
}

/// softmax(q k^T / sqrt(d)) v for q, k, v: [B, heads, N, d]. libtorch >= 2.0 runs
/// scaled_dot_product_attention (fused kernels on CPU and CUDA, as timm does when torch has it); older
/// ones the same formula op by op, q scaled first (timm's fallback).
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v);
#else
  auto qs = q * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  return torch::matmul(torch::softmax(torch::matmul(qs, k.transpose(-2, -1)), -1), v);
#endif
}

/// Whether this libtorch was built with CUDA (whether or not a GPU is present): its CUDA hooks answer.
inline bool builtWithCuda() {
  try {
    (void)at::detail::getCUDAHooks().versionCUDART();
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace spurmem::compat
