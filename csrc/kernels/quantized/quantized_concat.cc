// quantized_concat: concatenation of uint8 tensors with their own quantization parameters into
// one output quantization; inputs whose parameters equal the output's are copied unchanged.
#include <cstring>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/quantized/qparams.h"

namespace ember {
namespace {

using namespace quantized;

struct ConcatInput {
  int32_t zero_point;
  bool identity;          // same scale and zero point as the output: plain copy
  FixedPointScale scale;  // input_scale / output_scale
};

std::vector<ConcatInput> concat_params(const AttrReader& ctx, int64_t num_inputs) {
  const auto& scales = ctx.attr_floats("input_scales");
  const auto& zero_points = ctx.attr_ints("input_zero_points");
  if (static_cast<int64_t>(scales.size()) != num_inputs || static_cast<int64_t>(zero_points.size()) != num_inputs)
    ctx.fail("attributes 'input_scales' (", scales.size(), " values) and 'input_zero_points' (",
             zero_points.size(), " values) must have one value per input (", num_inputs, ")");
  double y_scale = attr_scale(ctx, "output_scale");
  int32_t y_zero_point = attr_zero_point(ctx, "output_zero_point");
  std::vector<ConcatInput> out;
  for (int64_t i = 0; i < num_inputs; ++i) {
    double s = scales[i];
    if (!(std::isfinite(s) && s > 0)) ctx.fail("attribute 'input_scales' [", i, "] is ", s, ", must be a finite scale > 0");
    if (zero_points[i] < 0 || zero_points[i] > 255)
      ctx.fail("attribute 'input_zero_points' [", i, "] is ", zero_points[i], ", must be in [0, 255]");
    ConcatInput c;
    c.zero_point = static_cast<int32_t>(zero_points[i]);
    c.identity = (s == y_scale && c.zero_point == y_zero_point);
    c.scale = quantize_scale(s / y_scale, ctx.where() + ": scale ratio input_scales[" +
                                              std::to_string(i) + "] / output_scale");
    out.push_back(c);
  }
  return out;
}

std::vector<TensorType> infer_quantized_concat(const InferContext& ctx) {
  const int64_t n = ctx.num_inputs();
  concat_params(ctx, n);
  const TensorType& first = ctx.input(0);
  const int64_t axis = normalize_axis(ctx.attr_int("dim"), first.ndim(), ctx);
  Shape out = first.shape;
  for (int64_t i = 1; i < n; ++i) {
    const TensorType& t = ctx.input(i);
    if (t.ndim() != first.ndim())
      ctx.fail("input '", ctx.input_name(i), "' has rank ", t.ndim(), ", input '", ctx.input_name(0),
               "' has rank ", first.ndim());
    for (int64_t d = 0; d < t.ndim(); ++d) {
      if (d == axis) {
        out[d] = (out[d] < 0 || t.shape[d] < 0) ? -1 : out[d] + t.shape[d];
      } else if (t.shape[d] != first.shape[d] && t.shape[d] >= 0 && first.shape[d] >= 0) {
        ctx.fail("input '", ctx.input_name(i), "' has shape ", shape_str(t.shape), ", incompatible with ",
                 shape_str(first.shape), " outside dim ", axis);
      }
    }
  }
  return {{DType::UInt8, out}};
}

void quantized_concat_reference(OpContext& ctx) {
  const int64_t n = ctx.num_inputs();
  std::vector<ConcatInput> params = concat_params(ctx, n);
  const int32_t y_zero_point = attr_zero_point(ctx, "output_zero_point");
  Tensor& y = ctx.output(0);
  const int64_t axis = normalize_axis(ctx.attr_int("dim"), y.ndim(), ctx);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.dim(d);
  for (int64_t d = axis + 1; d < y.ndim(); ++d) inner *= y.dim(d);
  const int64_t y_row = y.dim(axis) * inner;
  uint8_t* py = y.data<uint8_t>();
  int64_t offset = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& x = ctx.input(i);
    const int64_t row = x.dim(axis) * inner;
    const uint8_t* px = x.data<uint8_t>();
    const ConcatInput& c = params[i];
    for (int64_t o = 0; o < outer; ++o) {
      uint8_t* dst = py + o * y_row + offset;
      const uint8_t* src = px + o * row;
      if (c.identity) {
        if (row) std::memcpy(dst, src, static_cast<size_t>(row));
        continue;
      }
      for (int64_t k = 0; k < row; ++k)
        dst[k] = clamp_to_uint8(requantize(src[k] - c.zero_point, c.scale) + y_zero_point, OutputRange{});
    }
    offset += row;
  }
}

}  // namespace

EMBER_REGISTER_OP(quantized_concat)
    .doc("Concatenates uint8 tensors along dim, requantizing input i from (input_scales[i], "
         "input_zero_points[i]) to (output_scale, output_zero_point) in fixed point; inputs with "
         "the output's parameters are copied unchanged.")
    .variadic_input("inputs", {DType::UInt8})
    .output("y", "uint8")
    .attr("dim", AttrValue::Int(0), "concatenation axis (negative counts from the end)")
    .attr("input_scales", AttrType::Floats, "scale of each input")
    .attr("input_zero_points", AttrType::Ints, "zero point of each input, in [0, 255]")
    .attr("output_scale", AttrType::Float, "scale of y")
    .attr("output_zero_point", AttrValue::Int(0), "zero point of y, in [0, 255]")
    .infer(infer_quantized_concat)
    .kernel(DType::UInt8, Isa::Reference, quantized_concat_reference);

}  // namespace ember
