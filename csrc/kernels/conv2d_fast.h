// Shared pieces of the fast fp32 conv2d kernels (NCHW): the problem shape, the implicit-im2col
// packer that feeds the GEMM, and the direct depthwise kernels (one per ISA file).
#pragma once
#include <cstdint>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/gemm.h"

namespace ember::conv {

struct Conv2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t O = 0, kh = 0, kw = 0;       // weight [O, C / groups, kh, kw]
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  int64_t OH = 0, OW = 0;  // output
};

// Bias and activation applied as the output is written.
struct ConvEpilogue {
  const float* bias = nullptr;  // [O] or null
  bool clamp = false;           // relu: [0, inf), relu6: [0, 6]
  float lo = 0.0f, hi = 0.0f;
};

// Direct depthwise convolution (groups == C == O): 3x3 or 5x5, stride 1 or 2 (both
// directions equal), no dilation. Each ISA file compiles the same code with its flags
// (conv2d_depthwise_impl.h); AVX-512 has its own kernels for 3x3 with padding 1, which read the
// input in place (conv2d_depthwise_avx512.cc).
bool depthwise_supported(const Conv2dShape& s);
using DepthwiseFn = void (*)(const Conv2dShape& s, const float* x, const float* w, float* y,
                             const ConvEpilogue& ep, ThreadPool* pool);
void conv2d_depthwise_portable(const Conv2dShape& s, const float* x, const float* w, float* y,
                               const ConvEpilogue& ep, ThreadPool* pool);
#if defined(__x86_64__) || defined(_M_X64)
void conv2d_depthwise_avx2(const Conv2dShape& s, const float* x, const float* w, float* y,
                           const ConvEpilogue& ep, ThreadPool* pool);
void conv2d_depthwise_avx512(const Conv2dShape& s, const float* x, const float* w, float* y,
                             const ConvEpilogue& ep, ThreadPool* pool);
#endif

// Direct weight gradient for stride-1, undilated layers of kernel width 3
// (conv2d_grad_weight_direct_impl.h): dot products along output rows, no im2col. x86 only.
bool grad_weight_direct_supported(const Conv2dShape& s);
using GradWeightDirectFn = void (*)(const Conv2dShape& s, const float* dy, const float* x,
                                    float* dw, ThreadPool* pool);
#if defined(__x86_64__) || defined(_M_X64)
void conv2d_grad_weight_direct_avx2(const Conv2dShape& s, const float* dy, const float* x,
                                    float* dw, ThreadPool* pool);
void conv2d_grad_weight_direct_avx512(const Conv2dShape& s, const float* dy, const float* x,
                                      float* dw, ThreadPool* pool);
#endif

// Winograd F(4x4, 3x3) for 3x3 stride-1 undilated ungrouped layers (conv2d_winograd_impl.h):
// the weight is packed once at its own size (winograd_pack_weights), then each run transforms
// the input, builds the transformed weight chunk by chunk for 36 GEMMs' microkernels, and
// transforms back with bias and activation. x86 only.
bool winograd_supported(const Conv2dShape& s);
// Packs a 3x3 weight of O output and C input channels for the Winograd kernels, at its own size
// (a rearranging copy, the same on every ISA): panels of NR output channels, and within a panel,
// per input channel, the 9 taps' NR values one after another, so the per-run transform reads one
// sequential stream. Element (o, c, t) lands at ((o / NR * C + c) * 9 + t) * NR + o % NR
// (padding channels zero) and is read from w[o * o_stride + c * c_stride + t * t_stride].
gemm::PackedMatrix winograd_pack_weights(const gemm::SgemmKernel& kernel, const float* w,
                                         int64_t O, int64_t C, int64_t o_stride,
                                         int64_t c_stride, int64_t t_stride);
using WinogradRunFn = void (*)(const Conv2dShape& s, const float* x,
                               const gemm::SgemmKernel& kernel, const float* packed_w, float* y,
                               const ConvEpilogue& ep, ThreadPool* pool);
// This ISA's Winograd convolution (null where there is none).
WinogradRunFn winograd_for(Isa isa);
// Whether a Winograd-capable layer of this shape takes Winograd (enough channels to pay for
// the transforms). The choice depends on the shape only, so eager and loaded kernels agree.
bool prefer_winograd(const Conv2dShape& s);
// Whether a GEMM convolution with P output pixels per image is computed as pixels x channels
// (rows of P fit the microkernel's MR better than its columns fit NR: 7x7 and 14x14 maps).
bool prefer_transposed_conv(const gemm::SgemmKernel& kernel, int64_t P, int64_t O, int64_t K);
#if defined(__x86_64__) || defined(_M_X64)
void conv2d_winograd_avx2(const Conv2dShape& s, const float* x, const gemm::SgemmKernel& kernel,
                          const float* packed_w, float* y, const ConvEpilogue& ep,
                          ThreadPool* pool);
void conv2d_winograd_avx512(const Conv2dShape& s, const float* x, const gemm::SgemmKernel& kernel,
                            const float* packed_w, float* y, const ConvEpilogue& ep,
                            ThreadPool* pool);
#endif

}  // namespace ember::conv
