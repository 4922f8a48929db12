// Vectorized, threaded fp32 row-wise ops, written once on kernels/simd/vec.h and included by one
// file per ISA after elementwise_impl.h:
//
//   softmax / log_softmax over the last dim (other dims: the reference kernel);
//   layer_norm over the trailing normalized_shape;
//   batch_norm (inference, running statistics) over [N, C, *];
//   batch_norm_train and batch_norm_train_grad (batch statistics) over [N, C, *].
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
#include <utility>
#include <vector>

#include "core/op_registry.h"
#include "kernels/simd/kernel_util.h"
#include "kernels/simd/vec.h"

namespace ember::simd {
namespace {

// Rows per thread-pool chunk for rows of `len` floats (about 16K floats of work per chunk).
inline int64_t row_grain(int64_t len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)); }

inline vd widen(vf v) { return __builtin_convertvector(v, vd); }

// Double sums of float vectors in two native-width double vectors (vd is twice the native
// width, and GCC keeps a loop-carried vd in memory: a load and a store per addition).
typedef double vdn __attribute__((vector_size(EMBER_VEC_BYTES)));
typedef float vfh __attribute__((vector_size(EMBER_VEC_BYTES / 2)));
template <int... I>
inline vdn low_half(vf v, std::integer_sequence<int, I...>) {
  return __builtin_convertvector(__builtin_shufflevector(v, v, I...), vdn);
}
template <int... I>
inline vdn high_half(vf v, std::integer_sequence<int, I...>) {
  return __builtin_convertvector(__builtin_shufflevector(v, v, (I + kLanes / 2)...), vdn);
}
// Lanes [first, first + kLanes / 2) of a row whose valid part ends at n: lanes at n or beyond
// become zero (only the tail of a row, n < kLanes, pays for the select).
inline vdn keep_valid(vdn v, int64_t n, int first) {
  if (n >= kLanes) return v;
  vdn index;
  for (int j = 0; j < kLanes / 2; ++j) index[j] = first + j;
  return index < static_cast<double>(n) ? v : vdn{};
}

// A double sum over float vectors (lane j of a row into partial sum j), in two native-width
// halves; total() adds the partials in lane order, as a loop over a vd accumulator would.
struct DoubleSum {
  static constexpr auto kSeq = std::make_integer_sequence<int, kLanes / 2>();
  vdn lo = vdn{}, hi = vdn{};
  // x (lanes from n on must be zero)
  void add(vf x) {
    lo += low_half(x, kSeq);
    hi += high_half(x, kSeq);
  }
  // x, n valid lanes
  void add_valid(vf x, int64_t n) {
    lo += keep_valid(low_half(x, kSeq), n, 0);
    hi += keep_valid(high_half(x, kSeq), n, kLanes / 2);
  }
  // (x - m)^2, x - m formed in double; n valid lanes
  void add_square_deviation(vf x, vdn m, int64_t n) {
    const vdn dl = keep_valid(low_half(x, kSeq) - m, n, 0);
    const vdn dh = keep_valid(high_half(x, kSeq) - m, n, kLanes / 2);
    lo += dl * dl;
    hi += dh * dh;
  }
  // g * (x - m), in double; n valid lanes
  void add_product_deviation(vf g, vf x, vdn m, int64_t n) {
    lo += keep_valid(low_half(g, kSeq) * (low_half(x, kSeq) - m), n, 0);
    hi += keep_valid(high_half(g, kSeq) * (high_half(x, kSeq) - m), n, kLanes / 2);
  }
  double total() const {
    double t = 0.0;
    for (int j = 0; j < kLanes / 2; ++j) t += lo[j];
    for (int j = 0; j < kLanes / 2; ++j) t += hi[j];
    return t;
  }
};

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
      // (Vector lanes of partial maxima: which of +0 and -0 is kept cannot change a result,
      // since x - max is then +-0 only where exp gives 1, and log_softmax subtracts log(sum).)
      const vf neg_inf = splat(-std::numeric_limits<float>::infinity());
      vf lane_max = neg_inf;
      vi nan_lanes = vi{};
      for_vectors(len, [&](int64_t i, int64_t n) {
        vf v = get<true>(xr, i, n);
        if (n < kLanes) {
          vi index;
          for (int j = 0; j < kLanes; ++j) index[j] = j;
          v = select(index < static_cast<int32_t>(n), v, neg_inf);
        }
        nan_lanes |= is_nan(v);
        lane_max = select(v > lane_max, v, lane_max);
      });
      float max = lane_max[0];
      bool nan = false;
      for (int j = 0; j < kLanes; ++j) {
        nan |= nan_lanes[j] != 0;
        max = lane_max[j] > max ? lane_max[j] : max;
      }
      if (nan) max = std::numeric_limits<float>::quiet_NaN();
      const vf m = splat(max);
      // exp(x - max) in float, summed in double lanes; softmax keeps the exponentials in y.
      DoubleSum acc;
      for_vectors(len, [&](int64_t i, int64_t n) {
        const vf e = exp(get<true>(xr, i, n) - m);
        acc.add_valid(e, n);
        if constexpr (!Log) put(yr, i, n, e);
      });
      const double sum = acc.total();
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
        DoubleSum sum;  // tail lanes load as zero
        for_vectors(len, [&](int64_t i, int64_t n) { sum.add(get<true>(xr, i, n)); });
        const double mean = sum.total() / static_cast<double>(len);
        const vd md = vd{} + mean;
        DoubleSum sq;
        for_vectors(len, [&](int64_t i, int64_t n) {
          sq.add_square_deviation(get<true>(xr, i, n), vdn{} + mean, n);
        });
        const double var = sq.total() / static_cast<double>(len);
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

