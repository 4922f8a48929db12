// Properties of the integer requantization (kernels/quantized/requantize.h): exact division by
// powers of two, rounding of ties, extremes, and random values against a wide reference.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "kernels/quantized/requantize.h"
#include "tests/harness.h"

using namespace ember::quantized;

namespace {

// True when r is x * multiplier / 2**shift rounded to nearest with ties up, checked in 128-bit
// arithmetic: (2r - 1) * 2**shift <= 2 * x * multiplier < (2r + 1) * 2**shift.
bool is_rounded_product(int64_t r, int32_t x, FixedPointScale s) {
  const __int128 twice = static_cast<__int128>(2) * x * s.multiplier;
  const __int128 unit = static_cast<__int128>(1) << s.shift;
  return (2 * static_cast<__int128>(r) - 1) * unit <= twice && twice < (2 * static_cast<__int128>(r) + 1) * unit;
}

const int32_t kInt32Min = std::numeric_limits<int32_t>::min();
const int32_t kInt32Max = std::numeric_limits<int32_t>::max();

}  // namespace

TEST_CASE(requantize_power_of_two_scales_divide_exactly) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int32_t> any(kInt32Min, kInt32Max);
  for (int k = 0; k <= 32; ++k) {
    FixedPointScale s = quantize_scale(std::ldexp(1.0, -k), "test");
    EXPECT(s.multiplier == (1 << 30));
    for (int i = 0; i < 2000; ++i) {
      const int32_t fixed[] = {0, 1, kInt32Min, kInt32Max};
      int32_t x = i < 4 ? fixed[i] : any(rng);
      // x / 2**k is exact in double; floor(v + 0.5) is exact since v has few fraction bits.
      double expected = std::floor(std::ldexp(static_cast<double>(x), -k) + 0.5);
      EXPECT(static_cast<double>(requantize(x, s)) == expected);
    }
  }
}

TEST_CASE(requantize_rounds_ties_up) {
  for (int k = 1; k <= 20; ++k) {
    FixedPointScale s = quantize_scale(std::ldexp(1.0, -k), "test");
    for (int64_t m : {-1000, -3, -2, -1, 0, 1, 2, 3, 1000}) {
      // x = (m + 0.5) * 2**k is a tie: it rounds to m + 1 (toward +infinity) for either sign.
      int64_t x = (2 * m + 1) * (int64_t{1} << (k - 1));
      EXPECT(requantize(static_cast<int32_t>(x), s) == m + 1);
      // One below the tie rounds down, one above stays up.
      EXPECT(requantize(static_cast<int32_t>(x - 1), s) == m);
      EXPECT(requantize(static_cast<int32_t>(x + 1), s) == m + 1);
    }
  }
}

TEST_CASE(requantize_extremes) {
  const double scales[] = {std::ldexp(1.0, -32), 0.9999999999, 0.5, 1.0 / 3.0, 1.0, 255.9, std::ldexp(1.0, 16) * 0.99999};
  const int32_t xs[] = {kInt32Min, kInt32Min + 1, -1, 0, 1, kInt32Max - 1, kInt32Max};
  for (double scale : scales) {
    FixedPointScale s = quantize_scale(scale, "test");
    EXPECT(s.multiplier >= (1 << 30));
    EXPECT(s.shift >= 15 && s.shift <= 62);
    for (int32_t x : xs) EXPECT(is_rounded_product(requantize(x, s), x, s));
  }
  // Below one, the result of any int32 fits in int32 (the SIMD epilogues rely on it).
  FixedPointScale almost_one = quantize_scale(0.99999, "test");
  EXPECT(almost_one.shift >= 31);
  EXPECT(requantize(kInt32Min, almost_one) >= kInt32Min);
  EXPECT(requantize(kInt32Max, almost_one) <= kInt32Max);
  // The epilogue saturates to the output range.
  EXPECT(requantize_to_uint8(kInt32Max, almost_one, 10, OutputRange{}) == 255);
  EXPECT(requantize_to_uint8(kInt32Min, almost_one, 10, OutputRange{}) == 0);
  EXPECT(requantize_to_uint8(-5, quantize_scale(1.0, "t"), 3, OutputRange{3, 255}) == 3);  // relu clamp
}

