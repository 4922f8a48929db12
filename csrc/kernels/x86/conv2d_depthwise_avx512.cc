// conv2d_depthwise_avx512: the direct depthwise kernel (conv2d_depthwise_impl.h) compiled for avx512.
#define EMBER_DW_VECTOR_BYTES 64
// Contract a * b + c into FMA in this file: the kernel means multiply-add.
#pragma GCC optimize("fp-contract=fast")
#include "kernels/conv2d_depthwise_impl.h"

namespace ember::conv {

void conv2d_depthwise_avx512(const Conv2dShape& s, const float* x, const float* w, float* y,
                           const ConvEpilogue& ep, ThreadPool* pool) {
  depthwise_run(s, x, w, y, ep, pool);
}

}  // namespace ember::conv
