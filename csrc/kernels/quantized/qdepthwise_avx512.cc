// AVX-512 direct depthwise quantized_conv2d: 16 output pixels per vector, stride 1 and 2
// vectorized (stride 2 takes the even bytes of a 32-byte load), other strides gathered.

#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

namespace ember::quantized {
namespace {

void u8s8_dwconv_row_avx512(const DepthwiseRowArgs& a) {
  const Requant16 rq(a.row, a.out_params);
  const __m512i even_mask = _mm512_set1_epi32(0xFFFF);
  for (int64_t ox = 0; ox < a.out_w; ox += 16) {
    const int64_t n = std::min<int64_t>(16, a.out_w - ox);
    __m512i acc = _mm512_set1_epi32(a.row.bias);
    for (int64_t ky = 0; ky < a.kernel_h; ++ky) {
      const uint8_t* row = a.in + ky * a.dilation_h * a.in_stride + ox * a.stride_w;
      for (int64_t kx = 0; kx < a.kernel_w; ++kx) {
        const uint8_t* base = row + kx * a.dilation_w;
        __m512i v;
        if (a.stride_w == 1) {
          v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base)));
        } else if (a.stride_w == 2) {
          v = _mm512_and_si512(_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base))),
                               even_mask);
        } else {
          alignas(64) int32_t tmp[16] = {0};
          for (int64_t i = 0; i < n; ++i) tmp[i] = base[i * a.stride_w];
          v = _mm512_load_si512(tmp);
        }
        const __m512i wv = _mm512_set1_epi32(a.w[ky * a.kernel_w + kx]);
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, wv));
      }
    }
    Requant16::store(a.out + ox, rq.apply(acc), n);
  }
}

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512, "u8s8_dwconv_16_avx512",
                      [](const KernelInit& init) {
                        return make_quantized_conv2d_depthwise(init, "u8s8_dwconv_16_avx512",
                                                               u8s8_dwconv_row_avx512, 0);
                      });

}  // namespace ember::quantized
