#include "checkpoint/storage.h"

#include "checkpoint/crc32.h"

#include <sched.h>
#include <sys/mman.h>
#include <zlib.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

namespace spurmem {
namespace {

/// Number of CPUs this process may run on (its affinity mask), at least 1.
unsigned availableCpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

/// Memory blocks of dropped checkpoints, kept for the next read. Their pages are marked MADV_FREE: the
/// kernel takes them back when memory runs short (they then fault in zeroed, like fresh memory), and
/// until then a later checkpoint reuses them without a page fault or the kernel zeroing them again,
/// which is most of the cost of fresh memory. At most two blocks are kept.
class BlockCache {
 public:
  /// A cached mapping of at least `len` bytes (and not much more), or nullptr.
  std::pair<void*, size_t> take(size_t len) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto b = blocks_[i];
      if (b.second >= len && b.second - len <= len / 4 + (4u << 20)) {
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
        return b;
      }
    }
    return {nullptr, 0};
  }
  void give(void* base, size_t len) {
#ifdef MADV_FREE
    ::madvise(base, len, MADV_FREE);
#endif
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.emplace_back(base, len);
    if (blocks_.size() > 2) {
      ::munmap(blocks_.front().first, blocks_.front().second);
      blocks_.erase(blocks_.begin());
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<void*, size_t>> blocks_;
};
BlockCache& blockCache() {
  static auto* cache = new BlockCache();  // never destroyed: tensors may be freed during exit
  return *cache;
}

/// One block of memory for every storage of a checkpoint, as a uint8 tensor of `bytes` bytes.
///
/// Most of the time of loading a checkpoint goes into fresh memory: one page fault per 4 KiB page, each
/// page zeroed by the kernel, more than the reading and the CRC together. A block of 4 MiB or more is
/// therefore mapped on its own, aligned to 2 MiB and marked for transparent huge pages (MADV_HUGEPAGE,
/// a hint the kernel may ignore), which takes ~512 times fewer faults, and goes to the BlockCache when
/// the last storage (a view of it) is freed. Smaller blocks come from libtorch's allocator.
torch::Tensor storageBlock(size_t bytes, const std::string& path) {
  constexpr size_t kHuge = 2u << 20;
  try {
    if (bytes < 2 * kHuge) return torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
  } catch (const c10::Error&) {
    throw CheckpointError(path + ": cannot allocate " + std::to_string(bytes) + " bytes for the tensors");
  }
  size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
  auto cached = blockCache().take(len);
  void* base = cached.first;
  if (base) {
    len = cached.second;
  } else {
    base = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
      throw CheckpointError(path + ": cannot allocate " + std::to_string(bytes) + " bytes for the tensors (" + std::strerror(errno) + ")");
  }
  auto start = reinterpret_cast<uintptr_t>(base);
  auto* aligned = reinterpret_cast<uint8_t*>((start + kHuge - 1) / kHuge * kHuge);
#ifdef MADV_HUGEPAGE
  if (!cached.first) ::madvise(aligned, len - static_cast<size_t>(aligned - static_cast<uint8_t*>(base)), MADV_HUGEPAGE);
#endif
  return torch::from_blob(
      aligned, {static_cast<int64_t>(bytes)}, [base, len](void*) { blockCache().give(base, len); },
      torch::TensorOptions().dtype(torch::kUInt8));
}

}  // namespace

/// Allocates every storage (see storageBlock) and reads its bytes straight into it, checking CRC-32s.
///
/// Storages are read in pieces of at most 4 MiB, 256 KiB at a time, and each 256 KiB is CRC-checked
/// right after its read, while it is in cache; the pieces are shared out between up to 8 threads, and a
/// storage's CRC is put together from its pieces' with crc32_combine. Throws CheckpointError naming
/// `path` and the entry on a CRC mismatch.
void copyStorages(const InputFile& f, std::vector<StorageCopy>& copies, const std::string& path) {
  struct Piece {
    size_t copy;
    size_t begin, end;  // byte range within the entry
    uint32_t crc;
  };
  constexpr size_t kPiece = 4u << 20, kStep = 256u << 10, kAlign = 64;
  std::vector<Piece> pieces;
  size_t total = 0, blockBytes = 0;
  for (const auto& k : copies) {
    if (k.nbytes > SIZE_MAX / 4 || blockBytes > SIZE_MAX / 4) throw CheckpointError(path + ": storages too large");
    blockBytes += (k.nbytes + kAlign - 1) / kAlign * kAlign;
  }
  torch::Tensor block = storageBlock(blockBytes, path);
  size_t offset = 0;
  for (size_t c = 0; c < copies.size(); ++c) {
    auto& k = copies[c];
    *k.dst = block.narrow(0, static_cast<int64_t>(offset), static_cast<int64_t>(k.nbytes));
    offset += (k.nbytes + kAlign - 1) / kAlign * kAlign;
    size_t span = k.checkCrc ? k.entrySize : k.nbytes;
    for (size_t b = 0; b < span || b == 0; b += kPiece) {
      pieces.push_back(Piece{c, b, std::min(span, b + kPiece), 0});
      if (span == 0) break;
    }
    total += span;
  }
  auto run = [&](const Piece& pc, std::vector<uint8_t>& scratch) {
    const StorageCopy& k = copies[pc.copy];
    uint8_t* dst = k.dst->data_ptr<uint8_t>();
    uint32_t crc = 0;
    for (size_t b = pc.begin; b < pc.end; b += kStep) {
      size_t e = std::min(pc.end, b + kStep);
      size_t copyEnd = std::min(e, k.nbytes);
      if (b < copyEnd) {
        f.read(k.offset + b, dst + b, copyEnd - b);
        if (k.checkCrc) crc = crc32Update(crc, dst + b, copyEnd - b);
      }
      size_t tail = std::max(b, copyEnd);  // a zip entry longer than its storage: CRC of the rest
      if (k.checkCrc && tail < e) {
        scratch.resize(e - tail);
        f.read(k.offset + tail, scratch.data(), e - tail);
        crc = crc32Update(crc, scratch.data(), e - tail);
      }
    }
    return crc;
  };
  size_t nthreads = std::min<size_t>({availableCpus(), 8, pieces.size(), total / (8u << 20) + 1});
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> errors(nthreads);
  auto worker = [&](size_t w) {
    std::vector<uint8_t> scratch;
    try {
      for (size_t i; (i = next.fetch_add(1)) < pieces.size();) pieces[i].crc = run(pieces[i], scratch);
    } catch (...) {
      errors[w] = std::current_exception();
      next.store(pieces.size());
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < nthreads; ++t) threads.emplace_back(worker, t);
  worker(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (size_t i = 0; i < pieces.size();) {
    const StorageCopy& k = copies[pieces[i].copy];
    uLong crc = pieces[i].crc;
    size_t j = i + 1;
    for (; j < pieces.size() && pieces[j].copy == pieces[i].copy; ++j)
      crc = ::crc32_combine(crc, pieces[j].crc, static_cast<z_off_t>(pieces[j].end - pieces[j].begin));
    if (k.checkCrc && static_cast<uint32_t>(crc) != k.crc) throw CheckpointError(path + ": '" + k.name + "' is corrupt (CRC mismatch)");
    i = j;
  }
}

}  // namespace spurmem
