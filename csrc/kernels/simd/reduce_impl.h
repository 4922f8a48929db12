// Vectorized, threaded fp32 reductions sum / mean / var / max / min, written once on
// kernels/simd/vec.h and included by one file per ISA after elementwise_impl.h (whose vector
// loop helpers it uses).
//
// The input is viewed as [R0, K, R1]: kept dims K between reduced leading dims R0 and reduced
// trailing dims R1 (any of them may be 1). That covers a reduction over the last dims (rows:
// softmax-style), over the leading dims (bias gradients, [N, D] -> [D]) and over all but one
// middle dim (batch-norm statistics, [N, C, H, W] -> [C]). Other patterns get nullptr, so the
// reference kernel runs.
//
// Like the reference, sums accumulate in double (vector lanes of doubles) and var is two-pass
// (mean, then squared deviations), so results are within an ulp or so of the reference; only
// the summation order differs. A long reduction is cut into fixed-size chunks whose partial
// sums are added in chunk order: the result does not depend on the thread count.
#pragma once
#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/simd/kernel_util.h"
#include "kernels/simd/vec.h"

namespace ember::simd {
namespace {

constexpr int64_t kReduceChunk = 65536;  // elements of one reduction per task

struct ReducePlan {
  int64_t r0 = 1, k = 1, r1 = 1;
  int64_t count = 1;  // elements folded into each output
};

// From the input shape and the `dim` attribute; false for a pattern other than [R0, K, R1].
bool make_reduce_plan(const std::vector<int64_t>& dims, const Shape& x, ReducePlan* plan) {
  *plan = ReducePlan{};
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<char> reduced(static_cast<size_t>(r), 0);
  if (dims.empty()) {
    std::fill(reduced.begin(), reduced.end(), 1);
  } else {
    for (int64_t d : dims) {
      const int64_t a = d < 0 ? d + r : d;
      if (a < 0 || a >= std::max<int64_t>(r, 1)) return false;  // the reference reports it
      if (r == 0) continue;
      if (reduced[static_cast<size_t>(a)]) return false;
      reduced[static_cast<size_t>(a)] = 1;
    }
  }
  // Runs of reduced / kept dims, size-1 dims ignored: must read R*, K*, R*.
  int stage = 0;  // 0: leading reduced, 1: kept, 2: trailing reduced
  for (int64_t i = 0; i < r; ++i) {
    const int64_t d = x[static_cast<size_t>(i)];
    if (d == 1) continue;
    const bool red = reduced[static_cast<size_t>(i)];
    if (stage == 0 && !red) stage = 1;
    else if (stage == 1 && red) stage = 2;
    else if (stage == 2 && !red) return false;
    if (stage == 0) plan->r0 *= d;
    else if (stage == 1) plan->k *= d;
    else plan->r1 *= d;
  }
  if (plan->k == 1) {  // nothing kept: one contiguous run
    plan->r1 *= plan->r0;
    plan->r0 = 1;
  }
  plan->count = plan->r0 * plan->r1;
  return true;
}

// Sum (Squares: of (x - center)^2) of n contiguous floats, in double lanes; four independent
// accumulators so the additions' latency does not serialize the loop.
template <bool Squares>
inline void sum_run(const float* p, int64_t n, double center, vd& acc) {
  const vd c = vd{} + center;
  auto term = [&](const float* q) {
    vd v = __builtin_convertvector(load(q), vd);
    if constexpr (Squares) v = (v - c) * (v - c);
    return v;
  };
  int64_t i = 0;
  if (n >= 4 * kLanes) {
    vd a1 = vd{}, a2 = vd{}, a3 = vd{};
    for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
      acc += term(p + i);
      a1 += term(p + i + kLanes);
      a2 += term(p + i + 2 * kLanes);
      a3 += term(p + i + 3 * kLanes);
    }
    acc += (a1 + a2) + a3;
  }
  for (; i + kLanes <= n; i += kLanes) acc += term(p + i);
  for (; i < n; ++i) {  // the tail, lane by lane
    double v = p[i];
    if constexpr (Squares) v = (v - center) * (v - center);
    acc[i % kLanes] += v;
  }
}

inline double lanes_total(const vd& v) {
  double s = 0.0;
  for (int j = 0; j < kLanes; ++j) s += v[j];
  return s;
}

// out[k] = sum over (r0, r1) of x[r0, k, r1] (or of squared deviations from center[k]), in
// double; see the header comment for the chunking.
template <bool Squares>
void reduce_sum(const ReducePlan& p, const float* x, const double* center, double* out,
                ThreadPool& pool) {
  if (p.r1 == 1 && p.k > 1) {
    // Reduce over leading dims: accumulate whole rows of K, vectorized over k.
    const int64_t kblk = 256;
    const int64_t nblk = (p.k + kblk - 1) / kblk;
    pool.parallel_for(nblk, std::max<int64_t>(1, 8192 / std::max<int64_t>(p.r0, 1)),
                      [&](int64_t b0, int64_t b1) {
      std::vector<double> acc(static_cast<size_t>(kblk));
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t k0 = b * kblk, kn = std::min(kblk, p.k - k0);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t r = 0; r < p.r0; ++r) {
          const float* row = x + r * p.k + k0;
          for (int64_t j = 0; j < kn; ++j) {
            double v = row[j];
            if constexpr (Squares) {
              v -= center[k0 + j];
              v *= v;
            }
            acc[static_cast<size_t>(j)] += v;
          }
        }
        for (int64_t j = 0; j < kn; ++j) out[k0 + j] = acc[static_cast<size_t>(j)];
      }
    });
    return;
  }
  // Reduce over trailing (and leading) dims: each output sums R0 runs of R1 contiguous floats,
  // cut into chunks of the flattened (r0, r1) range.
  const int64_t total = p.r0 * p.r1;
  const int64_t nchunks = std::max<int64_t>(1, (total + kReduceChunk - 1) / kReduceChunk);
  std::vector<double> partial(static_cast<size_t>(p.k * nchunks), 0.0);
  const int64_t tasks = p.k * nchunks;
  const int64_t per_task = std::min(total, kReduceChunk);
  pool.parallel_for(tasks, std::max<int64_t>(1, 32768 / std::max<int64_t>(per_task, 1)),
                    [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t k = t / nchunks, c = t % nchunks;
      const int64_t start = c * kReduceChunk, stop = std::min(total, start + kReduceChunk);
      const double cv = Squares ? center[k] : 0.0;
      vd acc = vd{};
      for (int64_t i = start; i < stop;) {
        const int64_t r0 = i / p.r1, r1 = i % p.r1;
        const int64_t len = std::min(p.r1 - r1, stop - i);
        sum_run<Squares>(x + (r0 * p.k + k) * p.r1 + r1, len, cv, acc);
        i += len;
      }
      partial[static_cast<size_t>(t)] = lanes_total(acc);
    }
  });
  for (int64_t k = 0; k < p.k; ++k) {
    double s = 0.0;
    for (int64_t c = 0; c < nchunks; ++c) s += partial[static_cast<size_t>(k * nchunks + c)];
    out[k] = s;
  }
}

