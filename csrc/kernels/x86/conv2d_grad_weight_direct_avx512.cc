// conv2d_grad_weight_direct_avx512: the direct stride-1 weight gradient
// (conv2d_grad_weight_direct_impl.h) compiled for avx512.
#define EMBER_VEC_BYTES 64
#include "kernels/conv2d_grad_weight_direct_impl.h"

namespace ember::conv {

void conv2d_grad_weight_direct_avx512(const Conv2dShape& s, const float* dy, const float* x,
                                  float* dw, ThreadPool* pool) {
  grad_weight_direct_run(s, dy, x, dw, pool);
}

}  // namespace ember::conv
