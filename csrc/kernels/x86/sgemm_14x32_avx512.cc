// sgemm_14x32_avx512: the AVX-512 GEMM microkernel. A 14 x 32 tile of C lives in 28 zmm
// accumulators; each k step loads two vectors of B and broadcasts 14 scalars of A (as
// embedded-broadcast memory operands), 28 FMAs for 16 loads, leaving 3 of 32 registers free.
// On cores that run 512-bit FMAs as two 256-bit halves (AMD Zen 4) one zmm FMA per cycle is the
// peak, so 28 independent accumulators hide the 4-cycle FMA latency many times over.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"

// GCC 12 warns inside its own masked-load intrinsics (an "undefined" pass-through operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ember::gemm {
namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;
static_assert(kMR <= kMaxMR && kNR <= kMaxNR, "tile larger than the driver's buffers");

inline __mmask16 mask_for(int64_t n) {
  if (n >= 16) return static_cast<__mmask16>(0xFFFF);
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1u);
}

template <int MR>
void sgemm_ukernel_avx512(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                          int64_t n, const UkernelParams& p) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm512_setzero_ps();
    acc1[i] = _mm512_setzero_ps();
  }
  // The C tile's lines, requested now so that they have arrived when the k loop ends (the
  // stores, and the loads of an accumulating call, otherwise wait on them). 1 thread,
  // alternating processes: 1024 x 1024 x 256 110 -> 122 GFLOP/s, 1024^3 103 -> 110.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
  // One accumulator chain per output in k order for every row count (no split chains for few
  // rows): a row's sum then does not depend on how many rows share its tile, so a batch row gets
  // the same bits alone or in any batch.
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += kMR;
    b += ldb;
  }

  const __mmask16 m0 = mask_for(n), m1 = mask_for(n - 16);
  __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
  const bool col_bias = p.last && p.col_bias;
  if (col_bias) {
    cb0 = _mm512_maskz_loadu_ps(m0, p.col_bias);
    cb1 = _mm512_maskz_loadu_ps(m1, p.col_bias + 16);
  }
  const __m512 lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 v0 = acc0[i], v1 = acc1[i];
    if (p.accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    if (p.last) {
      if (p.row_bias) {
        const __m512 rb = _mm512_set1_ps(p.row_bias[i]);
        v0 = _mm512_add_ps(v0, rb);
        v1 = _mm512_add_ps(v1, rb);
      }
      if (col_bias) {
        v0 = _mm512_add_ps(v0, cb0);
        v1 = _mm512_add_ps(v1, cb1);
      }
      if (p.clamp) {  // max(lo, v): a NaN in v is kept (maxps returns its second operand)
        v0 = _mm512_min_ps(hi, _mm512_max_ps(lo, v0));
        v1 = _mm512_min_ps(hi, _mm512_max_ps(lo, v1));
      }
    }
    if (n >= kNR) {
      _mm512_storeu_ps(ci, v0);
      _mm512_storeu_ps(ci + 16, v1);
    } else {
      _mm512_mask_storeu_ps(ci, m0, v0);
      _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
  }
}

// y = epilogue(y) over columns [n0, n1).
void gemv_epilogue(int64_t n0, int64_t n1, float* y, const UkernelParams& p) {
  const __m512 lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
  const __m512 rb = _mm512_set1_ps(p.row_bias ? p.row_bias[0] : 0.0f);
  for (int64_t j = n0; j < n1; j += 16) {
    const __mmask16 m = mask_for(n1 - j);
    __m512 v = _mm512_maskz_loadu_ps(m, y + j);
    if (p.row_bias) v = _mm512_add_ps(v, rb);
    if (p.col_bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, p.col_bias + j));
    if (p.clamp) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    _mm512_mask_storeu_ps(y + j, m, v);
  }
}

