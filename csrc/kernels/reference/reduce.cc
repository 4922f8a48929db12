// Reductions over a list of dims: sum, mean, max, min, var; and argmax over one dim.
//
// PyTorch semantics: `dim` = [] reduces every dim; negative dims count from the end; a dim may
// appear once; `keepdim` keeps reduced dims as size 1. sum of integers/bool gives int64 (as
// torch.sum); max/min/argmax over an empty dim are errors; NaN propagates through max/min and
// is the maximum for argmax; argmax ties pick the first index.
//
// The reference loop visits the input in row-major order and folds each element into the
// accumulator of its output position, so "first" means "lowest index along the reduced dims".
// Float sums accumulate in double.
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

// Which input dims are reduced, from the `dim` attribute (ints, [] = all).
std::vector<char> reduced_dims(const AttrReader& ctx, int64_t ndim) {
  std::vector<char> reduced(static_cast<size_t>(ndim), false);
  const auto& dims = ctx.attr_ints("dim");
  if (dims.empty()) {
    reduced.assign(static_cast<size_t>(ndim), true);
    return reduced;
  }
  std::vector<char> seen(static_cast<size_t>(std::max<int64_t>(ndim, 1)), false);
  for (int64_t d : dims) {
    int64_t axis = normalize_axis(d, ndim, ctx, "dim");
    if (seen[static_cast<size_t>(axis)])
      ctx.fail("attribute 'dim' names dim ", axis, " more than once");
    seen[static_cast<size_t>(axis)] = true;
    if (ndim > 0) reduced[static_cast<size_t>(axis)] = true;
  }
  return reduced;
}

Shape reduced_shape(const Shape& in, const std::vector<char>& reduced, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!reduced[i]) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// Fails when a reduced dim has size 0 (ops with no identity element).
void require_nonempty(const InferContext& ctx, const Shape& in, const std::vector<char>& reduced) {
  for (size_t i = 0; i < in.size(); ++i)
    if (reduced[i] && in[i] == 0)
      ctx.fail("cannot reduce dim ", i, " of size 0 (input 'x' has shape ", shape_str(in),
               "): the result has no identity element");
}

std::vector<TensorType> infer_reduce(const InferContext& ctx, DType out_dtype, bool needs_nonempty) {
  const TensorType& x = ctx.input(0);
  std::vector<char> reduced = reduced_dims(ctx, x.ndim());
  if (needs_nonempty) require_nonempty(ctx, x.shape, reduced);
  return {{out_dtype, reduced_shape(x.shape, reduced, ctx.attr_bool("keepdim"))}};
}

DType sum_dtype(DType t) { return is_floating(t) ? t : DType::Int64; }

std::vector<TensorType> infer_sum(const InferContext& ctx) {
  return infer_reduce(ctx, sum_dtype(ctx.input(0).dtype), false);
}
std::vector<TensorType> infer_same_dtype(const InferContext& ctx) {
  return infer_reduce(ctx, ctx.input(0).dtype, false);
}
std::vector<TensorType> infer_extremum(const InferContext& ctx) {
  return infer_reduce(ctx, ctx.input(0).dtype, true);
}

// For each input element (row-major), the flat index of the output element it folds into.
// Calls fn(input_index, output_index).
template <typename F>
void for_each_reduced(const Shape& in, const std::vector<char>& reduced, F&& fn) {
  const int64_t total = shape_numel(in);
  if (total == 0) return;
  const size_t nd = in.size();
  if (nd == 0) {  // a scalar folds into the single output element
    fn(0, 0);
    return;
  }
  // Output strides over the kept dims, 0 on reduced dims.
  Shape out_stride(nd, 0);
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {
    if (reduced[static_cast<size_t>(d)]) continue;
    out_stride[static_cast<size_t>(d)] = s;
    s *= in[static_cast<size_t>(d)];
  }
  std::vector<int64_t> index(nd, 0);
  int64_t o = 0;
  for (int64_t i = 0; i < total; ++i) {
    fn(i, o);
    for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {
      size_t k = static_cast<size_t>(d);
      if (++index[k] < in[k]) {
        o += out_stride[k];
        break;
      }
      o -= out_stride[k] * (in[k] - 1);
      index[k] = 0;
    }
  }
}