// ---------------------------------------------------------------- batch_norm_train(_grad)
// Channels are spread over the threads; each sums its [N, inner] values in double lanes (the
// reference sums in one double, so results may differ in the last bits of the statistics).

// Calls f(offset, i, n) for the vectors of channel c of an [N, C, inner] tensor: offset is the
// plane's first element, (i, n) as for_vectors within the plane.
template <typename F>
void for_channel_vectors(int64_t N, int64_t C, int64_t inner, int64_t c, const F& f) {
  for (int64_t n = 0; n < N; ++n) {
    const int64_t base = (n * C + c) * inner;
    for_vectors(inner, [&](int64_t i, int64_t k) { f(base, i, k); });
  }
}

std::unique_ptr<OpKernel> create_batch_norm_train(const KernelInit& init) {
  for (int64_t i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_type(i).dtype != DType::Float32) return nullptr;
  if (init.input_type(0).ndim() < 2) return nullptr;
  return make_kernel(kernel_name("batch_norm_train"), [](OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t N = x.dim(0), C = x.dim(1);
    const int64_t inner = C == 0 || N == 0 ? 0 : x.numel() / (N * C);
    const float* w = ctx.has_input(1) ? ctx.input(1).data<float>() : nullptr;
    const float* b = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    const double eps = ctx.attr_float("eps");
    const double count = static_cast<double>(N * inner);
    const float* px = x.data<float>();
    float* py = ctx.output(0).data<float>();
    float* pmean = ctx.output(1).data<float>();
    float* pvar = ctx.output(2).data<float>();
    ctx.parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        // Mean, then the variance from deviations about it (two passes, as the reference).
        DoubleSum sum;
        for_channel_vectors(N, C, inner, c, [&](int64_t base, int64_t i, int64_t k) {
          sum.add(get<true>(px + base, i, k));
        });
        const double mean = count > 0 ? sum.total() / count : std::nan("");
        const vd md = vd{} + mean;
        DoubleSum sq;
        for_channel_vectors(N, C, inner, c, [&](int64_t base, int64_t i, int64_t k) {
          sq.add_square_deviation(get<true>(px + base, i, k), vdn{} + mean, k);
        });
        const double var = count > 0 ? sq.total() / count : std::nan("");
        const vd sc = vd{} + (w ? static_cast<double>(w[c]) : 1.0) / std::sqrt(var + eps);
        const vd sh = vd{} + (b ? static_cast<double>(b[c]) : 0.0);
        for_channel_vectors(N, C, inner, c, [&](int64_t base, int64_t i, int64_t k) {
          put(py + base, i, k, narrow((widen(get<true>(px + base, i, k)) - md) * sc + sh));
        });
        pmean[c] = static_cast<float>(mean);
        pvar[c] = static_cast<float>(var);
      }
    });
  });
}

