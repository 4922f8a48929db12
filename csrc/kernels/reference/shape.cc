// Shape and data-movement ops: reshape, flatten, transpose, expand, concat, split, slice.
//
// They move bytes without looking at them, so one kernel (DType::Undefined) serves every dtype.
// Shape functions accept -1 (unknown until run time) in input shapes and propagate it where the
// output size depends on it.
#include <algorithm>
#include <climits>
#include <cstring>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/strided_copy.h"

namespace ember {
namespace {

bool all_known(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
}

// Product of the known (>= 0) dims, failing (instead of overflowing) on absurd attribute values.
int64_t checked_product(const Shape& dims, const AttrReader& ctx, const char* what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) continue;
    if (d != 0 && n > INT64_MAX / d) ctx.fail(what, " ", shape_str(dims), " has too many elements");
    n *= d;
  }
  return n;
}

void copy_bytes(const Tensor& x, Tensor& y) {
  if (x.raw_data() != y.raw_data() && x.nbytes() > 0)
    std::memcpy(y.raw_data(), x.raw_data(), x.nbytes());
}

// ---------------------------------------------------------------- reshape

std::vector<TensorType> infer_reshape(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  Shape out = ctx.attr_ints("shape");
  int64_t infer_at = -1;
  Shape known;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer_at >= 0) ctx.fail("attribute 'shape' ", shape_str(out), " has more than one -1");
      infer_at = static_cast<int64_t>(i);
    } else if (out[i] < 0) {
      ctx.fail("attribute 'shape' ", shape_str(out), " has a negative size ", out[i]);
    } else {
      known.push_back(out[i]);
    }
  }
  int64_t known_numel = checked_product(known, ctx, "attribute 'shape'");
  if (!all_known(x.shape)) {
    return {{x.dtype, out}};  // a -1 stays unknown until run time
  }
  int64_t n = x.numel();
  if (infer_at >= 0) {
    if (known_numel == 0 || n % known_numel != 0)
      ctx.fail("cannot reshape input 'x' of shape ", shape_str(x.shape), " (", n,
               " elements) into ", shape_str(out));
    out[static_cast<size_t>(infer_at)] = n / known_numel;
  } else if (known_numel != n) {
    ctx.fail("cannot reshape input 'x' of shape ", shape_str(x.shape), " (", n,
             " elements) into ", shape_str(out), " (", known_numel, " elements)");
  }
  return {{x.dtype, out}};
}

void reshape_reference(OpContext& ctx) { copy_bytes(ctx.input(0), ctx.output(0)); }

// ---------------------------------------------------------------- flatten

std::vector<TensorType> infer_flatten(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.ndim() == 0) {
    normalize_axis(ctx.attr_int("start_dim"), 0, ctx, "start_dim");
    normalize_axis(ctx.attr_int("end_dim"), 0, ctx, "end_dim");
    return {{x.dtype, {1}}};  // as torch.flatten of a scalar
  }
  int64_t start = normalize_axis(ctx.attr_int("start_dim"), x.ndim(), ctx, "start_dim");
  int64_t end = normalize_axis(ctx.attr_int("end_dim"), x.ndim(), ctx, "end_dim");
  if (start > end)
    ctx.fail("attribute 'start_dim' (", start, ") comes after 'end_dim' (", end, ")");
  Shape out(x.shape.begin(), x.shape.begin() + start);
  Shape merged(x.shape.begin() + start, x.shape.begin() + end + 1);
  out.push_back(all_known(merged) ? shape_numel(merged) : -1);
  out.insert(out.end(), x.shape.begin() + end + 1, x.shape.end());
  return {{x.dtype, out}};
}

// ---------------------------------------------------------------- transpose

std::vector<int64_t> checked_permutation(const AttrReader& ctx, int64_t ndim) {
  const auto& perm = ctx.attr_ints("perm");
  if (static_cast<int64_t>(perm.size()) != ndim)
    ctx.fail("attribute 'perm' has ", perm.size(), " entries, input 'x' has rank ", ndim);
  std::vector<int64_t> out;
  std::vector<char> seen(static_cast<size_t>(ndim), 0);
  for (int64_t p : perm) {
    int64_t axis = normalize_axis(p, ndim, ctx, "perm");
    if (seen[static_cast<size_t>(axis)]) ctx.fail("attribute 'perm' repeats dim ", axis);
    seen[static_cast<size_t>(axis)] = 1;
    out.push_back(axis);
  }
  return out;
}

