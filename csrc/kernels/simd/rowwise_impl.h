// Vectorized, threaded fp32 row-wise ops, written once on kernels/simd/vec.h and included by one
// file per ISA after elementwise_impl.h:
//
//   softmax / log_softmax over the last dim (other dims: the reference kernel);
//   layer_norm over the trailing normalized_shape;
//   batch_norm (inference, running statistics) over [N, C, *].
//
// Statistics are kept in double like the reference's, and the affine steps of layer_norm and
// batch_norm are evaluated in double lanes with the reference's formula and order, so their
// results match it to the last bit except where a reordered double sum rounds differently
// (tested within 1 ulp). softmax uses the float exp of vec.h (2 ulp); see the test module for
// the bounds. Rows (or channels) are spread over the thread pool.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/op_registry.h"
#include "kernels/simd/kernel_util.h"
#include "kernels/simd/vec.h"

namespace ember::simd {
namespace {

// Rows per thread-pool chunk for rows of `len` floats (about 16K floats of work per chunk).
inline int64_t row_grain(int64_t len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)); }

inline vd widen(vf v) { return __builtin_convertvector(v, vd); }
inline vf narrow(const vd& v) { return __builtin_convertvector(v, vf); }

// ---------------------------------------------------------------- softmax / log_softmax
template <bool Log>
void softmax_rows(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t len = x.ndim() == 0 ? 1 : x.dim(-1);
  const int64_t rows = len == 0 ? 0 : x.numel() / len;
  const float* px = x.data<float>();
  float* py = ctx.output(0).data<float>();
  ctx.parallel_for(rows, row_grain(len), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = px + r * len;
      float* yr = py + r * len;
      // Row maximum; NaN wins, as the reference's.
      float max = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t i = 0; i < len; ++i) {
        const float v = xr[i];
        nan |= v != v;
        max = v > max ? v : max;
      }
      if (nan) max = std::numeric_limits<float>::quiet_NaN();
      const vf m = splat(max);
      // exp(x - max) in float, summed in double lanes; softmax keeps the exponentials in y.
      vd acc = vd{};
      for_vectors(len, [&](int64_t i, int64_t n) {
        const vf e = exp(get<true>(xr, i, n) - m);
        vd w = widen(e);
        for (int j = static_cast<int>(n); j < kLanes; ++j) w[j] = 0.0;
        acc += w;
        if constexpr (!Log) put(yr, i, n, e);
      });
      double sum = 0.0;
      for (int j = 0; j < kLanes; ++j) sum += acc[j];
      if constexpr (Log) {
        const vd ls = vd{} + std::log(sum);
        const vd md = vd{} + static_cast<double>(max);
        for_vectors(len, [&](int64_t i, int64_t n) {
          put(yr, i, n, narrow(widen(get<true>(xr, i, n)) - md - ls));
        });
      } else {
        const vf inv = splat(static_cast<float>(1.0 / sum));
        for_vectors(len, [&](int64_t i, int64_t n) { put(yr, i, n, get<true>(yr, i, n) * inv); });
      }
    }
  });
}

template <bool Log>
std::unique_ptr<OpKernel> create_softmax(const KernelInit& init, const char* op) {
  const TensorType& x = init.input_type(0);
  if (x.dtype != DType::Float32) return nullptr;
  const int64_t r = x.ndim();
  const int64_t dim = init.attr_int("dim");
  if (r > 0 && dim != -1 && dim != r - 1) return nullptr;  // not the last dim: reference
  if (r == 0 && dim != 0 && dim != -1) return nullptr;
  return make_kernel(kernel_name(op), [](OpContext& ctx) { softmax_rows<Log>(ctx); });
}

