// CRC-32 of zip entries (the polynomial of zip, gzip and zlib's crc32).
#pragma once

#include <cstddef>
#include <cstdint>

namespace spurmem {

/// Continues a CRC-32: crc32Update(0, p, n) is the CRC-32 of p[0..n), and
/// crc32Update(crc32Update(0, a, n), b, m) that of a followed by b (zlib's crc32 convention).
///
/// On x86-64 CPUs with carry-less multiplication long buffers are folded 128 bytes at a time with
/// 256-bit VPCLMULQDQ, or 64 bytes at a time with PCLMULQDQ (several times zlib's speed; the CRC is most
/// of what checking a zip checkpoint costs); the folding is compared with zlib's crc32 on test buffers at
/// first use and not used if they disagree. Elsewhere, and for short buffers, zlib's crc32 does the work.
uint32_t crc32Update(uint32_t crc, const uint8_t* p, size_t n);

/// The CRC-32 of p[0..n).
inline uint32_t crc32Of(const uint8_t* p, size_t n) { return crc32Update(0, p, n); }

/// Which implementation crc32Update uses on this machine: "vpclmulqdq", "pclmul" or "zlib".
const char* crc32Implementation();

}  // namespace spurmem
