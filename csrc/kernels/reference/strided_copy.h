// The reference data-movement loop: copies a box of elements between two strided views, by
// element size, so one loop serves every dtype. transpose (permuted strides), expand (zero
// strides), slice (scaled strides and an offset) and pad (a strided destination) are all
// one call of it.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace ember::reference {

namespace detail {
template <typename T>
void strided_copy_typed(const T* src, const Shape& src_strides_in, T* dst,
                        const Shape& dst_strides_in, const Shape& shape_in) {
  if (shape_numel(shape_in) == 0) return;
  if (shape_in.empty()) {
    *dst = *src;
    return;
  }
  // Drop size-1 dims and merge neighbours that are contiguous in both views, so the inner loop
  // runs as long as it can (a transpose that keeps the last dim copies whole rows).
  Shape shape, src_strides, dst_strides;
  for (size_t d = 0; d < shape_in.size(); ++d) {
    if (shape_in[d] == 1) continue;
    if (!shape.empty() && src_strides.back() == src_strides_in[d] * shape_in[d] &&
        dst_strides.back() == dst_strides_in[d] * shape_in[d]) {
      shape.back() *= shape_in[d];
      src_strides.back() = src_strides_in[d];
      dst_strides.back() = dst_strides_in[d];
      continue;
    }
    shape.push_back(shape_in[d]);
    src_strides.push_back(src_strides_in[d]);
    dst_strides.push_back(dst_strides_in[d]);
  }
  if (shape.empty()) {
    *dst = *src;
    return;
  }
  const size_t nd = shape.size();
  const int64_t inner = shape[nd - 1];
  const int64_t s_in = src_strides[nd - 1], d_in = dst_strides[nd - 1];
  if (nd == 1 && s_in == 1 && d_in == 1) {
    std::memcpy(dst, src, static_cast<size_t>(inner) * sizeof(T));
    return;
  }
  std::vector<int64_t> index(nd, 0);
  int64_t so = 0, doff = 0;
  while (true) {
    if (s_in == 1 && d_in == 1)
      std::memcpy(dst + doff, src + so, static_cast<size_t>(inner) * sizeof(T));
    else
      for (int64_t k = 0; k < inner; ++k) dst[doff + k * d_in] = src[so + k * s_in];
    // Advance the multi-index over all but the last dim.
    int64_t d = static_cast<int64_t>(nd) - 2;
    for (; d >= 0; --d) {
      size_t u = static_cast<size_t>(d);
      if (++index[u] < shape[u]) {
        so += src_strides[u];
        doff += dst_strides[u];
        break;
      }
      so -= src_strides[u] * (shape[u] - 1);
      doff -= dst_strides[u] * (shape[u] - 1);
      index[u] = 0;
    }
    if (d < 0) return;
  }
}
}  // namespace detail

// Copies the elements of a box of `shape` from src (strides in elements, may be 0 or any
// value) to dst. Both pointers point at the box's first element.
inline void strided_copy(const void* src, const Shape& src_strides, void* dst,
                         const Shape& dst_strides, const Shape& shape, size_t element_size) {
  switch (element_size) {
    case 1:
      detail::strided_copy_typed(static_cast<const uint8_t*>(src), src_strides,
                                 static_cast<uint8_t*>(dst), dst_strides, shape);
      break;
    case 2:
      detail::strided_copy_typed(static_cast<const uint16_t*>(src), src_strides,
                                 static_cast<uint16_t*>(dst), dst_strides, shape);
      break;
    case 4:
      detail::strided_copy_typed(static_cast<const uint32_t*>(src), src_strides,
                                 static_cast<uint32_t*>(dst), dst_strides, shape);
      break;
    case 8:
      detail::strided_copy_typed(static_cast<const uint64_t*>(src), src_strides,
                                 static_cast<uint64_t*>(dst), dst_strides, shape);
      break;
    default:
      fail<Unsupported>("strided_copy: unsupported element size ", element_size);
  }
}

}  // namespace ember::reference
