#include "core/shape_util.h"

#include <algorithm>

namespace ember {

Shape broadcast_shapes(const Shape& a, const Shape& b, const AttrReader& ctx) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da == db || db == 1) {
      out[i] = da;
    } else if (da == 1) {
      out[i] = db;
    } else if (da == -1 || db == -1) {
      out[i] = -1;  // unknown until run time
    } else {
      ctx.fail("shapes ", shape_str(a), " and ", shape_str(b),
               " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    }
  }
  return out;
}

Shape broadcast_strides(const Shape& in, const Shape& out) {
  Shape strides(out.size(), 0);
  Shape in_strides = contiguous_strides(in);
  size_t offset = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    strides[offset + i] = (in[i] == 1 && out[offset + i] != 1) ? 0 : in_strides[i];
  return strides;
}

int64_t normalize_axis(int64_t axis, int64_t ndim, const AttrReader& ctx, const char* attr) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  if (axis < lo || axis > hi)
    ctx.fail("attribute '", attr, "' = ", axis, " is out of range for a tensor of rank ", ndim,
             " (expected in [", lo, ", ", hi, "])");
  return axis < 0 ? axis + std::max<int64_t>(ndim, 1) : axis;
}

void check_same_dtype(const InferContext& ctx, int64_t i, int64_t ref) {
  if (ctx.has_input(i) && ctx.input(i).dtype != ctx.input(ref).dtype)
    ctx.fail("input '", ctx.input_name(i), "' has dtype ", dtype_name(ctx.input(i).dtype),
             ", but input '", ctx.input_name(ref), "' has ", dtype_name(ctx.input(ref).dtype));
}

std::vector<TensorType> infer_same_as_input(const InferContext& ctx) { return {ctx.input(0)}; }

std::vector<TensorType> infer_broadcast_binary(const InferContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (a.dtype != b.dtype)
    ctx.fail("inputs have different dtypes: ", dtype_name(a.dtype), " and ", dtype_name(b.dtype));
  return {{a.dtype, broadcast_shapes(a.shape, b.shape, ctx)}};
}

std::vector<TensorType> infer_broadcast_compare(const InferContext& ctx) {
  auto out = infer_broadcast_binary(ctx);
  out[0].dtype = DType::Bool;
  return out;
}

}  // namespace ember
