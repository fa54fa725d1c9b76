// A checkpoint file read with positional reads, and the little-endian field reader of zip headers and
// the legacy layout's magic numbers (shared by archive.cc and storage.cc).
#pragma once

#include "checkpoint/pickle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace spurmem {

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

/// The n-byte little-endian unsigned integer at p.
inline uint64_t rd(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
inline uint64_t rd(const std::string& s, size_t at, int n) { return rd(reinterpret_cast<const uint8_t*>(s.data()) + at, n); }

}  // namespace spurmem
