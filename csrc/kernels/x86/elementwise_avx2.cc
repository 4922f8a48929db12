// fp32 element-wise, reduction, row-wise and layout kernels (kernels/simd/*_impl.h) compiled for avx2, 32-byte vectors.
// Double lanes (twice the vector width) only pass between internal inlined helpers, so GCC's
// note that such vectors "change the ABI" does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#define EMBER_VEC_BYTES 32
#define EMBER_VEC_ISA ::ember::Isa::AVX2
#define EMBER_VEC_SUFFIX "avx2"
#include "kernels/simd/elementwise_impl.h"
#include "kernels/simd/reduce_impl.h"
#include "kernels/simd/rowwise_impl.h"
#include "kernels/simd/layout_impl.h"
