// Winograd F(4x4, 3x3) convolution for 3x3, stride-1, undilated, ungrouped layers (Lavin &
// Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). Each 4x4 block of outputs
// comes from a 6x6 input tile: Y = A^T [ (G g G^T) .* (B^T d B) ] A. Summed over input channels,
// the element-wise product becomes 36 independent GEMMs
//     M_xi[tiles, O] = V_xi[tiles, C] x U_xi[C, O],   xi = 0..35,
// i.e. 36 multiplies per 16 outputs and channel instead of 144: 4x fewer FLOPs than direct or
// im2col convolution, at the price of transforms and somewhat larger rounding error (the
// transforms multiply by up to 8 and divide by 24; tests bound it against the reference).
//
// Included by one file per ISA (like conv2d_depthwise_impl.h): the transforms run on generic
// vectors of channels, lowered to that file's SIMD width. Internal linkage only.
#pragma once
#include <algorithm>
#include <cstring>
#if defined(__x86_64__) || defined(_M_X64)
// GCC 12 reports false "(may be) used uninitialized" warnings inside its AVX-512 headers (the
// undefined pass-through operand of some masked intrinsics).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

#include "core/error.h"
#include "core/scratch.h"
#include "core/tensor.h"
#include "kernels/bit_range.h"
#include "kernels/conv2d_fast.h"
#include "kernels/gemm.h"