// Number of input elements folded into each output element.
int64_t reduction_size(const Shape& in, const std::vector<char>& reduced) {
  int64_t n = 1;
  for (size_t i = 0; i < in.size(); ++i)
    if (reduced[i]) n *= in[i];
  return n;
}

void sum_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<char> reduced = reduced_dims(ctx, x.ndim());
  EMBER_DISPATCH_ALL(x.dtype(), "sum", [&] {
    const scalar_t* px = x.data<scalar_t>();
    if constexpr (std::is_floating_point_v<scalar_t>) {
      std::vector<double> acc(static_cast<size_t>(y.numel()), 0.0);
      for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) { acc[o] += px[i]; });
      scalar_t* py = y.data<scalar_t>();
      for (size_t o = 0; o < acc.size(); ++o) py[o] = static_cast<scalar_t>(acc[o]);
    } else {
      // int64 accumulation wraps around like torch's (unsigned arithmetic avoids UB).
      std::vector<uint64_t> acc(static_cast<size_t>(y.numel()), 0);
      for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) {
        acc[o] += static_cast<uint64_t>(static_cast<int64_t>(px[i]));
      });
      int64_t* py = y.data<int64_t>();
      for (size_t o = 0; o < acc.size(); ++o) py[o] = static_cast<int64_t>(acc[o]);
    }
  });
}

void mean_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<char> reduced = reduced_dims(ctx, x.ndim());
  const double n = static_cast<double>(reduction_size(x.shape(), reduced));
  EMBER_DISPATCH_FLOAT(x.dtype(), "mean", [&] {
    const scalar_t* px = x.data<scalar_t>();
    std::vector<double> acc(static_cast<size_t>(y.numel()), 0.0);
    for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) { acc[o] += px[i]; });
    scalar_t* py = y.data<scalar_t>();
    // 0 / 0 = NaN for an empty reduction, as torch.mean.
    for (size_t o = 0; o < acc.size(); ++o) py[o] = static_cast<scalar_t>(acc[o] / n);
  });
}

template <bool kMax>
void extremum_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<char> reduced = reduced_dims(ctx, x.ndim());
  EMBER_DISPATCH_ALL(x.dtype(), kMax ? "max" : "min", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    std::vector<char> started(static_cast<size_t>(y.numel()), false);
    for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) {
      scalar_t v = px[i];
      if (!started[o]) {
        py[o] = v;
        started[o] = true;
        return;
      }
      scalar_t cur = py[o];
      if (cur != cur) return;  // NaN sticks
      if (v != v || (kMax ? v > cur : v < cur)) py[o] = v;
    });
  });
}

void variance_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<char> reduced = reduced_dims(ctx, x.ndim());
  const int64_t n = reduction_size(x.shape(), reduced);
  // Bessel-style correction; a non-positive denominator gives inf or NaN, as in torch.
  const double denom = std::max(
      0.0, static_cast<double>(n) - static_cast<double>(ctx.attr_int("correction")));
  EMBER_DISPATCH_FLOAT(x.dtype(), "var", [&] {
    const scalar_t* px = x.data<scalar_t>();
    const size_t m = static_cast<size_t>(y.numel());
    std::vector<double> mean(m, 0.0), squares(m, 0.0);
    // Two passes: the mean, then the squared deviations from it.
    for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) { mean[o] += px[i]; });
    for (double& v : mean) v /= static_cast<double>(n);
    for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) {
      double d = static_cast<double>(px[i]) - mean[o];
      squares[o] += d * d;
    });
    scalar_t* py = y.data<scalar_t>();
    for (size_t o = 0; o < m; ++o) py[o] = static_cast<scalar_t>(squares[o] / denom);
  });
}

