// AVX-512 VNNI direct depthwise quantized_conv2d: 64 output pixels per step, four taps per
// vpdpbusd (the taps' u8 codes interleaved per pixel, the four s8 weights broadcast).
// Stride 1 loads 64 bytes, stride 2 keeps the even bytes of 128 (vpmovwb); others gather.
#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

#include <algorithm>

#include "core/cpu_features.h"

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

// ---------------------------------------------------------------- 3x3, padding 1, in place
// Each output pixel's dword holds the three taps of one kernel row, (x[c-1], x[c], x[c+1], -),
// so one vpdpbusd per kernel row adds them with the row's weights (w0, w1, w2, 0). One masked
// load per kernel row and 16 pixels reads the input row in place (columns outside it load as
// the zero point: the padding) and one vpermb spreads its bytes into that layout. Against the
// row kernel above this drops the padded copy of every plane, the byte interleaving and the
// fourth (zero) tap of every group of four, and runs every row of a plane with its constants.

// vpermb indices: byte 4i + k of 16 pixels whose window starts at column c - 1 of pixel 0 is
// column S * i + k - 1 (byte 3 of each dword meets a zero weight).
template <int S>
__attribute__((target("avx512vbmi"))) inline __m512i tap_rows_index() {
  alignas(64) uint8_t idx[64];
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 4; ++k) idx[4 * i + k] = static_cast<uint8_t>(k < 3 ? S * i + k : 0);
  return _mm512_load_si512(idx);
}

// The columns [c, c + 64) of a row of width w that exist, as a load mask.
inline __mmask64 columns_mask(int64_t c, int64_t w) {
  const int64_t lo = std::max<int64_t>(0, -c), hi = std::min<int64_t>(64, w - c);
  if (hi <= lo) return 0;
  const uint64_t below_hi = hi >= 64 ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  return below_hi & ~((uint64_t{1} << lo) - 1);
}

// NACC vectors of 16 output pixels of one output row, pixel ox0 onwards.
template <int S, int NACC>
__attribute__((target("avx512vbmi"))) inline void dw3x3_chunk(const DepthwisePlaneArgs& a, int64_t ox0,
                                                              const __m512i (&wq)[3], __m512i index,
                                                              const Requant16& rq, const Pack64& pack) {
  const __m512i zxv = _mm512_set1_epi8(static_cast<char>(a.input_zero_point));
  const __m512i bias = _mm512_set1_epi32(a.row.bias);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  __mmask64 mask[NACC];
  int64_t col[NACC];
  for (int k = 0; k < NACC; ++k) {
    col[k] = (ox0 + 16 * k) * S - 1;
    mask[k] = columns_mask(col[k], a.in_w);
  }
  const int64_t n = std::min<int64_t>(16 * NACC, a.out_w - ox0);
  const __mmask64 store_mask = n >= 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
  for (int64_t oy = 0; oy < a.out_h; ++oy) {
    __m512i acc[4];
    for (int k = 0; k < NACC; ++k) acc[k] = bias;
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t iy = oy * S + ky - 1;
      if (iy < 0 || iy >= a.in_h) {  // padding row
        for (int k = 0; k < NACC; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], zxv, wq[ky]);
        continue;
      }
      const uint8_t* row = a.in + iy * a.in_w;
      for (int k = 0; k < NACC; ++k) {
        const __m512i v = _mm512_mask_loadu_epi8(zxv, mask[k], row + col[k]);
        acc[k] = _mm512_dpbusd_epi32(acc[k], _mm512_permutexvar_epi8(index, v), wq[ky]);
      }
    }
    __m512i r[4];
    for (int k = 0; k < NACC; ++k) r[k] = rq.scale(acc[k]);
    for (int k = NACC; k < 4; ++k) r[k] = r[0];
    // Pack64 leaves dword 4L + k holding pixels 4L..4L+3 of vector k: back to pixel order.
    const __m512i codes = _mm512_permutexvar_epi32(order, pack.codes(r[0], r[1], r[2], r[3]));
    _mm512_mask_storeu_epi8(a.out + oy * a.out_w + ox0, store_mask, codes);
  }
}

template <int S>
__attribute__((target("avx512vbmi"))) void dw3x3_plane(const DepthwisePlaneArgs& a) {
  const Requant16 rq(a.row, a.out_params);
  const Pack64 pack(a.out_params);
  __m512i wq[3];
  for (int ky = 0; ky < 3; ++ky) {
    const uint32_t quad = static_cast<uint32_t>(static_cast<uint8_t>(a.w[3 * ky])) |
                          static_cast<uint32_t>(static_cast<uint8_t>(a.w[3 * ky + 1])) << 8 |
                          static_cast<uint32_t>(static_cast<uint8_t>(a.w[3 * ky + 2])) << 16;
    wq[ky] = _mm512_set1_epi32(static_cast<int32_t>(quad));
  }
  const __m512i index = tap_rows_index<S>();
  for (int64_t ox0 = 0; ox0 < a.out_w; ox0 += 64) {
    switch (std::min<int64_t>(4, (a.out_w - ox0 + 15) / 16)) {
      case 1: dw3x3_chunk<S, 1>(a, ox0, wq, index, rq, pack); break;
      case 2: dw3x3_chunk<S, 2>(a, ox0, wq, index, rq, pack); break;
      case 3: dw3x3_chunk<S, 3>(a, ox0, wq, index, rq, pack); break;
      default: dw3x3_chunk<S, 4>(a, ox0, wq, index, rq, pack); break;
    }
  }
}

__attribute__((target("avx512vbmi"))) void u8s8_dw3x3_plane_vnni(const DepthwisePlaneArgs& a) {
  if (a.stride == 1) return dw3x3_plane<1>(a);
  dw3x3_plane<2>(a);
}

}  // namespace

// First: among kernels of one ISA the first registered that takes a case runs it.
EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512_VNNI, "u8s8_dw3x3_vnni",
                      [](const KernelInit& init) -> std::unique_ptr<OpKernel> {
                        if (!cpu_features().avx512_vbmi) return nullptr;
                        return make_quantized_conv2d_depthwise(init, "", u8s8_dwconv_row_vnni, "u8s8_dw3x3_vnni",
                                                               u8s8_dw3x3_plane_vnni);
                      });

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512_VNNI, "u8s8_dwconv_64_vnni",
                      [](const KernelInit& init) {
                        return make_quantized_conv2d_depthwise(init, "u8s8_dwconv_64_vnni", u8s8_dwconv_row_vnni);
                      });

}  // namespace ember::quantized
