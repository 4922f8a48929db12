// adaptive_avg_pool2d as torch.nn.functional.adaptive_avg_pool2d: output cell (oy, ox) averages
// input rows [floor(oy * H / OH), ceil((oy + 1) * H / OH)) and the matching columns.
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/reference/pool_window.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;

std::vector<TensorType> infer_adaptive_avg_pool2d(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const std::vector<int64_t>& size = ctx.attr_ints("output_size");
  if (size.size() != 2)
    ctx.fail("attribute 'output_size' must have 2 values (height, width), got ", shape_str(size));
  if (size[0] < 0 || size[1] < 0)
    ctx.fail("attribute 'output_size' = ", shape_str(size), " must be non-negative");
  if (!reference::is_image_rank(x.shape))
    ctx.fail("input 'x' must be [N, C, H, W] (or unbatched [C, H, W]), got shape ",
             shape_str(x.shape));
  for (size_t i = x.shape.size() - 3; i < x.shape.size(); ++i)
    if (x.shape[i] == 0)
      ctx.fail("input 'x' ", shape_str(x.shape), " is empty in a non-batch dimension");
  Shape out = x.shape;
  out[out.size() - 2] = size[0];
  out[out.size() - 1] = size[1];
  return {{x.dtype, out}};
}

template <typename T>
void adaptive_avg_pool2d_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const Planes in = reference::planes_of(x.shape());
  const Planes out = reference::planes_of(y.shape());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t plane = 0; plane < out.batch * out.channels; ++plane) {
    const T* xp = px + plane * in.height * in.width;
    for (int64_t oy = 0; oy < out.height; ++oy) {
      const int64_t y0 = reference::adaptive_start(oy, in.height, out.height);
      const int64_t y1 = reference::adaptive_end(oy, in.height, out.height);
      for (int64_t ox = 0; ox < out.width; ++ox) {
        const int64_t x0 = reference::adaptive_start(ox, in.width, out.width);
        const int64_t x1 = reference::adaptive_end(ox, in.width, out.width);
        double sum = 0.0;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) sum += static_cast<double>(xp[iy * in.width + ix]);
        py[(plane * out.height + oy) * out.width + ox] =
            static_cast<T>(sum / static_cast<double>((y1 - y0) * (x1 - x0)));
      }
    }
  }
}

void adaptive_avg_pool2d_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "adaptive_avg_pool2d",
                       [&] { adaptive_avg_pool2d_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(adaptive_avg_pool2d)
    .doc("2-D adaptive average pooling as torch.nn.functional.adaptive_avg_pool2d; "
         "x [N, C, H, W] or [C, H, W] -> [..., OH, OW].")
    .input("x", kFloatTypes)
    .output("y")
    .attr("output_size", AttrType::Ints, "(OH, OW)")
    .infer(infer_adaptive_avg_pool2d)
    .kernel(DType::Undefined, Isa::Reference, adaptive_avg_pool2d_reference);

}  // namespace ember
