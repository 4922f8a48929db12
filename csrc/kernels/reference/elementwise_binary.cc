// Element-wise binary ops with numpy broadcasting: arithmetic, comparisons, and where.
#include <cmath>
#include <type_traits>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/broadcast_loop.h"

namespace ember {
namespace {

template <typename T, typename R, typename Op>
void binary_loop(OpContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* py = y.data<R>();
  reference::broadcast_for_each<2>(y.shape(), {a.shape(), b.shape()},
                                   [&](int64_t o, const std::array<int64_t, 2>& off) {
                                     py[o] = static_cast<R>(op(pa[off[0]], pb[off[1]]));
                                   });
}

// Integer division and modulo by zero are undefined in C++; the oracle reports them.
template <typename T>
T checked_div(T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) fail<InvalidArgument>("div: integer division by zero");
    // MIN / -1 overflows (and traps on x86); wrap like numpy: the negation modulo 2^bits.
    if constexpr (std::is_signed_v<T>) {
      if (y == -1) return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));
    }
  }
  return x / y;
}

// Signed overflow is undefined in C++; integers wrap (two's complement) like torch and numpy.
template <typename T, typename Op>
T wrapping(T x, T y, Op op) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(op(static_cast<U>(x), static_cast<U>(y))));
  } else {
    return static_cast<T>(op(x, y));
  }
}

#define EMBER_ARITH_KERNEL(NAME, EXPR)                                                  \
  void NAME##_reference(OpContext& ctx) {                                               \
    EMBER_DISPATCH_NUMERIC(ctx.input(0).dtype(), #NAME, [&] {                          \
      binary_loop<scalar_t, scalar_t>(ctx, [](scalar_t x, scalar_t y) { return EXPR; }); \
    });                                                                                 \
  }
EMBER_ARITH_KERNEL(add, wrapping(x, y, [](auto p, auto q) { return p + q; }))
EMBER_ARITH_KERNEL(sub, wrapping(x, y, [](auto p, auto q) { return p - q; }))
EMBER_ARITH_KERNEL(mul, wrapping(x, y, [](auto p, auto q) { return p * q; }))
EMBER_ARITH_KERNEL(div, checked_div(x, y))
// NaN propagates, as in torch.maximum/minimum.
EMBER_ARITH_KERNEL(maximum, (x != x) ? x : ((y != y) ? y : (x > y ? x : y)))
EMBER_ARITH_KERNEL(minimum, (x != x) ? x : ((y != y) ? y : (x < y ? x : y)))
#undef EMBER_ARITH_KERNEL

void pow_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "pow", [&] {
    binary_loop<scalar_t, scalar_t>(ctx, [](scalar_t x, scalar_t y) { return std::pow(x, y); });
  });
}

#define EMBER_COMPARE_KERNEL(NAME, OP)                                                 \
  void NAME##_reference(OpContext& ctx) {                                              \
    EMBER_DISPATCH_ALL(ctx.input(0).dtype(), #NAME, [&] {                             \
      binary_loop<scalar_t, bool>(ctx, [](scalar_t x, scalar_t y) { return x OP y; }); \
    });                                                                                \
  }
EMBER_COMPARE_KERNEL(eq, ==)
EMBER_COMPARE_KERNEL(ne, !=)
EMBER_COMPARE_KERNEL(lt, <)
EMBER_COMPARE_KERNEL(le, <=)
EMBER_COMPARE_KERNEL(gt, >)
EMBER_COMPARE_KERNEL(ge, >=)
#undef EMBER_COMPARE_KERNEL

void where_reference(OpContext& ctx) {
  const Tensor& c = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& yv = ctx.input(2);
  Tensor& out = ctx.output(0);
  EMBER_DISPATCH_ALL(x.dtype(), "where", [&] {
    const bool* pc = c.data<bool>();
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* py = yv.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    reference::broadcast_for_each<3>(out.shape(), {c.shape(), x.shape(), yv.shape()},
                                     [&](int64_t o, const std::array<int64_t, 3>& off) {
                                       po[o] = pc[off[0]] ? px[off[1]] : py[off[2]];
                                     });
  });
}

std::vector<TensorType> infer_where(const InferContext& ctx) {
  const TensorType& c = ctx.input(0);
  const TensorType& x = ctx.input(1);
  const TensorType& y = ctx.input(2);
  if (x.dtype != y.dtype)
    ctx.fail("inputs 'x' and 'y' have different dtypes: ", dtype_name(x.dtype), " and ",
             dtype_name(y.dtype));
  Shape s = broadcast_shapes(broadcast_shapes(c.shape, x.shape, ctx), y.shape, ctx);
  return {{x.dtype, s}};
}

}  // namespace

#define EMBER_BINARY_OP(NAME, TYPES, INFER, DOC)          \
  EMBER_REGISTER_OP(NAME)                                 \
      .doc(DOC)                                           \
      .input("a", TYPES)                                  \
      .input("b", TYPES)                                  \
      .output("y")                                        \
      .infer(INFER)                                       \
      .kernel(DType::Undefined, Isa::Reference, NAME##_reference)

EMBER_BINARY_OP(add, kNumericTypes, infer_broadcast_binary, "a + b, element-wise with broadcasting.").inplace(0);
EMBER_BINARY_OP(sub, kNumericTypes, infer_broadcast_binary, "a - b, element-wise with broadcasting.").inplace(0);
EMBER_BINARY_OP(mul, kNumericTypes, infer_broadcast_binary, "a * b, element-wise with broadcasting.").inplace(0);
EMBER_BINARY_OP(div, kNumericTypes, infer_broadcast_binary,
                "a / b, element-wise with broadcasting (integers truncate; division by zero is an error).").inplace(0);
EMBER_BINARY_OP(pow, kFloatTypes, infer_broadcast_binary, "a ** b, element-wise with broadcasting.").inplace(0);
EMBER_BINARY_OP(maximum, kNumericTypes, infer_broadcast_binary,
                "Element-wise maximum with broadcasting; NaN propagates.").inplace(0);
EMBER_BINARY_OP(minimum, kNumericTypes, infer_broadcast_binary,
                "Element-wise minimum with broadcasting; NaN propagates.").inplace(0);
EMBER_BINARY_OP(eq, kAllTypes, infer_broadcast_compare, "a == b -> bool, with broadcasting.");
EMBER_BINARY_OP(ne, kAllTypes, infer_broadcast_compare, "a != b -> bool, with broadcasting.");
EMBER_BINARY_OP(lt, kAllTypes, infer_broadcast_compare, "a < b -> bool, with broadcasting.");
EMBER_BINARY_OP(le, kAllTypes, infer_broadcast_compare, "a <= b -> bool, with broadcasting.");
EMBER_BINARY_OP(gt, kAllTypes, infer_broadcast_compare, "a > b -> bool, with broadcasting.");
EMBER_BINARY_OP(ge, kAllTypes, infer_broadcast_compare, "a >= b -> bool, with broadcasting.");
#undef EMBER_BINARY_OP

EMBER_REGISTER_OP(where)
    .doc("condition ? x : y, element-wise with broadcasting of all three.")
    .input("condition", {DType::Bool})
    .input("x", kAllTypes)
    .input("y", kAllTypes)
    .output("out")
    .infer(infer_where)
    .dispatch_on(1)
    .kernel(DType::Undefined, Isa::Reference, where_reference);

}  // namespace ember
