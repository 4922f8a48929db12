// The fast quantized_conv2d / quantized_linear kernels: ISA-independent drivers (packing,
// blocking, threading, fallbacks) that call ISA-specific microkernels described as data.
//
// Convolution as GEMM (NCHW, per group):  out[o, p] = sum_k W[o, k] * col[k, p]
//   col   uint8 [K4][P_pad][4]: im2col with 4 consecutive k of one pixel adjacent (the operand
//         layout of u8 x s8 dot-product instructions); padding taps hold the input zero point,
//         k >= K holds 0, pixels >= P hold 0.
//   W     packed per block of MR output channels: [K4][MR][4] int8 (or int16 for ISAs that
//         multiply 16-bit lanes), zero rows/columns past the end.
//   bias  folded: bias[o] + (activation_offset - input_zero_point) * sum_k W[o, k], so the
//         microkernel accumulates raw u8 x s8 products (QNNPACK's zero-point folding).
// Microkernels compute an MR x NR tile including the requantization epilogue (requantize.h
// arithmetic, bit for bit).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/op_registry.h"
#include "kernels/quantized/qparams.h"

namespace ember::quantized {

// Per output channel constants of the epilogue.
struct RequantRow {
  int32_t bias;        // folded bias
  int32_t multiplier;  // FixedPointScale
  int32_t shift;
  int32_t unused = 0;
};

struct OutputParams {
  int32_t zero_point;
  int32_t min, max;  // clamp range of the output codes
};

enum class WeightLayout { Int8Quads, Int16Quads };

// Tile: rows [0, MR) of the packed weight block `w`, pixels [0, NR) of col (advancing
// `col_stride` bytes per k-quad); stores rows < mr and pixels < nr to out[r * out_stride + p].
using QGemmUkernel = void (*)(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride,
                              const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                              int64_t out_stride, int64_t mr, int64_t nr);

constexpr int64_t kNarrowPixels = 4;

// Interleaves 4 rows of n bytes (n a multiple of 16) into blocks of `block` pixels (a multiple
// of 16), block b at dst + b * block_stride: pixel i of row j goes to
// dst[(i / block) * block_stride + (i % block) * 4 + j]. GEMM panels are blocks of one tile's
// width, each [K4][block][4], so a tile reads one contiguous run of memory: rows of a whole
// chunk (256 pixels, 1 KB apart) fell into 8 of the 64 L1 sets and the tile's loads missed.
using Interleave4 = void (*)(const uint8_t* const rows[4], int64_t n, uint8_t* dst, int64_t block,
                             int64_t block_stride);
void interleave4_portable(const uint8_t* const rows[4], int64_t n, uint8_t* dst, int64_t block,
                          int64_t block_stride);

// Channels-in-lanes tile: 16 output channels per vector, nv vectors (16 nv channels) x
// np <= kLanesPixels pixels; each k-quad is one dot product per (vector, pixel), the pixel's
// four codes broadcast against the channels' weight quads. Weights: quad q of channel c at
// w[q * w_stride + 4 c]. Activations are read where they lie: the depth is `segs` segments of
// seg_k4 quads each, segment s of pixel p starting at pixels[p] + seg_offsets[s] (with the
// input in NHWC rows, a segment is one tap row's kw * C contiguous bytes: no im2col matrix;
// an im2col matrix is one segment per pixel). Quad q of segment s meets weight quad
// s * seg_k4 + q. Channel c of pixel p goes to out[c * out_stride + p]. Epilogue constants
// per channel, from the tile's first one.
struct LaneConsts {
  const int32_t* bias;  // folded
  const int32_t* multiplier;
  const int32_t* shift;
};
constexpr int kLanesPixels = 6;
constexpr int kLanesVectors = 4;  // 64 channels
struct LaneSegments {
  int64_t seg_k4, segs;
  const int64_t* seg_offsets;  // [segs]
};
using QLanesUkernel = void (*)(const LaneSegments& depth, const int8_t* w, int64_t w_stride, int nv,
                               const uint8_t* const* pixels, int np, const LaneConsts& consts,
                               const OutputParams& out_params, uint8_t* out, int64_t out_stride);

struct QGemmConfig {
  const char* name;
  int mr, nr;
  WeightLayout layout;
  int32_t activation_offset;  // the microkernel sees x - activation_offset (0, or 128 for s8 dots)
  QGemmUkernel ukernel;
  bool handles_depthwise = false;  // false: leaves depthwise convolutions to a direct kernel
  Interleave4 interleave4 = interleave4_portable;
  // Optional narrower tiles (NR / 2 and NR / 4 pixels) for a chunk's last pixels; null: the
  // full tile with masked stores.
  QGemmUkernel ukernel_half = nullptr;
  QGemmUkernel ukernel_quarter = nullptr;
  // Optional tile for the last 1 .. kNarrowPixels pixels (a 7 x 7 map's 49th, a 14 x 14 map's
  // last 4): the MR channels in the vector, one dot product per pixel and k-quad.
  QGemmUkernel ukernel_narrow = nullptr;
  // Optional channels-in-lanes kernel for convolutions over small maps (see LaneConsts), under
  // its own kernel name; such layers keep only its weight layout.
  QLanesUkernel ukernel_lanes = nullptr;
  const char* lanes_name = nullptr;
};

// Dot products of one uint8 row x[K] with `rows` int8 weight rows (stride K): raw sums.
using QDotUkernel = void (*)(const uint8_t* x, const int8_t* w, int64_t k, int64_t rows, int32_t* out);

// One output row of a depthwise convolution over a plane padded with the zero point:
// out[ox] for ox in [0, out_w) from padded rows starting at `in` (row stride `in_stride`),
// taps w[kh * kw], folded bias and requantization in `row`.
struct DepthwiseRowArgs {
  const uint8_t* in;
  int64_t in_stride;
  const int64_t* tap_offsets;  // [kh * kw]: byte offset of tap (ky, kx) from `in`
  const int8_t* w;
  int64_t kernel_h, kernel_w, stride_w, dilation_h, dilation_w;
  int64_t out_w;
  RequantRow row;
  OutputParams out_params;
  uint8_t* out;
};
using QDepthwiseRowUkernel = void (*)(const DepthwiseRowArgs& args);

// One whole plane of a 3x3 depthwise convolution with padding 1, stride 1 or 2 and one output
// channel per input channel, read in place: taps outside the plane are the input zero point.
struct DepthwisePlaneArgs {
  const uint8_t* in;  // [in_h][in_w]
  int64_t in_h, in_w, out_h, out_w, stride;
  const int8_t* w;  // [3][3]
  uint8_t input_zero_point;
  RequantRow row;
  OutputParams out_params;
  uint8_t* out;  // [out_h][out_w]
};
using QDepthwisePlaneUkernel = void (*)(const DepthwisePlaneArgs& args);
// Larger depthwise kernels fall back to the reference (row kernels keep per-tap state on the stack).
constexpr int64_t kMaxDepthwiseTaps = 64;

// Factories (nullptr when the case is not handled, so the registry falls back).
std::unique_ptr<OpKernel> make_quantized_conv2d_gemm(const KernelInit& init, const QGemmConfig& config);
// With `plane3x3` (named `plane3x3_name`) the kernel takes only the convolutions
// DepthwisePlaneArgs describes and runs them a plane at a time.
std::unique_ptr<OpKernel> make_quantized_conv2d_depthwise(const KernelInit& init, const char* name,
                                                          QDepthwiseRowUkernel row,
                                                          const char* plane3x3_name = nullptr,
                                                          QDepthwisePlaneUkernel plane3x3 = nullptr);
// float_output: quantized_linear_float (DequantizeEpilogue) instead of quantized_linear.
std::unique_ptr<OpKernel> make_quantized_linear_dot(const KernelInit& init, const char* name,
                                                    QDotUkernel dot, bool float_output = false);

}  // namespace ember::quantized
