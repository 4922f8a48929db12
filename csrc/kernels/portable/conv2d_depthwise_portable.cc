// conv2d_depthwise_portable: the direct depthwise kernel (conv2d_depthwise_impl.h) compiled for portable.
#define EMBER_DW_VECTOR_BYTES 16
#include "kernels/conv2d_depthwise_impl.h"

namespace ember::conv {

void conv2d_depthwise_portable(const Conv2dShape& s, const float* x, const float* w, float* y,
                           const ConvEpilogue& ep, ThreadPool* pool) {
  depthwise_run(s, x, w, y, ep, pool);
}

}  // namespace ember::conv
