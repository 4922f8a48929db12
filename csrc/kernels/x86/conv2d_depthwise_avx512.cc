// conv2d_depthwise_avx512: the direct depthwise kernels for AVX-512.
//
// 3 x 3, stride 1 or 2, padding 1 (MobileNet's layers) has kernels of their own here: they read the
// input plane in place, with masked loads supplying the zero border, so no padded copy is made;
// each input row is loaded once (as its left, centre and right neighbours) and feeds every output
// row it touches, four output rows at a time (stride 1: and two vectors of columns, eight
// independent accumulators, 4.5 loads per 16 outputs instead of 9). Every output sums its nine
// taps in (row, column) order after the bias, one fused multiply-add each.
//
// Everything else (5 x 5, other paddings) runs the generic direct kernel
// (conv2d_depthwise_impl.h) compiled for this ISA.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#define EMBER_DW_VECTOR_BYTES 64
// Contract a * b + c into FMA in this file: the kernel means multiply-add.
#pragma GCC optimize("fp-contract=fast")
#include "kernels/conv2d_depthwise_impl.h"

// GCC 12 warns inside its own masked-load intrinsics (an "undefined" pass-through operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ember::conv {
namespace {

// Lanes l of a 16-float vector whose column j + l lies in [0, W).
inline __mmask16 columns_in(int64_t j, int64_t W) {
  const int64_t lo = std::max<int64_t>(0, -j), hi = std::min<int64_t>(16, W - j);
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// One plane: input [H, W], output [OH, OW], its nine taps and bias broadcast, its epilogue.
struct Plane {
  const float* __restrict x;
  float* __restrict y;
  int64_t H, W, OW;
  __m512 taps[9];
  __m512 bias, lo, hi;
  bool clamp;

  // out[0, 16) = epilogue(s) for the lanes of `mask`.
  void store(float* out, __m512 s, __mmask16 mask) const {
    if (clamp) s = _mm512_min_ps(hi, _mm512_max_ps(lo, s));  // max(lo, s) keeps a NaN in s
    _mm512_mask_storeu_ps(out, mask, s);
  }
};

// Stride 1: output rows [oh0, oh0 + R) x columns [j, j + 16 * V). Input row oh0 - 1 + i feeds
// output row oh0 + r with kernel row ky = i - r.
template <int R, int V>
inline void dw3x3s1_block(const Plane& pl, int64_t oh0, int64_t j) {
  __mmask16 ml[V], mc[V], mr[V];
  for (int v = 0; v < V; ++v) {
    ml[v] = columns_in(j + 16 * v - 1, pl.W);
    mc[v] = columns_in(j + 16 * v, pl.W);
    mr[v] = columns_in(j + 16 * v + 1, pl.W);
  }
  __m512 acc[R][V];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = pl.bias;
#pragma GCC unroll 6
  for (int i = 0; i < R + 2; ++i) {
    const int64_t ih = oh0 - 1 + i;
    if (ih < 0 || ih >= pl.H) continue;  // zero padding: no contribution
    const float* row = pl.x + ih * pl.W + j;
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const __m512 left = _mm512_maskz_loadu_ps(ml[v], row + 16 * v - 1);
      const __m512 centre = _mm512_maskz_loadu_ps(mc[v], row + 16 * v);
      const __m512 right = _mm512_maskz_loadu_ps(mr[v], row + 16 * v + 1);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const int ky = i - r;
        if (ky < 0 || ky > 2) continue;
        acc[r][v] = _mm512_fmadd_ps(left, pl.taps[ky * 3], acc[r][v]);
        acc[r][v] = _mm512_fmadd_ps(centre, pl.taps[ky * 3 + 1], acc[r][v]);
        acc[r][v] = _mm512_fmadd_ps(right, pl.taps[ky * 3 + 2], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) pl.store(pl.y + (oh0 + r) * pl.OW + j + 16 * v, acc[r][v], mc[v]);
}

// Stride 2: output columns [j, j + 16) read input columns 2j - 1 + 2l + kx. Two loads of 16
// give the centre taps (their even lanes) and the right taps (odd lanes); two more, one column
// to the left, give the left taps (even lanes). Input row 2 * oh0 - 1 + i feeds output row
// oh0 + r with kernel row ky = i - 2r.
template <int R>
inline void dw3x3s2_block(const Plane& pl, int64_t oh0, int64_t j) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const int64_t c0 = 2 * j;
  const __mmask16 m0 = columns_in(c0, pl.W), m1 = columns_in(c0 + 16, pl.W);
  const __mmask16 l0 = columns_in(c0 - 1, pl.W), l1 = columns_in(c0 + 15, pl.W);
  __m512 acc[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r] = pl.bias;
#pragma GCC unroll 9
  for (int i = 0; i < 2 * R + 1; ++i) {
    const int64_t ih = 2 * oh0 - 1 + i;
    if (ih < 0 || ih >= pl.H) continue;  // zero padding: no contribution
    const float* row = pl.x + ih * pl.W + c0;
    const __m512 a = _mm512_maskz_loadu_ps(m0, row), b = _mm512_maskz_loadu_ps(m1, row + 16);
    const __m512 left = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(l0, row - 1), even,
                                               _mm512_maskz_loadu_ps(l1, row + 15));
    const __m512 centre = _mm512_permutex2var_ps(a, even, b);
    const __m512 right = _mm512_permutex2var_ps(a, odd, b);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const int ky = i - 2 * r;
      if (ky < 0 || ky > 2) continue;
      acc[r] = _mm512_fmadd_ps(left, pl.taps[ky * 3], acc[r]);
      acc[r] = _mm512_fmadd_ps(centre, pl.taps[ky * 3 + 1], acc[r]);
      acc[r] = _mm512_fmadd_ps(right, pl.taps[ky * 3 + 2], acc[r]);
    }
  }
  const __mmask16 mo = columns_in(j, pl.OW);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) pl.store(pl.y + (oh0 + r) * pl.OW + j, acc[r], mo);
}

