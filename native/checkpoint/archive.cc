#include "checkpoint/archive.h"

#include "checkpoint/crc32.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

namespace spurmem {
namespace {

/// A checkpoint file read with positional reads (pread), never mapped: a file that another program
/// truncates while it is being read (torch.save rewrites a file in place) gives an error here, where a
/// memory map would kill the process with SIGBUS. Reads are thread-safe.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw CheckpointError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
      int e = errno;
      ::close(fd_);
      throw CheckpointError(path + ": cannot stat (" + std::strerror(e) + ")");
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw CheckpointError(path + ": is a directory, not a checkpoint file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  uint64_t size() const { return size_; }

  /// Reads exactly n bytes at `offset` into dst. Throws CheckpointError naming the file when they are
  /// not all there (callers check offsets against size(), so that means the file shrank meanwhile).
  void read(uint64_t offset, void* dst, size_t n) const {
    auto* d = static_cast<uint8_t*>(dst);
    while (n > 0) {
      ssize_t r = ::pread(fd_, d, std::min<size_t>(n, 1u << 30), static_cast<off_t>(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        throw CheckpointError(path_ + ": read failed at byte " + std::to_string(offset) + " (" + std::strerror(errno) + ")");
      }
      if (r == 0)
        throw CheckpointError(path_ + ": ends at byte " + std::to_string(offset) + " although it had " + std::to_string(size_) +
                              " bytes when opened (was it changed while being read?)");
      d += r;
      n -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
  }
  std::string read(uint64_t offset, size_t n) const {
    std::string s(n, '\0');
    read(offset, s.data(), n);
    return s;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

uint64_t rd(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
uint64_t rd(const std::string& s, size_t at, int n) { return rd(reinterpret_cast<const uint8_t*>(s.data()) + at, n); }

uint32_t crc32Of(const uint8_t* p, size_t n) { return crc32Update(0, p, n); }

struct ZipEntry {
  uint64_t offset = 0;  // of the data
  uint64_t size = 0;
  uint32_t crc = 0;
};

/// The central directory of a zip file: where each entry's data lies, its size and CRC-32. Every offset
/// and size is checked against the file before it is used.
class ZipIndex {
 public:
  ZipIndex(const InputFile& f, const std::string& path) : f_(f), path_(path) {
    uint64_t n = f.size();
    if (n < 22) fail("truncated zip: no end-of-central-directory record");
    uint64_t tailStart = n > 65557 ? n - 65557 : 0;
    std::string tail = f.read(tailStart, static_cast<size_t>(n - tailStart));
    uint64_t eocd = UINT64_MAX;
    for (size_t i = tail.size() - 22 + 1; i-- > 0;) {
      if (rd(tail, i, 4) == 0x06054b50) {
        eocd = tailStart + i;
        break;
      }
    }
    if (eocd == UINT64_MAX) fail("truncated or corrupt zip: end-of-central-directory record not found");
    size_t e = static_cast<size_t>(eocd - tailStart);
    uint64_t count = rd(tail, e + 10, 2);
    uint64_t cdSize = rd(tail, e + 12, 4);
    uint64_t cdOff = rd(tail, e + 16, 4);
    if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOff == 0xFFFFFFFF) {
      if (eocd < 20) fail("zip64 locator missing");
      std::string loc = f.read(eocd - 20, 20);
      if (rd(loc, 0, 4) != 0x07064b50) fail("zip64 locator missing");
      uint64_t z = rd(loc, 8, 8);
      if (z > n || n - z < 56) fail("zip64 end-of-central-directory record missing");
      std::string z64 = f.read(z, 56);
      if (rd(z64, 0, 4) != 0x06064b50) fail("zip64 end-of-central-directory record missing");
      count = rd(z64, 32, 8);
      cdSize = rd(z64, 40, 8);
      cdOff = rd(z64, 48, 8);
    }
    if (cdOff > n || cdSize > n - cdOff) fail("central directory lies outside the file");
    if (count > cdSize / 46) fail("central directory entry count does not fit its size");
    std::string cd = f.read(cdOff, static_cast<size_t>(cdSize));
    const uint8_t* d = reinterpret_cast<const uint8_t*>(cd.data());
    uint64_t p = 0, endCd = cdSize;
    for (uint64_t k = 0; k < count; ++k) {
      if (endCd - p < 46 || rd(d + p, 4) != 0x02014b50) fail("corrupt central directory entry " + std::to_string(k));
      uint32_t flags = static_cast<uint32_t>(rd(d + p + 8, 2));
      uint32_t method = static_cast<uint32_t>(rd(d + p + 10, 2));
      uint32_t crc = static_cast<uint32_t>(rd(d + p + 16, 4));
      uint64_t csize = rd(d + p + 20, 4), usize = rd(d + p + 24, 4);
      uint64_t nameLen = rd(d + p + 28, 2), extraLen = rd(d + p + 30, 2), commentLen = rd(d + p + 32, 2);
      uint64_t local = rd(d + p + 42, 4);
      if (endCd - p - 46 < nameLen + extraLen + commentLen) fail("central directory entry runs past its end");
      std::string name(reinterpret_cast<const char*>(d + p + 46), nameLen);
      // zip64 extra field: the 64-bit values of the fields set to 0xFFFFFFFF, in this order
      const uint8_t* ex = d + p + 46 + nameLen;
      for (uint64_t x = 0; x + 4 <= extraLen;) {
        uint64_t id = rd(ex + x, 2), len = rd(ex + x + 2, 2);
        if (x + 4 + len > extraLen) break;
        if (id == 0x0001) {
          uint64_t q = x + 4;
          auto take = [&](uint64_t& field) {
            if (field == 0xFFFFFFFF) {
              if (q + 8 > x + 4 + len) fail("short zip64 extra field for '" + name + "'");
              field = rd(ex + q, 8);
              q += 8;
            }
          };
          take(usize);
          take(csize);
          take(local);
        }
        x += 4 + len;
      }
      p += 46 + nameLen + extraLen + commentLen;
      if (flags & 1) fail("'" + name + "' is encrypted");
      if (method != 0) fail("'" + name + "' is compressed (method " + std::to_string(method) + "); PyTorch writes stored entries only");
      if (csize != usize) fail("'" + name + "' has different stored and real sizes");
      if (local > n || n - local < 30) fail("local header of '" + name + "' is missing");
      std::string lh = f.read(local, 30);
      if (rd(lh, 0, 4) != 0x04034b50) fail("local header of '" + name + "' is missing");
      uint64_t lName = rd(lh, 26, 2), lExtra = rd(lh, 28, 2);
      uint64_t dataOff = local + 30 + lName + lExtra;
      if (dataOff > n || usize > n - dataOff) fail("data of '" + name + "' lies outside the file (truncated?)");
      entries_[name] = ZipEntry{dataOff, usize, crc};
      if (order_.size() < 1000000) order_.push_back(name);
    }
  }

  [[noreturn]] void fail(const std::string& what) const { throw CheckpointError(path_ + ": " + what); }

  const ZipEntry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  const std::vector<std::string>& names() const { return order_; }

  /// Reads an entry's bytes and checks their CRC-32.
  std::string bytes(const std::string& name, const ZipEntry& e) const {
    std::string s = f_.read(e.offset, static_cast<size_t>(e.size));
    if (crc32Of(reinterpret_cast<const uint8_t*>(s.data()), s.size()) != e.crc) fail("'" + name + "' is corrupt (CRC mismatch)");
    return s;
  }

 private:
  const InputFile& f_;
  std::string path_;
  std::unordered_map<std::string, ZipEntry> entries_;
  std::vector<std::string> order_;
};

void materialise(UnpickleResult& r, const std::string& path) {
  for (auto& t : r.tensors) {
    auto& data = t.storage->data;
    if (!data.defined()) throw CheckpointError(path + ": storage '" + t.storage->key + "' has no data");
    t.value->tensor = data.as_strided(t.size, t.stride, data.storage_offset() + t.offset);
  }
  r.tensors.clear();
}

/// Storage bytes to read from the file into a new tensor; in the zip layout the whole entry's CRC-32
/// is checked as well (`crc`, over `entrySize` bytes of which the first `nbytes` are the storage's).
struct StorageCopy {
  std::string name;
  uint64_t offset = 0;  // in the file
  size_t nbytes = 0;
  bool checkCrc = false;
  uint32_t crc = 0;
  size_t entrySize = 0;
  torch::Tensor* dst = nullptr;
};

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

/// The 1-D storage tensor of `s` over the bytes read into `raw`.
torch::Tensor storageTensor(const torch::Tensor& raw, const PendingStorage& s) {
  return s.numel == 0 ? torch::empty({0}, torch::TensorOptions().dtype(s.dtype)) : raw.view(s.dtype);
}

size_t storageBytes(const std::string& path, const PendingStorage& s) {
  size_t es = storageElementSize(s.dtype), nb;
  if (__builtin_mul_overflow(static_cast<size_t>(s.numel), es, &nb))
    throw CheckpointError(path + ": storage '" + s.key + "' size overflows");
  return nb;
}

Checkpoint readZip(const InputFile& f, const std::string& path, bool checkStorageCrc) {
  ZipIndex zip(f, path);
  std::string prefix;
  for (const auto& n : zip.names()) {
    auto slash = n.find('/');
    if (slash != std::string::npos && n.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = n.substr(0, slash + 1);
      break;
    }
  }
  if (prefix.empty()) {
    for (const auto& n : zip.names())
      if (n.size() >= 13 && n.compare(n.size() - 13, 13, "constants.pkl") == 0)
        throw CheckpointError(path + ": a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save the model's state_dict() with torch.save");
    throw CheckpointError(path + ": zip file without a <folder>/data.pkl entry: not a PyTorch checkpoint");
  }
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    std::string order = zip.bytes(prefix + "byteorder", *bo);
    if (order != "little") throw CheckpointError(path + ": byte order '" + order.substr(0, 64) + "' is not supported (only little-endian)");
  }
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  std::string pb = zip.bytes(prefix + "data.pkl", *pkl);
  UnpickleResult r = unpickle(reinterpret_cast<const uint8_t*>(pb.data()), pb.size(), path + ": data.pkl");
  std::vector<StorageCopy> copies;
  std::map<std::string, torch::Tensor> raw;
  for (auto& kv : r.storages) {
    auto& s = *kv.second;
    std::string name = prefix + "data/" + s.key;
    const ZipEntry* e = zip.find(name);
    if (!e) throw CheckpointError(path + ": storage '" + s.key + "' is named in data.pkl but '" + name + "' is missing");
    size_t nb = storageBytes(path, s);
    if (e->size < nb)
      throw CheckpointError(path + ": '" + name + "' holds " + std::to_string(e->size) + " bytes, the storage needs " + std::to_string(nb));
    copies.push_back(StorageCopy{name, e->offset, nb, checkStorageCrc, e->crc, static_cast<size_t>(e->size), &raw[kv.first]});
  }
  copyStorages(f, copies, path);
  for (auto& kv : r.storages) kv.second->data = storageTensor(raw[kv.first], *kv.second);
  materialise(r, path);
  Checkpoint c;
  c.format = PthFormat::Zip;
  c.path = path;
  c.root = r.root;
  for (const auto& k : copies) c.storageBytes += k.nbytes;
  return c;
}

// The legacy layout's first pickle: LONG1 of 10 bytes holding 0x1950a86a20f9469cfc6c, then STOP.
const uint8_t kLegacyMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/// Length of the legacy layout's magic-number pickle at the start of `d` (n bytes), or 0 when it is not
/// there. torch.save writes it with the pickle protocol it was given: a text LONG for protocol 1, else
/// PROTO 2-5, for 4 and 5 usually followed by a FRAME of the magic's 13 bytes.
size_t legacyMagicLength(const uint8_t* d, size_t n) {
  // protocol 1 (no PROTO opcode) writes the number as a text LONG
  static const char kTextMagic[] = "L119547037146038801333356L\n.";
  if (n >= sizeof kTextMagic - 1 && std::memcmp(d, kTextMagic, sizeof kTextMagic - 1) == 0) return sizeof kTextMagic - 1;
  if (n < 2 || d[0] != 0x80 || d[1] < 2 || d[1] > 5) return 0;
  size_t pos = 2;
  if (n >= pos + 9 && d[pos] == 0x95) {
    if (rd(d + pos + 1, 8) != sizeof kLegacyMagic) return 0;
    pos += 9;
  }
  if (n < pos + sizeof kLegacyMagic || std::memcmp(d + pos, kLegacyMagic, sizeof kLegacyMagic) != 0) return 0;
  return pos + sizeof kLegacyMagic;
}

/// The pickles at the start of a legacy file: protocol version, sys_info, the object, the storage keys.
struct LegacyPickles {
  UnpickleResult proto, sys, obj, keys;
  uint64_t end = 0;  // file offset after the key list
};

/// Decodes the pickles from the first `have` bytes of the file; throws CheckpointError (with
/// `truncated` set when more bytes might help).
LegacyPickles legacyPickles(const std::string& head, const std::string& path) {
  const auto* d = reinterpret_cast<const uint8_t*>(head.data());
  size_t n = head.size(), pos = legacyMagicLength(d, n);
  auto next = [&](const char* what) {
    UnpickleResult r = unpickle(d + pos, n - pos, path + ": " + what);
    pos += r.consumed;
    return r;
  };
  LegacyPickles p;
  p.proto = next("protocol version");
  p.sys = next("sys_info");
  p.obj = next("object pickle");
  p.keys = next("storage key list");
  p.end = pos;
  return p;
}

Checkpoint readLegacy(const InputFile& f, const std::string& path) {
  uint64_t n = f.size();
  // The pickles come first and are small next to the storages after them: read 1 MiB, and more only
  // when a pickle runs past what was read.
  uint64_t have = std::min<uint64_t>(n, 1u << 20);
  LegacyPickles pk;
  for (;;) {
    std::string head = f.read(0, static_cast<size_t>(have));
    try {
      pk = legacyPickles(head, path);
      break;
    } catch (const CheckpointError& e) {
      if (!e.truncated || have == n) throw;
      have = std::min<uint64_t>(n, have * 4);
    }
  }
  if (pk.proto.root->kind != Kind::Int || pk.proto.root->i != 1001)
    throw CheckpointError(path + ": legacy protocol version is not 1001");
  if (pk.sys.root->kind == Kind::Dict) {
    auto le = pk.sys.root->get("little_endian");
    if (le && le->kind == Kind::Bool && !le->b) throw CheckpointError(path + ": big-endian checkpoints are not supported");
  }
  UnpickleResult& obj = pk.obj;
  const ValuePtr& keys = pk.keys.root;
  if (keys->kind != Kind::List && keys->kind != Kind::Tuple)
    throw CheckpointError(path + ": storage key list is not a list");
  std::vector<StorageCopy> copies;
  std::map<std::string, torch::Tensor> raw;
  uint64_t pos = pk.end;
  for (const auto& k : keys->items) {
    if (k->kind != Kind::String) throw CheckpointError(path + ": storage key is not a string");
    if (raw.count(k->s)) throw CheckpointError(path + ": storage '" + k->s + "' appears twice in the key list");
    auto it = obj.storages.find(k->s);
    if (it == obj.storages.end() || it->second->hasView)
      throw CheckpointError(path + ": storage '" + k->s + "' in the key list is not used by the object");
    auto& s = *it->second;
    if (n - pos < 8) throw CheckpointError(path + ": truncated before the data of storage '" + s.key + "'");
    uint8_t countBytes[8];
    f.read(pos, countBytes, 8);
    int64_t count = static_cast<int64_t>(rd(countBytes, 8));
    pos += 8;
    if (count != s.numel)
      throw CheckpointError(path + ": storage '" + s.key + "' holds " + std::to_string(count) + " elements, data.pkl says " + std::to_string(s.numel));
    size_t nb = storageBytes(path, s);
    if (n - pos < nb)
      throw CheckpointError(path + ": truncated in the data of storage '" + s.key + "' (" + std::to_string(nb) + " bytes needed, " + std::to_string(n - pos) + " left)");
    copies.push_back(StorageCopy{s.key, pos, nb, false, 0, nb, &raw[s.key]});
    pos += nb;
  }
  copyStorages(f, copies, path);
  for (auto& kv : raw) obj.storages.at(kv.first)->data = storageTensor(kv.second, *obj.storages.at(kv.first));
  for (auto& kv : obj.storages) {
    auto& s = *kv.second;
    if (!s.hasView) continue;
    auto base = obj.storages.find(s.viewOf);
    if (base == obj.storages.end() || !base->second->data.defined())
      throw CheckpointError(path + ": storage view '" + s.key + "' of a missing storage");
    s.data = base->second->data.narrow(0, s.viewOffset, s.numel);
  }
  for (auto& kv : obj.storages)
    if (!kv.second->data.defined()) throw CheckpointError(path + ": storage '" + kv.first + "' has no data in the file");
  materialise(obj, path);
  Checkpoint c;
  c.format = PthFormat::Legacy;
  c.path = path;
  c.root = obj.root;
  for (const auto& k : copies) c.storageBytes += k.nbytes;
  return c;
}

// ------------------------------------------------------------------------------------------------
// zip writer

struct OutEntry {
  std::string name;
  uint64_t localOffset;
  uint64_t size;
  uint32_t crc;
};

class ZipWriter {
 public:
  explicit ZipWriter(int fd, const std::string& path) : fd_(fd), path_(path) {}

  void add(const std::string& name, const void* data, size_t size) {
    uint32_t crc = crc32Of(static_cast<const uint8_t*>(data), size);
    std::string h;
    put(h, 0x04034b50, 4);
    put(h, 20, 2);  // version needed
    put(h, 0, 2);   // flags
    put(h, 0, 2);   // stored
    put(h, 0, 2);   // time
    put(h, 0x21, 2);  // date 1980-01-01
    put(h, crc, 4);
    put(h, size, 4);
    put(h, size, 4);
    put(h, name.size(), 2);
    // align the data to 64 bytes with an "FB" padding extra field, as PyTorch's writer does
    size_t base = offset_ + 30 + name.size() + 4;
    size_t pad = (64 - base % 64) % 64;
    put(h, 4 + pad, 2);
    h += name;
    put(h, 0x4246, 2);
    put(h, pad, 2);
    h.append(pad, 'Z');
    entries_.push_back(OutEntry{name, offset_, size, crc});
    write(h.data(), h.size());
    write(data, size);
  }

  void finish() {
    uint64_t cdStart = offset_;
    std::string cd;
    for (const auto& e : entries_) {
      put(cd, 0x02014b50, 4);
      put(cd, 20, 2);
      put(cd, 20, 2);
      put(cd, 0, 2);
      put(cd, 0, 2);
      put(cd, 0, 2);
      put(cd, 0x21, 2);
      put(cd, e.crc, 4);
      put(cd, e.size, 4);
      put(cd, e.size, 4);
      put(cd, e.name.size(), 2);
      put(cd, 0, 2);
      put(cd, 0, 2);
      put(cd, 0, 2);
      put(cd, 0, 2);
      put(cd, 0, 4);
      put(cd, e.localOffset, 4);
      cd += e.name;
    }
    write(cd.data(), cd.size());
    std::string end;
    put(end, 0x06054b50, 4);
    put(end, 0, 2);
    put(end, 0, 2);
    put(end, entries_.size(), 2);
    put(end, entries_.size(), 2);
    put(end, cd.size(), 4);
    put(end, cdStart, 4);
    put(end, 0, 2);
    write(end.data(), end.size());
  }

 private:
  int fd_;
  std::string path_;
  uint64_t offset_ = 0;
  std::vector<OutEntry> entries_;

  static void put(std::string& s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void write(const void* p, size_t n) {
    if (offset_ + n > 0xFFFFFFFFull) throw std::runtime_error(path_ + ": checkpoints over 4 GiB are not supported by the writer");
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd_, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(path_ + ": write failed (" + std::strerror(errno) + ")");
      }
      c += w;
      n -= static_cast<size_t>(w);
      offset_ += static_cast<uint64_t>(w);
    }
  }
};

}  // namespace

const char* formatName(PthFormat f) { return f == PthFormat::Zip ? "zip" : "legacy"; }

Checkpoint readCheckpoint(const std::string& path, bool checkStorageCrc) {
  InputFile f(path);
  uint64_t n = f.size();
  if (n == 0) throw CheckpointError(path + ": empty file");
  std::string head = f.read(0, static_cast<size_t>(std::min<uint64_t>(n, 512)));
  const auto* d = reinterpret_cast<const uint8_t*>(head.data());
  if (n >= 4 && rd(d, 4) == 0x04034b50) return readZip(f, path, checkStorageCrc);
  if (legacyMagicLength(d, head.size()) > 0) return readLegacy(f, path);
  if (n >= 262 && std::memcmp(d + 257, "ustar", 5) == 0)
    throw CheckpointError(path + ": tar-format checkpoint (torch < 0.4) is not supported; load it with an old torch and re-save it with torch.save");
  if (n >= 2 && d[0] == 0x80)
    throw CheckpointError(path + ": a plain pickle without PyTorch's header: not a torch.save checkpoint");
  throw CheckpointError(path + ": not a PyTorch checkpoint (neither the zip nor the legacy layout)");
}

void writeCheckpoint(const std::string& path, const ValuePtr& root) {
  std::vector<torch::Tensor> storages;
  std::string pkl = picklePth(root, storages);
  std::random_device rdev;
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rdev() % 1000000);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot create (" + std::strerror(errno) + ")");
  try {
    ZipWriter z(fd, path);
    z.add("archive/data.pkl", pkl.data(), pkl.size());
    z.add("archive/byteorder", "little", 6);
    for (size_t i = 0; i < storages.size(); ++i) {
      const auto& t = storages[i];
      z.add("archive/data/" + std::to_string(i), t.data_ptr(), t.numel() * t.element_size());
    }
    z.add("archive/version", "3\n", 2);
    z.finish();
    if (::fsync(fd) != 0) throw std::runtime_error(path + ": fsync failed (" + std::strerror(errno) + ")");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": rename failed (" + std::strerror(e) + ")");
  }
}

}  // namespace spurmem