std::vector<TensorType> infer_transpose(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  Shape out;
  for (int64_t p : checked_permutation(ctx, x.ndim())) out.push_back(x.shape[static_cast<size_t>(p)]);
  return {{x.dtype, out}};
}

void transpose_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  Shape in_strides = contiguous_strides(x.shape());
  Shape src_strides;  // input stride of each output dim
  for (int64_t p : checked_permutation(ctx, x.ndim())) src_strides.push_back(in_strides[static_cast<size_t>(p)]);
  reference::strided_copy(x.raw_data(), src_strides, y.raw_data(), contiguous_strides(y.shape()),
                          y.shape(), dtype_size(x.dtype()));
}

// ---------------------------------------------------------------- expand

std::vector<TensorType> infer_expand(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const Shape& target = ctx.attr_ints("shape");
  if (target.size() < x.shape.size())
    ctx.fail("attribute 'shape' ", shape_str(target), " has fewer dims than input 'x' ",
             shape_str(x.shape));
  size_t lead = target.size() - x.shape.size();
  Shape out(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t t = target[i];
    if (i < lead) {
      if (t < 0) ctx.fail("attribute 'shape' ", shape_str(target), ": size ", t, " at new leading dim ", i, " must be >= 0");
      out[i] = t;
      continue;
    }
    int64_t d = x.shape[i - lead];
    if (t == -1) {
      out[i] = d;
    } else if (t < -1) {
      ctx.fail("attribute 'shape' ", shape_str(target), " has a negative size ", t);
    } else if (d == t || d == 1 || d == -1) {
      out[i] = t;
    } else {
      ctx.fail("cannot expand input 'x' of shape ", shape_str(x.shape), " to ", shape_str(target),
               " (dim ", i, ": ", d, " is neither 1 nor ", t, ")");
    }
  }
  if (checked_product(out, ctx, "expanded shape") > INT64_MAX / static_cast<int64_t>(dtype_size(x.dtype)))
    ctx.fail("expanded shape ", shape_str(out), " has too many bytes");
  return {{x.dtype, out}};
}

void expand_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  reference::strided_copy(x.raw_data(), broadcast_strides(x.shape(), y.shape()), y.raw_data(),
                          contiguous_strides(y.shape()), y.shape(), dtype_size(x.dtype()));
}

// ---------------------------------------------------------------- concat

std::vector<TensorType> infer_concat(const InferContext& ctx) {
  const TensorType& first = ctx.input(0);
  if (first.ndim() == 0) ctx.fail("input '", ctx.input_name(0), "' is a scalar; concat needs rank >= 1");
  int64_t axis = normalize_axis(ctx.attr_int("dim"), first.ndim(), ctx, "dim");
  Shape out = first.shape;
  for (int64_t i = 1; i < ctx.num_inputs(); ++i) {
    const TensorType& t = ctx.input(i);
    if (t.dtype != first.dtype)
      ctx.fail("input '", ctx.input_name(i), "' has dtype ", dtype_name(t.dtype), ", input '",
               ctx.input_name(0), "' has ", dtype_name(first.dtype));
    if (t.ndim() != first.ndim())
      ctx.fail("input '", ctx.input_name(i), "' has rank ", t.ndim(), ", input '", ctx.input_name(0),
               "' has rank ", first.ndim());
    for (int64_t d = 0; d < t.ndim(); ++d) {
      size_t u = static_cast<size_t>(d);
      if (d == axis) {
        out[u] = (out[u] < 0 || t.shape[u] < 0) ? -1 : out[u] + t.shape[u];
      } else if (t.shape[u] != out[u] && t.shape[u] >= 0 && out[u] >= 0) {
        ctx.fail("input '", ctx.input_name(i), "' has shape ", shape_str(t.shape),
                 ", which differs from ", shape_str(first.shape), " in dim ", d,
                 " (only dim ", axis, " may differ)");
      } else if (out[u] < 0) {
        out[u] = t.shape[u];
      }
    }
  }
  return {{first.dtype, out}};
}