namespace ember::conv {
namespace {

#ifndef EMBER_WINO_VECTOR_BYTES
#define EMBER_WINO_VECTOR_BYTES 16
#endif
constexpr int kWinoLanes = EMBER_WINO_VECTOR_BYTES / 4;
typedef float WinoVec __attribute__((vector_size(EMBER_WINO_VECTOR_BYTES)));

inline WinoVec wino_load(const float* p) {
  WinoVec v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// B^T d for one column (6 values, stride `s` apart), in place into out (stride `t`).
template <typename T>
__attribute__((always_inline)) inline void input_transform_1d(const T* d, int s, T* out, int t) {
  const T d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
  out[0] = 4.0f * d0 - 5.0f * d2 + d4;
  out[t] = -4.0f * d1 - 4.0f * d2 + d3 + d4;
  out[2 * t] = 4.0f * d1 - 4.0f * d2 - d3 + d4;
  out[3 * t] = -2.0f * d1 - d2 + 2.0f * d3 + d4;
  out[4 * t] = 2.0f * d1 - d2 - 2.0f * d3 + d4;
  out[5 * t] = 4.0f * d1 - 5.0f * d3 + d5;
}

// A^T m for one column (6 values -> 4).
template <typename T>
__attribute__((always_inline)) inline void output_transform_1d(const T* m, int s, T* out, int t) {
  const T m0 = m[0], m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s], m5 = m[5 * s];
  const T a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
  out[0] = m0 + a + c;
  out[t] = b + 2.0f * d;
  out[2 * t] = a + 4.0f * c;
  out[3 * t] = b + 8.0f * d + m5;
}

// Output a of G g for one column of 3 taps (3 -> 6 values); the divisions by 4, 6 and 24 are
// multiplications by reciprocals.
template <typename T>
inline T weight_transform_at(int a, T g0, T g1, T g2) {
  constexpr float k4 = 1.0f / 4.0f, k6 = 1.0f / 6.0f, k12 = 1.0f / 12.0f, k24 = 1.0f / 24.0f;
  switch (a) {
    case 0: return g0 * k4;
    case 1: return -(g0 + g1 + g2) * k6;
    case 2: return -(g0 - g1 + g2) * k6;
    case 3: return g0 * k24 + g1 * k12 + g2 * k6;
    case 4: return g0 * k24 - g1 * k12 + g2 * k6;
    default: return g2;
  }
}

// Floats between consecutive U_xi of a chunk: kc * NR plus one cache line, so the 36 streams
// are not a power of two apart (they would all land in the same L1 sets: 4K aliasing).
inline int64_t wino_u_stride(int64_t kc, int64_t nr) { return kc * nr + 16; }

// The 36 transformed weights U_xi = (G g G^T)[xi] of one B panel (NR output channels) over depth
// [k0, k0 + kc), from the weight as winograd_pack_weights (conv2d_fast.h) lays it out:
// u[xi * wino_u_stride + k * NR + j]. The transform is
// linear and done per element, so building it in chunks gives the bits of a whole transform.
void winograd_build_u(const float* packed_w, int64_t C, int64_t nr, int64_t panel, int64_t k0,
                      int64_t kc, float* u) {
  const int L = kWinoLanes;
  const int64_t stride = wino_u_stride(kc, nr);
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = packed_w + (panel * C + k0 + k) * 9 * nr;
    // A few depth rows ahead: the hardware prefetcher alone left this loop waiting on a weight
    // that is not in L2 (512 -> 512 channels at 7x7: 2.0 -> 0.9 ms per run to build U).
    for (int64_t q = 0; q < 9 * nr; q += 16) __builtin_prefetch(src + 4 * 9 * nr + q);
    for (int64_t j = 0; j < nr; j += L) {  // NR is a whole number of vectors
      WinoVec g[9];
      for (int t = 0; t < 9; ++t) g[t] = wino_load(src + t * nr + j);
      float* dst = u + k * nr + j;
      // Row by row of G g (3 vectors), each turned into 6 outputs stored at once: few live
      // registers (all 36 outputs at once would spill).
#pragma GCC unroll 6
      for (int a = 0; a < 6; ++a) {
        WinoVec row[3];
        for (int c = 0; c < 3; ++c) row[c] = weight_transform_at(a, g[c], g[3 + c], g[6 + c]);
#pragma GCC unroll 6
        for (int b = 0; b < 6; ++b) {
          const WinoVec out = weight_transform_at(b, row[0], row[1], row[2]);
          __builtin_memcpy(dst + (a * 6 + b) * stride, &out, sizeof(WinoVec));
        }
      }
    }
  }
}

// Floats between consecutive V_xi (rpanels row panels of C x MR) and M_xi (rows x O): one
// cache line more than their size, so that the 36 slices, written and read side by side, are
// not a multiple of 4 KB apart (512 channels of 7 x 7 made them 28 KB and 8 KB apart: every
// store of the input transform went to the same L1 sets).
inline int64_t wino_v_stride(int64_t rpanels, int64_t C, int64_t mr) { return rpanels * C * mr + 16; }
inline int64_t wino_m_stride(int64_t rows, int64_t O) { return rows * O + 16; }

// Depth of the U chunks: 36 x kc x NR floats (the chunk) stay in L2 while the 36 GEMMs use them.
constexpr int64_t kWinoDepth = 32;

// M_xi[rows, O panels [p0, p1)] = V_xi[rows, C] x U_xi[C, those panels] for all 36 xi, with V in
// packed-A layout (vp[xi][row panel][c][MR]) and M row-major (m[xi][row][o]), slices
// wino_v_stride / wino_m_stride apart. Each U chunk is
// built once from the packed weight and used by all 36 products; u holds 36 x wino_u_stride(kWinoDepth,
// NR) floats.
void winograd_gemms(const gemm::SgemmKernel& kernel, const float* vp, int64_t rows, int64_t C,
                    int64_t O, const float* packed_w, float* m, int64_t p0,
                    int64_t p1, float* u) {
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t rpanels = (rows + mr - 1) / mr;
  const int64_t vs = wino_v_stride(rpanels, C, mr), ms = wino_m_stride(rows, O);
  const int64_t chunks = (C + kWinoDepth - 1) / kWinoDepth;
  const int64_t depth = (C + chunks - 1) / chunks;  // equal chunks
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n = std::min<int64_t>(nr, O - p * nr);
    for (int64_t k0 = 0; k0 < C; k0 += depth) {
      const int64_t kc = std::min<int64_t>(depth, C - k0);
      winograd_build_u(packed_w, C, nr, p, k0, kc, u);
      gemm::UkernelParams params;
      params.accumulate = k0 > 0;
      params.last = k0 + kc >= C;
      for (int e = 0; e < 36; ++e)
        for (int64_t rp = 0; rp < rpanels; ++rp) {
          const int64_t mm = std::min<int64_t>(mr, rows - rp * mr);
          kernel.ukernel[mm - 1](kc, vp + e * vs + (rp * C + k0) * mr, u + e * wino_u_stride(kc, nr), nr,
                                 m + e * ms + rp * mr * O + p * nr, O, n, params);
        }
    }
  }
}

// One thread's V, M and U chunk (a block is sized for L2, so this stays small).
float* winograd_scratch(int64_t floats) {
  thread_local FloatScratch buffer;
  return buffer.get(floats, "conv2d (Winograd)");
}

