// Gradients of conv2d (without its activation; the front end applies the activation's own
// gradient first): conv2d_grad_input (the transposed convolution of grad_output with the weight)
// and conv2d_grad_weight (the correlation of grad_output with the input). Both walk the forward
// op's loops and accumulate in double; the attributes and shape checks are conv2d's.
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;

void check_grad_output(const InferContext& ctx, const Shape& expected, const Shape& input,
                       const Shape& weight) {
  const Shape& got = ctx.input(0).shape;
  if (!reference::shapes_compatible(got, expected))
    ctx.fail("input 'grad_output' has shape ", shape_str(got), ", but conv2d of input ",
             shape_str(input), " with weight ", shape_str(weight), " gives ", shape_str(expected));
}

std::vector<TensorType> infer_conv2d_grad_input(const InferContext& ctx) {
  check_same_dtype(ctx, 1);
  const reference::ConvParams p = reference::read_conv_params(ctx);
  const Shape input = reference::read_shape_attr(ctx, "input_shape");
  const Shape& weight = ctx.input(1).shape;
  const Shape expected = reference::conv2d_output_shape(ctx, p, input, weight,
                                                        "attribute 'input_shape'", "input 'weight'");
  check_grad_output(ctx, expected, input, weight);
  return {{ctx.input(0).dtype, input}};
}

std::vector<TensorType> infer_conv2d_grad_weight(const InferContext& ctx) {
  check_same_dtype(ctx, 1);
  const reference::ConvParams p = reference::read_conv_params(ctx);
  const Shape weight = reference::read_shape_attr(ctx, "weight_shape");
  const Shape& input = ctx.input(1).shape;
  const Shape expected = reference::conv2d_output_shape(ctx, p, input, weight, "input 'input'",
                                                        "attribute 'weight_shape'");
  check_grad_output(ctx, expected, input, weight);
  return {{ctx.input(0).dtype, weight}};
}

// The geometry both kernels share: grad_output (out), input (in) and weight [O, Cg, kH, kW].
struct ConvGradShapes {
  reference::ConvParams p;
  Planes in, out;
  int64_t in_per_group, out_per_group, kh, kw;
};

ConvGradShapes conv_grad_shapes(const OpContext& ctx, const Shape& input, const Shape& weight) {
  ConvGradShapes s;
  s.p = reference::read_conv_params(ctx);
  s.in = reference::planes_of(input);
  s.out = reference::planes_of(ctx.input(0).shape());
  s.in_per_group = weight[1];
  s.out_per_group = weight[0] / s.p.groups;
  s.kh = weight[2];
  s.kw = weight[3];
  return s;
}

template <typename T>
void conv2d_grad_input_loops(const OpContext& ctx) {
  const Tensor& grad_output = ctx.input(0);
  const Tensor& weight = ctx.input(1);
  Tensor& grad_input = ctx.output(0);
  const ConvGradShapes s = conv_grad_shapes(ctx, grad_input.shape(), weight.shape());
  const T* go = grad_output.data<T>();
  const T* w = weight.data<T>();
  std::vector<double> sum(static_cast<size_t>(grad_input.numel()), 0.0);
  for (int64_t n = 0; n < s.out.batch; ++n)
    for (int64_t o = 0; o < s.out.channels; ++o) {
      const int64_t g = o / s.out_per_group;
      for (int64_t oy = 0; oy < s.out.height; ++oy)
        for (int64_t ox = 0; ox < s.out.width; ++ox) {
          const double gv = static_cast<double>(
              go[((n * s.out.channels + o) * s.out.height + oy) * s.out.width + ox]);
          for (int64_t ci = 0; ci < s.in_per_group; ++ci) {
            const int64_t c = g * s.in_per_group + ci;
            for (int64_t ky = 0; ky < s.kh; ++ky) {
              const int64_t iy = oy * s.p.stride[0] - s.p.padding[0] + ky * s.p.dilation[0];
              if (iy < 0 || iy >= s.in.height) continue;
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t ix = ox * s.p.stride[1] - s.p.padding[1] + kx * s.p.dilation[1];
                if (ix < 0 || ix >= s.in.width) continue;
                sum[((n * s.in.channels + c) * s.in.height + iy) * s.in.width + ix] +=
                    gv * static_cast<double>(w[((o * s.in_per_group + ci) * s.kh + ky) * s.kw + kx]);
              }
            }
          }
        }
    }
  T* gi = grad_input.data<T>();
  for (size_t i = 0; i < sum.size(); ++i) gi[i] = static_cast<T>(sum[i]);
}

