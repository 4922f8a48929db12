// softmax and log_softmax along one dim, numerically stable: the row maximum is subtracted
// before exponentiating and the sum is kept in double. A row that is all -inf gives NaN, as in
// PyTorch.
#include <cmath>
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

std::vector<TensorType> infer_softmax(const InferContext& ctx) {
  normalize_axis(ctx.attr_int("dim"), ctx.input(0).ndim(), ctx, "dim");
  return {ctx.input(0)};
}

// Visits every row along `dim` of x: outer * inner rows of `size` elements, `inner` apart.
template <typename T, bool kLog>
void softmax_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t dim = normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx, "dim");
  const Shape& s = x.shape();
  const int64_t size = s.empty() ? 1 : s[dim];
  const int64_t outer = s.empty() ? 1 : shape_numel(Shape(s.begin(), s.begin() + dim));
  const int64_t inner = s.empty() ? 1 : shape_numel(Shape(s.begin() + dim + 1, s.end()));
  const T* px = x.data<T>();
  T* py = ctx.output(0).data<T>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * size * inner + i;
      double max = -INFINITY;
      for (int64_t j = 0; j < size; ++j) {
        const double v = static_cast<double>(px[base + j * inner]);
        if (v > max || std::isnan(v)) max = v;
      }
      double sum = 0.0;
      for (int64_t j = 0; j < size; ++j) sum += std::exp(static_cast<double>(px[base + j * inner]) - max);
      const double log_sum = std::log(sum);
      for (int64_t j = 0; j < size; ++j) {
        const double shifted = static_cast<double>(px[base + j * inner]) - max;
        py[base + j * inner] = static_cast<T>(kLog ? shifted - log_sum : std::exp(shifted) / sum);
      }
    }
}

void softmax_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "softmax", [&] { softmax_loops<scalar_t, false>(ctx); });
}

void log_softmax_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "log_softmax", [&] { softmax_loops<scalar_t, true>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(softmax)
    .doc("exp(x) / sum(exp(x)) along `dim`, computed stably (max subtracted).")
    .input("x", kFloatTypes)
    .output("y")
    .attr("dim", AttrValue::Int(-1), "the dim normalized over")
    .infer(infer_softmax)
    .kernel(DType::Undefined, Isa::Reference, softmax_reference);

EMBER_REGISTER_OP(log_softmax)
    .doc("x - log(sum(exp(x))) along `dim`, computed stably (max subtracted).")
    .input("x", kFloatTypes)
    .output("y")
    .attr("dim", AttrValue::Int(-1), "the dim normalized over")
    .infer(infer_softmax)
    .kernel(DType::Undefined, Isa::Reference, log_softmax_reference);

}  // namespace ember
