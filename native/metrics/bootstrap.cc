#include "bootstrap.h"

#include <stdexcept>
#include <string>

namespace spurmem {

namespace {

/// The smallest m in [0, 2^53] whose drawn index (drawnIndex(m, n)) is k or more: since the index never
/// decreases as m grows, a draw is below k exactly when m is below this.
uint64_t firstAtOrAbove(int64_t n, int64_t k) {
  uint64_t lo = 0, hi = uint64_t(1) << 53;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (drawnIndex(mid, n) < k)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace

std::vector<int32_t> bootstrapCorrect(Sfc32& rng, const std::vector<int64_t>& count, const std::vector<int64_t>& correct, int64_t draws) {
  const std::size_t groups = count.size();
  if (correct.size() != groups) throw std::invalid_argument("bootstrap: " + std::to_string(groups) + " group counts but " + std::to_string(correct.size()) + " correct counts");
  if (draws < 0) throw std::invalid_argument("bootstrap: draws must be >= 0, got " + std::to_string(draws));
  for (std::size_t g = 0; g < groups; ++g)
    if (count[g] < 0 || correct[g] < 0 || correct[g] > count[g] || count[g] > INT32_MAX)
      throw std::invalid_argument("bootstrap: group " + std::to_string(g) + ": expected 0 <= correct <= count, got correct " + std::to_string(correct[g]) + " of " + std::to_string(count[g]));
  std::vector<uint64_t> below(groups);
  for (std::size_t g = 0; g < groups; ++g) below[g] = firstAtOrAbove(count[g], correct[g]);
  std::vector<int32_t> out(static_cast<std::size_t>(draws) * groups);
  for (int64_t b = 0; b < draws; ++b) {
    for (std::size_t g = 0; g < groups; ++g) {
      const int64_t n = count[g], k = correct[g];
      int64_t hits = k;
      if (k != 0 && k != n) {
        hits = 0;
        for (int64_t i = 0; i < n; ++i) hits += rng.bits53() < below[g];
      }
      out[static_cast<std::size_t>(b) * groups + g] = static_cast<int32_t>(hits);
    }
  }
  return out;
}

}  // namespace spurmem
