// AVX-512 direct depthwise quantized_conv2d: 32 output pixels per step, two taps per vpmaddwd
// (u8 codes and s8 weights as int16 pairs; the products and their pair sums fit in int32
// exactly). Stride 1 loads 32 bytes, stride 2 takes the even bytes of 64; other strides gather.
#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

#include <algorithm>

namespace ember::quantized {
namespace {

// 32 consecutive output pixels of one tap as int16 (stride 1, 2, or gathered).
inline __m512i load_tap(const uint8_t* base, int64_t stride, int64_t n) {
  if (stride == 1) return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base)));
  if (stride == 2) return _mm512_and_si512(_mm512_loadu_si512(base), _mm512_set1_epi16(0x00FF));
  alignas(64) int16_t tmp[32] = {0};
  for (int64_t i = 0; i < n; ++i) tmp[i] = base[i * stride];
  return _mm512_load_si512(tmp);
}

void u8s8_dwconv_row_avx512(const DepthwiseRowArgs& a) {
  const Requant16 rq(a.row, a.out_params);
  const int64_t taps = a.kernel_h * a.kernel_w;
  const __m512i lo_index = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i hi_index = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  for (int64_t ox = 0; ox < a.out_w; ox += 32) {
    const int64_t n = std::min<int64_t>(32, a.out_w - ox);
    const uint8_t* row = a.in + ox * a.stride_w;
    __m512i acc_lo = _mm512_setzero_si512(), acc_hi = _mm512_setzero_si512();
    for (int64_t t = 0; t < taps; t += 2) {
      const __m512i x0 = load_tap(row + a.tap_offsets[t], a.stride_w, n);
      __m512i x1 = x0;
      int32_t w;
      if (t + 1 < taps) {
        x1 = load_tap(row + a.tap_offsets[t + 1], a.stride_w, n);
        w = static_cast<int32_t>((static_cast<uint32_t>(a.w[t + 1]) << 16) | (static_cast<uint32_t>(a.w[t]) & 0xFFFF));
      } else {
        w = static_cast<int32_t>(static_cast<uint32_t>(a.w[t]) & 0xFFFF);
      }
      const __m512i wv = _mm512_set1_epi32(w);
      acc_lo = _mm512_add_epi32(acc_lo, _mm512_madd_epi16(_mm512_unpacklo_epi16(x0, x1), wv));
      acc_hi = _mm512_add_epi32(acc_hi, _mm512_madd_epi16(_mm512_unpackhi_epi16(x0, x1), wv));
    }
    // acc_lo holds pixels 8L..8L+3 of each 128-bit lane L, acc_hi 8L+4..8L+7: restore the order.
    const __m512i bias = _mm512_set1_epi32(a.row.bias);
    const __m512i first = _mm512_add_epi32(_mm512_permutex2var_epi64(acc_lo, lo_index, acc_hi), bias);
    const __m512i second = _mm512_add_epi32(_mm512_permutex2var_epi64(acc_lo, hi_index, acc_hi), bias);
    Requant16::store(a.out + ox, rq.apply(first), n);
    if (n > 16) Requant16::store(a.out + ox + 16, rq.apply(second), n - 16);
  }
}

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512, "u8s8_dwconv_32_avx512",
                      [](const KernelInit& init) {
                        return make_quantized_conv2d_depthwise(init, "u8s8_dwconv_32_avx512", u8s8_dwconv_row_avx512);
                      });

}  // namespace ember::quantized
