// Geometry shared by the 2-D window ops (conv2d, max/avg pooling and their gradients): reading
// and validating the (height, width) pair attributes, and the output-size rules in PyTorch's
// arithmetic. Inference functions call these so the forward op and its gradient ops agree on
// every shape; a dim of -1 (unknown until run time) yields -1 and skips the checks it feeds.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "core/op_registry.h"
#include "core/tensor.h"

namespace ember::reference {

using Pair = std::array<int64_t, 2>;  // (height, width)

inline std::string pair_str(const Pair& p) { return shape_str(Shape{p[0], p[1]}); }

// Reads an ints attribute of one value (used for both dims, as PyTorch accepts an int) or two
// (height, width), each >= min_value. An empty list yields *fallback when given (max_pool2d's
// stride defaults to kernel_size).
inline Pair read_pair(const AttrReader& ctx, const char* name, int64_t min_value,
                      const Pair* fallback = nullptr) {
  const std::vector<int64_t>& v = ctx.attr_ints(name);
  if (v.empty() && fallback) return *fallback;
  if (v.size() != 1 && v.size() != 2)
    ctx.fail("attribute '", name, "' must have 2 values (height, width), got ", v.size(), ": ",
             shape_str(v));
  Pair p = {v[0], v.size() == 2 ? v[1] : v[0]};
  for (int64_t x : p)
    if (x < min_value)
      ctx.fail("attribute '", name, "' = ", shape_str(v), " must be ",
               min_value == 0 ? "non-negative" : "positive");
  return p;
}

// An [N, C, H, W] tensor, or an unbatched [C, H, W] one (N = 1), as PyTorch accepts both.
struct Planes {
  int64_t batch, channels, height, width;
};

inline bool is_image_rank(const Shape& s) { return s.size() == 3 || s.size() == 4; }

inline Planes planes_of(const Shape& s) {
  if (s.size() == 4) return {s[0], s[1], s[2], s[3]};
  return {1, s[0], s[1], s[2]};
}

// Floor division for a possibly negative numerator (PyTorch's div_rtn).
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Convolution: floor((in + 2p - d(k-1) - 1) / s) + 1, or <= 0 when the dilated kernel does
// not fit the padded input. -1 (unknown) stays -1.
inline int64_t conv_output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  if (in < 0) return -1;
  return floor_div(in + 2 * p - d * (k - 1) - 1, s) + 1;
}