// ---------------------------------------------------------------- layer_norm
std::unique_ptr<OpKernel> create_layer_norm(const KernelInit& init) {
  for (int64_t i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_type(i).dtype != DType::Float32) return nullptr;
  return make_kernel(kernel_name("layer_norm"), [](OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const float* w = ctx.has_input(1) ? ctx.input(1).data<float>() : nullptr;
    const float* b = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    const double eps = ctx.attr_float("eps");
    const int64_t len = shape_numel(ctx.attr_ints("normalized_shape"));
    const int64_t rows = len == 0 ? 0 : x.numel() / len;
    const float* px = x.data<float>();
    float* py = ctx.output(0).data<float>();
    ctx.parallel_for(rows, row_grain(len), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = px + r * len;
        float* yr = py + r * len;
        vd acc = vd{};
        for_vectors(len, [&](int64_t i, int64_t n) {
          vd v = widen(get<true>(xr, i, n));
          for (int j = static_cast<int>(n); j < kLanes; ++j) v[j] = 0.0;
          acc += v;
        });
        double mean = 0.0;
        for (int j = 0; j < kLanes; ++j) mean += acc[j];
        mean /= static_cast<double>(len);
        const vd md = vd{} + mean;
        acc = vd{};
        for_vectors(len, [&](int64_t i, int64_t n) {
          vd d = widen(get<true>(xr, i, n)) - md;
          for (int j = static_cast<int>(n); j < kLanes; ++j) d[j] = 0.0;
          acc += d * d;
        });
        double var = 0.0;
        for (int j = 0; j < kLanes; ++j) var += acc[j];
        var /= static_cast<double>(len);
        const vd inv = vd{} + 1.0 / std::sqrt(var + eps);
        for_vectors(len, [&](int64_t i, int64_t n) {
          vd v = (widen(get<true>(xr, i, n)) - md) * inv;
          if (w) v *= widen(get<true>(w, i, n));
          if (b) v += widen(get<true>(b, i, n));
          put(yr, i, n, narrow(v));
        });
      }
    });
  });
}

// ---------------------------------------------------------------- batch_norm (inference)
std::unique_ptr<OpKernel> create_batch_norm(const KernelInit& init) {
  for (int64_t i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_type(i).dtype != DType::Float32) return nullptr;
  if (init.input_type(0).ndim() < 2) return nullptr;
  return make_kernel(kernel_name("batch_norm"), [](OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t N = x.dim(0), C = x.dim(1);
    const int64_t inner = C == 0 || N == 0 ? 0 : x.numel() / (N * C);
    const float* mean = ctx.input(1).data<float>();
    const float* var = ctx.input(2).data<float>();
    const float* w = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
    const float* b = ctx.has_input(4) ? ctx.input(4).data<float>() : nullptr;
    const double eps = ctx.attr_float("eps");
    std::vector<double> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {  // the reference's formula
      scale[static_cast<size_t>(c)] =
          (w ? static_cast<double>(w[c]) : 1.0) / std::sqrt(static_cast<double>(var[c]) + eps);
      shift[static_cast<size_t>(c)] = b ? static_cast<double>(b[c]) : 0.0;
    }
    const float* px = x.data<float>();
    float* py = ctx.output(0).data<float>();
    ctx.parallel_for(N * C, row_grain(inner), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t c = p % C;
        const vd m = vd{} + static_cast<double>(mean[c]);
        const vd sc = vd{} + scale[static_cast<size_t>(c)];
        const vd sh = vd{} + shift[static_cast<size_t>(c)];
        const float* xr = px + p * inner;
        float* yr = py + p * inner;
        for_vectors(inner, [&](int64_t i, int64_t n) {
          put(yr, i, n, narrow((widen(get<true>(xr, i, n)) - m) * sc + sh));
        });
      }
    });
  });
}

EMBER_VEC_REGISTER(softmax, [](const KernelInit& i) { return create_softmax<false>(i, "softmax"); });
EMBER_VEC_REGISTER(log_softmax, [](const KernelInit& i) { return create_softmax<true>(i, "log_softmax"); });
EMBER_VEC_REGISTER(layer_norm, create_layer_norm);
EMBER_VEC_REGISTER(batch_norm, create_batch_norm);

}  // namespace
}  // namespace ember::simd
