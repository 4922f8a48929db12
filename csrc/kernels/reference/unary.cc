// Element-wise unary ops: x -> y, same shape and dtype (PyTorch semantics).
//
// Float math is evaluated in double and rounded once to the output type, so the reference is
// at least as accurate as any fast kernel compared against it. Integer negation and absolute
// value wrap around like PyTorch's (abs(int8 -128) == -128, neg(uint8 3) == 253).
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

template <typename T, typename Op>
void unary_loop(OpContext& ctx, Op op) {
  const T* x = ctx.input(0).data<T>();
  T* y = ctx.output(0).data<T>();
  const int64_t n = ctx.input(0).numel();
  for (int64_t i = 0; i < n; ++i) y[i] = op(x[i]);
}

// Runs `fn(double) -> double` on every element of a float tensor.
template <typename Fn>
void float_unary(OpContext& ctx, const char* name, Fn fn) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), name, [&] {
    unary_loop<scalar_t>(ctx, [&](scalar_t v) {
      return static_cast<scalar_t>(fn(static_cast<double>(v)));
    });
  });
}

// Two's-complement wrap-around negation without signed-overflow UB.
template <typename T>
T wrapping_neg(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return -v;
  } else {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(U{0} - static_cast<U>(v)));
  }
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
double relu6(double v) { return std::isnan(v) ? v : std::min(std::max(v, 0.0), 6.0); }

void neg_reference(OpContext& ctx) {
  EMBER_DISPATCH_NUMERIC(ctx.input(0).dtype(), "neg", [&] {
    unary_loop<scalar_t>(ctx, [](scalar_t v) { return wrapping_neg(v); });
  });
}

void abs_reference(OpContext& ctx) {
  EMBER_DISPATCH_NUMERIC(ctx.input(0).dtype(), "abs", [&] {
    unary_loop<scalar_t>(ctx, [](scalar_t v) {
      if constexpr (std::is_floating_point_v<scalar_t>) {
        return static_cast<scalar_t>(std::fabs(v));
      } else if constexpr (std::is_unsigned_v<scalar_t>) {
        return v;
      } else {
        return v < 0 ? wrapping_neg(v) : v;
      }
    });
  });
}

// NOTE: sign(NaN) is 0, as in PyTorch (numpy returns NaN); sign(-0.0) is +0.
void sign_reference(OpContext& ctx) {
  EMBER_DISPATCH_NUMERIC(ctx.input(0).dtype(), "sign", [&] {
    unary_loop<scalar_t>(ctx, [](scalar_t v) {
      return static_cast<scalar_t>((scalar_t(0) < v) - (v < scalar_t(0)));
    });
  });
}

void relu_reference(OpContext& ctx) {
  EMBER_DISPATCH_NUMERIC(ctx.input(0).dtype(), "relu", [&] {
    // NaN propagates: NaN < 0 is false.
    unary_loop<scalar_t>(ctx, [](scalar_t v) { return v < scalar_t(0) ? scalar_t(0) : v; });
  });
}

// Integer tensors: the bounds are rounded inward (ceil(min), floor(max)) and saturate to the
// dtype's range, so the result keeps the input dtype. When min > max every element becomes max.
template <typename T>
void clamp_typed(OpContext& ctx, double lo, double hi) {
  if constexpr (std::is_floating_point_v<T>) {
    unary_loop<T>(ctx, [&](T v) {
      if (std::isnan(v)) return v;
      double d = static_cast<double>(v);
      if (d < lo) d = lo;
      if (d > hi) d = hi;
      return static_cast<T>(d);
    });
  } else {
    const double tmin = static_cast<double>(std::numeric_limits<T>::min());
    const double tmax = static_cast<double>(std::numeric_limits<T>::max());
    bool has_lo = std::ceil(lo) > tmin, has_hi = std::floor(hi) < tmax;
    // An integral bound outside the dtype's range constrains nothing (or everything).
    T lo_t = has_lo ? (std::ceil(lo) > tmax ? std::numeric_limits<T>::max()
                                            : static_cast<T>(std::ceil(lo)))
                    : std::numeric_limits<T>::min();
    T hi_t = has_hi ? (std::floor(hi) < tmin ? std::numeric_limits<T>::min()
                                             : static_cast<T>(std::floor(hi)))
                    : std::numeric_limits<T>::max();
    unary_loop<T>(ctx, [&](T v) {
      if (v < lo_t) v = lo_t;
      if (v > hi_t) v = hi_t;
      return v;
    });
  }
}

void clamp_reference(OpContext& ctx) {
  double lo = ctx.attr_float("min"), hi = ctx.attr_float("max");
  EMBER_DISPATCH_NUMERIC(ctx.input(0).dtype(), "clamp", [&] { clamp_typed<scalar_t>(ctx, lo, hi); });
}

std::vector<TensorType> infer_clamp(const InferContext& ctx) {
  if (std::isnan(ctx.attr_float("min")) || std::isnan(ctx.attr_float("max")))
    ctx.fail("attributes 'min' and 'max' must not be NaN");
  return {ctx.input(0)};
}

void leaky_relu_reference(OpContext& ctx) {
  double slope = ctx.attr_float("negative_slope");
  // Same test as torch (x > 0), so the sign of zero agrees for any slope.
  float_unary(ctx, "leaky_relu", [slope](double v) { return v > 0.0 ? v : v * slope; });
}

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;

void gelu_reference(OpContext& ctx) {
  if (ctx.attr_string("approximate") == "tanh") {
    float_unary(ctx, "gelu", [](double v) {
      return 0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v)));
    });
  } else {
    float_unary(ctx, "gelu", [](double v) { return 0.5 * v * (1.0 + std::erf(v * kSqrt1_2)); });
  }
}

