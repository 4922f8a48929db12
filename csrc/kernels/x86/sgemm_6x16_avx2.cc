// sgemm_6x16_avx2: the AVX2 + FMA GEMM microkernel. A 6 x 16 tile of C lives in 12 ymm
// accumulators; each k step loads two vectors of B and broadcasts 6 scalars of A (12 FMAs,
// 15 of 16 registers in use), enough independent chains for two FMA pipes of latency 4-5.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"

namespace ember::gemm {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

template <int MR>
void sgemm_ukernel_avx2(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                        int64_t n, const UkernelParams& p) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm256_setzero_ps();
    acc1[i] = _mm256_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += kMR;
    b += ldb;
  }

  if (n >= kNR) {
    __m256 cb0 = _mm256_setzero_ps(), cb1 = _mm256_setzero_ps();
    const bool col_bias = p.last && p.col_bias;
    if (col_bias) {
      cb0 = _mm256_loadu_ps(p.col_bias);
      cb1 = _mm256_loadu_ps(p.col_bias + 8);
    }
    const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      __m256 v0 = acc0[i], v1 = acc1[i];
      if (p.accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
      }
      if (p.last) {
        if (p.row_bias) {
          const __m256 rb = _mm256_set1_ps(p.row_bias[i]);
          v0 = _mm256_add_ps(v0, rb);
          v1 = _mm256_add_ps(v1, rb);
        }
        if (col_bias) {
          v0 = _mm256_add_ps(v0, cb0);
          v1 = _mm256_add_ps(v1, cb1);
        }
        if (p.clamp) {  // max(lo, v): a NaN in v is kept (maxps returns its second operand)
          v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, v0));
          v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, v1));
        }
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    }
    return;
  }
  // Right edge (n < 16): finish in scalar code on a spilled tile.
  alignas(32) float tile[MR][kNR];
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tile[i], acc0[i]);
    _mm256_store_ps(tile[i] + 8, acc1[i]);
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) {
      float v = tile[i][j];
      if (p.accumulate) v += ci[j];
      if (p.last) {
        if (p.row_bias) v += p.row_bias[i];
        if (p.col_bias) v += p.col_bias[j];
        if (p.clamp && !(v != v)) v = std::min(p.hi, std::max(p.lo, v));
      }
      ci[j] = v;
    }
  }
}

template <int... R>
constexpr SgemmKernel make_kernel(std::integer_sequence<int, R...>) {
  return SgemmKernel{"sgemm_6x16_avx2", Isa::AVX2, kMR, kNR,
                     /*mc=*/144, /*kc=*/256, /*nc=*/1024,
                     {&sgemm_ukernel_avx2<R + 1>...}};
}

}  // namespace

const SgemmKernel& sgemm_6x16_avx2() {
  static const SgemmKernel kernel = make_kernel(std::make_integer_sequence<int, kMR>());
  return kernel;
}

}  // namespace ember::gemm
