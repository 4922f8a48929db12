// Quantization parameters shared by the quantized ops' shape functions, reference kernels and
// fast kernels: attribute validation, per-channel requantization scales, conv geometry.
// Everything that decides a value lives here or in requantize.h, so every kernel computes the
// same integers.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/tensor.h"
#include "kernels/quantized/requantize.h"

namespace ember::quantized {

// Reads attribute `name` as a scale: finite and > 0, else InvalidArgument naming the op.
double attr_scale(const AttrReader& ctx, const std::string& name);
// Reads attribute `name` as a uint8 zero point in [0, 255].
int32_t attr_zero_point(const AttrReader& ctx, const std::string& name);

// Common docs for schemas.
extern const char* const kScaleDoc;
extern const char* const kZeroPointDoc;

// The requantization of a quantized_linear / quantized_conv2d node, decided from its attributes
// and its weight scales: one fixed-point scale per output channel, the output zero point and
// the clamp range of the fused activation.
struct Requantization {
  int32_t input_zero_point = 0;
  int32_t output_zero_point = 0;
  OutputRange range;
  std::vector<FixedPointScale> scales;  // one per output channel
  // True when every scale is < 1 (the fast kernels' 32-bit epilogue needs it).
  bool all_scales_below_one() const;
};

// `weight_scale` holds 1 (per tensor) or `out_channels` (per channel) float32 values.
Requantization make_requantization(const AttrReader& ctx, const Tensor& weight_scale,
                                   int64_t out_channels);

// The epilogue of quantized_linear_float (a quantized linear with the dequantize fused): the
// int32 accumulator (bias included) times input_scale * weight_scale[o], in double, rounded once
// to float32, then the activation clamp in float. Reference and fast kernels use it alike.
struct DequantizeEpilogue {
  int32_t input_zero_point = 0;
  std::vector<double> scales;  // input_scale * weight_scale[o]
  float lo = -INFINITY, hi = INFINITY;
  float apply(int32_t acc, int64_t o) const {
    const float y = static_cast<float>(static_cast<double>(acc) * scales[static_cast<size_t>(o)]);
    return std::min(std::max(y, lo), hi);
  }
};
DequantizeEpilogue make_dequantize_epilogue(const AttrReader& ctx, const Tensor& weight_scale,
                                            int64_t out_channels);

// Checks the weight_scale input's shape against the number of output channels (inference).
void check_weight_scale_type(const InferContext& ctx, int64_t weight_scale_input,
                             int64_t out_channels);

// Geometry of a 2-D convolution (NCHW), resolved from the attributes and the shapes.
struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  int64_t out_h = 0, out_w = 0;
  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
  bool is_depthwise() const { return groups == in_channels && groups > 1 && in_channels_per_group() == 1; }
};

// Validates attributes (stride, padding, dilation, groups) and shapes; -1 dims stay -1 in the
// output size. Errors name the op, the attribute or tensor and the rule.
ConvGeometry conv_geometry(const AttrReader& ctx, const Shape& input, const Shape& weight);

// The largest reduction length for which int32 accumulation of u8 x s8 products cannot
// overflow (255 * 128 * K < 2**31).
constexpr int64_t kMaxReduction = 65536;

}  // namespace ember::quantized
