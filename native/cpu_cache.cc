#include "cpu_cache.h"

#include "torch_compat.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace spurmem {
namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kMinBlock = 64 * 1024;
constexpr std::size_t kMaxBlock = std::size_t(1) << 30;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  // allocate is const before libtorch 2.3, and 2.3 adds a pure virtual copy_data (torch_compat.h)
  c10::DataPtr allocate(std::size_t n) SPURMEM_ALLOCATE_CONST override { return take(n); }
#if SPURMEM_ALLOCATOR_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    if (count > 0) std::memcpy(dest, src, count);
  }
#endif
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
      evictUntil(limit, drop);
    }
    for (void* p : drop) c10::free_cpu(p);
  }

  CpuCacheStats stats() const {
    std::lock_guard<std::mutex> g(mu_);
    return stats_;
  }

 private:
  struct Block {
    std::size_t size;
    void* ptr;
  };
  using Lru = std::list<Block>;

  static void release(void* p) { instance().give(p); }

  static bool cacheable(std::size_t size) { return size >= kMinBlock && size <= kMaxBlock; }

  /// Frees the least recently cached blocks (into `drop`, freed by the caller outside the lock) until
  /// at most `target` bytes stay cached. Call with mu_ held.
  void evictUntil(std::size_t target, std::vector<void*>& drop) const {
    while (stats_.cachedBytes > target && !lru_.empty()) {
      const Block b = lru_.front();
      auto& bucket = free_[b.size];
      bucket.erase(bucket.begin());  // a bucket keeps its blocks in the order they were cached
      if (bucket.empty()) free_.erase(b.size);
      lru_.pop_front();
      stats_.cachedBytes -= b.size;
      drop.push_back(b.ptr);
    }
  }

  c10::DataPtr take(std::size_t n) const {
    const std::size_t size = cacheable(n) ? (n + kPage - 1) / kPage * kPage : n;
    void* p = nullptr;
    if (cacheable(size)) {
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = free_.find(size);
        if (it != free_.end()) {
          Lru::iterator b = it->second.back();  // the most recently freed: likely still in cache
          it->second.pop_back();
          if (it->second.empty()) free_.erase(it);
          p = b->ptr;
          lru_.erase(b);
          stats_.cachedBytes -= size;
          stats_.hits++;
        } else {
          stats_.misses++;
        }
      }
      if (!p) p = allocOrFlush(size);
      std::lock_guard<std::mutex> g(mu_);
      live_[p] = size;
      stats_.liveBytes += size;
    } else {
      p = allocOrFlush(size);
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  /// c10::alloc_cpu; when the system refuses, the cached blocks are given back and it is tried again.
  void* allocOrFlush(std::size_t size) const {
    try {
      return c10::alloc_cpu(size);
    } catch (const c10::Error&) {
      std::vector<void*> drop;
      {
        std::lock_guard<std::mutex> g(mu_);
        if (stats_.cachedBytes == 0) throw;
        evictUntil(0, drop);
      }
      for (void* q : drop) c10::free_cpu(q);
      return c10::alloc_cpu(size);
    }
  }

  void give(void* p) {
    if (!p) return;
    std::vector<void*> drop;
    bool kept = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        const std::size_t size = it->second;
        live_.erase(it);
        stats_.liveBytes -= size;
        if (size <= stats_.limitBytes) {
          evictUntil(stats_.limitBytes - size, drop);
          lru_.push_back({size, p});
          free_[size].push_back(std::prev(lru_.end()));
          stats_.cachedBytes += size;
          kept = true;
        }
      }
    }
    for (void* q : drop) c10::free_cpu(q);
    if (!kept) c10::free_cpu(p);
  }

  // mutable: libtorch < 2.3 allocates through a const member function
  mutable std::mutex mu_;
  mutable Lru lru_;                                                       // cached blocks, oldest first
  mutable std::unordered_map<std::size_t, std::vector<Lru::iterator>> free_;  // page-rounded size -> cached blocks
  mutable std::unordered_map<void*, std::size_t> live_;                   // cacheable blocks in use -> size
  mutable CpuCacheStats stats_;
};


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