// Which columns of an input row the tiles of one run of lanes read: [lo, hi) of the row, seen
// from column col0 (lane 0's first tap column); as bit masks over the 5 x 16 columns from col0
// for wino_row_phases. Depends on the run only: computed once for all its rows and channels.
struct WinoColumns {
  int64_t col0 = 0, lo = 0, hi = 0;
  uint32_t bits[5] = {};
  WinoColumns() = default;
  WinoColumns(int64_t col0_, int64_t lo_, int64_t hi_) : col0(col0_), lo(lo_), hi(hi_) {
    for (int q = 0; q < 5; ++q) bits[q] = bit_range(lo - (col0 + 16 * q), hi - (col0 + 16 * q)) & 0xFFFFu;
  }
};

// The six column phases of one input row for L tiles side by side: p[j][l] = row[col0 + 4 l + j]
// for columns in [lo, hi), 0 elsewhere (columns outside are never read). Tile l of a row of tiles
// starts 4 l columns after tile 0, so lane l of p[j] is tap column j of tile l.
__attribute__((always_inline)) inline void wino_row_phases(const float* row, const WinoColumns& cols, WinoVec p[6]) {
#if EMBER_WINO_VECTOR_BYTES == 64 && defined(__AVX512F__)
  // 80 columns in five vectors (masked loads), split into the four phases of 4 l + j by two
  // rounds of even / odd selections; phases 4 and 5 are phases 0 and 1 one tile on. (Gathers
  // measured 2x slower for the whole transform.)
  __m512 r[5];
#pragma GCC unroll 5
  for (int q = 0; q < 5; ++q)
    r[q] = _mm512_maskz_loadu_ps(static_cast<__mmask16>(cols.bits[q]), row + cols.col0 + 16 * q);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 e01 = _mm512_permutex2var_ps(r[0], even, r[1]), o01 = _mm512_permutex2var_ps(r[0], odd, r[1]);
  const __m512 e23 = _mm512_permutex2var_ps(r[2], even, r[3]), o23 = _mm512_permutex2var_ps(r[2], odd, r[3]);
  const __m512 p0 = _mm512_permutex2var_ps(e01, even, e23), p2 = _mm512_permutex2var_ps(e01, odd, e23);
  const __m512 p1 = _mm512_permutex2var_ps(o01, even, o23), p3 = _mm512_permutex2var_ps(o01, odd, o23);
  const __m512i next0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i next1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
  p[0] = reinterpret_cast<WinoVec>(p0);
  p[1] = reinterpret_cast<WinoVec>(p1);
  p[2] = reinterpret_cast<WinoVec>(p2);
  p[3] = reinterpret_cast<WinoVec>(p3);
  p[4] = reinterpret_cast<WinoVec>(_mm512_permutex2var_ps(p0, next0, r[4]));
  p[5] = reinterpret_cast<WinoVec>(_mm512_permutex2var_ps(p1, next1, r[4]));
#else
  float buf[4 * kWinoLanes + 2] = {};
  const int64_t a = std::max<int64_t>(cols.lo, cols.col0), b = std::min<int64_t>(cols.hi, cols.col0 + 4 * kWinoLanes + 2);
  for (int64_t c = a; c < b; ++c) buf[c - cols.col0] = row[c];
  for (int j = 0; j < 6; ++j)
    for (int l = 0; l < kWinoLanes; ++l) p[j][l] = buf[4 * l + j];
#endif
}

// Lanes of `a` where bit l of mask is set, of `b` elsewhere.
inline WinoVec wino_select(uint32_t mask, WinoVec a, WinoVec b) {
#if EMBER_WINO_VECTOR_BYTES == 64 && defined(__AVX512F__)
  return reinterpret_cast<WinoVec>(
      _mm512_mask_mov_ps(reinterpret_cast<__m512>(b), static_cast<__mmask16>(mask), reinterpret_cast<__m512>(a)));
#else
  for (int l = 0; l < kWinoLanes; ++l)
    if (mask >> l & 1u) b[l] = a[l];
  return b;
#endif
}

// The first n (1 <= n <= lanes) floats at p, zeros in the other lanes.
inline WinoVec wino_load_n(const float* p, int n) {
#if EMBER_WINO_VECTOR_BYTES == 64 && defined(__AVX512F__)
  return reinterpret_cast<WinoVec>(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p));
#else
  if (n == kWinoLanes) return wino_load(p);
  WinoVec v = WinoVec{};
  for (int l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}

// Stores the first n (1 <= n <= lanes) lanes of v.
inline void wino_store(float* dst, WinoVec v, int n) {
#if EMBER_WINO_VECTOR_BYTES == 64 && defined(__AVX512F__)
  _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << n) - 1), reinterpret_cast<__m512>(v));
