// Pooling on uint8 tensors: quantized_max_pool2d (output keeps the input's quantization),
// quantized_avg_pool2d and quantized_adaptive_avg_pool2d (sum of centered codes, requantized by
// input_scale / (output_scale * divisor) with requantize.h). Windows follow PyTorch's
// (ceil_mode, count_include_pad, adaptive windows [floor(o*in/out), ceil((o+1)*in/out))).
// Global average pooling (adaptive, output 1 x 1) has a multi-threaded kernel; the rest runs the
// reference.
#include <algorithm>

#include "core/op_registry.h"
#include "core/shape_util.h"
#include "kernels/quantized/qparams.h"

namespace ember {
namespace {

using namespace quantized;

struct Pool2d {
  int64_t kernel[2], stride[2], padding[2], dilation[2];
  bool ceil_mode;
};

Pool2d pool_params(const AttrReader& ctx, bool has_dilation) {
  Pool2d p;
  const auto& k = ctx.attr_ints("kernel_size");
  const auto& s = ctx.attr_ints("stride");
  const auto& pad = ctx.attr_ints("padding");
  if (k.size() != 2) ctx.fail("attribute 'kernel_size' must have 2 values, got ", k.size());
  if (!s.empty() && s.size() != 2) ctx.fail("attribute 'stride' must have 2 values or be empty, got ", s.size());
  if (pad.size() != 2) ctx.fail("attribute 'padding' must have 2 values, got ", pad.size());
  std::vector<int64_t> d = {1, 1};
  if (has_dilation) {
    d = ctx.attr_ints("dilation");
    if (d.size() != 2) ctx.fail("attribute 'dilation' must have 2 values, got ", d.size());
  }
  for (int i = 0; i < 2; ++i) {
    p.kernel[i] = k[i];
    p.stride[i] = s.empty() ? k[i] : s[i];
    p.padding[i] = pad[i];
    p.dilation[i] = d[i];
    if (p.kernel[i] < 1) ctx.fail("attribute 'kernel_size' must be >= 1, got ", p.kernel[i]);
    if (p.stride[i] < 1) ctx.fail("attribute 'stride' must be >= 1, got ", p.stride[i]);
    if (p.dilation[i] < 1) ctx.fail("attribute 'dilation' must be >= 1, got ", p.dilation[i]);
    if (p.padding[i] < 0 || p.padding[i] > p.kernel[i] / 2)
      ctx.fail("attribute 'padding' = ", p.padding[i], " must be in [0, kernel_size / 2 = ",
               p.kernel[i] / 2, "]");
  }
  p.ceil_mode = ctx.attr_bool("ceil_mode");
  return p;
}

int64_t pooled_size(const AttrReader& ctx, int64_t in, const Pool2d& p, int i) {
  if (in < 0) return -1;
  const int64_t span = p.dilation[i] * (p.kernel[i] - 1) + 1;
  const int64_t numerator = in + 2 * p.padding[i] - span;
  if (numerator < 0)
    ctx.fail("input 'x' ", i == 0 ? "height" : "width", " = ", in, " (+ 2 * padding) is smaller than the window ", span);
  int64_t out = (p.ceil_mode ? (numerator + p.stride[i] - 1) / p.stride[i] : numerator / p.stride[i]) + 1;
  if (p.ceil_mode && (out - 1) * p.stride[i] >= in + p.padding[i]) --out;
  return out;
}

Shape pooled_shape(const InferContext& ctx, const Pool2d& p) {
  const TensorType& x = ctx.input(0);
  if (x.ndim() != 4) ctx.fail("input 'x' must be 4-D [N, C, H, W], got shape ", shape_str(x.shape));
  return {x.shape[0], x.shape[1], pooled_size(ctx, x.shape[2], p, 0), pooled_size(ctx, x.shape[3], p, 1)};
}

// ---------------------------------------------------------------- max

std::vector<TensorType> infer_max_pool(const InferContext& ctx) {
  return {{DType::UInt8, pooled_shape(ctx, pool_params(ctx, true))}};
}

void quantized_max_pool2d_reference(OpContext& ctx) {
  const Pool2d p = pool_params(ctx, true);
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = y.dim(2), OW = y.dim(3);
  const uint8_t* px = x.data<uint8_t>();
  uint8_t* py = y.data<uint8_t>();
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int32_t best = -1;  // windows always hold a tap inside the input (padding <= k/2)
        for (int64_t ky = 0; ky < p.kernel[0]; ++ky) {
          const int64_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
          if (iy < 0 || iy >= H) continue;
          for (int64_t kx = 0; kx < p.kernel[1]; ++kx) {
            const int64_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
            if (ix < 0 || ix >= W) continue;
            best = std::max<int32_t>(best, px[(c * H + iy) * W + ix]);
          }
        }
        py[(c * OH + oy) * OW + ox] = static_cast<uint8_t>(std::max(best, 0));
      }
}

// ---------------------------------------------------------------- average

struct AvgRequant {
  int32_t input_zero_point, output_zero_point;
  double ratio;  // input_scale / output_scale
  std::string where;
  // Scale for one divisor, cached: windows have few distinct divisors.
  std::vector<FixedPointScale> by_divisor;
  FixedPointScale scale(int64_t divisor) {
    if (static_cast<size_t>(divisor) >= by_divisor.size()) by_divisor.resize(divisor + 1, {0, 0});
    FixedPointScale& s = by_divisor[divisor];
    if (s.multiplier == 0)
      s = quantize_scale(ratio / static_cast<double>(divisor),
                         where + ": requantization scale input_scale / (output_scale * window size)");
    return s;
  }
  uint8_t apply(int32_t centered_sum, int64_t divisor) { return finish(centered_sum, scale(divisor)); }
  // The output code of a centred sum with a scale already looked up (no cache update: threads
  // may share it).
  uint8_t finish(int32_t centered_sum, FixedPointScale s) const {
    int64_t v = requantize(centered_sum, s) + output_zero_point;
    return clamp_to_uint8(v, OutputRange{});
  }
};

AvgRequant avg_requant(const AttrReader& ctx) {
  AvgRequant r;
  r.input_zero_point = attr_zero_point(ctx, "input_zero_point");
  r.output_zero_point = attr_zero_point(ctx, "output_zero_point");
  r.ratio = attr_scale(ctx, "input_scale") / attr_scale(ctx, "output_scale");
  r.where = ctx.where();
  return r;
}

std::vector<TensorType> infer_avg_pool(const InferContext& ctx) {
  avg_requant(ctx);
  return {{DType::UInt8, pooled_shape(ctx, pool_params(ctx, false))}};
}

void quantized_avg_pool2d_reference(OpContext& ctx) {
  const Pool2d p = pool_params(ctx, false);
  const bool count_include_pad = ctx.attr_bool("count_include_pad");
  AvgRequant rq = avg_requant(ctx);
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = y.dim(2), OW = y.dim(3);
  const uint8_t* px = x.data<uint8_t>();
  uint8_t* py = y.data<uint8_t>();
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int64_t y0 = oy * p.stride[0] - p.padding[0], x0 = ox * p.stride[1] - p.padding[1];
        int64_t y1 = std::min(y0 + p.kernel[0], H + p.padding[0]);
        int64_t x1 = std::min(x0 + p.kernel[1], W + p.padding[1]);
        const int64_t padded_count = (y1 - y0) * (x1 - x0);
        y0 = std::max<int64_t>(y0, 0);
        x0 = std::max<int64_t>(x0, 0);
        y1 = std::min(y1, H);
        x1 = std::min(x1, W);
        int32_t sum = 0;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) sum += px[(c * H + iy) * W + ix] - rq.input_zero_point;
        const int64_t divisor = count_include_pad ? padded_count : (y1 - y0) * (x1 - x0);
        py[(c * OH + oy) * OW + ox] = rq.apply(sum, std::max<int64_t>(divisor, 1));
      }
}

