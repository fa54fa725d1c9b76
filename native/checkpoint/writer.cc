// Writing a checkpoint in torch.save's zip layout (torch >= 1.6): stored (uncompressed) entries whose data
// start on 64-byte boundaries, as PyTorch's writer aligns them, written to a temporary file and renamed.
#include "checkpoint/archive.h"

#include "checkpoint/crc32.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace spurmem {
namespace {

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
    put(h, 0x04034b50, 4);  // local file header
    putEntryFields(h, crc, size, name.size());
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
      put(cd, 0x02014b50, 4);  // central directory header
      put(cd, 20, 2);          // version made by
      putEntryFields(cd, e.crc, e.size, e.name.size());
      put(cd, 0, 2);  // extra field length
      put(cd, 0, 2);  // comment length
      put(cd, 0, 2);  // disk number
      put(cd, 0, 2);  // internal attributes
      put(cd, 0, 4);  // external attributes
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
  /// The fields a local header and a central directory header share, from "version needed" to the name
  /// length: zip 2.0, no flags, stored (not compressed), time 0, date 1980-01-01, CRC-32, both sizes.
  static void putEntryFields(std::string& s, uint32_t crc, uint64_t size, size_t nameLength) {
    for (uint64_t v : {20, 0, 0, 0, 0x21}) put(s, v, 2);
    put(s, crc, 4);
    put(s, size, 4);
    put(s, size, 4);
    put(s, nameLength, 2);
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
