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

#include "core/error.h"
#include "core/scratch.h"
#include "core/tensor.h"
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
inline void input_transform_1d(const T* d, int s, T* out, int t) {
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
inline void output_transform_1d(const T* m, int s, T* out, int t) {
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

// Depth of the U chunks: 36 x kc x NR floats (the chunk) stay in L2 while the 36 GEMMs use them.
constexpr int64_t kWinoDepth = 32;

// M_xi[rows, O panels [p0, p1)] = V_xi[rows, C] x U_xi[C, those panels] for all 36 xi, with V in
// packed-A layout (vp[xi][row panel][c][MR]) and M row-major (m[xi][row][o]). Each U chunk is
// built once from the packed weight and used by all 36 products; u holds 36 x wino_u_stride(kWinoDepth,
// NR) floats.
void winograd_gemms(const gemm::SgemmKernel& kernel, const float* vp, int64_t rows, int64_t C,
                    int64_t O, const float* packed_w, float* m, int64_t p0,
                    int64_t p1, float* u) {
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t rpanels = (rows + mr - 1) / mr;
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
          kernel.ukernel[mm - 1](kc, vp + ((e * rpanels + rp) * C + k0) * mr,
                                 u + e * wino_u_stride(kc, nr), nr,
                                 m + (e * rows + rp * mr) * O + p * nr, O, n, params);
        }
    }
  }
}

// One thread's V, M and U chunk (a block is sized for L2, so this stays small).
float* winograd_scratch(int64_t floats) {
  thread_local FloatScratch buffer;
  return buffer.get(floats, "conv2d (Winograd)");
}

// Input transform of tiles [t0, t1) and channels [c_begin, c_end) (c_begin a multiple of the
// vector width) into v, vectors of L channels, in the GEMM's packed-A layout: row r = t - base
// of V_xi at v[((xi * rpanels + r / MR) * C + c) * MR + r % MR]. Neighbouring tiles share cache
// lines there, so threads split the channels, not the tiles.
void winograd_input_tiles(const Conv2dShape& s, const float* x, int64_t t0, int64_t t1,
                          int64_t base, float* v, int64_t rpanels, int64_t mr, int64_t c_begin,
                          int64_t c_end) {
  const int64_t C = s.C;
  const int64_t th = (s.OH + 3) / 4, tw = (s.OW + 3) / 4, tiles = th * tw;
  (void)th;
  const int L = kWinoLanes;
  alignas(64) float d[36][kWinoLanes];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n = t / tiles, r = t % tiles, ty = r / tw, tx = r % tw;
    const int64_t iy0 = ty * 4 - s.ph, ix0 = tx * 4 - s.pw;
    const bool interior = iy0 >= 0 && ix0 >= 0 && iy0 + 6 <= s.H && ix0 + 6 <= s.W;
    for (int64_t c0 = c_begin; c0 < c_end; c0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>(L, c_end - c0));
      for (int l = 0; l < L; ++l) {
        if (l >= lanes) {
          for (int e = 0; e < 36; ++e) d[e][l] = 0.0f;
          continue;
        }
        const float* plane = x + (n * C + c0 + l) * s.H * s.W;
        if (interior) {
          for (int i = 0; i < 6; ++i) {
            const float* row = plane + (iy0 + i) * s.W + ix0;
            for (int j = 0; j < 6; ++j) d[i * 6 + j][l] = row[j];
          }
        } else {
          for (int i = 0; i < 6; ++i) {
            const int64_t iy = iy0 + i;
            for (int j = 0; j < 6; ++j) {
              const int64_t ix = ix0 + j;
              d[i * 6 + j][l] =
                  (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W) ? plane[iy * s.W + ix] : 0.0f;
            }
          }
        }
      }
      WinoVec dv[36], tmp[36], out[36];
      for (int e = 0; e < 36; ++e) dv[e] = wino_load(d[e]);
      for (int j = 0; j < 6; ++j) input_transform_1d(dv + j, 6, tmp + j, 6);    // B^T d
      for (int i = 0; i < 6; ++i) input_transform_1d(tmp + i * 6, 1, out + i * 6, 1);  // (.) B
      const int64_t r = t - base;
      alignas(64) float lane[kWinoLanes];
      for (int e = 0; e < 36; ++e) {
        float* dst = v + ((e * rpanels + r / mr) * C + c0) * mr + r % mr;
        __builtin_memcpy(lane, &out[e], sizeof(WinoVec));
        for (int l = 0; l < lanes; ++l) dst[l * mr] = lane[l];
      }
    }
  }
}