// Output rows [oh0, oh0 + R) over every column: stride 1 in blocks of 32 columns (the last 1 to
// 16 alone), stride 2 in blocks of 16.
template <int S, int R>
inline void dw3x3_rows(const Plane& pl, int64_t oh0) {
  // Prefetch the input rows the next band adds (past the plane's end: the next plane's first
  // rows): a band reads 2R + 1 (stride 2) rows column block by column block, more streams than
  // the hardware prefetcher follows (MobileNetV2's 96 x 112 x 112 stride-2 layer: 1.8x faster).
  // (An integer address: it may lie past the tensor, where a prefetch does nothing.)
  const uintptr_t next = reinterpret_cast<uintptr_t>(pl.x) + static_cast<uintptr_t>((S * (oh0 + R) + 1) * pl.W * 4);
  for (int64_t b = 0; b < S * R * pl.W * 4; b += 64)
    _mm_prefetch(reinterpret_cast<const char*>(next + static_cast<uintptr_t>(b)), _MM_HINT_T0);
  int64_t j = 0;
  if constexpr (S == 1) {
    for (; j + 16 < pl.OW; j += 32) dw3x3s1_block<R, 2>(pl, oh0, j);
    if (j < pl.OW) dw3x3s1_block<R, 1>(pl, oh0, j);
  } else {
    for (; j < pl.OW; j += 16) dw3x3s2_block<R>(pl, oh0, j);
  }
}

// All OH output rows of a plane, 4 at a time, the last 1 to 3 in one block.
template <int S>
void dw3x3_plane(const Plane& pl, int64_t OH) {
  int64_t oh = 0;
  for (; oh + 4 <= OH; oh += 4) dw3x3_rows<S, 4>(pl, oh);
  switch (OH - oh) {
    case 3: dw3x3_rows<S, 3>(pl, oh); break;
    case 2: dw3x3_rows<S, 2>(pl, oh); break;
    case 1: dw3x3_rows<S, 1>(pl, oh); break;
    default: break;
  }
}

// 3 x 3, padding 1, no dilation, stride 1 or 2 in both directions: 1 or 2; else 0.
int direct_3x3_pad1_stride(const Conv2dShape& s) {
  if (s.kh != 3 || s.kw != 3 || s.ph != 1 || s.pw != 1 || s.dh != 1 || s.dw != 1 || s.sh != s.sw) return 0;
  if (s.sh == 1 && s.OH == s.H && s.OW == s.W) return 1;
  if (s.sh == 2 && s.OH == (s.H - 1) / 2 + 1 && s.OW == (s.W - 1) / 2 + 1) return 2;
  return 0;
}

}  // namespace

void conv2d_depthwise_avx512(const Conv2dShape& s, const float* x, const float* w, float* y,
                             const ConvEpilogue& ep, ThreadPool* pool) {
  const int stride = direct_3x3_pad1_stride(s);
  if (stride == 0) return depthwise_run(s, x, w, y, ep, pool);
  auto body = [&](int64_t p0, int64_t p1) {
    Plane pl;
    pl.H = s.H;
    pl.W = s.W;
    pl.OW = s.OW;
    pl.lo = _mm512_set1_ps(ep.lo);
    pl.hi = _mm512_set1_ps(ep.hi);
    pl.clamp = ep.clamp;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % s.C;
      pl.x = x + p * s.H * s.W;
      pl.y = y + p * s.OH * s.OW;
      for (int i = 0; i < 9; ++i) pl.taps[i] = _mm512_set1_ps(w[c * 9 + i]);
      pl.bias = _mm512_set1_ps(ep.bias ? ep.bias[c] : 0.0f);
      if (stride == 1)
        dw3x3_plane<1>(pl, s.OH);
      else
        dw3x3_plane<2>(pl, s.OH);
    }
  };
  // A plane is thousands of FMAs: one plane per chunk is already coarse enough.
  if (pool)
    pool->parallel_for(s.N * s.C, 1, body);
  else
    body(0, s.N * s.C);
}

}  // namespace ember::conv
