// conv2d: 2-D cross-correlation as torch.nn.functional.conv2d (stride, padding, dilation,
// groups incl. depthwise, optional bias), with a fused activation after the bias.
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/activation.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;

std::vector<TensorType> infer_conv2d(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& w = ctx.input(1);
  check_same_dtype(ctx, 1);
  reference::ConvParams p = reference::read_conv_params(ctx);
  reference::read_activation(ctx);
  Shape out = reference::conv2d_output_shape(ctx, p, x.shape, w.shape, "input 'input'",
                                             "input 'weight'");
  if (ctx.has_input(2)) {
    const TensorType& b = ctx.input(2);
    check_same_dtype(ctx, 2);
    if (b.ndim() != 1 || (b.shape[0] >= 0 && b.shape[0] != w.shape[0]))
      ctx.fail("input 'bias' has shape ", shape_str(b.shape), ", expected [", w.shape[0],
               "] for weight ", shape_str(w.shape));
  }
  return {{x.dtype, out}};
}

template <typename T>
void conv2d_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const T* bias = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
  Tensor& y = ctx.output(0);
  const reference::ConvParams p = reference::read_conv_params(ctx);
  const reference::Activation act = reference::read_activation(ctx);
  const Planes in = reference::planes_of(x.shape());
  const Planes out = reference::planes_of(y.shape());
  const int64_t out_per_group = out.channels / p.groups;
  const int64_t in_per_group = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = y.data<T>();
  for (int64_t n = 0; n < out.batch; ++n)
    for (int64_t o = 0; o < out.channels; ++o) {
      const int64_t g = o / out_per_group;
      for (int64_t oy = 0; oy < out.height; ++oy)
        for (int64_t ox = 0; ox < out.width; ++ox) {
          double acc = bias ? static_cast<double>(bias[o]) : 0.0;
          for (int64_t ci = 0; ci < in_per_group; ++ci) {
            const int64_t c = g * in_per_group + ci;
            for (int64_t ky = 0; ky < kh; ++ky) {
              const int64_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
              if (iy < 0 || iy >= in.height) continue;
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
                if (ix < 0 || ix >= in.width) continue;
                acc += static_cast<double>(px[((n * in.channels + c) * in.height + iy) * in.width + ix]) *
                       static_cast<double>(pw[((o * in_per_group + ci) * kh + ky) * kw + kx]);
              }
            }
          }
          py[((n * out.channels + o) * out.height + oy) * out.width + ox] =
              static_cast<T>(reference::apply_activation(act, acc));
        }
    }
}

void conv2d_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "conv2d", [&] { conv2d_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(conv2d)
    .doc("2-D convolution (cross-correlation) as torch.nn.functional.conv2d, then the fused "
         "activation. input [N, C, H, W] or [C, H, W], weight [O, C/groups, kH, kW], bias [O].")
    .input("input", kFloatTypes)
    .input("weight", kFloatTypes)
    .optional_input("bias", kFloatTypes)
    .output("output")
    .attr("stride", AttrValue::Ints({1, 1}), "(height, width) step of the window")
    .attr("padding", AttrValue::Ints({0, 0}), "zeros added on both sides of (height, width)")
    .attr("dilation", AttrValue::Ints({1, 1}), "spacing of the kernel taps")
    .attr("groups", AttrValue::Int(1), "channel groups; groups = C is depthwise")
    .attr("activation", AttrValue::String("none"), "'none', 'relu' or 'relu6', after the bias")
    .infer(infer_conv2d)
    .kernel(DType::Undefined, Isa::Reference, conv2d_reference);

}  // namespace ember
