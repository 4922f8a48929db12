// max_pool2d and avg_pool2d, as torch.nn.functional: padding (at most half the kernel),
// dilation (max only), ceil_mode (the last window starts inside the input or the left padding),
// count_include_pad (avg only). The window walks of both are in pool_window.h, shared with the
// gradient ops so forward and backward see the same windows.
#include <cmath>
#include <limits>
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/pool_window.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;

std::vector<TensorType> infer_max_pool2d(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  reference::PoolParams p = reference::read_pool_params(ctx, /*has_dilation=*/true);
  return {{x.dtype, reference::pool2d_output_shape(ctx, p, x.shape, "input 'x'")}};
}

std::vector<TensorType> infer_avg_pool2d(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  reference::PoolParams p = reference::read_pool_params(ctx, /*has_dilation=*/false);
  ctx.attr_bool("count_include_pad");
  return {{x.dtype, reference::pool2d_output_shape(ctx, p, x.shape, "input 'x'")}};
}

template <typename T>
void max_pool2d_loops(const OpContext& ctx) {
  const reference::PoolParams p = reference::read_pool_params(ctx, true);
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const Planes in = reference::planes_of(x.shape());
  const Planes out = reference::planes_of(y.shape());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t plane = 0; plane < out.batch * out.channels; ++plane) {
    const T* xp = px + plane * in.height * in.width;
    for (int64_t oy = 0; oy < out.height; ++oy)
      for (int64_t ox = 0; ox < out.width; ++ox) {
        int64_t index = reference::max_pool_argmax(xp, in, p, oy, ox);
        py[(plane * out.height + oy) * out.width + ox] =
            index < 0 ? -std::numeric_limits<T>::infinity() : xp[index];
      }
  }
}

template <typename T>
void avg_pool2d_loops(const OpContext& ctx) {
  const reference::PoolParams p = reference::read_pool_params(ctx, false);
  const bool count_include_pad = ctx.attr_bool("count_include_pad");
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const Planes in = reference::planes_of(x.shape());
  const Planes out = reference::planes_of(y.shape());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t plane = 0; plane < out.batch * out.channels; ++plane) {
    const T* xp = px + plane * in.height * in.width;
    for (int64_t oy = 0; oy < out.height; ++oy)
      for (int64_t ox = 0; ox < out.width; ++ox) {
        const reference::AvgWindow win =
            reference::avg_pool_window(in, p, count_include_pad, oy, ox);
        double sum = 0.0;
        for (int64_t iy = win.y0; iy < win.y1; ++iy)
          for (int64_t ix = win.x0; ix < win.x1; ++ix) sum += static_cast<double>(xp[iy * in.width + ix]);
        py[(plane * out.height + oy) * out.width + ox] =
            win.divisor == 0 ? T(0) : static_cast<T>(sum / static_cast<double>(win.divisor));
      }
  }
}

void max_pool2d_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "max_pool2d", [&] { max_pool2d_loops<scalar_t>(ctx); });
}

void avg_pool2d_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "avg_pool2d", [&] { avg_pool2d_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(max_pool2d)
    .doc("2-D max pooling as torch.nn.functional.max_pool2d; x [N, C, H, W] or [C, H, W]. "
         "NaN propagates.")
    .input("x", kFloatTypes)
    .output("y")
    .attr("kernel_size", AttrType::Ints, "(height, width) of the window")
    .attr("stride", AttrValue::Ints({}), "window step; empty = kernel_size")
    .attr("padding", AttrValue::Ints({0, 0}), "implicit -inf padding, at most kernel_size / 2")
    .attr("dilation", AttrValue::Ints({1, 1}), "spacing of the window taps")
    .attr("ceil_mode", AttrValue::Bool(false), "round the output size up")
    .infer(infer_max_pool2d)
    .kernel(DType::Undefined, Isa::Reference, max_pool2d_reference);

EMBER_REGISTER_OP(avg_pool2d)
    .doc("2-D average pooling as torch.nn.functional.avg_pool2d; x [N, C, H, W] or [C, H, W].")
    .input("x", kFloatTypes)
    .output("y")
    .attr("kernel_size", AttrType::Ints, "(height, width) of the window")
    .attr("stride", AttrValue::Ints({}), "window step; empty = kernel_size")
    .attr("padding", AttrValue::Ints({0, 0}), "implicit zero padding, at most kernel_size / 2")
    .attr("ceil_mode", AttrValue::Bool(false), "round the output size up")
    .attr("count_include_pad", AttrValue::Bool(true), "padding zeros count in the divisor")
    .infer(infer_avg_pool2d)
    .kernel(DType::Undefined, Isa::Reference, avg_pool2d_reference);

}  // namespace ember
