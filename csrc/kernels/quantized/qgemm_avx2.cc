// AVX2 quantized kernels. u8 x s8 products are formed in 16-bit lanes with vpmaddwd (exact;
// vpmaddubsw would saturate): quantized_conv2d as GEMM (4 output channels x 8 pixels per tile,
// weights pre-packed to int16), direct depthwise (8 pixels per vector) and quantized_linear.

#include <algorithm>

#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

namespace ember::quantized {
namespace {

void u8s8_conv_gemm_4x8_avx2(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride,
                             const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                             int64_t out_stride, int64_t mr, int64_t nr) {
  constexpr int MR = 4;
  const int16_t* pw = static_cast<const int16_t*>(w);
  // acc[r][h]: pixels 4h..4h+3, two partial sums (k0k1, k2k3) per pixel.
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t q = 0; q < k4; ++q) {
    const uint8_t* c = col + q * col_stride;
    const __m256i x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
    const __m256i x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16)));
    const int16_t* wq = pw + q * MR * 4;
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i wr = _mm256_set1_epi64x(load_i64(wq + r * 4));
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x0, wr));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x1, wr));
    }
  }
  for (int r = 0; r < MR; ++r) {
    if (r >= mr) break;
    // [p0 p1 p4 p5 | p2 p3 p6 p7] -> pixel order.
    __m256i sum = _mm256_hadd_epi32(acc[r][0], acc[r][1]);
    sum = _mm256_permute4x64_epi64(sum, 0xD8);
    sum = _mm256_add_epi32(sum, _mm256_set1_epi32(rows[r].bias));
    const Requant8 rq(rows[r], out_params);
    Requant8::store(out + r * out_stride, rq.apply(sum), nr);
  }
}

void u8s8_dwconv_row_avx2(const DepthwiseRowArgs& a) {
  const Requant8 rq(a.row, a.out_params);
  const __m256i even_mask = _mm256_set1_epi32(0xFFFF);
  for (int64_t ox = 0; ox < a.out_w; ox += 8) {
    const int64_t n = std::min<int64_t>(8, a.out_w - ox);
    __m256i acc = _mm256_set1_epi32(a.row.bias);
    const uint8_t* row = a.in + ox * a.stride_w;
    for (int64_t t = 0; t < a.kernel_h * a.kernel_w; ++t) {
      {
        const uint8_t* base = row + a.tap_offsets[t];
        __m256i v;
        if (a.stride_w == 1) {
          v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(base)));
        } else if (a.stride_w == 2) {
          v = _mm256_and_si256(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base))),
                               even_mask);
        } else {
          alignas(32) int32_t tmp[8] = {0};
          for (int64_t i = 0; i < n; ++i) tmp[i] = base[i * a.stride_w];
          v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
        }
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, _mm256_set1_epi32(a.w[t])));
      }
    }
    Requant8::store(a.out + ox, rq.apply(acc), n);
  }
}

void u8s8_dot_avx2(const uint8_t* x, const int8_t* w, int64_t k, int64_t rows, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* wr = w + r * k;
    __m256i acc = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
      const __m256i xv = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + i)));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    int32_t total = _mm_cvtsi128_si32(s);
    for (; i < k; ++i) total += static_cast<int32_t>(x[i]) * wr[i];
    out[r] = total;
  }
}

const QGemmConfig kConvGemm = {"u8s8_conv_gemm_4x8_avx2", 4, 8, WeightLayout::Int16Quads, 0,
                               u8s8_conv_gemm_4x8_avx2};

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX2, "u8s8_conv_gemm_4x8_avx2",
                      [](const KernelInit& init) { return make_quantized_conv2d_gemm(init, kConvGemm); });
EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX2, "u8s8_dwconv_8_avx2",
                      [](const KernelInit& init) {
                        return make_quantized_conv2d_depthwise(init, "u8s8_dwconv_8_avx2", u8s8_dwconv_row_avx2);
                      });
EMBER_REGISTER_KERNEL(quantized_linear, DType::UInt8, Isa::AVX2, "u8s8_linear_dot_avx2",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_dot_avx2", u8s8_dot_avx2);
                      });
EMBER_REGISTER_KERNEL(quantized_linear_float, DType::UInt8, Isa::AVX2, "u8s8_linear_float_dot_avx2",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_float_dot_avx2", u8s8_dot_avx2, true);
                      });

}  // namespace ember::quantized