// Row-major B: eight rows at a time stream in order (eight sequential read streams); y stays in
// L1 and is read and written once per eight rows. Sums run in k order, restarting per K block
// (see GemvFn): y holds the block's sums, the earlier blocks' total waits in `prev`. Columns go
// in blocks of 1024 so that y and prev stay in L1 together.
void sgemv_rows_columns(int64_t K, int64_t n0, int64_t n1, const float* a, const float* B, int64_t ldb,
                        float* y, int64_t kb, float* prev) {
  for (int64_t k0 = 0; k0 < K; k0 += kb) {
    const int64_t k1 = std::min<int64_t>(K, k0 + kb);
    for (int64_t j = n0; j < n1; j += 16) {
      const __mmask16 m = mask_for(n1 - j);
      if (k0 > 0) _mm512_mask_storeu_ps(prev + j, m, _mm512_maskz_loadu_ps(m, y + j));
      _mm512_mask_storeu_ps(y + j, m, _mm512_setzero_ps());
    }
    int64_t k = k0;
    for (; k + 8 <= k1; k += 8) {
      __m512 av[8];
      __m256 ah[8];
      const float* rows[8];
      for (int r = 0; r < 8; ++r) {
        av[r] = _mm512_set1_ps(a[k + r]);
        ah[r] = _mm256_set1_ps(a[k + r]);
        rows[r] = B + (k + r) * ldb;
      }
      // 16 columns as two 256-bit halves: on Zen 4, which splits 512-bit ops in two anyway, a
      // zmm load of a row that starts mid-line (a 4000-byte row stride puts every other row
      // 32 bytes off) crosses cache lines, and these row streams come from L3 at its bandwidth
      // limit: 1 x 1000 x 512 at 1 thread 27.7 -> 25.4 us. Same order of sums per output.
      int64_t j = n0;
      for (; j + 16 <= n1; j += 16) {
        __m256 t0 = _mm256_loadu_ps(y + j), t1 = _mm256_loadu_ps(y + j + 8);
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
          t0 = _mm256_fmadd_ps(ah[r], _mm256_loadu_ps(rows[r] + j), t0);
          t1 = _mm256_fmadd_ps(ah[r], _mm256_loadu_ps(rows[r] + j + 8), t1);
        }
        _mm256_storeu_ps(y + j, t0);
        _mm256_storeu_ps(y + j + 8, t1);
      }
      if (j < n1) {
        const __mmask16 m = mask_for(n1 - j);
        __m512 t = _mm512_maskz_loadu_ps(m, y + j);
        for (int r = 0; r < 8; ++r) t = _mm512_fmadd_ps(av[r], _mm512_maskz_loadu_ps(m, rows[r] + j), t);
        _mm512_mask_storeu_ps(y + j, m, t);
      }
    }
    for (; k < k1; ++k) {
      const __m512 ak = _mm512_set1_ps(a[k]);
      const float* row = B + k * ldb;
      for (int64_t j = n0; j < n1; j += 16) {
        const __mmask16 m = mask_for(n1 - j);
        _mm512_mask_storeu_ps(
            y + j, m, _mm512_fmadd_ps(ak, _mm512_maskz_loadu_ps(m, row + j), _mm512_maskz_loadu_ps(m, y + j)));
      }
    }
    if (k0 > 0)  // this block's sums, then the earlier blocks' total (the microkernel's order)
      for (int64_t j = n0; j < n1; j += 16) {
        const __mmask16 m = mask_for(n1 - j);
        _mm512_mask_storeu_ps(y + j, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + j), _mm512_maskz_loadu_ps(m, prev + j)));
      }
  }
}

void sgemv_rows_avx512(int64_t K, int64_t n0, int64_t n1, const float* a, const float* B,
                       int64_t ldb, float* y, const UkernelParams& p) {
  constexpr int64_t kCols = 1024;
  const int64_t kb = p.k_block > 0 ? p.k_block : K;
  alignas(64) float prev[kCols];
  for (int64_t c0 = n0; c0 < n1; c0 += kCols)
    sgemv_rows_columns(K, c0, std::min<int64_t>(n1, c0 + kCols), a, B, ldb, y, kb, prev - c0);
  gemv_epilogue(n0, n1, y, p);
}

