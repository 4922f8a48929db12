// AVX-512 VNNI direct depthwise quantized_conv2d: 64 output pixels per step, four taps per
// vpdpbusd (the taps' u8 codes interleaved per pixel, the four s8 weights broadcast).
// Stride 1 loads 64 bytes, stride 2 keeps the even bytes of 128 (vpmovwb); others gather.
#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

#include <algorithm>

namespace ember::quantized {
namespace {

// Codes of 64 consecutive output pixels for one tap. STRIDE 0 = any stride (gathered).
template <int STRIDE>
inline __m512i load_tap64(const uint8_t* base, int64_t stride, int64_t n) {
  if constexpr (STRIDE == 1) {
    return _mm512_loadu_si512(base);
  } else if constexpr (STRIDE == 2) {
    const __m256i lo = _mm512_cvtepi16_epi8(_mm512_loadu_si512(base));
    const __m256i hi = _mm512_cvtepi16_epi8(_mm512_loadu_si512(base + 64));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  } else {
    alignas(64) uint8_t tmp[64] = {0};
    for (int64_t i = 0; i < n; ++i) tmp[i] = base[i * stride];
    return _mm512_load_si512(tmp);
  }
}

template <int STRIDE>
void dwconv_row(const DepthwiseRowArgs& a) {
  const Requant16 rq(a.row, a.out_params);
  const int64_t taps = a.kernel_h * a.kernel_w;
  const __m512i bias = _mm512_set1_epi32(a.row.bias);
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t ox = 0; ox < a.out_w; ox += 64) {
    const int64_t n = std::min<int64_t>(64, a.out_w - ox);
    const uint8_t* row = a.in + ox * a.stride_w;
    __m512i acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
    for (int64_t t = 0; t < taps; t += 4) {
      // Four taps (zero codes and weights past the last one).
      const __m512i v0 = load_tap64<STRIDE>(row + a.tap_offsets[t], a.stride_w, n);
      const __m512i v1 = t + 1 < taps ? load_tap64<STRIDE>(row + a.tap_offsets[t + 1], a.stride_w, n) : zero;
      const __m512i v2 = t + 2 < taps ? load_tap64<STRIDE>(row + a.tap_offsets[t + 2], a.stride_w, n) : zero;
      const __m512i v3 = t + 3 < taps ? load_tap64<STRIDE>(row + a.tap_offsets[t + 3], a.stride_w, n) : zero;
      uint32_t quad = static_cast<uint8_t>(a.w[t]);
      if (t + 1 < taps) quad |= static_cast<uint32_t>(static_cast<uint8_t>(a.w[t + 1])) << 8;
      if (t + 2 < taps) quad |= static_cast<uint32_t>(static_cast<uint8_t>(a.w[t + 2])) << 16;
      if (t + 3 < taps) quad |= static_cast<uint32_t>(static_cast<uint8_t>(a.w[t + 3])) << 24;
      const __m512i w = _mm512_set1_epi32(static_cast<int32_t>(quad));
      const __m512i t01_lo = _mm512_unpacklo_epi8(v0, v1), t01_hi = _mm512_unpackhi_epi8(v0, v1);
      const __m512i t23_lo = _mm512_unpacklo_epi8(v2, v3), t23_hi = _mm512_unpackhi_epi8(v2, v3);
      // Lane L of acc<k> gathers pixels 16L + 4k .. 16L + 4k + 3.
      acc0 = _mm512_dpbusd_epi32(acc0, _mm512_unpacklo_epi16(t01_lo, t23_lo), w);
      acc1 = _mm512_dpbusd_epi32(acc1, _mm512_unpackhi_epi16(t01_lo, t23_lo), w);
      acc2 = _mm512_dpbusd_epi32(acc2, _mm512_unpacklo_epi16(t01_hi, t23_hi), w);
      acc3 = _mm512_dpbusd_epi32(acc3, _mm512_unpackhi_epi16(t01_hi, t23_hi), w);
    }
    // Pixel order: pixels 16L..16L+15 = [acc0.L, acc1.L, acc2.L, acc3.L] (128-bit lanes).
    const __m512i a01_even = _mm512_shuffle_i64x2(acc0, acc1, 0x88), a23_even = _mm512_shuffle_i64x2(acc2, acc3, 0x88);
    const __m512i a01_odd = _mm512_shuffle_i64x2(acc0, acc1, 0xDD), a23_odd = _mm512_shuffle_i64x2(acc2, acc3, 0xDD);
    Requant16::store(a.out + ox, rq.apply(_mm512_add_epi32(_mm512_shuffle_i64x2(a01_even, a23_even, 0x88), bias)), n);
    if (n > 16)
      Requant16::store(a.out + ox + 16, rq.apply(_mm512_add_epi32(_mm512_shuffle_i64x2(a01_odd, a23_odd, 0x88), bias)), n - 16);
    if (n > 32)
      Requant16::store(a.out + ox + 32, rq.apply(_mm512_add_epi32(_mm512_shuffle_i64x2(a01_even, a23_even, 0xDD), bias)), n - 32);
    if (n > 48)
      Requant16::store(a.out + ox + 48, rq.apply(_mm512_add_epi32(_mm512_shuffle_i64x2(a01_odd, a23_odd, 0xDD), bias)), n - 48);
  }
}

void u8s8_dwconv_row_vnni(const DepthwiseRowArgs& a) {
  if (a.stride_w == 1) return dwconv_row<1>(a);
  if (a.stride_w == 2) return dwconv_row<2>(a);
  dwconv_row<0>(a);
}

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512_VNNI, "u8s8_dwconv_64_vnni",
                      [](const KernelInit& init) {
                        return make_quantized_conv2d_depthwise(init, "u8s8_dwconv_64_vnni", u8s8_dwconv_row_vnni, 0);
                      });

}  // namespace ember::quantized
