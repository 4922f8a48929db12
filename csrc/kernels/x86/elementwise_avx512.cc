// elementwise_avx512: the fp32 element-wise loops (elementwise_impl.h) vectorized for avx512.
#include "kernels/elementwise_impl.h"

namespace ember::elementwise {

const Table& elementwise_avx512() {
  static const Table table{&binary, &unary, &affine};
  return table;
}

}  // namespace ember::elementwise
