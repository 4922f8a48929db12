// pad: constant padding in torch.nn.functional.pad order (last dim first, (left, right) pairs);
// negative amounts crop.
#include <climits>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/convert.h"
#include "kernels/reference/strided_copy.h"

namespace ember {
namespace {

struct PadPlan {
  Shape out;           // output shape
  Shape before;        // padding before each dim (may be negative: a crop)
  Shape after;
};

PadPlan plan_pad(const AttrReader& ctx, const Shape& in) {
  const auto& pads = ctx.attr_ints("pads");
  const size_t nd = in.size();
  if (pads.size() % 2 != 0 || pads.size() > 2 * nd)
    ctx.fail("attribute 'pads' has ", pads.size(), " entries; expected an even number, at most 2 * rank (",
             2 * nd, ") for input 'x' of shape ", shape_str(in));
  PadPlan plan{in, Shape(nd, 0), Shape(nd, 0)};
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    size_t d = nd - 1 - k;
    int64_t left = pads[2 * k], right = pads[2 * k + 1];
    const int64_t big = int64_t{1} << 62;
    if (left <= -big || left >= big || right <= -big || right >= big)
      ctx.fail("attribute 'pads' has an absurd amount for dim ", d);
    plan.before[d] = left;
    plan.after[d] = right;
    if (in[d] < 0) {
      plan.out[d] = -1;
      continue;
    }
    plan.out[d] = in[d] + left + right;
    if (plan.out[d] < 0)
      ctx.fail("padding (", left, ", ", right, ") of dim ", d, " of input 'x' ", shape_str(in),
               " gives a negative size ", plan.out[d]);
  }
  return plan;
}

std::vector<TensorType> infer_pad(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  Shape out = plan_pad(ctx, x.shape).out;
  // The output must be addressable: its size in bytes fits in int64.
  int64_t limit = INT64_MAX / static_cast<int64_t>(dtype_size(x.dtype)), n = 1;
  for (int64_t d : out) {
    if (d > 0 && n > limit / d) ctx.fail("padded shape ", shape_str(out), " has too many bytes");
    if (d >= 0) n *= d;
  }
  return {{x.dtype, out}};
}

void pad_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const double value = ctx.attr_float("value");
  EMBER_DISPATCH_ALL(y.dtype(), "pad", [&] {
    scalar_t fill = reference::convert_value<scalar_t>(value);
    scalar_t* py = y.data<scalar_t>();
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = fill;
  });
  // Copy the part of x that survives the crops into its place in y.
  PadPlan plan = plan_pad(ctx, x.shape());
  const size_t nd = x.shape().size();
  Shape box(nd), x_strides = contiguous_strides(x.shape()), y_strides = contiguous_strides(y.shape());
  int64_t src = 0, dst = 0;
  for (size_t d = 0; d < nd; ++d) {
    int64_t crop_before = std::max<int64_t>(0, -plan.before[d]);
    int64_t crop_after = std::max<int64_t>(0, -plan.after[d]);
    box[d] = x.shape()[d] - crop_before - crop_after;
    if (box[d] <= 0) return;  // nothing of x survives
    src += crop_before * x_strides[d];
    dst += std::max<int64_t>(0, plan.before[d]) * y_strides[d];
  }
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype()));
  reference::strided_copy(static_cast<const char*>(x.raw_data()) + src * es, x_strides,
                          static_cast<char*>(y.raw_data()) + dst * es, y_strides, box,
                          static_cast<size_t>(es));
}

}  // namespace

EMBER_REGISTER_OP(pad)
    .doc("Constant padding (F.pad order: last dim first, (left, right) pairs); negative amounts "
         "crop.")
    .input("x", kAllTypes)
    .output("y")
    .attr("pads", AttrType::Ints, "(left, right) per dim, last dim first")
    .attr("value", AttrValue::Float(0.0), "fill value, converted to x's dtype")
    .infer(infer_pad)
    .kernel(DType::Undefined, Isa::Reference, pad_reference);

}  // namespace ember
