// Gradients of the pooling ops: max_pool2d_grad routes each output gradient to the input
// element the forward op picked (recomputed from x with the same window walk), avg_pool2d_grad
// and adaptive_avg_pool2d_grad spread it evenly over the window with the forward divisor.
// Sums are kept in double.
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/pool_window.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;

void check_grad_output(const InferContext& ctx, const char* forward, const Shape& input,
                       const Shape& expected) {
  const Shape& got = ctx.input(0).shape;
  if (!reference::shapes_compatible(got, expected))
    ctx.fail("input 'grad_output' has shape ", shape_str(got), ", but ", forward, " of ",
             shape_str(input), " gives ", shape_str(expected));
}

std::vector<TensorType> infer_max_pool2d_grad(const InferContext& ctx) {
  const TensorType& x = ctx.input(1);
  check_same_dtype(ctx, 1);
  const reference::PoolParams p = reference::read_pool_params(ctx, /*has_dilation=*/true);
  check_grad_output(ctx, "max_pool2d", x.shape,
                    reference::pool2d_output_shape(ctx, p, x.shape, "input 'x'"));
  return {x};
}

std::vector<TensorType> infer_avg_pool2d_grad(const InferContext& ctx) {
  const reference::PoolParams p = reference::read_pool_params(ctx, /*has_dilation=*/false);
  ctx.attr_bool("count_include_pad");
  const Shape input = reference::read_shape_attr(ctx, "input_shape");
  check_grad_output(ctx, "avg_pool2d", input,
                    reference::pool2d_output_shape(ctx, p, input, "attribute 'input_shape'"));
  return {{ctx.input(0).dtype, input}};
}

std::vector<TensorType> infer_adaptive_avg_pool2d_grad(const InferContext& ctx) {
  const Shape input = reference::read_shape_attr(ctx, "input_shape");
  if (!reference::is_image_rank(input))
    ctx.fail("attribute 'input_shape' must be [N, C, H, W] (or [C, H, W]), got ", shape_str(input));
  for (size_t i = input.size() - 3; i < input.size(); ++i)
    if (input[i] == 0)
      ctx.fail("attribute 'input_shape' = ", shape_str(input), " is empty in a non-batch dimension");
  const Shape& got = ctx.input(0).shape;
  Shape expected = input;  // the output size is grad_output's; the leading dims must match
  if (got.size() == input.size()) {
    expected[expected.size() - 2] = got[got.size() - 2];
    expected[expected.size() - 1] = got[got.size() - 1];
  }
  if (!reference::shapes_compatible(got, expected))
    ctx.fail("input 'grad_output' has shape ", shape_str(got),
             ", which is not an adaptive_avg_pool2d output of attribute 'input_shape' = ",
             shape_str(input));
  return {{ctx.input(0).dtype, input}};
}

template <typename T>
void max_pool2d_grad_loops(const OpContext& ctx) {
  const reference::PoolParams p = reference::read_pool_params(ctx, true);
  const Tensor& grad_output = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Planes in = reference::planes_of(x.shape());
  const Planes out = reference::planes_of(grad_output.shape());
  const T* go = grad_output.data<T>();
  const T* px = x.data<T>();
  std::vector<double> sum(static_cast<size_t>(x.numel()), 0.0);
  for (int64_t plane = 0; plane < out.batch * out.channels; ++plane) {
    const int64_t in_base = plane * in.height * in.width;
    for (int64_t oy = 0; oy < out.height; ++oy)
      for (int64_t ox = 0; ox < out.width; ++ox) {
        const int64_t index = reference::max_pool_argmax(px + in_base, in, p, oy, ox);
        if (index >= 0)
          sum[in_base + index] += static_cast<double>(go[(plane * out.height + oy) * out.width + ox]);
      }
  }
  T* gx = ctx.output(0).data<T>();
  for (size_t i = 0; i < sum.size(); ++i) gx[i] = static_cast<T>(sum[i]);
}

template <typename T>
void avg_pool2d_grad_loops(const OpContext& ctx) {
  const reference::PoolParams p = reference::read_pool_params(ctx, false);
  const bool count_include_pad = ctx.attr_bool("count_include_pad");
  const Tensor& grad_output = ctx.input(0);
  Tensor& grad_x = ctx.output(0);
  const Planes in = reference::planes_of(grad_x.shape());
  const Planes out = reference::planes_of(grad_output.shape());
  const T* go = grad_output.data<T>();
  std::vector<double> sum(static_cast<size_t>(grad_x.numel()), 0.0);
  for (int64_t plane = 0; plane < out.batch * out.channels; ++plane) {
    const int64_t in_base = plane * in.height * in.width;
    for (int64_t oy = 0; oy < out.height; ++oy)
      for (int64_t ox = 0; ox < out.width; ++ox) {
        const reference::AvgWindow win =
            reference::avg_pool_window(in, p, count_include_pad, oy, ox);
        if (win.divisor == 0) continue;
        const double share = static_cast<double>(go[(plane * out.height + oy) * out.width + ox]) /
                             static_cast<double>(win.divisor);
        for (int64_t iy = win.y0; iy < win.y1; ++iy)
          for (int64_t ix = win.x0; ix < win.x1; ++ix) sum[in_base + iy * in.width + ix] += share;
      }
  }
  T* gx = grad_x.data<T>();
  for (size_t i = 0; i < sum.size(); ++i) gx[i] = static_cast<T>(sum[i]);
}

