#include "checkpoint/archive.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <unordered_map>

namespace spurmem {
namespace {

/// Read-only memory map of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw CheckpointError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw CheckpointError(path + ": cannot stat (" + std::strerror(errno) + ")");
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw CheckpointError(path + ": is a directory, not a checkpoint file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (m == MAP_FAILED) {
        ::close(fd_);
        throw CheckpointError(path + ": cannot map (" + std::strerror(errno) + ")");
      }
      data_ = static_cast<const uint8_t*>(m);
      ::madvise(m, size_, MADV_SEQUENTIAL);
    }
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::string path_;
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

uint64_t rd(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint32_t crc32Of(const uint8_t* p, size_t n) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

struct ZipEntry {
  uint64_t offset = 0;  // of the data
  uint64_t size = 0;
  uint32_t crc = 0;
};

class ZipIndex {
 public:
  ZipIndex(const MappedFile& f, const std::string& path) : f_(f), path_(path) {
    const uint8_t* d = f.data();
    size_t n = f.size();
    if (n < 22) fail("truncated zip: no end-of-central-directory record");
    size_t lo = n > 65557 ? n - 65557 : 0;
    size_t eocd = SIZE_MAX;
    for (size_t i = n - 22 + 1; i-- > lo;) {
      if (rd(d + i, 4) == 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd == SIZE_MAX) fail("truncated or corrupt zip: end-of-central-directory record not found");
    uint64_t count = rd(d + eocd + 10, 2);
    uint64_t cdSize = rd(d + eocd + 12, 4);
    uint64_t cdOff = rd(d + eocd + 16, 4);
    if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOff == 0xFFFFFFFF) {
      if (eocd < 20 || rd(d + eocd - 20, 4) != 0x07064b50) fail("zip64 locator missing");
      uint64_t z = rd(d + eocd - 20 + 8, 8);
      if (z > n || n - z < 56 || rd(d + z, 4) != 0x06064b50) fail("zip64 end-of-central-directory record missing");
      count = rd(d + z + 32, 8);
      cdSize = rd(d + z + 40, 8);
      cdOff = rd(d + z + 48, 8);
    }
    if (cdOff > n || cdSize > n - cdOff) fail("central directory lies outside the file");
    if (count > cdSize / 46) fail("central directory entry count does not fit its size");
    uint64_t p = cdOff, endCd = cdOff + cdSize;
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
      for (uint64_t e = 0; e + 4 <= extraLen;) {
        uint64_t id = rd(ex + e, 2), len = rd(ex + e + 2, 2);
        if (e + 4 + len > extraLen) break;
        if (id == 0x0001) {
          uint64_t q = e + 4;
          auto take = [&](uint64_t& field) {
            if (field == 0xFFFFFFFF) {
              if (q + 8 > e + 4 + len) fail("short zip64 extra field for '" + name + "'");
              field = rd(ex + q, 8);
              q += 8;
            }
          };
          take(usize);
          take(csize);
          take(local);
        }
        e += 4 + len;
      }
      p += 46 + nameLen + extraLen + commentLen;
      if (flags & 1) fail("'" + name + "' is encrypted");
      if (method != 0) fail("'" + name + "' is compressed (method " + std::to_string(method) + "); PyTorch writes stored entries only");
      if (csize != usize) fail("'" + name + "' has different stored and real sizes");
      if (local > n || n - local < 30 || rd(d + local, 4) != 0x04034b50) fail("local header of '" + name + "' is missing");
      uint64_t lName = rd(d + local + 26, 2), lExtra = rd(d + local + 28, 2);
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

  /// Checks the CRC and returns a pointer to the entry's bytes.
  const uint8_t* bytes(const std::string& name, const ZipEntry& e) const {
    const uint8_t* p = f_.data() + e.offset;
    if (crc32Of(p, e.size) != e.crc) fail("'" + name + "' is corrupt (CRC mismatch)");
    return p;
  }

 private:
  const MappedFile& f_;
  std::string path_;
  std::unordered_map<std::string, ZipEntry> entries_;
  std::vector<std::string> order_;
};

void materialise(UnpickleResult& r) {
  for (auto& t : r.tensors) {
    auto& data = t.storage->data;
    if (!data.defined()) throw CheckpointError("storage '" + t.storage->key + "' has no data");
    t.value->tensor = data.as_strided(t.size, t.stride, data.storage_offset() + t.offset);
  }
  r.tensors.clear();
}

torch::Tensor storageFrom(const uint8_t* p, const PendingStorage& s) {
  auto t = torch::empty({s.numel}, torch::TensorOptions().dtype(s.dtype));
  size_t nbytes = static_cast<size_t>(s.numel) * storageElementSize(s.dtype);
  if (nbytes) std::memcpy(t.data_ptr(), p, nbytes);
  return t;
}

size_t storageBytes(const std::string& path, const PendingStorage& s) {
  size_t es = storageElementSize(s.dtype), nb;
  if (__builtin_mul_overflow(static_cast<size_t>(s.numel), es, &nb))
    throw CheckpointError(path + ": storage '" + s.key + "' size overflows");
  return nb;
}

Checkpoint readZip(const MappedFile& f, const std::string& path) {
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
    const uint8_t* b = zip.bytes(prefix + "byteorder", *bo);
    std::string order(reinterpret_cast<const char*>(b), bo->size);
    if (order != "little") throw CheckpointError(path + ": byte order '" + order + "' is not supported (only little-endian)");
  }
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  const uint8_t* pb = zip.bytes(prefix + "data.pkl", *pkl);
  UnpickleResult r = unpickle(pb, pkl->size, path + ": data.pkl");
  for (auto& kv : r.storages) {
    auto& s = *kv.second;
    std::string name = prefix + "data/" + s.key;
    const ZipEntry* e = zip.find(name);
    if (!e) throw CheckpointError(path + ": storage '" + s.key + "' is named in data.pkl but '" + name + "' is missing");
    size_t nb = storageBytes(path, s);
    if (e->size < nb)
      throw CheckpointError(path + ": '" + name + "' holds " + std::to_string(e->size) + " bytes, the storage needs " + std::to_string(nb));
    s.data = storageFrom(zip.bytes(name, *e), s);
  }
  materialise(r);
  Checkpoint c;
  c.format = PthFormat::Zip;
  c.path = path;
  c.root = r.root;
  return c;
}

const uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

Checkpoint readLegacy(const MappedFile& f, const std::string& path) {
  const uint8_t* d = f.data();
  size_t n = f.size(), pos = sizeof kLegacyMagic;
  auto next = [&](const char* what) {
    UnpickleResult r = unpickle(d + pos, n - pos, path + ": " + what);
    pos += r.consumed;
    return r;
  };
  UnpickleResult proto = next("protocol version");
  if (proto.root->kind != Kind::Int || proto.root->i != 1001)
    throw CheckpointError(path + ": legacy protocol version is not 1001");
  UnpickleResult sys = next("sys_info");
  if (sys.root->kind == Kind::Dict) {
    auto le = sys.root->get("little_endian");
    if (le && le->kind == Kind::Bool && !le->b) throw CheckpointError(path + ": big-endian checkpoints are not supported");
  }
  UnpickleResult obj = next("object pickle");
  UnpickleResult keys = next("storage key list");
  if (keys.root->kind != Kind::List && keys.root->kind != Kind::Tuple)
    throw CheckpointError(path + ": storage key list is not a list");
  for (const auto& k : keys.root->items) {
    if (k->kind != Kind::String) throw CheckpointError(path + ": storage key is not a string");
    auto it = obj.storages.find(k->s);
    if (it == obj.storages.end() || it->second->hasView)
      throw CheckpointError(path + ": storage '" + k->s + "' in the key list is not used by the object");
    auto& s = *it->second;
    if (n - pos < 8) throw CheckpointError(path + ": truncated before the data of storage '" + s.key + "'");
    int64_t count = static_cast<int64_t>(rd(d + pos, 8));
    pos += 8;
    if (count != s.numel)
      throw CheckpointError(path + ": storage '" + s.key + "' holds " + std::to_string(count) + " elements, data.pkl says " + std::to_string(s.numel));
    size_t nb = storageBytes(path, s);
    if (n - pos < nb)
      throw CheckpointError(path + ": truncated in the data of storage '" + s.key + "' (" + std::to_string(nb) + " bytes needed, " + std::to_string(n - pos) + " left)");
    s.data = storageFrom(d + pos, s);
    pos += nb;
  }
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
  materialise(obj);
  Checkpoint c;
  c.format = PthFormat::Legacy;
  c.path = path;
  c.root = obj.root;
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

Checkpoint readCheckpoint(const std::string& path) {
  MappedFile f(path);
  const uint8_t* d = f.data();
  size_t n = f.size();
  if (n == 0) throw CheckpointError(path + ": empty file");
  if (n >= 4 && rd(d, 4) == 0x04034b50) return readZip(f, path);
  if (n >= sizeof kLegacyMagic && std::memcmp(d, kLegacyMagic, sizeof kLegacyMagic) == 0) return readLegacy(f, path);
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
