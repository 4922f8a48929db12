#include "kernels/quantized/qparams.h"

#include <cmath>

namespace ember::quantized {

const char* const kScaleDoc = "real value of one quantization step (> 0)";
const char* const kZeroPointDoc = "uint8 code of the real value 0, in [0, 255]";

double attr_scale(const AttrReader& ctx, const std::string& name) {
  double s = ctx.attr_float(name);
  if (!(std::isfinite(s) && s > 0.0))
    ctx.fail("attribute '", name, "' is ", s, ", must be a finite scale > 0");
  return s;
}

int32_t attr_zero_point(const AttrReader& ctx, const std::string& name) {
  int64_t z = ctx.attr_int(name);
  if (z < 0 || z > 255) ctx.fail("attribute '", name, "' is ", z, ", must be in [0, 255] (uint8)");
  return static_cast<int32_t>(z);
}

bool Requantization::all_scales_below_one() const {
  for (const auto& s : scales)
    if (s.shift < 31) return false;
  return true;
}

namespace {

// The weight scale of every output channel (a per-tensor scale repeated), each checked.
std::vector<double> weight_scales(const AttrReader& ctx, const Tensor& weight_scale, int64_t out_channels) {
  const int64_t n = weight_scale.numel();
  if (n != 1 && n != out_channels)
    ctx.fail("input 'weight_scale' has ", n, " values, expected 1 or ", out_channels,
             " (one per output channel)");
  const float* ws = weight_scale.data<float>();
  std::vector<double> out(static_cast<size_t>(out_channels));
  for (int64_t o = 0; o < out_channels; ++o) {
    const double w = ws[n == 1 ? 0 : o];
    if (!(std::isfinite(w) && w > 0.0))
      ctx.fail("input 'weight_scale' [", n == 1 ? 0 : o, "] is ", w, ", must be a finite scale > 0");
    out[static_cast<size_t>(o)] = w;
  }
  return out;
}

}  // namespace

DequantizeEpilogue make_dequantize_epilogue(const AttrReader& ctx, const Tensor& weight_scale,
                                            int64_t out_channels) {
  DequantizeEpilogue e;
  const double input_scale = attr_scale(ctx, "input_scale");
  e.input_zero_point = attr_zero_point(ctx, "input_zero_point");
  e.scales = weight_scales(ctx, weight_scale, out_channels);
  for (double& s : e.scales) s *= input_scale;
  const std::string activation = ctx.attr_string("activation");
  activation_range(activation, 1.0, 0, ctx.where());  // rejects an unknown activation
  if (activation == "relu" || activation == "relu6") e.lo = 0.0f;
  if (activation == "relu6") e.hi = 6.0f;
  return e;
}

Requantization make_requantization(const AttrReader& ctx, const Tensor& weight_scale,
                                   int64_t out_channels) {
  Requantization r;
  double input_scale = attr_scale(ctx, "input_scale");
  double output_scale = attr_scale(ctx, "output_scale");
  r.input_zero_point = attr_zero_point(ctx, "input_zero_point");
  r.output_zero_point = attr_zero_point(ctx, "output_zero_point");
  r.range = activation_range(ctx.attr_string("activation"), output_scale, r.output_zero_point,
                             ctx.where());
  const std::vector<double> ws = weight_scales(ctx, weight_scale, out_channels);
  r.scales.resize(static_cast<size_t>(out_channels));
  for (int64_t o = 0; o < out_channels; ++o) {
    // NOTE: computed in double, once, in this one place: every kernel gets the same multiplier.
    double real = input_scale * ws[static_cast<size_t>(o)] / output_scale;
    if (!(real >= kMinRequantScale && real < kMaxRequantScale))  // the message only when needed
      quantize_scale(real, ctx.where() + ": requantization scale input_scale * weight_scale[" +
                               std::to_string(o) + "] / output_scale");
    r.scales[static_cast<size_t>(o)] = quantize_scale(real, std::string());
  }
  return r;
}

void check_weight_scale_type(const InferContext& ctx, int64_t index, int64_t out_channels) {
  const TensorType& t = ctx.input(index);
  int64_t n = t.numel();
  if (t.ndim() > 1 || (n != 1 && out_channels >= 0 && n != out_channels && n >= 0))
    ctx.fail("input 'weight_scale' has shape ", shape_str(t.shape), ", expected [1] or [",
             out_channels, "] (one scale per output channel)");
}

ConvGeometry conv_geometry(const AttrReader& ctx, const Shape& input, const Shape& weight) {
  if (input.size() != 4) ctx.fail("input 'input' must be 4-D [N, C, H, W], got shape ", shape_str(input));
  if (weight.size() != 4)
    ctx.fail("input 'weight' must be 4-D [O, C/groups, kH, kW], got shape ", shape_str(weight));
  auto pair = [&](const char* name) {
    const auto& v = ctx.attr_ints(name);
    if (v.size() != 2) ctx.fail("attribute '", name, "' must have 2 values, got ", v.size());
    return v;
  };
  const auto& stride = pair("stride");
  const auto& padding = pair("padding");
  const auto& dilation = pair("dilation");
  ConvGeometry g;
  g.batch = input[0];
  g.in_channels = input[1];
  g.in_h = input[2];
  g.in_w = input[3];
  g.out_channels = weight[0];
  g.kernel_h = weight[2];
  g.kernel_w = weight[3];
  g.stride_h = stride[0];
  g.stride_w = stride[1];
  g.pad_h = padding[0];
  g.pad_w = padding[1];
  g.dilation_h = dilation[0];
  g.dilation_w = dilation[1];
  g.groups = ctx.attr_int("groups");
  if (g.stride_h < 1 || g.stride_w < 1) ctx.fail("attribute 'stride' must be >= 1, got ", g.stride_h, ", ", g.stride_w);
  if (g.dilation_h < 1 || g.dilation_w < 1)
    ctx.fail("attribute 'dilation' must be >= 1, got ", g.dilation_h, ", ", g.dilation_w);
  if (g.pad_h < 0 || g.pad_w < 0) ctx.fail("attribute 'padding' must be >= 0, got ", g.pad_h, ", ", g.pad_w);
  if (g.groups < 1) ctx.fail("attribute 'groups' must be >= 1, got ", g.groups);
  if (g.kernel_h < 1 || g.kernel_w < 1) ctx.fail("input 'weight' has an empty kernel ", shape_str(weight));
  if (g.out_channels % g.groups != 0)
    ctx.fail("input 'weight' has ", g.out_channels, " output channels, not divisible by groups = ", g.groups);
  if (g.in_channels >= 0) {
    if (g.in_channels % g.groups != 0)
      ctx.fail("input 'input' has ", g.in_channels, " channels, not divisible by groups = ", g.groups);
    if (weight[1] * g.groups != g.in_channels)
      ctx.fail("input 'input' has ", g.in_channels, " channels, weight expects ", weight[1] * g.groups,
               " (", weight[1], " per group x ", g.groups, " groups)");
  }
  if (weight[1] * g.kernel_h * g.kernel_w > kMaxReduction)
    ctx.fail("reduction length C/groups * kH * kW = ", weight[1] * g.kernel_h * g.kernel_w,
             " exceeds ", kMaxReduction, " (int32 accumulation could overflow)");
  auto out_size = [&](int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, const char* dim) -> int64_t {
    if (in < 0) return -1;
    int64_t span = d * (k - 1) + 1;
    if (in + 2 * p < span)
      ctx.fail("input 'input' ", dim, " = ", in, " (+ 2 * padding ", p, ") is smaller than the dilated kernel ", span);
    return (in + 2 * p - span) / s + 1;
  };
  g.out_h = out_size(g.in_h, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h, "height");
  g.out_w = out_size(g.in_w, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w, "width");
  return g;
}

}  // namespace ember::quantized