std::unique_ptr<OpKernel> create_batch_norm_train_grad(const KernelInit& init) {
  for (int64_t i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_type(i).dtype != DType::Float32) return nullptr;
  if (init.input_type(1).ndim() < 2 || !(init.input_type(0).shape == init.input_type(1).shape))
    return nullptr;
  return make_kernel(kernel_name("batch_norm_train_grad"), [](OpContext& ctx) {
    const Tensor& x = ctx.input(1);
    const int64_t N = x.dim(0), C = x.dim(1);
    const int64_t inner = C == 0 || N == 0 ? 0 : x.numel() / (N * C);
    const float* pg = ctx.input(0).data<float>();
    const float* pmean = ctx.input(2).data<float>();
    const float* pvar = ctx.input(3).data<float>();
    const float* w = ctx.has_input(4) ? ctx.input(4).data<float>() : nullptr;
    const double eps = ctx.attr_float("eps");
    const double count = static_cast<double>(N * inner);
    const float* px = x.data<float>();
    float* pgx = ctx.output(0).data<float>();
    float* pgw = ctx.output(1).data<float>();
    float* pgb = ctx.output(2).data<float>();
    ctx.parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const double mean = static_cast<double>(pmean[c]);
        const double invstd = 1.0 / std::sqrt(static_cast<double>(pvar[c]) + eps);
        const vd md = vd{} + mean;
        DoubleSum gs, gd;  // sum(g), sum(g * (x - mean)); tail lanes of g load as zero
        for_channel_vectors(N, C, inner, c, [&](int64_t base, int64_t i, int64_t k) {
          const vf g = get<true>(pg + base, i, k);
          gs.add(g);
          gd.add_product_deviation(g, get<true>(px + base, i, k), vdn{} + mean, k);
        });
        const double gsum = gs.total(), gdot = gd.total();
        const vd scale = vd{} + (w ? static_cast<double>(w[c]) : 1.0) * invstd;
        const vd gmean = vd{} + gsum / count;
        const vd kk = vd{} + invstd * invstd * gdot / count;
        for_channel_vectors(N, C, inner, c, [&](int64_t base, int64_t i, int64_t k) {
          const vd g = widen(get<true>(pg + base, i, k));
          const vd d = widen(get<true>(px + base, i, k)) - md;
          put(pgx + base, i, k, narrow(scale * (g - gmean - d * kk)));
        });
        pgw[c] = static_cast<float>(gdot * invstd);
        pgb[c] = static_cast<float>(gsum);
      }
    });
  });
}

EMBER_VEC_REGISTER(softmax, [](const KernelInit& i) { return create_softmax<false>(i, "softmax"); });
EMBER_VEC_REGISTER(log_softmax, [](const KernelInit& i) { return create_softmax<true>(i, "log_softmax"); });
EMBER_VEC_REGISTER(layer_norm, create_layer_norm);
EMBER_VEC_REGISTER(batch_norm, create_batch_norm);
EMBER_VEC_REGISTER(batch_norm_train, create_batch_norm_train);
EMBER_VEC_REGISTER(batch_norm_train_grad, create_batch_norm_train_grad);

}  // namespace
}  // namespace ember::simd