// Pooling, as ATen's pooling_output_shape: with ceil_mode the division rounds up, but the last
// window must start inside the input or the left padding, never in the right padding.
inline int64_t pool_output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                                bool ceil_mode) {
  if (in < 0) return -1;
  int64_t out = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// Shapes equal where both dims are known.
inline bool shapes_compatible(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- conv2d

struct ConvParams {
  Pair stride, padding, dilation;
  int64_t groups;
};

inline ConvParams read_conv_params(const AttrReader& ctx) {
  ConvParams p;
  p.stride = read_pair(ctx, "stride", 1);
  p.padding = read_pair(ctx, "padding", 0);
  p.dilation = read_pair(ctx, "dilation", 1);
  p.groups = ctx.attr_int("groups");
  if (p.groups < 1) ctx.fail("attribute 'groups' = ", p.groups, " must be positive");
  return p;
}

// Validates input [N, C, H, W] (or [C, H, W]) against weight [O, C/groups, kH, kW] and returns
// the output shape. `input_name` / `weight_name` name the tensors in messages (the gradient ops
// pass an attribute instead of a tensor).
inline Shape conv2d_output_shape(const AttrReader& ctx, const ConvParams& p, const Shape& input,
                                 const Shape& weight, const char* input_name,
                                 const char* weight_name) {
  if (!is_image_rank(input))
    ctx.fail(input_name, " must be [N, C, H, W] (or unbatched [C, H, W]), got shape ",
             shape_str(input));
  if (weight.size() != 4)
    ctx.fail(weight_name, " must be [out_channels, in_channels / groups, kH, kW], got shape ",
             shape_str(weight));
  Planes in = planes_of(input);
  for (size_t i = 0; i < weight.size(); ++i)
    if (weight[i] < 0) ctx.fail(weight_name, " ", shape_str(weight), " must have known dims");
  if (weight[2] < 1 || weight[3] < 1)
    ctx.fail(weight_name, " ", shape_str(weight), " has an empty kernel");
  if (weight[0] % p.groups != 0)
    ctx.fail(weight_name, " ", shape_str(weight), " has ", weight[0],
             " output channels, which groups = ", p.groups, " does not divide (", input_name,
             " ", shape_str(input), ")");
  if (in.channels >= 0 && in.channels != weight[1] * p.groups)
    ctx.fail(input_name, " ", shape_str(input), " has ", in.channels, " channels, but ",
             weight_name, " ", shape_str(weight), " with groups = ", p.groups, " expects ",
             weight[1] * p.groups);
  int64_t oh = conv_output_size(in.height, weight[2], p.stride[0], p.padding[0], p.dilation[0]);
  int64_t ow = conv_output_size(in.width, weight[3], p.stride[1], p.padding[1], p.dilation[1]);
  if ((in.height >= 0 && oh < 1) || (in.width >= 0 && ow < 1))
    ctx.fail(input_name, " ", shape_str(input), " padded by ", pair_str(p.padding),
             " is smaller than the kernel of ", weight_name, " ", shape_str(weight),
             " dilated by ", pair_str(p.dilation), " (output would be ", oh, " x ", ow, ")");
  if (input.size() == 4) return {in.batch, weight[0], oh, ow};
  return {weight[0], oh, ow};
}

// ---------------------------------------------------------------- pooling

struct PoolParams {
  Pair kernel, stride, padding, dilation;
  bool ceil_mode;
};

// max_pool2d reads dilation; avg_pool2d has none (dilation 1).
inline PoolParams read_pool_params(const AttrReader& ctx, bool has_dilation) {
  PoolParams p;
  p.kernel = read_pair(ctx, "kernel_size", 1);
  p.stride = read_pair(ctx, "stride", 1, &p.kernel);
  p.padding = read_pair(ctx, "padding", 0);
  p.dilation = has_dilation ? read_pair(ctx, "dilation", 1) : Pair{1, 1};
  p.ceil_mode = ctx.attr_bool("ceil_mode");
  if (p.padding[0] > p.kernel[0] / 2 || p.padding[1] > p.kernel[1] / 2)
    ctx.fail("attribute 'padding' = ", pair_str(p.padding),
             " must be at most half of 'kernel_size' = ", pair_str(p.kernel));
  return p;
}

// Validates x [N, C, H, W] (or [C, H, W]) and returns the pooled shape.
inline Shape pool2d_output_shape(const AttrReader& ctx, const PoolParams& p, const Shape& x,
                                 const char* x_name) {
  if (!is_image_rank(x))
    ctx.fail(x_name, " must be [N, C, H, W] (or unbatched [C, H, W]), got shape ", shape_str(x));
  for (size_t i = x.size() - 3; i < x.size(); ++i)
    if (x[i] == 0)
      ctx.fail(x_name, " ", shape_str(x), " is empty in a non-batch dimension");
  Planes in = planes_of(x);
  int64_t oh = pool_output_size(in.height, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0],
                                p.ceil_mode);
  int64_t ow = pool_output_size(in.width, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1],
                                p.ceil_mode);
  if ((in.height >= 0 && oh < 1) || (in.width >= 0 && ow < 1))
    ctx.fail(x_name, " ", shape_str(x), " is too small for kernel_size ", pair_str(p.kernel),
             ", stride ", pair_str(p.stride), ", padding ", pair_str(p.padding), ", dilation ",
             pair_str(p.dilation), " (output would be ", oh, " x ", ow, ")");
  Shape out = x;
  out[out.size() - 2] = oh;
  out[out.size() - 1] = ow;
  return out;
}

// Reads a shape attribute (input_shape / weight_shape of the gradient ops): every dim known.
inline Shape read_shape_attr(const AttrReader& ctx, const char* name) {
  const std::vector<int64_t>& v = ctx.attr_ints(name);
  for (int64_t d : v)
    if (d < 0) ctx.fail("attribute '", name, "' = ", shape_str(v), " has a negative dim");
  return Shape(v.begin(), v.end());
}

}  // namespace ember::reference