template <typename T>
void adaptive_avg_pool2d_grad_loops(const OpContext& ctx) {
  const Tensor& grad_output = ctx.input(0);
  Tensor& grad_x = ctx.output(0);
  const Planes in = reference::planes_of(grad_x.shape());
  const Planes out = reference::planes_of(grad_output.shape());
  const T* go = grad_output.data<T>();
  std::vector<double> sum(static_cast<size_t>(grad_x.numel()), 0.0);
  for (int64_t plane = 0; plane < out.batch * out.channels; ++plane) {
    const int64_t in_base = plane * in.height * in.width;
    for (int64_t oy = 0; oy < out.height; ++oy) {
      const int64_t y0 = reference::adaptive_start(oy, in.height, out.height);
      const int64_t y1 = reference::adaptive_end(oy, in.height, out.height);
      for (int64_t ox = 0; ox < out.width; ++ox) {
        const int64_t x0 = reference::adaptive_start(ox, in.width, out.width);
        const int64_t x1 = reference::adaptive_end(ox, in.width, out.width);
        const double share = static_cast<double>(go[(plane * out.height + oy) * out.width + ox]) /
                             static_cast<double>((y1 - y0) * (x1 - x0));
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) sum[in_base + iy * in.width + ix] += share;
      }
    }
  }
  T* gx = grad_x.data<T>();
  for (size_t i = 0; i < sum.size(); ++i) gx[i] = static_cast<T>(sum[i]);
}

void max_pool2d_grad_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "max_pool2d_grad",
                       [&] { max_pool2d_grad_loops<scalar_t>(ctx); });
}

void avg_pool2d_grad_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "avg_pool2d_grad",
                       [&] { avg_pool2d_grad_loops<scalar_t>(ctx); });
}

void adaptive_avg_pool2d_grad_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "adaptive_avg_pool2d_grad",
                       [&] { adaptive_avg_pool2d_grad_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(max_pool2d_grad)
    .doc("Gradient of max_pool2d: each grad_output element is added at the input position the "
         "forward op selected in x (first maximum; NaN wins).")
    .input("grad_output", kFloatTypes)
    .input("x", kFloatTypes)
    .output("grad_x")
    .attr("kernel_size", AttrType::Ints, "max_pool2d's kernel_size")
    .attr("stride", AttrValue::Ints({}), "max_pool2d's stride (empty = kernel_size)")
    .attr("padding", AttrValue::Ints({0, 0}), "max_pool2d's padding")
    .attr("dilation", AttrValue::Ints({1, 1}), "max_pool2d's dilation")
    .attr("ceil_mode", AttrValue::Bool(false), "max_pool2d's ceil_mode")
    .infer(infer_max_pool2d_grad)
    .kernel(DType::Undefined, Isa::Reference, max_pool2d_grad_reference);

EMBER_REGISTER_OP(avg_pool2d_grad)
    .doc("Gradient of avg_pool2d: each grad_output element, divided by the forward divisor, is "
         "added to every input position of its window.")
    .input("grad_output", kFloatTypes)
    .output("grad_x")
    .attr("kernel_size", AttrType::Ints, "avg_pool2d's kernel_size")
    .attr("stride", AttrValue::Ints({}), "avg_pool2d's stride (empty = kernel_size)")
    .attr("padding", AttrValue::Ints({0, 0}), "avg_pool2d's padding")
    .attr("ceil_mode", AttrValue::Bool(false), "avg_pool2d's ceil_mode")
    .attr("count_include_pad", AttrValue::Bool(true), "avg_pool2d's count_include_pad")
    .attr("input_shape", AttrType::Ints, "shape of avg_pool2d's input")
    .infer(infer_avg_pool2d_grad)
    .kernel(DType::Undefined, Isa::Reference, avg_pool2d_grad_reference);

EMBER_REGISTER_OP(adaptive_avg_pool2d_grad)
    .doc("Gradient of adaptive_avg_pool2d: each grad_output element, divided by its window's "
         "area, is added to every input position of the window.")
    .input("grad_output", kFloatTypes)
    .output("grad_x")
    .attr("input_shape", AttrType::Ints, "shape of adaptive_avg_pool2d's input")
    .infer(infer_adaptive_avg_pool2d_grad)
    .kernel(DType::Undefined, Isa::Reference, adaptive_avg_pool2d_grad_reference);

}  // namespace ember