#else
  if (n == kWinoLanes) {
    __builtin_memcpy(dst, &v, sizeof(v));
  } else {
    for (int l = 0; l < n; ++l) dst[l] = v[l];
  }
#endif
}

// Input transform of tiles [t0, t1) and channels [c_begin, c_end) into v, in the GEMM's
// packed-A layout: row r = t - base of V_xi at v[xi * wino_v_stride + (r / MR * C + c) * MR + r % MR]
// ((t0 - base) a multiple of MR). The vectors hold tiles: up to L consecutive rows of a panel
// for one channel, read from input rows by whole vectors (wino_row_phases), so each of the 36
// results is one store of consecutive floats. (Channels in lanes instead gathered each value by
// itself and scattered it to its own row: 36 x L scalar stores into 36 streams per tile, the
// transform then took longer than the 36 GEMMs on 64 channels at 56 x 56.)
void winograd_input_tiles(const Conv2dShape& s, const float* x, int64_t t0, int64_t t1,
                          int64_t base, float* v, int64_t rpanels, int64_t mr, int64_t c_begin,
                          int64_t c_end) {
  const int64_t C = s.C, plane_size = s.H * s.W;
  const int64_t tw = (s.OW + 3) / 4, tiles = ((s.OH + 3) / 4) * tw;
  const int L = kWinoLanes;
  const int64_t vs = wino_v_stride(rpanels, C, mr);
  // Runs of a vector's lanes over one row of tiles (a panel may end one row and start the next).
  struct Run { int64_t image, iy0; int lane, len; uint32_t lanes; WinoColumns cols; };
  Run runs[kWinoLanes];
  for (int64_t ts = t0; ts < t1; ts += mr) {
    const int64_t r = ts - base;
    for (int64_t l0 = 0; l0 < mr && ts + l0 < t1; l0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>({L, mr - l0, t1 - ts - l0}));
      int nruns = 0;
      for (int l = 0; l < lanes;) {
        const int64_t t = ts + l0 + l, q = t % tiles, tx = q % tw;
        const int len = static_cast<int>(std::min<int64_t>(lanes - l, tw - tx));
        // Lane k reads tile (k - l) of the run: columns from ix0 + 4 (k - l).
        const int64_t ix0 = tx * 4 - s.pw;
        const WinoColumns cols(ix0 - 4 * l, std::max<int64_t>(0, ix0), std::min<int64_t>(s.W, ix0 + 4 * len + 2));
        runs[nruns++] = Run{t / tiles, q / tw * 4 - s.ph, l, len, ((1u << len) - 1u) << l, cols};
        l += len;
      }
      for (int64_t c = c_begin; c < c_end; ++c) {
        // Row by row, d B (each input row's 6 taps -> 6 values), then B^T (.) column by
        // column, stored as it comes: few live vectors, no arrays of them in memory.
        WinoVec rows[36];
#pragma GCC unroll 6
        for (int i = 0; i < 6; ++i) {
          WinoVec d[6];
          if (nruns == 1) {
            const Run& run = runs[0];
            const int64_t iy = run.iy0 + i;
            if (iy < 0 || iy >= s.H) {  // a padding row
              for (int b = 0; b < 6; ++b) rows[i * 6 + b] = WinoVec{};
              continue;
            }
            wino_row_phases(x + (run.image * C + c) * plane_size + iy * s.W, run.cols, d);
          } else {
            for (int j = 0; j < 6; ++j) d[j] = WinoVec{};
            for (int ri = 0; ri < nruns; ++ri) {
              const Run& run = runs[ri];
              const int64_t iy = run.iy0 + i;
              if (iy < 0 || iy >= s.H) continue;
              WinoVec p[6];
              wino_row_phases(x + (run.image * C + c) * plane_size + iy * s.W, run.cols, p);
              for (int j = 0; j < 6; ++j) d[j] = wino_select(run.lanes, p[j], d[j]);
            }
          }
          input_transform_1d(d, 1, rows + i * 6, 1);  // d B
        }
        float* dst = v + (r / mr * C + c) * mr + l0;
#pragma GCC unroll 6
        for (int b = 0; b < 6; ++b) {
          WinoVec out[6];
          input_transform_1d(rows + b, 6, out, 1);  // B^T (.)
          for (int a = 0; a < 6; ++a) wino_store(dst + (a * 6 + b) * vs, out[a], lanes);
        }
      }
    }
  }
}