// argmax takes one dim (an int), so it wraps it as the list the shared helpers read.
std::vector<char> argmax_reduced(const AttrReader& ctx, int64_t ndim) {
  int64_t axis = normalize_axis(ctx.attr_int("dim"), ndim, ctx, "dim");
  std::vector<char> reduced(static_cast<size_t>(ndim), false);
  if (ndim > 0) reduced[static_cast<size_t>(axis)] = true;
  return reduced;
}

std::vector<TensorType> infer_argmax(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  std::vector<char> reduced = argmax_reduced(ctx, x.ndim());
  require_nonempty(ctx, x.shape, reduced);
  return {{DType::Int64, reduced_shape(x.shape, reduced, ctx.attr_bool("keepdim"))}};
}

void argmax_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<char> reduced = argmax_reduced(ctx, x.ndim());
  // Position along the reduced dim of input element i.
  int64_t axis = x.ndim() == 0 ? 0 : normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx);
  int64_t inner = 1, size = 1;
  if (x.ndim() > 0) {
    for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
    size = x.dim(axis);
  }
  EMBER_DISPATCH_NUMERIC(x.dtype(), "argmax", [&] {
    const scalar_t* px = x.data<scalar_t>();
    int64_t* py = y.data<int64_t>();
    std::vector<scalar_t> best(static_cast<size_t>(y.numel()));
    std::vector<char> started(static_cast<size_t>(y.numel()), false);
    for_each_reduced(x.shape(), reduced, [&](int64_t i, int64_t o) {
      scalar_t v = px[i];
      int64_t k = (i / inner) % size;
      bool take = !started[o];
      if (!take) {
        scalar_t cur = best[o];
        // NaN is the maximum; the first NaN wins. Ties keep the first index.
        take = (cur == cur) && (v != v || v > cur);
      }
      if (take) {
        best[o] = v;
        py[o] = k;
        started[o] = true;
      }
    });
  });
}

}  // namespace

#define EMBER_REDUCE_OP(NAME, TYPES, INFER, KERNEL, DOC)                                  \
  EMBER_REGISTER_OP(NAME)                                                                 \
      .doc(DOC)                                                                           \
      .input("x", TYPES)                                                                  \
      .output("y")                                                                        \
      .attr("dim", AttrValue::Ints({}), "dims to reduce ([] = all); negative counts from the end") \
      .attr("keepdim", AttrValue::Bool(false), "keep reduced dims as size 1")             \
      .infer(INFER)                                                                       \
      .kernel(DType::Undefined, Isa::Reference, KERNEL)

EMBER_REDUCE_OP(sum, kAllTypes, infer_sum, sum_reference,
                "Sum over `dim`; integer and bool inputs sum to int64 (as torch.sum).");
EMBER_REDUCE_OP(mean, kFloatTypes, infer_same_dtype, mean_reference,
                "Arithmetic mean over `dim` (NaN over an empty dim).");
EMBER_REDUCE_OP(max, kAllTypes, infer_extremum, extremum_reference<true>,
                "Maximum over `dim` (values only, torch.amax); NaN propagates; empty dims are an error.");
EMBER_REDUCE_OP(min, kAllTypes, infer_extremum, extremum_reference<false>,
                "Minimum over `dim` (values only, torch.amin); NaN propagates; empty dims are an error.");
EMBER_REDUCE_OP(var, kFloatTypes, infer_same_dtype, variance_reference,
                "Variance over `dim`: sum((x - mean)^2) / max(0, N - correction).")
    .attr("correction", AttrValue::Int(1), "subtracted from N in the denominator (1 = unbiased)");
#undef EMBER_REDUCE_OP

EMBER_REGISTER_OP(argmax)
    .doc("Index of the maximum along `dim` -> int64; ties give the first index, NaN is the "
         "maximum; an empty dim is an error.")
    .input("x", kNumericTypes)
    .output("indices")
    .attr("dim", AttrType::Int, "the dim to reduce; negative counts from the end")
    .attr("keepdim", AttrValue::Bool(false), "keep the reduced dim as size 1")
    .infer(infer_argmax)
    .kernel(DType::Undefined, Isa::Reference, argmax_reference);

}  // namespace ember