// Pre-packed B ([N / 32][K][32]): four panels at a time, so eight independent accumulator
// chains and four sequential read streams. Sums run in k order, restarting per K block (see
// GemvFn).
void sgemv_packed_avx512(int64_t K, int64_t n0, int64_t n1, const float* a, const float* B,
                         int64_t, float* y, const UkernelParams& p) {
  const int64_t kb = p.k_block > 0 ? p.k_block : K;
  for (int64_t j0 = n0; j0 < n1; j0 += 4 * kNR) {
    const int64_t first = j0 / kNR;
    const int panels = static_cast<int>(std::min<int64_t>(4, (n1 - j0 + kNR - 1) / kNR));
    __m512 total[4][2];
    const float* src[4];
    for (int q = 0; q < 4; ++q) src[q] = B + (first + std::min(q, panels - 1)) * K * kNR;
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t k1 = std::min<int64_t>(K, k0 + kb);
      __m512 acc[4][2];
      for (int q = 0; q < 4; ++q) acc[q][0] = acc[q][1] = _mm512_setzero_ps();
      for (int64_t k = k0; k < k1; ++k) {
        const __m512 ak = _mm512_set1_ps(a[k]);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          acc[q][0] = _mm512_fmadd_ps(ak, _mm512_loadu_ps(src[q] + k * kNR), acc[q][0]);
          acc[q][1] = _mm512_fmadd_ps(ak, _mm512_loadu_ps(src[q] + k * kNR + 16), acc[q][1]);
        }
      }
      for (int q = 0; q < 4; ++q)
        for (int h = 0; h < 2; ++h) total[q][h] = k0 == 0 ? acc[q][h] : _mm512_add_ps(acc[q][h], total[q][h]);
    }
    for (int q = 0; q < panels; ++q) {
      const int64_t j = j0 + q * kNR;
      _mm512_mask_storeu_ps(y + j, mask_for(n1 - j), total[q][0]);
      _mm512_mask_storeu_ps(y + j + 16, mask_for(n1 - j - 16), total[q][1]);
    }
  }
  gemv_epilogue(n0, n1, y, p);
}

// The transposed products' store (SgemmKernel::store_transposed): each 16 columns of the tile
// transposed as a 16 x 16 block in registers (unpacks, then 128-bit lane shuffles), each column
// one masked store of mm floats. The scalar loop moved 448 floats one by one per 14 x 32
// tile, about 30 k steps' worth (prefer_transposed_conv).
void store_transposed_avx512(const float* tile, int64_t ld_tile, int64_t mm, int64_t nn, float* c,
                             int64_t ldc) {
  const __mmask16 rows = mask_for(mm);
  for (int64_t j0 = 0; j0 < nn; j0 += 16) {
    const __mmask16 cols = mask_for(nn - j0);
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      r[i] = i < mm ? _mm512_maskz_loadu_ps(cols, tile + i * ld_tile + j0) : _mm512_setzero_ps();
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {  // rows 2k, 2k + 1: columns 4L, 4L + 1 | 4L + 2, 4L + 3 of lane L
      t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
      t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {  // u[4k + m], lane L: column 4L + m of rows 4k .. 4k + 3
      const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
      const __m512d c2 = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
      u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c2));
      u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c2));
      u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) {
      const __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
      const __m512 w0 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
      const __m512 col[4] = {_mm512_shuffle_f32x4(v0, w0, 0x88), _mm512_shuffle_f32x4(v1, w1, 0x88),
                             _mm512_shuffle_f32x4(v0, w0, 0xDD), _mm512_shuffle_f32x4(v1, w1, 0xDD)};
      for (int l = 0; l < 4; ++l) {  // column 4 l + m
        const int64_t j = j0 + 4 * l + m;
        if (j < nn) _mm512_mask_storeu_ps(c + j * ldc, rows, col[l]);
      }
    }
  }
}

template <int... R>
constexpr SgemmKernel make_kernel(std::integer_sequence<int, R...>) {
  return SgemmKernel{"sgemm_14x32_avx512", Isa::AVX512, kMR, kNR,
                     /*mc=*/168, /*kc=*/256, /*nc=*/1024,
                     {&sgemm_ukernel_avx512<R + 1>...}, &sgemv_rows_avx512, &sgemv_packed_avx512,
                     &store_transposed_avx512};
}

}  // namespace

const SgemmKernel& sgemm_14x32_avx512() {
  static const SgemmKernel kernel = make_kernel(std::make_integer_sequence<int, kMR>());
  return kernel;
}

}  // namespace ember::gemm