// Output transform + bias + activation of tiles [t0, t1) and output channels [o_begin, o_end)
// (o_begin a multiple of the vector width) from m (M_xi[t - t0][o] at m[xi * m_stride + (t - t0) * O + o]),
// vectors of L output channels, scattered to NCHW.
void winograd_output_tiles(const Conv2dShape& s, const float* m, int64_t t0, int64_t t1,
                           int64_t m_stride, float* y, const ConvEpilogue& ep, int64_t o_begin,
                           int64_t o_end) {
  const int64_t O = s.O;
  const int64_t tw = (s.OW + 3) / 4, tiles = ((s.OH + 3) / 4) * tw;
  const int L = kWinoLanes;
  const WinoVec lo = WinoVec{} + ep.lo, hi = WinoVec{} + ep.hi;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n = t / tiles, r = t % tiles, ty = r / tw, tx = r % tw;
    const int64_t oy0 = ty * 4, ox0 = tx * 4;
    const int rows = static_cast<int>(std::min<int64_t>(4, s.OH - oy0));
    const int cols = static_cast<int>(std::min<int64_t>(4, s.OW - ox0));
    for (int64_t o0 = o_begin; o0 < o_end; o0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>(L, o_end - o0));
      // Row by row of M, (.) A (6 -> 4), then A^T column by column: few live vectors.
      WinoVec tmp[24], out[16];
      const float* src = m + (t - t0) * O + o0;
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) {
        WinoVec mrow[6];
        for (int j = 0; j < 6; ++j) mrow[j] = wino_load_n(src + (i * 6 + j) * m_stride, lanes);
        output_transform_1d(mrow, 1, tmp + i * 4, 1);
      }
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) output_transform_1d(tmp + b, 4, out + b, 4);
      const WinoVec bias = ep.bias ? wino_load_n(ep.bias + o0, lanes) : WinoVec{};
#pragma GCC unroll 16
      for (int e = 0; e < 16; ++e) {
        WinoVec r2 = out[e] + bias;
        if (ep.clamp) {  // comparisons keep a NaN
          r2 = r2 < lo ? lo : r2;
          r2 = r2 > hi ? hi : r2;
        }
        out[e] = r2;
      }
      float* first = y + (n * O + o0) * s.OH * s.OW + oy0 * s.OW + ox0;  // channel o0, tile corner
#if EMBER_WINO_VECTOR_BYTES == 64 && defined(__AVX512F__)
      // Each output row of the tile, 4 vectors of 16 channels, transposed in 4 x 4 blocks so
      // that a channel's 4 pixels are one (masked) 16-byte store: 16 stores per row instead of
      // 64 scalar ones through the stack.
      const __mmask8 col_mask = static_cast<__mmask8>((1u << cols) - 1);
      const int64_t plane = s.OH * s.OW;
      for (int i = 0; i < rows; ++i) {
        const __m512 o0v = reinterpret_cast<__m512>(out[i * 4]), o1v = reinterpret_cast<__m512>(out[i * 4 + 1]);
        const __m512 o2v = reinterpret_cast<__m512>(out[i * 4 + 2]), o3v = reinterpret_cast<__m512>(out[i * 4 + 3]);
        const __m512 t0 = _mm512_unpacklo_ps(o0v, o1v), t1 = _mm512_unpackhi_ps(o0v, o1v);
        const __m512 t2 = _mm512_unpacklo_ps(o2v, o3v), t3 = _mm512_unpackhi_ps(o2v, o3v);
        // Lane g of u[k] (128 bits) holds the row's 4 pixels of channel 4 g + k.
        const __m512 u[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                             _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
        float* row = first + i * s.OW;
        for (int k = 0; k < 4; ++k) {
          const __m128 g[4] = {_mm512_castps512_ps128(u[k]), _mm512_extractf32x4_ps(u[k], 1),
                               _mm512_extractf32x4_ps(u[k], 2), _mm512_extractf32x4_ps(u[k], 3)};
          for (int q = 0; q < 4; ++q) {
            const int ch = 4 * q + k;
            if (ch >= lanes) continue;
            if (cols == 4) {
              _mm_storeu_ps(row + ch * plane, g[q]);
            } else {
              _mm_mask_storeu_ps(row + ch * plane, col_mask, g[q]);
            }
          }
        }
      }
#else
      for (int l = 0; l < lanes; ++l) {
        float* plane = first + l * s.OH * s.OW;
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) plane[i * s.OW + j] = out[i * 4 + j][l];
      }
