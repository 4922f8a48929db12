// linear: y = x W^T + b over the last dim of x (torch.nn.functional.linear), then the fused
// activation.
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/activation.h"

namespace ember {
namespace {

std::vector<TensorType> infer_linear(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& w = ctx.input(1);
  reference::read_activation(ctx);
  check_same_dtype(ctx, 1);
  if (x.ndim() < 1) ctx.fail("input 'input' must have at least 1 dim [*, in_features], got a scalar");
  if (w.ndim() != 2)
    ctx.fail("input 'weight' must be [out_features, in_features], got shape ", shape_str(w.shape));
  const int64_t in = x.shape.back();
  if (in >= 0 && w.shape[1] >= 0 && in != w.shape[1])
    ctx.fail("input 'input' ", shape_str(x.shape), " has ", in, " features, but weight ",
             shape_str(w.shape), " expects ", w.shape[1]);
  if (ctx.has_input(2)) {
    const TensorType& b = ctx.input(2);
    check_same_dtype(ctx, 2);
    if (b.ndim() != 1 || (b.shape[0] >= 0 && w.shape[0] >= 0 && b.shape[0] != w.shape[0]))
      ctx.fail("input 'bias' has shape ", shape_str(b.shape), ", expected [", w.shape[0],
               "] for weight ", shape_str(w.shape));
  }
  Shape out = x.shape;
  out.back() = w.shape[0];
  return {{x.dtype, out}};
}

template <typename T>
void linear_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const T* bias = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
  const reference::Activation act = reference::read_activation(ctx);
  const int64_t in = w.dim(1), out = w.dim(0);
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = ctx.output(0).data<T>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias ? static_cast<double>(bias[o]) : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(px[r * in + i]) * static_cast<double>(pw[o * in + i]);
      py[r * out + o] = static_cast<T>(reference::apply_activation(act, acc));
    }
}

void linear_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "linear", [&] { linear_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(linear)
    .doc("x W^T + b as torch.nn.functional.linear, then the fused activation. "
         "input [*, in], weight [out, in], bias [out] -> [*, out].")
    .input("input", kFloatTypes)
    .input("weight", kFloatTypes)
    .optional_input("bias", kFloatTypes)
    .output("output")
    .attr("activation", AttrValue::String("none"), "'none', 'relu' or 'relu6', after the bias")
    .infer(infer_linear)
    .kernel(DType::Undefined, Isa::Reference, linear_reference);

}  // namespace ember
