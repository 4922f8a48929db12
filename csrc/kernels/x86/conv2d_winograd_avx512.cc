// conv2d_winograd_avx512: Winograd F(4x4, 3x3) (conv2d_winograd_impl.h) compiled for avx512.
#define EMBER_WINO_VECTOR_BYTES 64
#include "kernels/conv2d_winograd_impl.h"

namespace ember::conv {

void conv2d_winograd_avx512(const Conv2dShape& s, const float* x, const gemm::SgemmKernel& kernel,
                            const float* packed_w, float* y, const ConvEpilogue& ep,
                            ThreadPool* pool) {
  winograd_run(s, x, kernel, packed_w, y, ep, pool);
}

}  // namespace ember::conv