#endif
    }
  }
}

// Runs the convolution with the weight packed by winograd_pack_weights (U built per run).
//
// Tiles are processed in blocks whose transformed input and GEMM output (36 x tiles x (C + O)
// floats) fit in L2: each block is transformed, multiplied (36 GEMMs) and transformed back
// while it is in cache, in per-thread scratch, with blocks spread over the threads. One block
// (few tiles: batch 1 at small spatial sizes) runs each phase across the threads instead. A
// GEMM's result rows do not depend on how many rows it is given, so blocking and threads do not
// change the bits.
void winograd_run(const Conv2dShape& s, const float* x, const gemm::SgemmKernel& kernel,
                  const float* packed_w, float* y, const ConvEpilogue& ep, ThreadPool* pool) {
  const int64_t C = s.C, O = s.O;
  const int64_t tiles = ((s.OH + 3) / 4) * ((s.OW + 3) / 4), T = s.N * tiles;
  // V and M of a block plus the U chunk share the 1 MB L2; 512 KB blocks (not 768) also keep
  // the per-thread scratch small: ResNet-18 batch 1 adds 1.236x its weights, not 1.247x.
  constexpr int64_t kBlockBytes = 512 << 10;
  const int64_t mr = kernel.mr;
  const int64_t tb = std::max<int64_t>(
      2 * mr, kBlockBytes / (36 * (C + O) * 4) / mr * mr);  // tiles per block
  const int64_t blocks = (T + tb - 1) / tb;
  const int threads = pool ? pool->num_threads() : 1;

  const int64_t nr = kernel.nr, o_panels = (O + nr - 1) / nr;
  const int64_t u_floats = 36 * wino_u_stride(kWinoDepth, nr);

  if (blocks >= 2 * threads || (blocks > 1 && threads == 1)) {
    const int64_t tb_padded = (tb + mr - 1) / mr * mr;
    auto run_blocks = [&](int64_t b0, int64_t b1) {
      const int64_t v_floats = 36 * wino_v_stride(tb_padded / mr, C, mr), m_floats = 36 * wino_m_stride(tb, O);
      float* v = winograd_scratch(v_floats + m_floats + u_floats);
      float* m = v + v_floats;
      float* u = m + m_floats;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = b * tb, t1 = std::min(T, t0 + tb), rows = t1 - t0;
        const int64_t rpanels = (rows + mr - 1) / mr;
        winograd_input_tiles(s, x, t0, t1, t0, v, rpanels, mr, 0, C);
        winograd_gemms(kernel, v, rows, C, O, packed_w, m, 0, o_panels, u);
        winograd_output_tiles(s, m, t0, t1, wino_m_stride(rows, O), y, ep, 0, O);
      }
    };
    if (pool && threads > 1) pool->parallel_for(blocks, 1, run_blocks); else run_blocks(0, blocks);
    return;
  }

  // Few tiles: the whole problem at once, each phase spread over the threads (the products by
  // panels of output channels).
  const int64_t rpanels = (T + mr - 1) / mr;
  Tensor V = Tensor::empty({36 * wino_v_stride(rpanels, C, mr)}, DType::Float32);
  Tensor Mt = Tensor::empty({36 * wino_m_stride(T, O)}, DType::Float32);
  float* v = V.data<float>();
  float* m = Mt.data<float>();
  const int L = kWinoLanes;
  auto input_tiles = [&](int64_t c0, int64_t c1) {  // in vectors of channels
    winograd_input_tiles(s, x, 0, T, 0, v, rpanels, mr, c0 * L, std::min(C, c1 * L));
  };
  if (pool) pool->parallel_for((C + L - 1) / L, 1, input_tiles); else input_tiles(0, (C + L - 1) / L);
  auto panels = [&](int64_t p0, int64_t p1) {
    winograd_gemms(kernel, v, T, C, O, packed_w, m, p0, p1, winograd_scratch(u_floats));
  };
  if (pool) pool->parallel_for(o_panels, 1, panels); else panels(0, o_panels);
  auto output_tiles = [&](int64_t o0, int64_t o1) {  // in vectors of channels
    winograd_output_tiles(s, m, 0, T, wino_m_stride(T, O), y, ep, o0 * L, std::min(O, o1 * L));
  };
  if (pool) pool->parallel_for((O + L - 1) / L, 1, output_tiles); else output_tiles(0, (O + L - 1) / L);
}

}  // namespace
}  // namespace ember::conv
