// Element-wise and reduction fp32 kernels (kernels/simd/elementwise_impl.h, reduce_impl.h) compiled for portable, 16-byte vectors.
#define EMBER_VEC_BYTES 16
#define EMBER_VEC_ISA ::ember::Isa::Portable
#define EMBER_VEC_SUFFIX "portable"
#include "kernels/simd/elementwise_impl.h"
#include "kernels/simd/reduce_impl.h"