// Rows of `outer` blocks: each input contributes a block of dim_size * inner elements per row.
void concat_reference(OpContext& ctx) {
  Tensor& y = ctx.output(0);
  int64_t axis = normalize_axis(ctx.attr_int("dim"), y.ndim(), ctx, "dim");
  const size_t es = dtype_size(y.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.dim(d);
  for (int64_t d = axis + 1; d < y.ndim(); ++d) inner *= y.dim(d);
  const int64_t row = y.dim(axis) * inner * static_cast<int64_t>(es);
  char* dst = static_cast<char*>(y.raw_data());
  int64_t offset = 0;
  for (int64_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& x = ctx.input(i);
    const int64_t block = x.dim(axis) * inner * static_cast<int64_t>(es);
    const char* src = static_cast<const char*>(x.raw_data());
    if (block > 0)
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + o * row + offset, src + o * block, static_cast<size_t>(block));
    offset += block;
  }
}

// ---------------------------------------------------------------- split

std::vector<TensorType> infer_split(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.ndim() == 0) ctx.fail("input 'x' is a scalar; split needs rank >= 1");
  int64_t axis = normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx, "dim");
  const auto& sizes = ctx.attr_ints("sizes");
  if (sizes.empty()) ctx.fail("attribute 'sizes' is empty");
  // A caller that names its outputs must name one per size (1 = unspecified).
  if (ctx.num_outputs() > 1 && ctx.num_outputs() != static_cast<int64_t>(sizes.size()))
    ctx.fail("attribute 'sizes' has ", sizes.size(), " entries but ", ctx.num_outputs(),
             " outputs were requested");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) ctx.fail("attribute 'sizes' ", shape_str(sizes), " has a negative size ", s);
    if (total > INT64_MAX - s) ctx.fail("attribute 'sizes' ", shape_str(sizes), " overflows");
    total += s;
  }
  int64_t n = x.shape[static_cast<size_t>(axis)];
  if (n >= 0 && total != n)
    ctx.fail("attribute 'sizes' ", shape_str(sizes), " sums to ", total, ", but dim ", axis,
             " of input 'x' ", shape_str(x.shape), " has size ", n);
  std::vector<TensorType> out;
  for (int64_t s : sizes) {
    TensorType t = x;
    t.shape[static_cast<size_t>(axis)] = s;
    out.push_back(t);
  }
  return out;
}

void split_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t axis = normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx, "dim");
  const size_t es = dtype_size(x.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  const int64_t row = x.dim(axis) * inner * static_cast<int64_t>(es);
  const char* src = static_cast<const char*>(x.raw_data());
  int64_t offset = 0;
  for (int64_t i = 0; i < ctx.num_outputs(); ++i) {
    Tensor& y = ctx.output(i);
    const int64_t block = y.dim(axis) * inner * static_cast<int64_t>(es);
    char* dst = static_cast<char*>(y.raw_data());
    if (block > 0)
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + o * block, src + o * row + offset, static_cast<size_t>(block));
    offset += block;
  }
}

// ---------------------------------------------------------------- slice

struct SlicePlan {
  Shape start, step, out;  // per input dim
};

// Python slice semantics per dim: negative start/end count from the end, then clamp to
// [0, size]; steps >= 1. Dims of unknown size (-1) give an unknown output size.
SlicePlan plan_slice(const AttrReader& ctx, const Shape& in) {
  const auto& dims = ctx.attr_ints("dims");
  const auto& starts = ctx.attr_ints("starts");
  const auto& ends = ctx.attr_ints("ends");
  const auto& steps = ctx.attr_ints("steps");
  if (starts.size() != dims.size() || ends.size() != dims.size() ||
      (!steps.empty() && steps.size() != dims.size()))
    ctx.fail("attributes 'dims', 'starts', 'ends' and 'steps' must have the same length (got ",
             dims.size(), ", ", starts.size(), ", ", ends.size(), ", ", steps.size(),
             "; 'steps' may be empty)");
  const int64_t ndim = static_cast<int64_t>(in.size());
  SlicePlan plan{Shape(in.size(), 0), Shape(in.size(), 1), in};
  std::vector<char> seen(in.size(), 0);
  for (size_t i = 0; i < dims.size(); ++i) {
    if (ndim == 0) ctx.fail("input 'x' is a scalar and cannot be sliced");
    int64_t d = normalize_axis(dims[i], ndim, ctx, "dims");
    size_t u = static_cast<size_t>(d);
    if (seen[u]) ctx.fail("attribute 'dims' names dim ", d, " more than once");
    seen[u] = 1;
    int64_t step = steps.empty() ? 1 : steps[i];
    if (step < 1) ctx.fail("attribute 'steps' has ", step, " for dim ", d, "; steps must be >= 1");
    plan.step[u] = step;
    int64_t n = in[u];
    if (n < 0) {
      plan.out[u] = -1;
      continue;
    }
    int64_t s = starts[i] < 0 ? std::max<int64_t>(0, starts[i] + n) : std::min(starts[i], n);
    int64_t e = ends[i] < 0 ? std::max<int64_t>(0, ends[i] + n) : std::min(ends[i], n);
    plan.start[u] = s;
    plan.out[u] = e > s ? (e - s - 1) / step + 1 : 0;
  }
  return plan;
}

