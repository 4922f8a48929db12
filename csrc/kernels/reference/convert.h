// Element conversion between Ember dtypes, with PyTorch's (x86) results, and no undefined
// behaviour: used by `cast` and by ops that turn a float attribute into a tensor value (`pad`).
//
//   * to bool: v != 0 (NaN -> true);  from bool: 0 or 1.
//   * float -> int64/int32: truncate toward zero; NaN and out-of-range values give the type's
//     minimum (what torch produces on x86).
//   * float -> int8/uint8: truncate to int64 as above, then wrap (300.0 -> uint8 44, -1.0 -> 255).
//   * int -> int: two's-complement wrap.  anything -> float: nearest value.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace ember::reference {

template <typename D, typename S>
D convert_value(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_same_v<S, bool> || std::is_floating_point_v<D>) {
    return static_cast<D>(v);
  } else if constexpr (std::is_floating_point_v<S>) {
    using Wide = std::conditional_t<(sizeof(D) >= 4), D, int64_t>;
    // [-2^(n-1), 2^(n-1)) is exactly representable in double for n = 32 and 64.
    const double lo = static_cast<double>(std::numeric_limits<Wide>::min());
    const double t = std::trunc(static_cast<double>(v));
    Wide w = (std::isnan(t) || t < lo || t >= -lo) ? std::numeric_limits<Wide>::min()
                                                   : static_cast<Wide>(t);
    return static_cast<D>(static_cast<std::make_unsigned_t<D>>(w));
  } else {
    return static_cast<D>(static_cast<std::make_unsigned_t<D>>(v));
  }
}

}  // namespace ember::reference