// The plan at kernel creation: dims unknown until run time (graph mode, dynamic batch) count
// as "not 1" to check the pattern (a dim that turns out to be 1 only merges runs), and the plan
// is then made again per run (*deferred).
bool reduce_plan_at_creation(const KernelInit& init, ReducePlan* plan, bool* deferred) {
  Shape shape = init.input_type(0).shape;
  *deferred = false;
  for (int64_t& d : shape)
    if (d < 0) {
      d = 2;
      *deferred = true;
    }
  return make_reduce_plan(init.attr_ints("dim"), shape, plan);
}

enum class ReduceOp { Sum, Mean, Var };

template <ReduceOp Op>
std::unique_ptr<OpKernel> create_reduce(const KernelInit& init, const char* op) {
  if (init.input_type(0).dtype != DType::Float32) return nullptr;
  ReducePlan made;
  bool deferred;
  if (!reduce_plan_at_creation(init, &made, &deferred)) return nullptr;
  const double correction = Op == ReduceOp::Var ? static_cast<double>(init.attr_int("correction")) : 0.0;
  const std::vector<int64_t> dims = init.attr_ints("dim");
  return make_kernel(kernel_name(op), [made, deferred, correction, dims](OpContext& ctx) {
    ReducePlan plan = made;
    if (deferred) make_reduce_plan(dims, ctx.input(0).shape(), &plan);
    // Bessel-style correction as the reference: a non-positive denominator gives inf or NaN.
    const double denom = std::max(0.0, static_cast<double>(plan.count) - correction);
    const float* x = ctx.input(0).data<float>();
    float* y = ctx.output(0).data<float>();
    std::vector<double> sums(static_cast<size_t>(plan.k));
    reduce_sum<false>(plan, x, nullptr, sums.data(), ctx.pool());
    const double n = static_cast<double>(plan.count);
    if constexpr (Op == ReduceOp::Sum) {
      for (int64_t k = 0; k < plan.k; ++k) y[k] = static_cast<float>(sums[static_cast<size_t>(k)]);
    } else if constexpr (Op == ReduceOp::Mean) {
      for (int64_t k = 0; k < plan.k; ++k) y[k] = static_cast<float>(sums[static_cast<size_t>(k)] / n);
    } else {
      for (double& s : sums) s /= n;
      std::vector<double> squares(static_cast<size_t>(plan.k));
      reduce_sum<true>(plan, x, sums.data(), squares.data(), ctx.pool());
      for (int64_t k = 0; k < plan.k; ++k)
        y[k] = static_cast<float>(squares[static_cast<size_t>(k)] / denom);
    }
  });
}

