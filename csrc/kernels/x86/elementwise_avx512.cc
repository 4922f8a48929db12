// Element-wise and reduction fp32 kernels (kernels/simd/elementwise_impl.h, reduce_impl.h) compiled for avx512, 64-byte vectors.
#define EMBER_VEC_BYTES 64
#define EMBER_VEC_ISA ::ember::Isa::AVX512
#define EMBER_VEC_SUFFIX "avx512"
#include "kernels/simd/elementwise_impl.h"
#include "kernels/simd/reduce_impl.h"
