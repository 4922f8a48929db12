// NEON copy of requantize.h's epilogue: the same 64-bit products and rounding shift per lane.
// Include only from *_neon.cc / *_neondot.cc files; internal linkage throughout.
#pragma once
#include <arm_neon.h>

#include <cstdint>

#include "kernels/quantized/qgemm.h"

namespace ember::quantized {
namespace {

struct Requant4 {
  int32x4_t multiplier, lo, hi, zero_point;
  int64x2_t rounding, shift;  // shift is negative: vshlq by a negative count shifts right
  Requant4(const RequantRow& row, const OutputParams& out)
      : multiplier(vdupq_n_s32(row.multiplier)),
        lo(vdupq_n_s32(out.min - out.zero_point)),
        hi(vdupq_n_s32(out.max - out.zero_point)),
        zero_point(vdupq_n_s32(out.zero_point)),
        rounding(vdupq_n_s64(int64_t{1} << (row.shift - 1))),
        shift(vdupq_n_s64(-static_cast<int64_t>(row.shift))) {}
  int32x4_t apply(int32x4_t acc) const {
    int64x2_t p0 = vmull_s32(vget_low_s32(acc), vget_low_s32(multiplier));
    int64x2_t p1 = vmull_high_s32(acc, multiplier);
    p0 = vshlq_s64(vaddq_s64(p0, rounding), shift);  // arithmetic shift right
    p1 = vshlq_s64(vaddq_s64(p1, rounding), shift);
    int32x4_t r = vcombine_s32(vmovn_s64(p0), vmovn_s64(p1));
    r = vminq_s32(vmaxq_s32(r, lo), hi);
    return vaddq_s32(r, zero_point);
  }
  // Stores the first n (<= 4) codes.
  static void store(uint8_t* out, int32x4_t codes, int64_t n) {
    uint8x8_t bytes = vqmovn_u16(vcombine_u16(vqmovun_s32(codes), vdup_n_u16(0)));
    uint8_t tmp[8];
    vst1_u8(tmp, bytes);
    for (int64_t i = 0; i < n && i < 4; ++i) out[i] = tmp[i];
  }
};

}  // namespace
}  // namespace ember::quantized
