// sgemm_14x32_avx512: the AVX-512 GEMM microkernel. A 14 x 32 tile of C lives in 28 zmm
// accumulators; each k step loads two vectors of B and broadcasts 14 scalars of A (as
// embedded-broadcast memory operands), 28 FMAs for 16 loads, leaving 3 of 32 registers free.
// On cores that run 512-bit FMAs as two 256-bit halves (AMD Zen 4) one zmm FMA per cycle is the
// peak, so 28 independent accumulators hide the 4-cycle FMA latency many times over.
#include <immintrin.h>

#include "kernels/gemm.h"

// GCC 12 warns inside its own masked-load intrinsics (an "undefined" pass-through operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ember::gemm {
namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;

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
  int64_t k = 0;
  if constexpr (MR <= 3) {
    // Few rows means few accumulators: a second set for odd k steps keeps enough FMAs in
    // flight to cover the FMA latency (batch-1 linear layers live here).
    __m512 odd0[MR], odd1[MR];
    for (int i = 0; i < MR; ++i) {
      odd0[i] = _mm512_setzero_ps();
      odd1[i] = _mm512_setzero_ps();
    }
    for (; k + 1 < kc; k += 2) {
      const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
      const __m512 b2 = _mm512_loadu_ps(b + ldb), b3 = _mm512_loadu_ps(b + ldb + 16);
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]), aj = _mm512_set1_ps(a[kMR + i]);
        acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
        acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        odd0[i] = _mm512_fmadd_ps(aj, b2, odd0[i]);
        odd1[i] = _mm512_fmadd_ps(aj, b3, odd1[i]);
      }
      a += 2 * kMR;
      b += 2 * ldb;
    }
    for (int i = 0; i < MR; ++i) {
      acc0[i] = _mm512_add_ps(acc0[i], odd0[i]);
      acc1[i] = _mm512_add_ps(acc1[i], odd1[i]);
    }
  }
#pragma GCC unroll 2
  for (; k < kc; ++k) {
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

template <int... R>
constexpr SgemmKernel make_kernel(std::integer_sequence<int, R...>) {
  return SgemmKernel{"sgemm_14x32_avx512", Isa::AVX512, kMR, kNR,
                     /*mc=*/168, /*kc=*/256, /*nc=*/1024,
                     {&sgemm_ukernel_avx512<R + 1>...}};
}

}  // namespace

const SgemmKernel& sgemm_14x32_avx512() {
  static const SgemmKernel kernel = make_kernel(std::make_integer_sequence<int, kMR>());
  return kernel;
}

}  // namespace ember::gemm
