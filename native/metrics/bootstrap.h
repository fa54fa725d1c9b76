// The draws of the group-stratified bootstrap (src/metrics/intervals.ts, bootstrapIntervals): plain C++,
// no Node-API and no libtorch. The generator and the arithmetic are those of src/util/random.ts (sfc32,
// Rng.int), step for step, so the same state gives the same draws as the TypeScript code.
#pragma once

#include <cstdint>
#include <vector>

namespace spurmem {

/// sfc32 (src/util/random.ts, Rng): four 32-bit words of state.
struct Sfc32 {
  uint32_t a = 0, b = 0, c = 0, d = 0;

  /// A uniform 32-bit word (Rng.u32).
  uint32_t u32() {
    const uint32_t t = a + b + d;
    d += 1;
    a = b ^ (b >> 9);
    b = c + (c << 3);
    c = (c << 21) | (c >> 11);
    c += t;
    return t;
  }

  /// The 53 random bits of Rng.next() as an integer m in [0, 2^53): next() is m / 2^53.
  uint64_t bits53() {
    const uint64_t hi = u32() >> 5;
    const uint64_t lo = u32() >> 6;
    return (hi << 26) | lo;
  }
};

/// Rng.int(0, n) for the 53 bits m: floor(m / 2^53 * n), in doubles as TypeScript computes it (m / 2^53
/// is exact; the product is rounded once).
inline int64_t drawnIndex(uint64_t m, int64_t n) {
  return static_cast<int64_t>(static_cast<double>(m) / 9007199254740992.0 * static_cast<double>(n));
}

/**
 * Correct draws per replicate and group: for each of `draws` replicates (outer loop) and each group g
 * (inner loop), count[g] draws of a sample index in [0, count[g]), correct when below correct[g] (the
 * group's correct samples come first). A group with no draw to make (correct 0 or all correct) keeps
 * correct[g] and takes no number from the generator. Returns draws x groups values, replicate-major.
 * Throws std::invalid_argument for counts that are not 0 <= correct <= count or draws < 0.
 */
std::vector<int32_t> bootstrapCorrect(Sfc32& rng, const std::vector<int64_t>& count, const std::vector<int64_t>& correct, int64_t draws);

}  // namespace spurmem
