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
  const Pack64 pack(a.out_params);
  const int64_t taps = a.kernel_h * a.kernel_w;
  const __m512i bias = _mm512_set1_epi32(a.row.bias);
  const __m512i zero = _mm512_setzero_si512();
  // The weights of each group of four taps, as one dword (zero past the last tap).
  int32_t quads[kMaxDepthwiseTaps / 4];
  for (int64_t t = 0; t < taps; t += 4) {
    uint32_t quad = 0;
    for (int64_t i = 0; i < 4 && t + i < taps; ++i)
      quad |= static_cast<uint32_t>(static_cast<uint8_t>(a.w[t + i])) << (8 * i);
    quads[t / 4] = static_cast<int32_t>(quad);
  }
  for (int64_t ox = 0; ox < a.out_w; ox += 64) {
    const int64_t n = std::min<int64_t>(64, a.out_w - ox);
    const uint8_t* row = a.in + ox * a.stride_w;
    __m512i acc0 = bias, acc1 = bias, acc2 = bias, acc3 = bias;
    for (int64_t t = 0; t < taps; t += 4) {
      // Four taps (zero codes and weights past the last one).
      const __m512i v0 = load_tap64<STRIDE>(row + a.tap_offsets[t], a.stride_w, n);
      const __m512i v1 = t + 1 < taps ? load_tap64<STRIDE>(row + a.tap_offsets[t + 1], a.stride_w, n) : zero;
      const __m512i v2 = t + 2 < taps ? load_tap64<STRIDE>(row + a.tap_offsets[t + 2], a.stride_w, n) : zero;
      const __m512i v3 = t + 3 < taps ? load_tap64<STRIDE>(row + a.tap_offsets[t + 3], a.stride_w, n) : zero;
      const __m512i w = _mm512_set1_epi32(quads[t / 4]);
      const __m512i t01_lo = _mm512_unpacklo_epi8(v0, v1), t01_hi = _mm512_unpackhi_epi8(v0, v1);
      const __m512i t23_lo = _mm512_unpacklo_epi8(v2, v3), t23_hi = _mm512_unpackhi_epi8(v2, v3);
      // Lane L of acc<k> gathers pixels 16L + 4k .. 16L + 4k + 3.
      acc0 = _mm512_dpbusd_epi32(acc0, _mm512_unpacklo_epi16(t01_lo, t23_lo), w);
      acc1 = _mm512_dpbusd_epi32(acc1, _mm512_unpackhi_epi16(t01_lo, t23_lo), w);
      acc2 = _mm512_dpbusd_epi32(acc2, _mm512_unpacklo_epi16(t01_hi, t23_hi), w);
      acc3 = _mm512_dpbusd_epi32(acc3, _mm512_unpackhi_epi16(t01_hi, t23_hi), w);
    }
    // That lane order is the one Pack64 turns into pixel order.
    pack.store(a.out + ox, rq.scale(acc0), rq.scale(acc1), rq.scale(acc2), rq.scale(acc3), n);
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
