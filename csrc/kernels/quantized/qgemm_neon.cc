// NEON (aarch64) quantized kernels: u8 x s8 products in 16-bit lanes with widening
// multiply-accumulate (vmlal): quantized_conv2d as GEMM (4 output channels x 4 pixels per tile,
// also used for depthwise) and quantized_linear dot products.
#include <arm_neon.h>

#include <cstring>

#include "kernels/quantized/qgemm.h"
#include "kernels/quantized/requantize_neon.h"

namespace ember::quantized {
namespace {

void u8s8_conv_gemm_4x4_neon(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride,
                             const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                             int64_t out_stride, int64_t mr, int64_t nr) {
  constexpr int MR = 4;
  const int8_t* pw = static_cast<const int8_t*>(w);
  // acc[r][p]: the four k-lanes of pixel p, summed at the end.
  int32x4_t acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int p = 0; p < 4; ++p) acc[r][p] = vdupq_n_s32(0);
  for (int64_t q = 0; q < k4; ++q) {
    const uint8x16_t c = vld1q_u8(col + q * col_stride);
    const int16x8_t xa = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c)));   // pixels 0, 1
    const int16x8_t xb = vreinterpretq_s16_u16(vmovl_high_u8(c));          // pixels 2, 3
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, pw + (q * MR + r) * 4, 4);
      const int16x8_t wr = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(quad)));  // w0..w3, w0..w3
      acc[r][0] = vmlal_s16(acc[r][0], vget_low_s16(xa), vget_low_s16(wr));
      acc[r][1] = vmlal_high_s16(acc[r][1], xa, wr);
      acc[r][2] = vmlal_s16(acc[r][2], vget_low_s16(xb), vget_low_s16(wr));
      acc[r][3] = vmlal_high_s16(acc[r][3], xb, wr);
    }
  }
  for (int r = 0; r < MR && r < mr; ++r) {
    int32x4_t sum = vpaddq_s32(vpaddq_s32(acc[r][0], acc[r][1]), vpaddq_s32(acc[r][2], acc[r][3]));
    sum = vaddq_s32(sum, vdupq_n_s32(rows[r].bias));
    const Requant4 rq(rows[r], out_params);
    Requant4::store(out + r * out_stride, rq.apply(sum), nr);
  }
}

void u8s8_dot_neon(const uint8_t* x, const int8_t* w, int64_t k, int64_t rows, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* wr = w + r * k;
    int32x4_t acc = vdupq_n_s32(0);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
      const int16x8_t xv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(x + i)));
      const int16x8_t wv = vmovl_s8(vld1_s8(wr + i));
      acc = vmlal_s16(acc, vget_low_s16(xv), vget_low_s16(wv));
      acc = vmlal_high_s16(acc, xv, wv);
    }
    int32_t total = vaddvq_s32(acc);
    for (; i < k; ++i) total += static_cast<int32_t>(x[i]) * wr[i];
    out[r] = total;
  }
}

const QGemmConfig kConvGemm = {"u8s8_conv_gemm_4x4_neon", 4, 4, WeightLayout::Int8Quads, 0,
                               u8s8_conv_gemm_4x4_neon, true};

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::NEON, "u8s8_conv_gemm_4x4_neon",
                      [](const KernelInit& init) { return make_quantized_conv2d_gemm(init, kConvGemm); });
EMBER_REGISTER_KERNEL(quantized_linear, DType::UInt8, Isa::NEON, "u8s8_linear_dot_neon",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_dot_neon", u8s8_dot_neon);
                      });
EMBER_REGISTER_KERNEL(quantized_linear_float, DType::UInt8, Isa::NEON, "u8s8_linear_float_dot_neon",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_float_dot_neon", u8s8_dot_neon, true);
                      });

}  // namespace ember::quantized
