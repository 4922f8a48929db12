// Element-wise and reduction fp32 kernels (kernels/simd/elementwise_impl.h, reduce_impl.h) compiled for avx2, 32-byte vectors.
#define EMBER_VEC_BYTES 32
#define EMBER_VEC_ISA ::ember::Isa::AVX2
#define EMBER_VEC_SUFFIX "avx2"
#include "kernels/simd/elementwise_impl.h"
#include "kernels/simd/reduce_impl.h"
