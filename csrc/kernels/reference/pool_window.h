// The windows of max_pool2d and avg_pool2d over one (H, W) plane, written once for the forward
// ops and their gradients. They follow ATen's CPU kernels, so ties, NaN and the clipped windows
// of ceil_mode behave as in PyTorch.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/reference/window2d.h"

namespace ember::reference {

// Index (iy * W + ix) of the maximum of window (oy, ox) in plane `xp`: the first maximum, or
// the last NaN (NaN propagates); the first tap inside the input when every value is -inf.
// -1 when no tap of the window falls inside the input.
template <typename T>
int64_t max_pool_argmax(const T* xp, const Planes& in, const PoolParams& p, int64_t oy,
                        int64_t ox) {
  int64_t best = -1;
  double best_value = -INFINITY;
  for (int64_t ky = 0; ky < p.kernel[0]; ++ky) {
    const int64_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
    if (iy < 0 || iy >= in.height) continue;
    for (int64_t kx = 0; kx < p.kernel[1]; ++kx) {
      const int64_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
      if (ix < 0 || ix >= in.width) continue;
      const int64_t index = iy * in.width + ix;
      const double v = static_cast<double>(xp[index]);
      if (best < 0) best = index;
      if (v > best_value || std::isnan(v)) {
        best_value = v;
        best = index;
      }
    }
  }
  return best;
}

// The taps [y0, y1) x [x0, x1) of avg-pool window (oy, ox) inside the input, and its divisor:
// with count_include_pad, the window clipped to the padded input (never past the right
// padding, which only ceil_mode reaches); without, the taps inside the input. ATen writes 0
// for a window with no tap inside the input; divisor 0 marks that.
struct AvgWindow {
  int64_t y0, y1, x0, x1, divisor;
};

inline AvgWindow avg_pool_window(const Planes& in, const PoolParams& p, bool count_include_pad,
                                 int64_t oy, int64_t ox) {
  int64_t y0 = oy * p.stride[0] - p.padding[0];
  int64_t x0 = ox * p.stride[1] - p.padding[1];
  int64_t y1 = std::min(y0 + p.kernel[0], in.height + p.padding[0]);
  int64_t x1 = std::min(x0 + p.kernel[1], in.width + p.padding[1]);
  const int64_t padded_count = (y1 - y0) * (x1 - x0);
  y0 = std::max<int64_t>(y0, 0);
  x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, in.height);
  x1 = std::min(x1, in.width);
  if (y0 >= y1 || x0 >= x1) return {0, 0, 0, 0, 0};
  return {y0, y1, x0, x1, count_include_pad ? padded_count : (y1 - y0) * (x1 - x0)};
}

// adaptive_avg_pool2d: output cell o of `out` covers input rows [floor(o * in / out),
// ceil((o + 1) * in / out)).
inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

}  // namespace ember::reference