TEST_CASE(requantize_random_against_double_reference) {
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> log_scale(-32.0, 16.0);
  std::uniform_int_distribution<int32_t> any(kInt32Min, kInt32Max);
  std::uniform_int_distribution<int32_t> small(-100000, 100000);
  for (int i = 0; i < 20000; ++i) {
    double scale = std::exp2(log_scale(rng));
    if (scale >= kMaxRequantScale) continue;
    FixedPointScale s = quantize_scale(scale, "test");
    // The multiplier represents the scale within a relative 2**-31.
    EXPECT(std::fabs(std::ldexp(static_cast<double>(s.multiplier), -s.shift) / scale - 1.0) <= std::ldexp(1.0, -31));
    int32_t x = (i % 2) ? any(rng) : small(rng);
    int64_t r = requantize(x, s);
    EXPECT(is_rounded_product(r, x, s));
    double exact = static_cast<double>(x) * scale;
    EXPECT(std::fabs(static_cast<double>(r) - exact) <= 0.5 + std::fabs(exact) * std::ldexp(1.0, -30) + 1e-9);
  }
}

TEST_CASE(quantize_scale_rejects_out_of_range_with_the_rule) {
  for (double bad : {0.0, -1.0, std::ldexp(1.0, -33), 65536.0, 1e300, std::nan(""),
                     std::numeric_limits<double>::infinity()}) {
    bool thrown = false;
    try {
      quantize_scale(bad, "quantized_conv2d: requantization scale");
    } catch (const ember::InvalidArgument& e) {
      thrown = true;
      std::string msg = e.what();
      EXPECT(msg.find("quantized_conv2d: requantization scale") == 0);
      EXPECT(msg.find("[2**-32, 2**16)") != std::string::npos);
    }
    EXPECT(thrown);
  }
}

TEST_CASE(requantize_add_matches_double_reference) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> log_ratio(-14.0, 7.99);
  std::uniform_int_distribution<int32_t> centered(-255, 255);
  for (int i = 0; i < 20000; ++i) {
    double ra = std::exp2(log_ratio(rng)), rb = std::exp2(log_ratio(rng));
    AddRequantization q = quantize_add_scales(ra, rb, "quantized_add");
    int32_t a = centered(rng), b = centered(rng);
    int64_t r = requantize_add(a, b, q);
    // One rounding of the fixed-point sum: exactly round-half-up of (a*Ma + b*Mb) / 2**shift.
    const __int128 twice = 2 * (static_cast<__int128>(a) * q.a_multiplier + static_cast<__int128>(b) * q.b_multiplier);
    const __int128 unit = static_cast<__int128>(1) << q.shift;
    EXPECT((2 * static_cast<__int128>(r) - 1) * unit <= twice && twice < (2 * static_cast<__int128>(r) + 1) * unit);
    double exact = a * ra + b * rb;
    EXPECT(std::fabs(static_cast<double>(r) - exact) <= 0.5 + (std::abs(a) + std::abs(b)) * std::ldexp(1.0, -q.shift) + 1e-9);
  }
  // Equal scales (ratio 1) add exactly.
  AddRequantization one = quantize_add_scales(1.0, 1.0, "quantized_add");
  EXPECT(requantize_add(100, -37, one) == 63);
  EXPECT_THROWS(quantize_add_scales(256.0, 1.0, "quantized_add"), ember::InvalidArgument);
  EXPECT_THROWS(quantize_add_scales(1.0, 1.0 / 32768.0, "quantized_add"), ember::InvalidArgument);
}

TEST_CASE(activation_ranges) {
  EXPECT(activation_range("none", 0.1, 7, "op").min == 0 && activation_range("none", 0.1, 7, "op").max == 255);
  EXPECT(activation_range("relu", 0.1, 7, "op").min == 7);
  OutputRange r6 = activation_range("relu6", 0.1, 7, "op");
  EXPECT(r6.min == 7 && r6.max == 67);  // 6 / 0.1 = 60 codes above the zero point
  EXPECT(activation_range("relu6", 0.01, 7, "op").max == 255);  // q(6) is past the uint8 range
  EXPECT_THROWS(activation_range("gelu", 0.1, 7, "op"), ember::InvalidArgument);
}
