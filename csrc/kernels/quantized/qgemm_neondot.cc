// aarch64 dot-product (sdot) quantized_conv2d as GEMM: 4 output channels x 8 pixels per tile.
// sdot multiplies s8 x s8, so activations are shifted to x - 128 (a xor of the sign bit) and
// 128 * sum(w) is folded into the packed bias (activation_offset = 128).
#include <arm_neon.h>

#include "kernels/quantized/qgemm.h"
#include "kernels/quantized/requantize_neon.h"

namespace ember::quantized {
namespace {

void u8s8_conv_gemm_4x8_neondot(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride,
                                const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                                int64_t out_stride, int64_t mr, int64_t nr) {
  constexpr int MR = 4;
  const int8_t* pw = static_cast<const int8_t*>(w);
  const uint8x16_t sign = vdupq_n_u8(0x80);
  int32x4_t acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = vdupq_n_s32(rows[r].bias);
  for (int64_t q = 0; q < k4; ++q) {
    const uint8_t* c = col + q * col_stride;
    const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(c), sign));
    const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(c + 16), sign));
    const int8x16_t wq = vld1q_s8(pw + q * MR * 4);  // rows 0..3, one 4-byte quad each
    acc[0][0] = vdotq_laneq_s32(acc[0][0], x0, wq, 0);
    acc[0][1] = vdotq_laneq_s32(acc[0][1], x1, wq, 0);
    acc[1][0] = vdotq_laneq_s32(acc[1][0], x0, wq, 1);
    acc[1][1] = vdotq_laneq_s32(acc[1][1], x1, wq, 1);
    acc[2][0] = vdotq_laneq_s32(acc[2][0], x0, wq, 2);
    acc[2][1] = vdotq_laneq_s32(acc[2][1], x1, wq, 2);
    acc[3][0] = vdotq_laneq_s32(acc[3][0], x0, wq, 3);
    acc[3][1] = vdotq_laneq_s32(acc[3][1], x1, wq, 3);
  }
  for (int r = 0; r < MR && r < mr; ++r) {
    const Requant4 rq(rows[r], out_params);
    Requant4::store(out + r * out_stride, rq.apply(acc[r][0]), nr);
    if (nr > 4) Requant4::store(out + r * out_stride + 4, rq.apply(acc[r][1]), nr - 4);
  }
}

const QGemmConfig kConvGemm = {"u8s8_conv_gemm_4x8_neondot", 4, 8, WeightLayout::Int8Quads, 128,
                               u8s8_conv_gemm_4x8_neondot, true};

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::NEON_DOT, "u8s8_conv_gemm_4x8_neondot",
                      [](const KernelInit& init) { return make_quantized_conv2d_gemm(init, kConvGemm); });

}  // namespace ember::quantized
