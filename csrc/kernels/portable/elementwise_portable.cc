// elementwise_portable: the fp32 element-wise loops (elementwise_impl.h) vectorized for portable.
#include "kernels/elementwise_impl.h"

namespace ember::elementwise {

const Table& elementwise_portable() {
  static const Table table{&binary, &unary, &affine};
  return table;
}

}  // namespace ember::elementwise