std::vector<TensorType> infer_gelu(const InferContext& ctx) {
  const std::string& mode = ctx.attr_string("approximate");
  if (mode != "none" && mode != "tanh")
    ctx.fail("attribute 'approximate' must be \"none\" or \"tanh\", got \"", mode, "\"");
  return {ctx.input(0)};
}

#define EMBER_FLOAT_UNARY_KERNEL(NAME, EXPR)                              \
  void NAME##_reference(OpContext& ctx) {                                 \
    float_unary(ctx, #NAME, [](double v) -> double { return EXPR; });     \
  }
EMBER_FLOAT_UNARY_KERNEL(exp, std::exp(v))
EMBER_FLOAT_UNARY_KERNEL(log, std::log(v))
EMBER_FLOAT_UNARY_KERNEL(sqrt, std::sqrt(v))
EMBER_FLOAT_UNARY_KERNEL(rsqrt, 1.0 / std::sqrt(v))
EMBER_FLOAT_UNARY_KERNEL(erf, std::erf(v))
EMBER_FLOAT_UNARY_KERNEL(sigmoid, sigmoid(v))
EMBER_FLOAT_UNARY_KERNEL(tanh, std::tanh(v))
EMBER_FLOAT_UNARY_KERNEL(silu, v * sigmoid(v))
EMBER_FLOAT_UNARY_KERNEL(relu6, relu6(v))
EMBER_FLOAT_UNARY_KERNEL(hardswish, v * relu6(v + 3.0) / 6.0)
EMBER_FLOAT_UNARY_KERNEL(hardsigmoid, relu6(v + 3.0) / 6.0)
#undef EMBER_FLOAT_UNARY_KERNEL

}  // namespace

#define EMBER_UNARY_OP(NAME, TYPES, DOC)           \
  EMBER_REGISTER_OP(NAME)                          \
      .doc(DOC)                                    \
      .input("x", TYPES)                           \
      .output("y")                                 \
      .infer(infer_same_as_input)                  \
      .inplace(0)                                  \
      .kernel(DType::Undefined, Isa::Reference, NAME##_reference)

EMBER_UNARY_OP(neg, kNumericTypes, "-x, element-wise (integers wrap around).");
EMBER_UNARY_OP(abs, kNumericTypes, "|x|, element-wise (integers wrap around: abs(int8 -128) = -128).");
EMBER_UNARY_OP(sign, kNumericTypes, "-1, 0 or 1 by the sign of x, element-wise (sign(NaN) = 0, as in torch).");
EMBER_UNARY_OP(exp, kFloatTypes, "e ** x, element-wise.");
EMBER_UNARY_OP(log, kFloatTypes, "Natural logarithm, element-wise (log(0) = -inf, log(x < 0) = NaN).");
EMBER_UNARY_OP(sqrt, kFloatTypes, "Square root, element-wise (NaN for x < 0).");
EMBER_UNARY_OP(rsqrt, kFloatTypes, "1 / sqrt(x), element-wise.");
EMBER_UNARY_OP(erf, kFloatTypes, "The error function, element-wise.");
EMBER_UNARY_OP(relu, kNumericTypes, "max(x, 0), element-wise; NaN propagates.");
EMBER_UNARY_OP(relu6, kFloatTypes, "min(max(x, 0), 6), element-wise; NaN propagates.");
EMBER_UNARY_OP(sigmoid, kFloatTypes, "1 / (1 + exp(-x)), element-wise.");
EMBER_UNARY_OP(tanh, kFloatTypes, "Hyperbolic tangent, element-wise.");
EMBER_UNARY_OP(silu, kFloatTypes, "x * sigmoid(x), element-wise (a.k.a. swish).");
EMBER_UNARY_OP(hardswish, kFloatTypes, "x * relu6(x + 3) / 6, element-wise.");
EMBER_UNARY_OP(hardsigmoid, kFloatTypes, "relu6(x + 3) / 6, element-wise.");
#undef EMBER_UNARY_OP

EMBER_REGISTER_OP(clamp)
    .doc("min(max(x, min), max), element-wise; NaN propagates; min > max gives max. Integer "
         "tensors keep their dtype (bounds rounded inward).")
    .input("x", kNumericTypes)
    .output("y")
    .attr("min", AttrValue::Float(-std::numeric_limits<double>::infinity()), "lower bound")
    .attr("max", AttrValue::Float(std::numeric_limits<double>::infinity()), "upper bound")
    .infer(infer_clamp)
    .inplace(0)
    .kernel(DType::Undefined, Isa::Reference, clamp_reference);

EMBER_REGISTER_OP(leaky_relu)
    .doc("x if x > 0 else negative_slope * x, element-wise.")
    .input("x", kFloatTypes)
    .output("y")
    .attr("negative_slope", AttrValue::Float(0.01), "slope for x < 0")
    .infer(infer_same_as_input)
    .inplace(0)
    .kernel(DType::Undefined, Isa::Reference, leaky_relu_reference);

EMBER_REGISTER_OP(gelu)
    .doc("Gaussian error linear unit: x * Phi(x) (approximate=\"none\", erf form) or its tanh "
         "approximation (approximate=\"tanh\").")
    .input("x", kFloatTypes)
    .output("y")
    .attr("approximate", AttrValue::String("none"), "\"none\" (erf) or \"tanh\"")
    .infer(infer_gelu)
    .inplace(0)
    .kernel(DType::Undefined, Isa::Reference, gelu_reference);

}  // namespace ember
