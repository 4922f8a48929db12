// quantized_linear and quantized_conv2d: schemas, shape functions and reference kernels.
//
// Scheme (QNNPACK-style): uint8 asymmetric activations (scale, zero point as attributes), int8
// symmetric weights with per-channel (or per-tensor) float32 scales as an input, int32 bias in
// units of input_scale * weight_scale[o], int32 accumulation, integer-only requantization
// (requantize.h) and the fused activation as a clamp of the output codes.
#include <algorithm>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/quantized/qparams.h"
#include "kernels/quantized/reference.h"

namespace ember {
namespace quantized {

// ---------------------------------------------------------------- quantized_linear

// Checks shared by quantized_linear and quantized_linear_float; returns the output shape.
Shape check_quantized_linear(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& w = ctx.input(1);
  if (x.ndim() < 1) ctx.fail("input 'input' must have at least 1 dim, got a scalar");
  if (w.ndim() != 2) ctx.fail("input 'weight' must be 2-D [out, in], got shape ", shape_str(w.shape));
  int64_t in = x.shape.back();
  if (in >= 0 && w.shape[1] != in)
    ctx.fail("input 'input' has ", in, " features, weight expects ", w.shape[1]);
  if (w.shape[1] > kMaxReduction)
    ctx.fail("input 'weight' has ", w.shape[1], " input features, more than ", kMaxReduction,
             " (int32 accumulation could overflow)");
  check_weight_scale_type(ctx, 2, w.shape[0]);
  if (ctx.has_input(3)) {
    const TensorType& b = ctx.input(3);
    if (b.ndim() != 1 || (b.shape[0] >= 0 && b.shape[0] != w.shape[0]))
      ctx.fail("input 'bias' has shape ", shape_str(b.shape), ", expected [", w.shape[0], "]");
  }
  attr_scale(ctx, "input_scale");
  attr_zero_point(ctx, "input_zero_point");
  activation_range(ctx.attr_string("activation"), 1.0, 0, ctx.where());
  Shape out = x.shape;
  out.back() = w.shape[0];
  return out;
}

std::vector<TensorType> infer_quantized_linear(const InferContext& ctx) {
  Shape out = check_quantized_linear(ctx);
  attr_scale(ctx, "output_scale");
  attr_zero_point(ctx, "output_zero_point");
  return {{DType::UInt8, out}};
}

std::vector<TensorType> infer_quantized_linear_float(const InferContext& ctx) {
  return {{DType::Float32, check_quantized_linear(ctx)}};
}

// Calls store(m, o, acc) with the int32 accumulator (bias included) of every output.
template <typename Store>
void linear_accumulate(OpContext& ctx, int32_t input_zero_point, Store&& store) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const int64_t out_features = w.dim(0), in_features = w.dim(1);
  const int64_t rows = in_features == 0 ? x.numel() : x.numel() / in_features;
  const uint8_t* px = x.data<uint8_t>();
  const int8_t* pw = w.data<int8_t>();
  const int32_t* pb = ctx.has_input(3) ? ctx.input(3).data<int32_t>() : nullptr;
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t o = 0; o < out_features; ++o) {
      int32_t acc = pb ? pb[o] : 0;
      for (int64_t k = 0; k < in_features; ++k)
        acc += (static_cast<int32_t>(px[m * in_features + k]) - input_zero_point) *
               static_cast<int32_t>(pw[o * in_features + k]);
      store(m * out_features + o, o, acc);
    }
  }
}

void quantized_linear_reference(OpContext& ctx) {
  Requantization rq = make_requantization(ctx, ctx.input(2), ctx.input(1).dim(0));
  uint8_t* py = ctx.output(0).data<uint8_t>();
  linear_accumulate(ctx, rq.input_zero_point, [&](int64_t i, int64_t o, int32_t acc) {
    py[i] = requantize_to_uint8(acc, rq.scales[o], rq.output_zero_point, rq.range);
  });
}

void quantized_linear_float_reference(OpContext& ctx) {
  DequantizeEpilogue e = make_dequantize_epilogue(ctx, ctx.input(2), ctx.input(1).dim(0));
  float* py = ctx.output(0).data<float>();
  linear_accumulate(ctx, e.input_zero_point, [&](int64_t i, int64_t o, int32_t acc) { py[i] = e.apply(acc, o); });
}

// ---------------------------------------------------------------- quantized_conv2d

std::vector<TensorType> infer_quantized_conv2d(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& w = ctx.input(1);
  ConvGeometry g = conv_geometry(ctx, x.shape, w.shape);
  check_weight_scale_type(ctx, 2, g.out_channels);
  if (ctx.has_input(3)) {
    const TensorType& b = ctx.input(3);
    if (b.ndim() != 1 || (b.shape[0] >= 0 && b.shape[0] != g.out_channels))
      ctx.fail("input 'bias' has shape ", shape_str(b.shape), ", expected [", g.out_channels, "]");
  }
  attr_scale(ctx, "input_scale");
  attr_scale(ctx, "output_scale");
  attr_zero_point(ctx, "input_zero_point");
  attr_zero_point(ctx, "output_zero_point");
  activation_range(ctx.attr_string("activation"), 1.0, 0, ctx.where());
  return {{DType::UInt8, {g.batch, g.out_channels, g.out_h, g.out_w}}};
}

