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

// G g for one column (3 -> 6); the divisions by 4, 6 and 24 are multiplications by reciprocals.
inline void weight_transform_1d(float g0, float g1, float g2, float* out, int t) {
  constexpr float k4 = 1.0f / 4.0f, k6 = 1.0f / 6.0f, k12 = 1.0f / 12.0f, k24 = 1.0f / 24.0f;
  out[0] = g0 * k4;
  out[t] = -(g0 + g1 + g2) * k6;
  out[2 * t] = -(g0 - g1 + g2) * k6;
  out[3 * t] = g0 * k24 + g1 * k12 + g2 * k6;
  out[4 * t] = g0 * k24 - g1 * k12 + g2 * k6;
  out[5 * t] = g2;
}

// Transforms the weight [O, C, 3, 3] into the 36 matrices U_xi[C, O] = (G g G^T)[xi], written
// straight into the GEMM's packed B layout (panels of NR output channels), one after another.
gemm::PackedMatrix winograd_pack_weights(const gemm::SgemmKernel& kernel, const float* w,
                                         int64_t O, int64_t C) {
  const int64_t nr = kernel.nr;
  const int64_t per = gemm::packed_b_floats(kernel, C, O);
  gemm::PackedMatrix out;
  out.kernel = &kernel;
  out.rows = O;
  out.depth = C;
  out.storage = Tensor::zeros({36 * per}, DType::Float32);  // zero: padding columns of panels
  float* u = out.storage.data<float>();
  // Panel by panel, so each of the 36 outputs is written as one sequential stream.
  for (int64_t o0 = 0; o0 < O; o0 += nr)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t o = o0; o < std::min(O, o0 + nr); ++o) {
        const float* g = w + (o * C + c) * 9;
        float tmp[6][3], v[6][6];
        for (int j = 0; j < 3; ++j) weight_transform_1d(g[j], g[3 + j], g[6 + j], &tmp[0][j], 3);
        for (int i = 0; i < 6; ++i) weight_transform_1d(tmp[i][0], tmp[i][1], tmp[i][2], v[i], 1);
        const int64_t at = ((o0 / nr) * C + c) * nr + (o - o0);  // element (c, o) of a packed B
        for (int xi = 0; xi < 36; ++xi) u[xi * per + at] = v[xi / 6][xi % 6];
      }
  return out;
}

// The blocked path's V and M of one thread (a block is sized for L2, so this stays small).
float* winograd_scratch(int64_t floats) {
  thread_local FloatScratch buffer;
  return buffer.get(floats, "conv2d (Winograd)");
}

// Input transform of tiles [t0, t1) into v: V[xi][t - t0][c], vectors of L channels; `stride`
// tiles per xi slice.
void winograd_input_tiles(const Conv2dShape& s, const float* x, int64_t t0, int64_t t1,
                          float* v, int64_t stride) {
  const int64_t C = s.C;
  const int64_t th = (s.OH + 3) / 4, tw = (s.OW + 3) / 4, tiles = th * tw;
  (void)th;
  const int L = kWinoLanes;
  alignas(64) float d[36][kWinoLanes];
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t n = t / tiles, r = t % tiles, ty = r / tw, tx = r % tw;
    const int64_t iy0 = ty * 4 - s.ph, ix0 = tx * 4 - s.pw;
    const bool interior = iy0 >= 0 && ix0 >= 0 && iy0 + 6 <= s.H && ix0 + 6 <= s.W;
    for (int64_t c0 = 0; c0 < C; c0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>(L, C - c0));
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
      for (int e = 0; e < 36; ++e) {
        float* dst = v + (e * stride + (t - t0)) * C + c0;
        if (lanes == L)
          __builtin_memcpy(dst, &out[e], sizeof(WinoVec));
        else
          __builtin_memcpy(dst, &out[e], static_cast<size_t>(lanes) * 4);
      }
    }
  }
}

