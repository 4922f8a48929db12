// quantize (float32 -> uint8) and dequantize (uint8 -> float32), per tensor, asymmetric.
#include <cmath>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/quantized/qparams.h"

namespace ember {
namespace {

using quantized::attr_scale;
using quantized::attr_zero_point;

// q = clamp(nearbyint(x / scale) + zero_point, 0, 255), computed in float32 like PyTorch's
// quantize_per_tensor; NaN maps to the zero point.
void quantize_reference(OpContext& ctx) {
  const float scale = static_cast<float>(attr_scale(ctx, "scale"));
  const float zero_point = static_cast<float>(attr_zero_point(ctx, "zero_point"));
  const float* x = ctx.input(0).data<float>();
  uint8_t* y = ctx.output(0).data<uint8_t>();
  const int64_t n = ctx.input(0).numel();
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / scale) + zero_point;
    if (std::isnan(v)) v = zero_point;
    v = std::fmin(std::fmax(v, 0.0f), 255.0f);
    y[i] = static_cast<uint8_t>(v);
  }
}

// x = (q - zero_point) * scale in float32.
void dequantize_reference(OpContext& ctx) {
  const float scale = static_cast<float>(attr_scale(ctx, "scale"));
  const int32_t zero_point = attr_zero_point(ctx, "zero_point");
  const uint8_t* q = ctx.input(0).data<uint8_t>();
  float* x = ctx.output(0).data<float>();
  const int64_t n = ctx.input(0).numel();
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zero_point) * scale;
}

std::vector<TensorType> infer_quantize(const InferContext& ctx) {
  attr_scale(ctx, "scale");
  attr_zero_point(ctx, "zero_point");
  return {{DType::UInt8, ctx.input(0).shape}};
}

std::vector<TensorType> infer_dequantize(const InferContext& ctx) {
  attr_scale(ctx, "scale");
  attr_zero_point(ctx, "zero_point");
  return {{DType::Float32, ctx.input(0).shape}};
}

}  // namespace

EMBER_REGISTER_OP(quantize)
    .doc("Per-tensor asymmetric quantization to uint8: y = clamp(round_half_even(x / scale) + "
         "zero_point, 0, 255), in float32 (NaN -> zero_point).")
    .input("x", {DType::Float32})
    .output("y", "uint8 codes")
    .attr("scale", AttrType::Float, quantized::kScaleDoc)
    .attr("zero_point", AttrValue::Int(0), quantized::kZeroPointDoc)
    .infer(infer_quantize)
    .kernel(DType::Float32, Isa::Reference, quantize_reference);

EMBER_REGISTER_OP(dequantize)
    .doc("Inverse of quantize: y = (x - zero_point) * scale as float32.")
    .input("x", {DType::UInt8})
    .output("y", "float32 values")
    .attr("scale", AttrType::Float, quantized::kScaleDoc)
    .attr("zero_point", AttrValue::Int(0), quantized::kZeroPointDoc)
    .infer(infer_dequantize)
    .kernel(DType::UInt8, Isa::Reference, dequantize_reference);

}  // namespace ember