// Output transform + bias + activation of tiles [t0, t1) and output channels [o_begin, o_end)
// (o_begin a multiple of the vector width) from m (M[xi][t - t0][o], `stride` tiles per xi
// slice), vectors of L output channels, scattered to NCHW.
void winograd_output_tiles(const Conv2dShape& s, const float* m, int64_t t0, int64_t t1,
                           int64_t stride, float* y, const ConvEpilogue& ep, int64_t o_begin,
                           int64_t o_end) {
  const int64_t O = s.O;
  const int64_t tw = (s.OW + 3) / 4, tiles = ((s.OH + 3) / 4) * tw;
  const int L = kWinoLanes;
  alignas(64) float res[16][kWinoLanes];
  const WinoVec lo = WinoVec{} + ep.lo, hi = WinoVec{} + ep.hi;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n = t / tiles, r = t % tiles, ty = r / tw, tx = r % tw;
    const int64_t oy0 = ty * 4, ox0 = tx * 4;
    const int rows = static_cast<int>(std::min<int64_t>(4, s.OH - oy0));
    const int cols = static_cast<int>(std::min<int64_t>(4, s.OW - ox0));
    for (int64_t o0 = o_begin; o0 < o_end; o0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>(L, o_end - o0));
      WinoVec mv[36], tmp[24], out[16];
      for (int e = 0; e < 36; ++e) {
        const float* src = m + (e * stride + (t - t0)) * O + o0;
        if (lanes == L) {
          mv[e] = wino_load(src);
        } else {
          mv[e] = WinoVec{};
          __builtin_memcpy(&mv[e], src, static_cast<size_t>(lanes) * 4);
        }
      }
      for (int j = 0; j < 6; ++j) output_transform_1d(mv + j, 6, tmp + j, 6);     // A^T M: 4x6
      for (int i = 0; i < 4; ++i) output_transform_1d(tmp + i * 6, 1, out + i * 4, 1);  // 4x4
      WinoVec bias = WinoVec{};
      if (ep.bias) {
        if (lanes == L)
          bias = wino_load(ep.bias + o0);
        else
          __builtin_memcpy(&bias, ep.bias + o0, static_cast<size_t>(lanes) * 4);
      }
      for (int e = 0; e < 16; ++e) {
        WinoVec r2 = out[e] + bias;
        if (ep.clamp) {  // comparisons keep a NaN
          r2 = r2 < lo ? lo : r2;
          r2 = r2 > hi ? hi : r2;
        }
        __builtin_memcpy(res[e], &r2, sizeof(WinoVec));
      }
      for (int l = 0; l < lanes; ++l) {
        float* plane = y + (n * O + o0 + l) * s.OH * s.OW;
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) plane[(oy0 + i) * s.OW + ox0 + j] = res[i * 4 + j][l];
      }
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
      float* v = winograd_scratch(36 * (tb_padded * C + tb * O) + u_floats);
      float* m = v + 36 * tb_padded * C;
      float* u = m + 36 * tb * O;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = b * tb, t1 = std::min(T, t0 + tb), rows = t1 - t0;
        const int64_t rpanels = (rows + mr - 1) / mr;
        winograd_input_tiles(s, x, t0, t1, t0, v, rpanels, mr, 0, C);
        winograd_gemms(kernel, v, rows, C, O, packed_w, m, 0, o_panels, u);
        winograd_output_tiles(s, m, t0, t1, rows, y, ep, 0, O);
      }
    };
    if (pool && threads > 1) pool->parallel_for(blocks, 1, run_blocks); else run_blocks(0, blocks);
    return;
  }

  // Few tiles: the whole problem at once, each phase spread over the threads (the products by
  // panels of output channels).
  const int64_t rpanels = (T + mr - 1) / mr;
  Tensor V = Tensor::empty({36 * rpanels * mr * C}, DType::Float32);
  Tensor Mt = Tensor::empty({36 * T * O}, DType::Float32);
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
    winograd_output_tiles(s, m, 0, T, T, y, ep, o0 * L, std::min(O, o1 * L));
  };
  if (pool) pool->parallel_for((O + L - 1) / L, 1, output_tiles); else output_tiles(0, (O + L - 1) / L);
}

}  // namespace
}  // namespace ember::conv