// Output transform + bias + activation of tiles [t0, t1) from m (M[xi][t - t0][o], `stride`
// tiles per xi slice), vectors of L output channels, scattered to NCHW.
void winograd_output_tiles(const Conv2dShape& s, const float* m, int64_t t0, int64_t t1,
                           int64_t stride, float* y, const ConvEpilogue& ep) {
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
    for (int64_t o0 = 0; o0 < O; o0 += L) {
      const int lanes = static_cast<int>(std::min<int64_t>(L, O - o0));
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

// Runs the convolution with weights already transformed and packed by winograd_pack_weights.
//
// Tiles are processed in blocks whose transformed input and GEMM output (36 x tiles x (C + O)
// floats) fit in L2: each block is transformed, multiplied (36 GEMMs) and transformed back
// while it is in cache, in per-thread scratch, with blocks spread over the threads. One block
// (few tiles: batch 1 at small spatial sizes) runs each phase across the threads instead. A
// GEMM's result rows do not depend on how many rows it is given, so blocking and threads do not
// change the bits.
void winograd_run(const Conv2dShape& s, const float* x, const gemm::SgemmKernel& kernel,
                  const float* packed_u, float* y, const ConvEpilogue& ep, ThreadPool* pool) {
  const int64_t C = s.C, O = s.O;
  const int64_t tiles = ((s.OH + 3) / 4) * ((s.OW + 3) / 4), T = s.N * tiles;
  const int64_t per = gemm::packed_b_floats(kernel, C, O);
  constexpr int64_t kBlockBytes = 768 << 10;
  const int64_t mr = kernel.mr;
  const int64_t tb = std::max<int64_t>(
      2 * mr, kBlockBytes / (36 * (C + O) * 4) / mr * mr);  // tiles per block
  const int64_t blocks = (T + tb - 1) / tb;
  const int threads = pool ? pool->num_threads() : 1;

  auto gemms = [&](const float* v, float* m, int64_t rows, int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e)
      gemm::sgemm(kernel, rows, O, C, gemm::Operand::raw(v + e * rows * C, C, 1),
                  gemm::Operand::prepacked(packed_u + e * per), m + e * rows * O, O,
                  gemm::Epilogue{}, nullptr);
  };

  if (blocks >= 2 * threads || (blocks > 1 && threads == 1)) {
    auto run_blocks = [&](int64_t b0, int64_t b1) {
      float* v = winograd_scratch(36 * tb * (C + O));
      float* m = v + 36 * tb * C;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = b * tb, t1 = std::min(T, t0 + tb), rows = t1 - t0;
        winograd_input_tiles(s, x, t0, t1, v, rows);
        gemms(v, m, rows, 0, 36);
        winograd_output_tiles(s, m, t0, t1, rows, y, ep);
      }
    };
    if (pool && threads > 1) pool->parallel_for(blocks, 1, run_blocks); else run_blocks(0, blocks);
    return;
  }

  // Few tiles: the whole problem at once, each phase spread over the threads.
  Tensor V = Tensor::empty({36 * T * C}, DType::Float32);
  Tensor Mt = Tensor::empty({36 * T * O}, DType::Float32);
  float* v = V.data<float>();
  float* m = Mt.data<float>();
  auto input_tiles = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {  // one tile per call: writes at its own offset
      float* base = v + t * C;            // V[xi][t][c] with T tiles per slice
      winograd_input_tiles(s, x, t, t + 1, base, T);
    }
  };
  if (pool) pool->parallel_for(T, 4, input_tiles); else input_tiles(0, T);
  auto all_gemms = [&](int64_t e0, int64_t e1) { gemms(v, m, T, e0, e1); };
  if (pool) pool->parallel_for(36, 1, all_gemms); else all_gemms(0, 36);
  auto output_tiles = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) winograd_output_tiles(s, m + t * O, t, t + 1, T, y, ep);
  };
  if (pool) pool->parallel_for(T, 4, output_tiles); else output_tiles(0, T);
}

}  // namespace
}  // namespace ember::conv
