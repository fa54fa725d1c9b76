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

/// The (first-half, second-half) constant pair that folds a 128-bit lane forward by D bits.
struct Pair {
  uint64_t lo, hi;
};
Pair pairFor(unsigned d) { return Pair{foldConstant(d + 32), foldConstant(d - 32)}; }

struct FoldConstants {
  Pair k128, k256, k512, k1024;
};
const FoldConstants& constants() {
  static const FoldConstants k{pairFor(128), pairFor(256), pairFor(512), pairFor(1024)};
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
  const __m128i k512 = _mm_set_epi64x(static_cast<long long>(c.k512.hi), static_cast<long long>(c.k512.lo));
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(c.k128.hi), static_cast<long long>(c.k128.lo));
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

// The same with 256-bit registers (VPCLMULQDQ): each holds two lanes, and four registers fold 128 bytes
// at a time, twice the 128-bit version's rate where the instruction exists (Intel Ice Lake, AMD Zen 3
// and later).

__attribute__((target("vpclmulqdq,avx2,pclmul"))) inline __m256i fold2(__m256i lanes, __m256i k, __m256i next) {
  __m256i a = _mm256_clmulepi64_epi128(lanes, k, 0x00);
  __m256i b = _mm256_clmulepi64_epi128(lanes, k, 0x11);
  return _mm256_xor_si256(_mm256_xor_si256(a, b), next);
}

__attribute__((target("avx2"))) inline __m256i both(Pair k) {
  return _mm256_set_epi64x(static_cast<long long>(k.hi), static_cast<long long>(k.lo), static_cast<long long>(k.hi),
                           static_cast<long long>(k.lo));
}
__attribute__((target("avx2"))) inline __m256i load256(const uint8_t* q) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
}

/// n >= 128.
__attribute__((target("vpclmulqdq,avx2,pclmul"))) uint32_t foldCrc256(uint32_t crc, const uint8_t* p, size_t n) {
  const FoldConstants& c = constants();
  const __m256i k1024 = both(c.k1024), k512 = both(c.k512), k256 = both(c.k256);
  __m256i y0 = load256(p), y1 = load256(p + 32), y2 = load256(p + 64), y3 = load256(p + 96);
  y0 = _mm256_xor_si256(y0, _mm256_zextsi128_si256(_mm_cvtsi32_si128(static_cast<int>(~crc))));
  p += 128;
  n -= 128;
  for (; n >= 128; p += 128, n -= 128) {
    y0 = fold2(y0, k1024, load256(p));
    y1 = fold2(y1, k1024, load256(p + 32));
    y2 = fold2(y2, k1024, load256(p + 64));
    y3 = fold2(y3, k1024, load256(p + 96));
  }
  // bytes 0-31 onto 64-95 and 32-63 onto 96-127 (512 bits on), then 64-95 onto 96-127 (256 bits on)
  y2 = fold2(y0, k512, y2);
  y3 = fold2(y1, k512, y3);
  y3 = fold2(y2, k256, y3);
  // the register's first lane onto its second (128 bits on)
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(c.k128.hi), static_cast<long long>(c.k128.lo));
  __m128i x = fold(_mm256_castsi256_si128(y3), k128, _mm256_extracti128_si256(y3, 1));
  for (; n >= 16; p += 16, n -= 16) x = fold(x, k128, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) uint8_t lane[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(lane), x);
  uint32_t r = static_cast<uint32_t>(::crc32(0xFFFFFFFFul, lane, 16));
  return zlibCrc(r, p, n);
}

enum class Impl { Zlib, Fold128, Fold256 };

bool agrees(uint32_t (*fn)(uint32_t, const uint8_t*, size_t), size_t minLen) {
  std::mt19937 gen(12345);
  std::vector<uint8_t> buf(70000);
  for (auto& b : buf) b = static_cast<uint8_t>(gen());
  for (size_t n : {64, 65, 79, 80, 127, 128, 129, 143, 144, 255, 256, 1000, 4099, 65536, 69999}) {
    if (n < minLen) continue;
    for (uint32_t start : {0u, 0xDEADBEEFu}) {
      if (fn(start, buf.data() + 1, n) != zlibCrc(start, buf.data() + 1, n)) return false;
    }
  }
  return true;
}

Impl chooseImpl() {
  if (!__builtin_cpu_supports("pclmul")) return Impl::Zlib;
  if (__builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2") && agrees(foldCrc256, 128)) return Impl::Fold256;
  if (agrees(foldCrc, 64)) return Impl::Fold128;
  return Impl::Zlib;
}

Impl impl() {
  static const Impl i = chooseImpl();
  return i;
}

#endif

}  // namespace

uint32_t crc32Update(uint32_t crc, const uint8_t* p, size_t n) {
#ifdef SPURMEM_CRC_FOLD
  if (n >= 256) {
    switch (impl()) {
      case Impl::Fold256: return foldCrc256(crc, p, n);
      case Impl::Fold128: return foldCrc(crc, p, n);
      case Impl::Zlib: break;
    }
  }
#endif
  return zlibCrc(crc, p, n);
}

const char* crc32Implementation() {
#ifdef SPURMEM_CRC_FOLD
  switch (impl()) {
    case Impl::Fold256: return "vpclmulqdq";
    case Impl::Fold128: return "pclmul";
    case Impl::Zlib: break;
  }
#endif
  return "zlib";
}

}  // namespace spurmem
