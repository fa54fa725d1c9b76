// A CPU allocator for libtorch that keeps freed blocks for reuse.
//
// With glibc, every large tensor that a forward pass frees goes back to the system (trimmed or, in the
// per-thread arenas that worker threads use, returned with the whole heap) and the next forward pass
// page-faults the same memory in again: for DeiT-small (batch 8, 224 px) about 60,000 page faults and a
// tenth of the CPU time per forward. Tensors of the same shapes come back every batch, so a block freed by
// one batch is handed to the next allocation of the same page-rounded size instead.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spurmem {

struct CpuCacheStats {
  std::size_t limitBytes = 0;   // most bytes kept free for reuse (0: the cache is off)
  std::size_t cachedBytes = 0;  // bytes kept free for reuse now
  std::size_t liveBytes = 0;    // bytes of cacheable blocks in use by tensors
  std::uint64_t hits = 0;       // allocations served from the cache
  std::uint64_t misses = 0;     // cacheable allocations that had to ask the system
};

/// Makes libtorch allocate CPU tensor memory through the cache (c10::SetCPUAllocator). Blocks from
/// 64 KiB to 1 GiB are rounded up to whole 4 KiB pages; a freed block is kept, and the least recently
/// cached ones are freed so that the cache holds at most `limitBytes`. An allocation takes the most
/// recently cached block of its size. Smaller and larger blocks go straight to c10::alloc_cpu /
/// free_cpu; when the system refuses memory, the cache is emptied and the allocation tried again.
/// Call once, before tensors are made (the addon does it when it loads); later calls change the limit.
/// Memory is 64-byte aligned, as libtorch's own CPU allocator gives it. Thread-safe.
void installCpuCache(std::size_t limitBytes);

/// Sets the limit; lowering it frees cached blocks until the cache fits. 0 empties and disables it.
void setCpuCacheLimit(std::size_t limitBytes);

CpuCacheStats cpuCacheStats();

}  // namespace spurmem