template <typename T>
void conv2d_grad_weight_loops(const OpContext& ctx) {
  const Tensor& grad_output = ctx.input(0);
  const Tensor& input = ctx.input(1);
  Tensor& grad_weight = ctx.output(0);
  const ConvGradShapes s = conv_grad_shapes(ctx, input.shape(), grad_weight.shape());
  const T* go = grad_output.data<T>();
  const T* x = input.data<T>();
  T* gw = grad_weight.data<T>();
  for (int64_t o = 0; o < s.out.channels; ++o) {
    const int64_t g = o / s.out_per_group;
    for (int64_t ci = 0; ci < s.in_per_group; ++ci) {
      const int64_t c = g * s.in_per_group + ci;
      for (int64_t ky = 0; ky < s.kh; ++ky)
        for (int64_t kx = 0; kx < s.kw; ++kx) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.out.batch; ++n)
            for (int64_t oy = 0; oy < s.out.height; ++oy) {
              const int64_t iy = oy * s.p.stride[0] - s.p.padding[0] + ky * s.p.dilation[0];
              if (iy < 0 || iy >= s.in.height) continue;
              for (int64_t ox = 0; ox < s.out.width; ++ox) {
                const int64_t ix = ox * s.p.stride[1] - s.p.padding[1] + kx * s.p.dilation[1];
                if (ix < 0 || ix >= s.in.width) continue;
                acc += static_cast<double>(go[((n * s.out.channels + o) * s.out.height + oy) * s.out.width + ox]) *
                       static_cast<double>(x[((n * s.in.channels + c) * s.in.height + iy) * s.in.width + ix]);
              }
            }
          gw[((o * s.in_per_group + ci) * s.kh + ky) * s.kw + kx] = static_cast<T>(acc);
        }
    }
  }
}

void conv2d_grad_input_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "conv2d_grad_input",
                       [&] { conv2d_grad_input_loops<scalar_t>(ctx); });
}

void conv2d_grad_weight_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "conv2d_grad_weight",
                       [&] { conv2d_grad_weight_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(conv2d_grad_input)
    .doc("Gradient of conv2d with respect to its input: grad_output [N, O, OH, OW] and weight "
         "-> [N, C, H, W] = input_shape.")
    .input("grad_output", kFloatTypes)
    .input("weight", kFloatTypes)
    .output("grad_input")
    .attr("stride", AttrValue::Ints({1, 1}), "conv2d's stride")
    .attr("padding", AttrValue::Ints({0, 0}), "conv2d's padding")
    .attr("dilation", AttrValue::Ints({1, 1}), "conv2d's dilation")
    .attr("groups", AttrValue::Int(1), "conv2d's groups")
    .attr("input_shape", AttrType::Ints, "shape of conv2d's input (strides > 1 make it ambiguous)")
    .infer(infer_conv2d_grad_input)
    .kernel(DType::Undefined, Isa::Reference, conv2d_grad_input_reference);

EMBER_REGISTER_OP(conv2d_grad_weight)
    .doc("Gradient of conv2d with respect to its weight: grad_output [N, O, OH, OW] and input "
         "[N, C, H, W] -> [O, C/groups, kH, kW] = weight_shape.")
    .input("grad_output", kFloatTypes)
    .input("input", kFloatTypes)
    .output("grad_weight")
    .attr("stride", AttrValue::Ints({1, 1}), "conv2d's stride")
    .attr("padding", AttrValue::Ints({0, 0}), "conv2d's padding")
    .attr("dilation", AttrValue::Ints({1, 1}), "conv2d's dilation")
    .attr("groups", AttrValue::Int(1), "conv2d's groups")
    .attr("weight_shape", AttrType::Ints, "shape of conv2d's weight")
    .infer(infer_conv2d_grad_weight)
    .kernel(DType::Undefined, Isa::Reference, conv2d_grad_weight_reference);

}  // namespace ember
