// Integer-only requantization, written once: every quantized kernel (reference and fast, every
// ISA) turns an int32 accumulator into a uint8 value with these functions or with a SIMD copy
// of exactly this arithmetic.
//
// A real scale s (e.g. input_scale * weight_scale / output_scale) is represented as
//     s = multiplier * 2**-shift,   multiplier in [2**30, 2**31),  shift in [15, 62],
// so s must lie in [2**-32, 2**16). Requantizing an int32 value x is then one 64-bit product
// and one rounding right shift:
//     requantize(x) = (x * multiplier + 2**(shift-1)) >> shift      (arithmetic shift)
// i.e. x * s rounded to the nearest integer, ties toward +infinity. There is one rounding
// (no gemmlowp-style double rounding), so the result is exact for power-of-two scales and
// within 0.5 of x*s plus the multiplier's relative error (2**-31) otherwise.
//
// |x| <= 2**31 and multiplier < 2**31 keep the product within +-2**62: no int64 overflow.
// When s < 1 (shift >= 31) the result also fits in int32; fast kernels require that.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace ember::quantized {

struct FixedPointScale {
  int32_t multiplier = 1 << 30;  // in [2**30, 2**31)
  int32_t shift = 30;            // in [15, 62]
};

constexpr double kMinRequantScale = 1.0 / 4294967296.0;  // 2**-32
constexpr double kMaxRequantScale = 65536.0;             // 2**16 (exclusive)

// Converts a real scale to its fixed-point form. `what` names the op and the scale for the
// error, e.g. "quantized_conv2d: requantization scale of output channel 3".
inline FixedPointScale quantize_scale(double scale, const std::string& what) {
  if (!(scale >= kMinRequantScale && scale < kMaxRequantScale))
    fail<InvalidArgument>(what, " is ", scale, ", must be in [2**-32, 2**16)");
  int exponent = 0;
  double fraction = std::frexp(scale, &exponent);  // scale = fraction * 2**exponent, fraction in [0.5, 1)
  int64_t multiplier = static_cast<int64_t>(std::llround(std::ldexp(fraction, 31)));
  int shift = 31 - exponent;
  if (multiplier == (int64_t{1} << 31)) {  // fraction rounded up to 1.0
    multiplier >>= 1;
    --shift;
  }
  FixedPointScale out;
  out.multiplier = static_cast<int32_t>(multiplier);
  out.shift = shift;
  if (shift < 15 || shift > 62)  // unreachable for scales in range; kept as a guard
    fail<InvalidArgument>(what, " is ", scale, ", must be in [2**-32, 2**16)");
  return out;
}

// v / 2**shift rounded to nearest, ties toward +infinity (shift in [1, 62]).
inline int64_t rounding_shift_right(int64_t v, int shift) {
  const int64_t rounding = int64_t{1} << (shift - 1);
  return (v + rounding) >> shift;  // arithmetic shift (C++20 guarantees it; GCC and Clang do)
}

// x * scale rounded to nearest, ties toward +infinity; exact 64-bit arithmetic.
inline int64_t requantize(int32_t x, FixedPointScale s) {
  return rounding_shift_right(static_cast<int64_t>(x) * s.multiplier, s.shift);
}

// Output range of a quantized op after its fused activation, as uint8 codes.
struct OutputRange {
  int32_t min = 0, max = 255;
};

// "none" -> [0, 255]; "relu" -> [zero_point, 255]; "relu6" -> [zero_point, q(6)] where q(6) is
// the code of 6.0. Throws for an unknown activation (`where` names the op).
inline OutputRange activation_range(const std::string& activation, double output_scale,
                                    int32_t output_zero_point, const std::string& where) {
  OutputRange r;
  if (activation == "none") return r;
  if (activation == "relu" || activation == "relu6") {
    r.min = std::max(0, std::min(255, output_zero_point));
    if (activation == "relu6") {
      double six = std::nearbyint(6.0 / output_scale) + output_zero_point;
      r.max = static_cast<int32_t>(std::max(static_cast<double>(r.min), std::min(255.0, six)));
    }
    return r;
  }
  fail<InvalidArgument>(where, ": attribute 'activation' is '", activation,
                        "', expected one of none, relu, relu6");
}

// The whole epilogue: uint8 code of accumulator x (already including the bias).
inline uint8_t requantize_to_uint8(int32_t x, FixedPointScale s, int32_t zero_point,
                                   OutputRange range) {
  int64_t v = requantize(x, s) + zero_point;
  if (v < range.min) v = range.min;
  if (v > range.max) v = range.max;
  return static_cast<uint8_t>(v);
}

// Requantization of a sum of two quantized tensors with one rounding (QNNPACK's add):
//     y = zero_point_y + ((a - za) * a_multiplier + (b - zb) * b_multiplier + 2**(shift-1)) >> shift
// where a_multiplier * 2**-shift = a_scale / y_scale (and the same for b). The larger ratio gets a
// multiplier in [2**30, 2**31); both ratios must be in [2**-14, 2**8).
struct AddRequantization {
  int64_t a_multiplier = 0, b_multiplier = 0;
  int32_t shift = 31;
};

inline AddRequantization quantize_add_scales(double a_ratio, double b_ratio, const std::string& where) {
  for (double r : {a_ratio, b_ratio})
    if (!(r >= 1.0 / 16384.0 && r < 256.0))
      fail<InvalidArgument>(where, ": scale ratio input_scale / output_scale is ", r,
                            ", must be in [2**-14, 2**8)");
  int exponent = 0;
  std::frexp(std::max(a_ratio, b_ratio), &exponent);
  AddRequantization q;
  q.shift = 31 - exponent;  // in [23, 45]
  q.a_multiplier = std::llround(std::ldexp(a_ratio, q.shift));
  q.b_multiplier = std::llround(std::ldexp(b_ratio, q.shift));
  return q;
}

// |a - za| <= 255 and multipliers <= 2**31 keep the sum within 2**41: exact in int64.
inline int64_t requantize_add(int32_t a_centered, int32_t b_centered, const AddRequantization& q) {
  return rounding_shift_right(a_centered * q.a_multiplier + b_centered * q.b_multiplier, q.shift);
}

inline uint8_t clamp_to_uint8(int64_t v, OutputRange range) {
  if (v < range.min) v = range.min;
  if (v > range.max) v = range.max;
  return static_cast<uint8_t>(v);
}

}  // namespace ember::quantized
