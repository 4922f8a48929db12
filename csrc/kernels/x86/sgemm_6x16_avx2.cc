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
static_assert(kMR <= kMaxMR && kNR <= kMaxNR, "tile larger than the driver's buffers");

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

  // Partial tiles (n < 16) use masked loads and stores (lanes j < n), so the accumulators never
  // leave registers.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n, 8))), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(
      _mm256_set1_epi32(static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(n - 8, 8)))), lane);
  const bool full = n >= kNR;
  __m256 cb0 = _mm256_setzero_ps(), cb1 = _mm256_setzero_ps();
  const bool col_bias = p.last && p.col_bias;
  if (col_bias) {
    cb0 = _mm256_maskload_ps(p.col_bias, m0);
    cb1 = _mm256_maskload_ps(p.col_bias + 8, m1);
  }
  const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m256 v0 = acc0[i], v1 = acc1[i];
    if (p.accumulate) {
      v0 = _mm256_add_ps(v0, full ? _mm256_loadu_ps(ci) : _mm256_maskload_ps(ci, m0));
      v1 = _mm256_add_ps(v1, full ? _mm256_loadu_ps(ci + 8) : _mm256_maskload_ps(ci + 8, m1));
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
    if (full) {
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    } else {
      _mm256_maskstore_ps(ci, m0, v0);
      _mm256_maskstore_ps(ci + 8, m1, v1);
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