std::vector<TensorType> infer_slice(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  return {{x.dtype, plan_slice(ctx, x.shape).out}};
}

void slice_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  if (y.numel() == 0) return;
  SlicePlan plan = plan_slice(ctx, x.shape());
  Shape in_strides = contiguous_strides(x.shape());
  Shape src_strides(in_strides.size());
  int64_t offset = 0;
  for (size_t d = 0; d < in_strides.size(); ++d) {
    src_strides[d] = in_strides[d] * plan.step[d];
    offset += plan.start[d] * in_strides[d];
  }
  const size_t es = dtype_size(x.dtype());
  reference::strided_copy(static_cast<const char*>(x.raw_data()) + offset * static_cast<int64_t>(es),
                          src_strides, y.raw_data(), contiguous_strides(y.shape()), y.shape(), es);
}

}  // namespace

EMBER_REGISTER_OP(reshape)
    .doc("The same elements in a new shape (row-major order); one size may be -1 (inferred).")
    .input("x", kAllTypes)
    .output("y")
    .attr("shape", AttrType::Ints, "the new shape; at most one -1")
    .infer(infer_reshape)
    .inplace(0)
    .kernel(DType::Undefined, Isa::Reference, reshape_reference);

EMBER_REGISTER_OP(flatten)
    .doc("Merges dims start_dim..end_dim into one (torch.flatten); a scalar becomes shape [1].")
    .input("x", kAllTypes)
    .output("y")
    .attr("start_dim", AttrValue::Int(0), "first dim to merge")
    .attr("end_dim", AttrValue::Int(-1), "last dim to merge (inclusive)")
    .infer(infer_flatten)
    .inplace(0)
    .kernel(DType::Undefined, Isa::Reference, reshape_reference);

EMBER_REGISTER_OP(transpose)
    .doc("Permutes dims (torch.permute): output dim i is input dim perm[i].")
    .input("x", kAllTypes)
    .output("y")
    .attr("perm", AttrType::Ints, "a permutation of the input's dims")
    .infer(infer_transpose)
    .kernel(DType::Undefined, Isa::Reference, transpose_reference);

EMBER_REGISTER_OP(expand)
    .doc("Broadcasts x to `shape` (torch.expand): size-1 dims repeat, -1 keeps a dim, new dims lead.")
    .input("x", kAllTypes)
    .output("y")
    .attr("shape", AttrType::Ints, "the target shape; -1 keeps the input's size")
    .infer(infer_expand)
    .kernel(DType::Undefined, Isa::Reference, expand_reference);

EMBER_REGISTER_OP(concat)
    .doc("Joins tensors of equal dtype and rank along `dim` (torch.cat); other dims must match.")
    .variadic_input("inputs", kAllTypes)
    .output("y")
    .attr("dim", AttrValue::Int(0), "the dim to join along")
    .infer(infer_concat)
    .kernel(DType::Undefined, Isa::Reference, concat_reference);

EMBER_REGISTER_OP(split)
    .doc("Splits x along `dim` into pieces of the given sizes (torch.split with a list); one "
         "output per size.")
    .input("x", kAllTypes)
    .variadic_output("outputs")
    .attr("sizes", AttrType::Ints, "size of each piece; they must sum to x.shape[dim]")
    .attr("dim", AttrValue::Int(0), "the dim to split")
    .infer(infer_split)
    .kernel(DType::Undefined, Isa::Reference, split_reference);

EMBER_REGISTER_OP(slice)
    .doc("x[start:end:step] on the given dims with Python slice clamping; negative starts/ends "
         "count from the end; steps >= 1.")
    .input("x", kAllTypes)
    .output("y")
    .attr("dims", AttrType::Ints, "dims to slice")
    .attr("starts", AttrType::Ints, "start per dim")
    .attr("ends", AttrType::Ints, "end (exclusive) per dim")
    .attr("steps", AttrValue::Ints({}), "step per dim ([] = all 1)")
    .infer(infer_slice)
    .kernel(DType::Undefined, Isa::Reference, slice_reference);

}  // namespace ember
