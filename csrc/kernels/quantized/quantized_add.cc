// quantized_add: element-wise sum of two uint8 tensors with their own quantization parameters,
// requantized to the output's (one rounding), optional fused relu.
#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/quantized/qparams.h"
#include "kernels/quantized/reference.h"
#include "kernels/reference/broadcast_loop.h"

namespace ember {
namespace quantized {
namespace {

struct AddParams {
  int32_t a_zero_point, b_zero_point, output_zero_point;
  AddRequantization scales;
  OutputRange range;
};

AddParams add_params(const AttrReader& ctx) {
  AddParams p;
  double a_scale = attr_scale(ctx, "a_scale"), b_scale = attr_scale(ctx, "b_scale");
  double y_scale = attr_scale(ctx, "output_scale");
  p.a_zero_point = attr_zero_point(ctx, "a_zero_point");
  p.b_zero_point = attr_zero_point(ctx, "b_zero_point");
  p.output_zero_point = attr_zero_point(ctx, "output_zero_point");
  p.scales = quantize_add_scales(a_scale / y_scale, b_scale / y_scale, ctx.where());
  const std::string& act = ctx.attr_string("activation");
  if (act != "none" && act != "relu")
    ctx.fail("attribute 'activation' is '", act, "', expected none or relu");
  p.range = activation_range(act, y_scale, p.output_zero_point, ctx.where());
  return p;
}

std::vector<TensorType> infer_quantized_add(const InferContext& ctx) {
  add_params(ctx);
  return {{DType::UInt8, broadcast_shapes(ctx.input(0).shape, ctx.input(1).shape, ctx)}};
}

}  // namespace

bool same_static_shape(const KernelInit& init) {
  return init.input_type(0).shape == init.input_type(1).shape;
}

void quantized_add_reference(OpContext& ctx) {
  const AddParams p = add_params(ctx);
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const uint8_t* pa = a.data<uint8_t>();
  const uint8_t* pb = b.data<uint8_t>();
  uint8_t* py = ctx.output(0).data<uint8_t>();
  reference::broadcast_for_each<2>(
      ctx.output(0).shape(), {a.shape(), b.shape()},
      [&](int64_t o, const std::array<int64_t, 2>& off) {
        int64_t v = requantize_add(pa[off[0]] - p.a_zero_point, pb[off[1]] - p.b_zero_point, p.scales);
        py[o] = clamp_to_uint8(v + p.output_zero_point, p.range);
      });
}

namespace {

// Same arithmetic for equal shapes, as a flat loop (no broadcasting).
void quantized_add_same_shape_portable(OpContext& ctx) {
  if (ctx.input(0).shape() != ctx.input(1).shape()) return quantized_add_reference(ctx);
  const AddParams p = add_params(ctx);
  const uint8_t* pa = ctx.input(0).data<uint8_t>();
  const uint8_t* pb = ctx.input(1).data<uint8_t>();
  uint8_t* py = ctx.output(0).data<uint8_t>();
  const int64_t n = ctx.output(0).numel();
  ctx.parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t v = requantize_add(pa[i] - p.a_zero_point, pb[i] - p.b_zero_point, p.scales);
      py[i] = clamp_to_uint8(v + p.output_zero_point, p.range);
    }
  });
}

std::unique_ptr<OpKernel> make_same_shape_add(const KernelInit& init) {
  if (!same_static_shape(init)) return nullptr;
  return make_function_kernel(quantized_add_same_shape_portable, "u8_add_portable");
}

}  // namespace
}  // namespace quantized

using namespace quantized;

EMBER_REGISTER_OP(quantized_add)
    .doc("Quantized element-wise a + b with broadcasting: y = output_zero_point + round((a - "
         "a_zero_point) * a_scale / output_scale + (b - b_zero_point) * b_scale / output_scale) "
         "with one fixed-point rounding (ties up); scale ratios must be in [2**-14, 2**8).")
    .input("a", {DType::UInt8})
    .input("b", {DType::UInt8})
    .output("y", "uint8")
    .attr("a_scale", AttrType::Float, "scale of a")
    .attr("a_zero_point", AttrValue::Int(0), "zero point of a, in [0, 255]")
    .attr("b_scale", AttrType::Float, "scale of b")
    .attr("b_zero_point", AttrValue::Int(0), "zero point of b, in [0, 255]")
    .attr("output_scale", AttrType::Float, "scale of y")
    .attr("output_zero_point", AttrValue::Int(0), "zero point of y, in [0, 255]")
    .attr("activation", AttrValue::String("none"), "fused activation: none | relu")
    .infer(infer_quantized_add)
    .kernel(DType::UInt8, Isa::Reference, quantized_add_reference)
    .kernel_factory(DType::UInt8, Isa::Portable, "u8_add_portable", make_same_shape_add);

}  // namespace ember