// ---------------------------------------------------------------- adaptive average

std::vector<TensorType> infer_adaptive_avg_pool(const InferContext& ctx) {
  avg_requant(ctx);
  const TensorType& x = ctx.input(0);
  if (x.ndim() != 4) ctx.fail("input 'x' must be 4-D [N, C, H, W], got shape ", shape_str(x.shape));
  const auto& size = ctx.attr_ints("output_size");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1)
    ctx.fail("attribute 'output_size' must be 2 values >= 1, got ", AttrValue::Ints(size).str());
  return {{DType::UInt8, {x.shape[0], x.shape[1], size[0], size[1]}}};
}

void quantized_adaptive_avg_pool2d_reference(OpContext& ctx) {
  AvgRequant rq = avg_requant(ctx);
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t planes = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = y.dim(2), OW = y.dim(3);
  if (H == 0 || W == 0) ctx.fail("input 'x' has an empty plane ", shape_str(x.shape()));
  const uint8_t* px = x.data<uint8_t>();
  uint8_t* py = y.data<uint8_t>();
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t oy = 0; oy < OH; ++oy) {
      const int64_t y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
      for (int64_t ox = 0; ox < OW; ++ox) {
        const int64_t x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
        int32_t sum = 0;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) sum += px[(c * H + iy) * W + ix] - rq.input_zero_point;
        py[(c * OH + oy) * OW + ox] = rq.apply(sum, (y1 - y0) * (x1 - x0));
      }
    }
}