// ---------------------------------------------------------------- max / min
// The reference folds in row-major order: the first element, then v replaces the current value
// when v > cur (v < cur for min) or v is NaN, and a NaN sticks. So the result is NaN if any
// element is, else the extreme value; only the sign of a zero result depends on the order (the
// first zero equal to it wins), which the vector path settles by a scan in order.
template <bool Max>
inline bool better(float v, float cur) { return Max ? v > cur : v < cur; }

template <bool Max>
float extreme_of_runs(const ReducePlan& p, const float* x, int64_t k) {
  vf best = splat(Max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity());
  vi nan = splat_i(0);
  for (int64_t r0 = 0; r0 < p.r0; ++r0) {
    const float* run = x + (r0 * p.k + k) * p.r1;
    for_vectors(p.r1, [&](int64_t i, int64_t n) {
      vf v = get<true>(run, i, n);
      if (n < kLanes)  // pad with the first element: it never changes the result
        for (int j = static_cast<int>(n); j < kLanes; ++j) v[j] = run[0];
      nan |= is_nan(v);
      best = select(Max ? (v > best) : (v < best), v, best);
    });
  }
  bool any_nan = false;
  float result = best[0];
  for (int j = 0; j < kLanes; ++j) {
    any_nan |= nan[j] != 0;
    if (better<Max>(best[j], result)) result = best[j];
  }
  if (any_nan) {  // the first NaN in order, as the reference keeps
    for (int64_t r0 = 0; r0 < p.r0; ++r0)
      for (int64_t i = 0; i < p.r1; ++i) {
        const float v = x[(r0 * p.k + k) * p.r1 + i];
        if (v != v) return v;
      }
  }
  if (result == 0.0f) {  // +0 or -0: the first zero in order
    for (int64_t r0 = 0; r0 < p.r0; ++r0)
      for (int64_t i = 0; i < p.r1; ++i) {
        const float v = x[(r0 * p.k + k) * p.r1 + i];
        if (v == 0.0f) return v;
      }
  }
  return result;
}

template <bool Max>
std::unique_ptr<OpKernel> create_extreme(const KernelInit& init, const char* op) {
  if (init.input_type(0).dtype != DType::Float32) return nullptr;
  ReducePlan made;
  bool deferred;
  if (!reduce_plan_at_creation(init, &made, &deferred)) return nullptr;
  if (!deferred && made.count == 0) return nullptr;  // an error the reference reports
  const std::vector<int64_t> dims = init.attr_ints("dim");
  return make_kernel(kernel_name(op), [made, deferred, dims](OpContext& ctx) {
    ReducePlan plan = made;
    if (deferred) make_reduce_plan(dims, ctx.input(0).shape(), &plan);
    const float* x = ctx.input(0).data<float>();
    float* y = ctx.output(0).data<float>();
    if (plan.r1 == 1 && plan.k > 1) {
      // Leading dims: the reference's sequential fold, lane-wise over k.
      const int64_t kblk = 1024, nblk = (plan.k + kblk - 1) / kblk;
      ctx.parallel_for(nblk, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t k0 = b * kblk, kn = std::min(kblk, plan.k - k0);
          for_vectors(kn, [&](int64_t i, int64_t n) {
            vf cur = get<true>(x + k0, i, n);
            for (int64_t r = 1; r < plan.r0; ++r) {
              const vf v = get<true>(x + r * plan.k + k0, i, n);
              const vi replace = ~is_nan(cur) & ((Max ? (v > cur) : (v < cur)) | is_nan(v));
              cur = select(replace, v, cur);
            }
            put(y + k0, i, n, cur);
          });
        }
      });
      return;
    }
    ctx.parallel_for(plan.k, std::max<int64_t>(1, 16384 / std::max<int64_t>(plan.count, 1)),
                     [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) y[k] = extreme_of_runs<Max>(plan, x, k);
    });
  });
}

EMBER_VEC_REGISTER(max, [](const KernelInit& i) { return create_extreme<true>(i, "max"); });
EMBER_VEC_REGISTER(min, [](const KernelInit& i) { return create_extreme<false>(i, "min"); });

EMBER_VEC_REGISTER(sum, [](const KernelInit& i) { return create_reduce<ReduceOp::Sum>(i, "sum"); });
EMBER_VEC_REGISTER(mean, [](const KernelInit& i) { return create_reduce<ReduceOp::Mean>(i, "mean"); });
EMBER_VEC_REGISTER(var, [](const KernelInit& i) { return create_reduce<ReduceOp::Var>(i, "var"); });

}  // namespace
}  // namespace ember::simd
