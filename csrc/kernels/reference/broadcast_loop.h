// The reference kernels' broadcasting loop: visits every output element in row-major order and
// hands the callback the matching element offsets of each input. Slow and obviously correct.
#pragma once
#include <array>
#include <cstdint>

#include "core/shape_util.h"
#include "core/tensor.h"

namespace ember::reference {

template <size_t N, typename F>
void broadcast_for_each(const Shape& out_shape, const std::array<Shape, N>& in_shapes, F&& fn) {
  const size_t nd = out_shape.size();
  std::array<Shape, N> strides;
  for (size_t k = 0; k < N; ++k) strides[k] = broadcast_strides(in_shapes[k], out_shape);
  const int64_t total = shape_numel(out_shape);
  Shape index(nd, 0);
  std::array<int64_t, N> offsets{};
  for (int64_t o = 0; o < total; ++o) {
    fn(o, offsets);
    // Advance the multi-index, updating each input's offset.
    for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {
      if (++index[d] < out_shape[d]) {
        for (size_t k = 0; k < N; ++k) offsets[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k) offsets[k] -= strides[k][d] * (out_shape[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace ember::reference