void quantized_conv2d_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  ConvGeometry g = conv_geometry(ctx, x.shape(), w.shape());
  Requantization rq = make_requantization(ctx, ctx.input(2), g.out_channels);
  const uint8_t* px = x.data<uint8_t>();
  const int8_t* pw = w.data<int8_t>();
  const int32_t* pb = ctx.has_input(3) ? ctx.input(3).data<int32_t>() : nullptr;
  uint8_t* py = ctx.output(0).data<uint8_t>();
  const int64_t cpg = g.in_channels_per_group(), opg = g.out_channels_per_group();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t o = 0; o < g.out_channels; ++o) {
      const int64_t group = o / opg;
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          int32_t acc = pb ? pb[o] : 0;
          for (int64_t c = 0; c < cpg; ++c) {
            const int64_t ic = group * cpg + c;
            for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
              const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
              if (ih < 0 || ih >= g.in_h) continue;  // padding holds the zero point: adds 0
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
                if (iw < 0 || iw >= g.in_w) continue;
                const int32_t xv = px[((n * g.in_channels + ic) * g.in_h + ih) * g.in_w + iw];
                const int32_t wv = pw[((o * cpg + c) * g.kernel_h + kh) * g.kernel_w + kw];
                acc += (xv - rq.input_zero_point) * wv;
              }
            }
          }
          py[((n * g.out_channels + o) * g.out_h + oh) * g.out_w + ow] =
              requantize_to_uint8(acc, rq.scales[o], rq.output_zero_point, rq.range);
        }
    }
}

}  // namespace quantized

using namespace quantized;

#define EMBER_QUANTIZED_GEMM_ATTRS                                                            \
  .attr("input_scale", AttrType::Float, "scale of input (uint8)")                             \
      .attr("input_zero_point", AttrValue::Int(0), "zero point of input, in [0, 255]")        \
      .attr("output_scale", AttrType::Float, "scale of the uint8 output")                     \
      .attr("output_zero_point", AttrValue::Int(0), "zero point of the output, in [0, 255]")  \
      .attr("activation", AttrValue::String("none"),                                          \
            "fused activation applied as an output clamp: none | relu | relu6")

#define EMBER_QUANTIZED_LINEAR_INPUTS                                                               \
  .input("input", {DType::UInt8}, "uint8 activations [*, in]")                                      \
      .input("weight", {DType::Int8}, "int8 symmetric weights [out, in] (zero point 0)")            \
      .input("weight_scale", {DType::Float32}, "float32 [out] per-channel or [1] per-tensor scales") \
      .optional_input("bias", {DType::Int32}, "int32 [out] in units of input_scale * weight_scale[o]")

EMBER_REGISTER_OP(quantized_linear)
    .doc("Quantized linear: y = requantize(sum_k (x - input_zero_point) * w + bias) over uint8 "
         "x [*, in] and int8 symmetric weights w [out, in]; y is uint8 [*, out]. The real "
         "multiplier per output channel is input_scale * weight_scale[o] / output_scale, applied "
         "in fixed point (round half up).")
    EMBER_QUANTIZED_LINEAR_INPUTS
    .output("output", "uint8 [*, out]")
    EMBER_QUANTIZED_GEMM_ATTRS
    .infer(infer_quantized_linear)
    .kernel(DType::UInt8, Isa::Reference, quantized_linear_reference);

EMBER_REGISTER_OP(quantized_linear_float)
    .doc("Quantized linear with the dequantize fused (the int8 net's last layer when its output "
         "leaves the net, so the result is not rounded to 256 levels): y = (sum_k (x - "
         "input_zero_point) * w + bias) * input_scale * weight_scale[o], computed in double and "
         "rounded once to float32, then the activation (relu, relu6) in float.")
    EMBER_QUANTIZED_LINEAR_INPUTS
    .output("output", "float32 [*, out]")
    .attr("input_scale", AttrType::Float, "scale of input (uint8)")
    .attr("input_zero_point", AttrValue::Int(0), "zero point of input, in [0, 255]")
    .attr("activation", AttrValue::String("none"), "fused activation: none | relu | relu6")
    .infer(infer_quantized_linear_float)
    .kernel(DType::UInt8, Isa::Reference, quantized_linear_float_reference);

EMBER_REGISTER_OP(quantized_conv2d)
    .doc("Quantized 2-D convolution (NCHW, groups incl. depthwise): uint8 input, int8 symmetric "
         "weights [O, C/groups, kH, kW] with per-channel scales, int32 bias, uint8 output. Padding "
         "holds the input zero point. Requantization as in quantized_linear.")
    .input("input", {DType::UInt8}, "uint8 activations [N, C, H, W]")
    .input("weight", {DType::Int8}, "int8 symmetric weights [O, C/groups, kH, kW] (zero point 0)")
    .input("weight_scale", {DType::Float32}, "float32 [O] per-channel or [1] per-tensor scales")
    .optional_input("bias", {DType::Int32}, "int32 [O] in units of input_scale * weight_scale[o]")
    .output("output", "uint8 [N, O, H_out, W_out]")
    .attr("stride", AttrValue::Ints({1, 1}), "stride (h, w)")
    .attr("padding", AttrValue::Ints({0, 0}), "zero-point padding (h, w) on both sides")
    .attr("dilation", AttrValue::Ints({1, 1}), "dilation (h, w)")
    .attr("groups", AttrValue::Int(1), "number of groups; groups == C == O/multiplier is depthwise")
    EMBER_QUANTIZED_GEMM_ATTRS
    .infer(infer_quantized_conv2d)
    .kernel(DType::UInt8, Isa::Reference, quantized_conv2d_reference);

#undef EMBER_QUANTIZED_GEMM_ATTRS

}  // namespace ember
