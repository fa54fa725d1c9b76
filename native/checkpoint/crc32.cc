#include "checkpoint/crc32.h"

#include <zlib.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SPURMEM_CRC_FOLD 1
#include <immintrin.h>
#endif

namespace spurmem {
namespace {

uint32_t zlibCrc(uint32_t crc, const uint8_t* p, size_t n) {
  uLong c = crc;
  while (n > 0) {
    uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

#ifdef SPURMEM_CRC_FOLD

// Folding (see Gopal et al., "Fast CRC computation for generic polynomials using PCLMULQDQ", Intel 2009):
// a 128-bit lane L standing D bits before a later lane N is replaced by L * x^D + N, which leaves the
// message's remainder mod P unchanged; the product is split over the lane's two 64-bit halves. In the
// bit-reflected order of zip's CRC the first (low) half is 64 bits "higher" than the second, so it is
// multiplied by x^(D+32) mod P and the second by x^(D-32) mod P (the 32 comes from the CRC's x^32).

/// x^n mod P for zip's polynomial P = 0x104C11DB7, bit-reflected into 32 bits and shifted left by one
/// (the shift makes up for the product of two reflected 64-bit numbers being one bit short).
uint64_t foldConstant(unsigned n) {
  uint64_t r = 1;
  for (unsigned i = 0; i < n; ++i) {
    r <<= 1;
    if (r & (uint64_t(1) << 32)) r ^= 0x104C11DB7ull;
  }
  uint64_t refl = 0;
  for (int b = 0; b < 32; ++b)
    if (r & (uint64_t(1) << b)) refl |= uint64_t(1) << (31 - b);
  return refl << 1;
}

struct FoldConstants {
  uint64_t k512lo, k512hi, k128lo, k128hi;
};
const FoldConstants& constants() {
  static const FoldConstants k{foldConstant(512 + 32), foldConstant(512 - 32), foldConstant(128 + 32), foldConstant(128 - 32)};
  return k;
}

__attribute__((target("pclmul,sse2"))) inline __m128i fold(__m128i lane, __m128i k, __m128i next) {
  __m128i a = _mm_clmulepi64_si128(lane, k, 0x00);  // first half  * x^(D+32)
  __m128i b = _mm_clmulepi64_si128(lane, k, 0x11);  // second half * x^(D-32)
  return _mm_xor_si128(_mm_xor_si128(a, b), next);
}

/// n >= 64. Folds 4 lanes 64 bytes at a time, then into one lane, then 16 bytes at a time; the last lane
/// is a 16-byte message with the same remainder, whose CRC (from a zero register) zlib finishes, with the
/// tail of fewer than 16 bytes.
__attribute__((target("pclmul,sse2"))) uint32_t foldCrc(uint32_t crc, const uint8_t* p, size_t n) {
  const FoldConstants& c = constants();
  const __m128i k512 = _mm_set_epi64x(static_cast<long long>(c.k512hi), static_cast<long long>(c.k512lo));
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(c.k128hi), static_cast<long long>(c.k128lo));
  auto load = [](const uint8_t* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
  __m128i x0 = load(p), x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
  // the register's start value (~crc) acts as an XOR into the first four bytes
  x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128(static_cast<int>(~crc)));
  p += 64;
  n -= 64;
  for (; n >= 64; p += 64, n -= 64) {
    x0 = fold(x0, k512, load(p));
    x1 = fold(x1, k512, load(p + 16));
    x2 = fold(x2, k512, load(p + 32));
    x3 = fold(x3, k512, load(p + 48));
  }
  x0 = fold(x0, k128, x1);
  x0 = fold(x0, k128, x2);
  x0 = fold(x0, k128, x3);
  for (; n >= 16; p += 16, n -= 16) x0 = fold(x0, k128, load(p));
  alignas(16) uint8_t lane[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(lane), x0);
  uint32_t r = static_cast<uint32_t>(::crc32(0xFFFFFFFFul, lane, 16));  // zero register, final inversion
  return zlibCrc(r, p, n);
}

bool foldWorks() {
  if (!__builtin_cpu_supports("pclmul")) return false;
  std::mt19937 gen(12345);
  std::vector<uint8_t> buf(70000);
  for (auto& b : buf) b = static_cast<uint8_t>(gen());
  for (size_t n : {64, 65, 79, 80, 127, 128, 129, 1000, 4099, 65536, 69999}) {
    for (uint32_t start : {0u, 0xDEADBEEFu}) {
      if (foldCrc(start, buf.data() + 1, n) != zlibCrc(start, buf.data() + 1, n)) return false;
    }
  }
  return true;
}

bool useFold() {
  static const bool ok = foldWorks();
  return ok;
}

#endif

}  // namespace

uint32_t crc32Update(uint32_t crc, const uint8_t* p, size_t n) {
#ifdef SPURMEM_CRC_FOLD
  if (n >= 256 && useFold()) return foldCrc(crc, p, n);
#endif
  return zlibCrc(crc, p, n);
}

const char* crc32Implementation() {
#ifdef SPURMEM_CRC_FOLD
  if (useFold()) return "pclmul";
#endif
  return "zlib";
}

}  // namespace spurmem
