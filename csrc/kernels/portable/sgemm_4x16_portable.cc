// sgemm_4x16_portable: the GEMM microkernel in plain C++ for any CPU (Isa::Portable). The
// 4 x 16 accumulator tile is a local array the compiler keeps in vector registers of the
// baseline ISA (SSE2 on x86-64, NEON on aarch64); no intrinsics.
#include <algorithm>
#include <utility>

#include "kernels/gemm.h"

namespace ember::gemm {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 16;
static_assert(kMR <= kMaxMR && kNR <= kMaxNR, "tile larger than the driver's buffers");

template <int MR>
void sgemm_ukernel_portable(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                            int64_t n, const UkernelParams& p) {
  float acc[MR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
#pragma GCC unroll 16
      for (int j = 0; j < kNR; ++j) acc[i][j] += ai * b[j];
    }
    a += kMR;
    b += ldb;
  }
  const int64_t nn = std::min<int64_t>(n, kNR);
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    for (int64_t j = 0; j < nn; ++j) {
      float v = acc[i][j];
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
  return SgemmKernel{"sgemm_4x16_portable", Isa::Portable, kMR, kNR,
                     /*mc=*/128, /*kc=*/256, /*nc=*/1024,
                     {&sgemm_ukernel_portable<R + 1>...}};
}

}  // namespace

const SgemmKernel& sgemm_4x16_portable() {
  static const SgemmKernel kernel = make_kernel(std::make_integer_sequence<int, kMR>());
  return kernel;
}

}  // namespace ember::gemm
