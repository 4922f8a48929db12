// AVX-512 VNNI kernels: vpdpbusd (u8 x s8, 4 products per int32 lane) for quantized_conv2d as
// GEMM (8 output channels x 32 pixels per tile) and quantized_linear (dot products).

#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

namespace ember::quantized {
namespace {

void u8s8_conv_gemm_8x32_vnni(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride,
                              const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                              int64_t out_stride, int64_t mr, int64_t nr) {
  constexpr int MR = 8;
  const int8_t* pw = static_cast<const int8_t*>(w);
  // Sixteen named accumulators (an array makes GCC shuffle and spill them in the loop).
  __m512i a00 = _mm512_set1_epi32(rows[0].bias), a01 = a00;
  __m512i a10 = _mm512_set1_epi32(rows[1].bias), a11 = a10;
  __m512i a20 = _mm512_set1_epi32(rows[2].bias), a21 = a20;
  __m512i a30 = _mm512_set1_epi32(rows[3].bias), a31 = a30;
  __m512i a40 = _mm512_set1_epi32(rows[4].bias), a41 = a40;
  __m512i a50 = _mm512_set1_epi32(rows[5].bias), a51 = a50;
  __m512i a60 = _mm512_set1_epi32(rows[6].bias), a61 = a60;
  __m512i a70 = _mm512_set1_epi32(rows[7].bias), a71 = a70;
  for (int64_t q = 0; q < k4; ++q) {
    const uint8_t* c = col + q * col_stride;
    const __m512i x0 = _mm512_loadu_si512(c);
    const __m512i x1 = _mm512_loadu_si512(c + 64);
    const int8_t* wq = pw + q * MR * 4;
#define EMBER_VNNI_ROW(R)                                              \
  {                                                                    \
    const __m512i wr = _mm512_set1_epi32(load_i32(wq + (R) * 4));      \
    a##R##0 = _mm512_dpbusd_epi32(a##R##0, x0, wr);                    \
    a##R##1 = _mm512_dpbusd_epi32(a##R##1, x1, wr);                    \
  }
    EMBER_VNNI_ROW(0) EMBER_VNNI_ROW(1) EMBER_VNNI_ROW(2) EMBER_VNNI_ROW(3)
    EMBER_VNNI_ROW(4) EMBER_VNNI_ROW(5) EMBER_VNNI_ROW(6) EMBER_VNNI_ROW(7)
#undef EMBER_VNNI_ROW
  }
  const __m512i acc[MR][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31},
                              {a40, a41}, {a50, a51}, {a60, a61}, {a70, a71}};
  const Pack64 pack(out_params);
  for (int r = 0; r < mr; r += 2) {  // two rows per packed store
    const Requant16 rq0(rows[r], out_params), rq1(rows[r + 1], out_params);
    pack.store_rows(out + r * out_stride, r + 1 < mr ? out + (r + 1) * out_stride : nullptr,
                    rq0.scale(acc[r][0]), rq0.scale(acc[r][1]), rq1.scale(acc[r + 1][0]),
                    rq1.scale(acc[r + 1][1]), nr);
  }
}

void u8s8_dot_vnni(const uint8_t* x, const int8_t* w, int64_t k, int64_t rows, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* wr = w + r * k;
    __m512i acc = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 64 <= k; i += 64)
      acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(x + i), _mm512_loadu_si512(wr + i));
    if (i < k) {
      const __mmask64 mask = (~__mmask64{0}) >> (64 - (k - i));
      acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(mask, x + i), _mm512_maskz_loadu_epi8(mask, wr + i));
    }
    out[r] = _mm512_reduce_add_epi32(acc);
  }
}

// interleave4 on 64 pixels at a time: byte and word unpacks interleave within each 128-bit
// lane, then a 4 x 4 transpose of the lanes puts pixels 16L .. 16L + 15 in output vector L
// (a third of the SSE2 version's instructions).
void interleave4_avx512(const uint8_t* const rows[4], int64_t n, uint8_t* dst) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64, dst += 256) {
    const __m512i a = _mm512_loadu_si512(rows[0] + i), b = _mm512_loadu_si512(rows[1] + i);
    const __m512i c = _mm512_loadu_si512(rows[2] + i), d = _mm512_loadu_si512(rows[3] + i);
    const __m512i ab_lo = _mm512_unpacklo_epi8(a, b), ab_hi = _mm512_unpackhi_epi8(a, b);
    const __m512i cd_lo = _mm512_unpacklo_epi8(c, d), cd_hi = _mm512_unpackhi_epi8(c, d);
    // Lane L of q0..q3: pixels 16L + 0..3, 4..7, 8..11, 12..15.
    const __m512i q0 = _mm512_unpacklo_epi16(ab_lo, cd_lo), q1 = _mm512_unpackhi_epi16(ab_lo, cd_lo);
    const __m512i q2 = _mm512_unpacklo_epi16(ab_hi, cd_hi), q3 = _mm512_unpackhi_epi16(ab_hi, cd_hi);
    const __m512i t0 = _mm512_shuffle_i64x2(q0, q1, 0x44), t1 = _mm512_shuffle_i64x2(q0, q1, 0xEE);
    const __m512i t2 = _mm512_shuffle_i64x2(q2, q3, 0x44), t3 = _mm512_shuffle_i64x2(q2, q3, 0xEE);
    _mm512_storeu_si512(dst, _mm512_shuffle_i64x2(t0, t2, 0x88));
    _mm512_storeu_si512(dst + 64, _mm512_shuffle_i64x2(t0, t2, 0xDD));
    _mm512_storeu_si512(dst + 128, _mm512_shuffle_i64x2(t1, t3, 0x88));
    _mm512_storeu_si512(dst + 192, _mm512_shuffle_i64x2(t1, t3, 0xDD));
  }
  if (i < n) {
    const uint8_t* const rest[4] = {rows[0] + i, rows[1] + i, rows[2] + i, rows[3] + i};
    interleave4_portable(rest, n - i, dst);
  }
}

const QGemmConfig kConvGemm = {"u8s8_conv_gemm_8x32_vnni", 8, 32, WeightLayout::Int8Quads, 0,
                               u8s8_conv_gemm_8x32_vnni, false, interleave4_avx512};

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512_VNNI, "u8s8_conv_gemm_8x32_vnni",
                      [](const KernelInit& init) { return make_quantized_conv2d_gemm(init, kConvGemm); });
EMBER_REGISTER_KERNEL(quantized_linear, DType::UInt8, Isa::AVX512_VNNI, "u8s8_linear_dot_vnni",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_dot_vnni", u8s8_dot_vnni);
                      });

}  // namespace ember::quantized