// Global average pooling (output_size [1, 1], the last pool of most CNNs): every plane is one
// window, summed as a contiguous run of bytes on all threads; one scale for all planes. The
// integer sum equals the reference's sum of centred codes, so the codes are the same.
void quantized_global_avg_pool2d(OpContext& ctx) {
  AvgRequant rq = avg_requant(ctx);
  const Tensor& x = ctx.input(0);
  const int64_t planes = x.dim(0) * x.dim(1), area = x.dim(2) * x.dim(3);
  if (area == 0) ctx.fail("input 'x' has an empty plane ", shape_str(x.shape()));
  if (area > (int64_t{1} << 23))  // 255 * area must fit the int32 sum
    ctx.fail("input 'x' planes of ", area, " codes are more than the 2**23 an int32 sum holds");
  const FixedPointScale scale = rq.scale(area);
  const int32_t offset = static_cast<int32_t>(rq.input_zero_point * area);
  const uint8_t* px = x.data<uint8_t>();
  uint8_t* py = ctx.output(0).data<uint8_t>();
  ctx.parallel_for(planes, std::max<int64_t>(1, 4096 / area), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const uint8_t* plane = px + c * area;
      uint32_t sum = 0;
      for (int64_t i = 0; i < area; ++i) sum += plane[i];
      py[c] = rq.finish(static_cast<int32_t>(sum) - offset, scale);
    }
  });
}

std::unique_ptr<OpKernel> make_global_avg_pool(const KernelInit& init) {
  const auto& size = init.attr_ints("output_size");
  if (size.size() != 2 || size[0] != 1 || size[1] != 1) return nullptr;  // other sizes: reference
  return make_function_kernel(quantized_global_avg_pool2d, "u8_global_avg_pool2d_portable");
}

}  // namespace

#define EMBER_POOL_WINDOW_ATTRS                                                          \
  .attr("kernel_size", AttrType::Ints, "window (h, w)")                                  \
      .attr("stride", AttrValue::Ints({}), "stride (h, w); empty = kernel_size")         \
      .attr("padding", AttrValue::Ints({0, 0}), "implicit padding (h, w), <= kernel / 2") \
      .attr("ceil_mode", AttrValue::Bool(false), "round the output size up")

#define EMBER_AVG_QUANT_ATTRS                                                               \
  .attr("input_scale", AttrType::Float, "scale of x")                                       \
      .attr("input_zero_point", AttrValue::Int(0), "zero point of x, in [0, 255]")          \
      .attr("output_scale", AttrType::Float, "scale of y")                                  \
      .attr("output_zero_point", AttrValue::Int(0), "zero point of y, in [0, 255]")

EMBER_REGISTER_OP(quantized_max_pool2d)
    .doc("2-D max pooling of uint8 codes (NCHW); y has x's scale and zero point. Padding never wins.")
    .input("x", {DType::UInt8})
    .output("y", "uint8, same quantization as x")
    EMBER_POOL_WINDOW_ATTRS
    .attr("dilation", AttrValue::Ints({1, 1}), "dilation (h, w)")
    .infer(infer_max_pool)
    .kernel(DType::UInt8, Isa::Reference, quantized_max_pool2d_reference);

EMBER_REGISTER_OP(quantized_avg_pool2d)
    .doc("2-D average pooling of uint8 (NCHW): y = output_zero_point + round(sum(x - "
         "input_zero_point) * input_scale / (output_scale * divisor)) in fixed point; the divisor "
         "follows PyTorch (count_include_pad, ceil_mode).")
    .input("x", {DType::UInt8})
    .output("y", "uint8")
    EMBER_POOL_WINDOW_ATTRS
    .attr("count_include_pad", AttrValue::Bool(true), "padding counts in the divisor")
    EMBER_AVG_QUANT_ATTRS
    .infer(infer_avg_pool)
    .kernel(DType::UInt8, Isa::Reference, quantized_avg_pool2d_reference);

EMBER_REGISTER_OP(quantized_adaptive_avg_pool2d)
    .doc("Adaptive 2-D average pooling of uint8 (NCHW; output_size [1, 1] is global average "
         "pooling), requantized like quantized_avg_pool2d.")
    .input("x", {DType::UInt8})
    .output("y", "uint8")
    .attr("output_size", AttrType::Ints, "output (h, w)")
    EMBER_AVG_QUANT_ATTRS
    .infer(infer_adaptive_avg_pool)
    .kernel(DType::UInt8, Isa::Reference, quantized_adaptive_avg_pool2d_reference);
EMBER_REGISTER_KERNEL(quantized_adaptive_avg_pool2d, DType::UInt8, Isa::Portable,
                      "u8_global_avg_pool2d_portable", make_global_avg_pool);

#undef EMBER_POOL_WINDOW_ATTRS
#undef EMBER_AVG_QUANT_ATTRS

}  // namespace ember
