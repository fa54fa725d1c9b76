#include "cpu_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace spurmem {
namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kMinBlock = 64 * 1024;
constexpr std::size_t kMaxBlock = std::size_t(1) << 30;

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverloaded-virtual"
#endif

class CachingCpuAllocator final : public c10::Allocator {
 public:
  // libtorch < 2.3 declares `allocate(size_t) const`, later versions a non-const allocate and a pure
  // virtual copy_data; defining both forms builds against either.
  c10::DataPtr allocate(std::size_t n) const { return take(n); }
  c10::DataPtr allocate(std::size_t n) { return take(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static CachingCpuAllocator& instance() {
    static auto* a = new CachingCpuAllocator();  // never destroyed: tensors may be freed at exit
    return *a;
  }

  void setLimit(std::size_t limit) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      stats_.limitBytes = limit;
      for (auto it = free_.begin(); it != free_.end() && stats_.cachedBytes > limit;) {
        auto& v = it->second;
        while (!v.empty() && stats_.cachedBytes > limit) {
          drop.push_back(v.back());
          v.pop_back();
          stats_.cachedBytes -= it->first;
        }
        it = v.empty() ? free_.erase(it) : std::next(it);
      }
    }
    for (void* p : drop) c10::free_cpu(p);
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> g(mu_);
    return stats_;
  }

 private:
  static void release(void* p) { instance().give(p); }

  c10::DataPtr take(std::size_t n) const {
    const auto* self = this;
    const std::size_t size = n < kMinBlock || n > kMaxBlock ? n : (n + kPage - 1) / kPage * kPage;
    void* p = nullptr;
    if (size >= kMinBlock && size <= kMaxBlock) {
      {
        std::lock_guard<std::mutex> g(self->mu_);
        auto it = self->free_.find(size);
        if (it != self->free_.end() && !it->second.empty()) {
          p = it->second.back();
          it->second.pop_back();
          self->stats_.cachedBytes -= size;
          self->stats_.hits++;
        } else {
          self->stats_.misses++;
        }
      }
      if (!p) p = c10::alloc_cpu(size);
      std::lock_guard<std::mutex> g(self->mu_);
      self->live_[p] = size;
      self->stats_.liveBytes += size;
    } else {
      p = c10::alloc_cpu(size);
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  void give(void* p) {
    if (!p) return;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        const std::size_t size = it->second;
        live_.erase(it);
        stats_.liveBytes -= size;
        if (stats_.cachedBytes + size <= stats_.limitBytes) {
          free_[size].push_back(p);
          stats_.cachedBytes += size;
          return;
        }
      }
    }
    c10::free_cpu(p);
  }

  // mutable: libtorch < 2.3 allocates through a const member function
  mutable std::mutex mu_;
  mutable std::unordered_map<std::size_t, std::vector<void*>> free_;  // page-rounded size -> free blocks
  mutable std::unordered_map<void*, std::size_t> live_;               // cacheable blocks in use -> size
  mutable CpuCacheStats stats_;
};

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace

void installCpuCache(std::size_t limitBytes) {
  auto& a = CachingCpuAllocator::instance();
  a.setLimit(limitBytes);
  // priority above the default allocator's (0), so that libtorch's registration order cannot undo it
  c10::SetCPUAllocator(&a, /*priority=*/1);
}

void setCpuCacheLimit(std::size_t limitBytes) { CachingCpuAllocator::instance().setLimit(limitBytes); }

CpuCacheStats cpuCacheStats() { return CachingCpuAllocator::instance().stats(); }

}  // namespace spurmem
