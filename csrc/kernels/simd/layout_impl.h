// Threaded fp32 data movement, included by one file per ISA after elementwise_impl.h:
//
//   expand:    the broadcast plan of elementwise_impl.h with one operand (contiguous runs are
//              copied, broadcast runs filled);
//   transpose: permutations that coalesce to a (batched) 2-D transpose [B, M, N] -> [B, N, M],
//              in 32 x 32 tiles so reads and writes both stay within a few cache lines; the
//              tiles of all batches are spread over the thread pool. Other permutations get
//              nullptr: the reference's strided copy runs.
//
// Both only move values, so results are bit-identical to the reference.
#pragma once
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/op_registry.h"
#include "kernels/simd/kernel_util.h"

namespace ember::simd {
namespace {

std::unique_ptr<OpKernel> create_expand(const KernelInit& init) {
  const TensorType& x = init.input_type(0);
  if (x.dtype != DType::Float32) return nullptr;
  const std::vector<int64_t>& target = init.attr_ints("shape");
  if (target.size() < x.shape.size()) return nullptr;  // the reference reports it
  Plan<1> plan;
  bool deferred = !all_known(x.shape);
  if (deferred) {
    if (target.size() > static_cast<size_t>(kMaxDims)) return nullptr;
  } else {
    const size_t lead = target.size() - x.shape.size();
    Shape out(target.size());
    for (size_t i = 0; i < target.size(); ++i) {
      const int64_t t = target[i];
      if (i < lead) {
        if (t < 0) return nullptr;
        out[i] = t;
      } else {
        const int64_t d = x.shape[i - lead];
        if (t == -1) out[i] = d;
        else if (t >= 0 && (d == t || d == 1)) out[i] = t;
        else return nullptr;
      }
    }
    if (!plan_at_creation<1>({&x.shape}, &out, &plan, &deferred)) return nullptr;
  }
  return make_kernel(kernel_name("expand"), [plan, deferred](OpContext& ctx) {
    const float* px = ctx.input(0).data<float>();
    float* py = ctx.output(0).data<float>();
    Plan<1> p = plan;
    if (deferred) make_plan<1>(ctx.output(0).shape(), {&ctx.input(0).shape()}, &p);
    const bool vec = p.inner_vec[0];
    run_plan<1>(p, ctx.pool(), [&](const std::array<int64_t, 1>& off, int64_t o, int64_t n) {
      if (vec) std::memcpy(py + o, px + off[0], static_cast<size_t>(n) * 4);
      else std::fill(py + o, py + o + n, px[off[0]]);
    });
  });
}

// The permutation as [B, M, N] -> [B, N, M] after dropping size-1 dims and merging dims that
// stay adjacent; false for anything else.
bool transpose_as_batched_2d(const Shape& shape, const std::vector<int64_t>& perm, int64_t* B,
                             int64_t* M, int64_t* N) {
  const int64_t r = static_cast<int64_t>(shape.size());
  if (static_cast<int64_t>(perm.size()) != r) return false;
  // Input dims of size > 1 renumbered 0, 1, ... (c) with their sizes.
  std::vector<int64_t> compressed(static_cast<size_t>(r), -1), sizes;
  for (int64_t q = 0; q < r; ++q)
    if (shape[static_cast<size_t>(q)] != 1) {
      compressed[static_cast<size_t>(q)] = static_cast<int64_t>(sizes.size());
      sizes.push_back(shape[static_cast<size_t>(q)]);
    }
  // Output order as runs [first, last] of consecutive compressed input dims.
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t i = 0; i < r; ++i) {
    const int64_t p = perm[static_cast<size_t>(i)] < 0 ? perm[static_cast<size_t>(i)] + r
                                                       : perm[static_cast<size_t>(i)];
    if (p < 0 || p >= r) return false;
    const int64_t c = compressed[static_cast<size_t>(p)];
    if (c < 0) continue;
    if (!runs.empty() && runs.back().second + 1 == c) runs.back().second = c;
    else runs.push_back({c, c});
  }
  auto size_of = [&](const std::pair<int64_t, int64_t>& g) {
    int64_t n = 1;
    for (int64_t q = g.first; q <= g.second; ++q) n *= sizes[static_cast<size_t>(q)];
    return n;
  };
  // Output [N-run, M-run] with input [M-run, N-run]; or a leading batch run that stays first.
  if (runs.size() == 2 && runs[0].first > runs[1].first) {
    *B = 1;
    *M = size_of(runs[1]);
    *N = size_of(runs[0]);
    return true;
  }
  if (runs.size() == 3 && runs[0].first == 0 && runs[2].first < runs[1].first) {
    *B = size_of(runs[0]);
    *M = size_of(runs[2]);
    *N = size_of(runs[1]);
    return true;
  }
  return false;
}

std::unique_ptr<OpKernel> create_transpose(const KernelInit& init) {
  const TensorType& x = init.input_type(0);
  if (x.dtype != DType::Float32) return nullptr;
  // Dims unknown until run time count as "not 1" here (a dim that turns out to be 1 only merges
  // runs, leaving a batched 2-D transpose or a copy) and the shape is read again per run.
  Shape shape = x.shape;
  bool deferred = false;
  for (int64_t& d : shape)
    if (d < 0) {
      d = 2;
      deferred = true;
    }
  int64_t B0, M0, N0;
  const std::vector<int64_t> perm = init.attr_ints("perm");
  if (!transpose_as_batched_2d(shape, perm, &B0, &M0, &N0)) return nullptr;
  return make_kernel(kernel_name("transpose_2d"), [B0, M0, N0, deferred, perm](OpContext& ctx) {
    int64_t B = B0, M = M0, N = N0;
    if (deferred && !transpose_as_batched_2d(ctx.input(0).shape(), perm, &B, &M, &N)) {
      B = 1;  // everything but one run has size 1: the permutation moves nothing
      M = 1;
      N = ctx.input(0).numel();
    }
    const uint32_t* px = static_cast<const uint32_t*>(ctx.input(0).raw_data());
    uint32_t* py = static_cast<uint32_t*>(ctx.output(0).raw_data());
    if (M == 1 || N == 1) {
      std::memcpy(py, px, static_cast<size_t>(ctx.input(0).numel()) * 4);
      return;
    }
    constexpr int64_t T = 32;
    const int64_t tm = (M + T - 1) / T, tn = (N + T - 1) / T;
    ctx.parallel_for(B * tm * tn, 4, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / (tm * tn), i0 = (t / tn) % tm * T, j0 = t % tn * T;
        const uint32_t* src = px + b * M * N;
        uint32_t* dst = py + b * M * N;
        const int64_t i1 = std::min(M, i0 + T), j1 = std::min(N, j0 + T);
        if (i1 - i0 == T && j1 - j0 == T) {  // full tile: fixed trip counts, 8 x 8 blocks
          for (int64_t ib = i0; ib < i1; ib += 8)
            for (int64_t jb = j0; jb < j1; jb += 8) {
              uint32_t blk[8][8];
              for (int a = 0; a < 8; ++a)
                for (int c = 0; c < 8; ++c) blk[c][a] = src[(ib + a) * N + jb + c];
              for (int c = 0; c < 8; ++c) std::memcpy(dst + (jb + c) * M + ib, blk[c], 32);
            }
        } else {
          for (int64_t j = j0; j < j1; ++j)
            for (int64_t i = i0; i < i1; ++i) dst[j * M + i] = src[i * N + j];
        }
      }
    });
  });
}

EMBER_VEC_REGISTER(expand, create_expand);
EMBER_VEC_REGISTER(transpose, create_transpose);

}  // namespace
}  // namespace ember::simd
