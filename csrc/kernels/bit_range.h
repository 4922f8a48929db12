// Lane masks from a range: shared by kernels that mask the loads and stores at the edges of a row.
#pragma once
#include <algorithm>
#include <cstdint>

namespace ember {

// Bits [lo, hi) of a 32-bit mask, clipped to [0, 32) (empty when hi <= lo).
inline uint32_t bit_range(int64_t lo, int64_t hi) {
  lo = std::max<int64_t>(lo, 0);
  hi = std::min<int64_t>(hi, 32);
  if (hi <= lo) return 0;
  const uint32_t below_hi = hi >= 32 ? ~0u : (1u << hi) - 1;
  return below_hi & ~((1u << lo) - 1);
}

}  // namespace ember
