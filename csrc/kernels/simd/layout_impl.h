// Threaded fp32 data movement, included by one file per ISA after elementwise_impl.h:
//
//   expand:    the broadcast plan of elementwise_impl.h with one operand (contiguous runs are
//              copied, broadcast runs filled);
//   transpose: permutations that coalesce to a (batched) 2-D transpose [B, M, N] -> [B, N, M],
//              in 32 x 32 tiles so reads and writes both stay within a few cache lines; the
//              tiles of all batches are spread over the thread pool. Permutations that keep
//              the innermost dims innermost copy whole rows, spread over the pool. Other
//              permutations get nullptr: the reference's strided copy runs.
//   split:     each piece's rows (the dims before `dim` index the rows) copied as whole runs,
//              the rows of all pieces spread over the pool (a transformer's q / k / v split of
//              [batch x seq, 3 d] ran at 5 GB/s on one thread).
//
// All only move values, so results are bit-identical to the reference.
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

// The permutation after dropping size-1 dims and merging dims that stay adjacent: runs of
// consecutive input dims in output order, each as (size, input stride in elements, the
// contiguous input's; last: its innermost dim, numbered among the dims of size > 1). False for
// an invalid permutation.
struct PermRun {
  int64_t last, size, stride;
};
bool permutation_runs(const Shape& shape, const std::vector<int64_t>& perm, std::vector<PermRun>* runs) {
  const int64_t r = static_cast<int64_t>(shape.size());
  if (static_cast<int64_t>(perm.size()) != r) return false;
  // Input dims of size > 1 renumbered 0, 1, ... (c) with their sizes and strides.
  std::vector<int64_t> compressed(static_cast<size_t>(r), -1), sizes, strides;
  int64_t stride = 1;
  for (int64_t q = r - 1; q >= 0; --q) {
    if (shape[static_cast<size_t>(q)] != 1) {
      sizes.insert(sizes.begin(), shape[static_cast<size_t>(q)]);
      strides.insert(strides.begin(), stride);
    }
    stride *= shape[static_cast<size_t>(q)];
  }
  for (int64_t q = 0, c = 0; q < r; ++q)
    if (shape[static_cast<size_t>(q)] != 1) compressed[static_cast<size_t>(q)] = c++;
  runs->clear();
  for (int64_t i = 0; i < r; ++i) {
    const int64_t p = perm[static_cast<size_t>(i)] < 0 ? perm[static_cast<size_t>(i)] + r
                                                       : perm[static_cast<size_t>(i)];
    if (p < 0 || p >= r) return false;
    const int64_t c = compressed[static_cast<size_t>(p)];
    if (c < 0) continue;
    const size_t u = static_cast<size_t>(c);
    if (!runs->empty() && runs->back().last + 1 == c) {  // follows the run in the input too
      runs->back().last = c;
      runs->back().size *= sizes[u];
      runs->back().stride = strides[u];
    } else {
      runs->push_back({c, sizes[u], strides[u]});
    }
  }
  return true;
}

// The permutation as [B, M, N] -> [B, N, M] (runs: [N-run, M-run], or a leading batch run that
// stays first); false for anything else.
bool transpose_as_batched_2d(const std::vector<PermRun>& runs, int64_t* B, int64_t* M, int64_t* N) {
  // With contiguous input strides, run a comes before run b in the input iff its stride is larger.
  if (runs.size() == 2 && runs[0].stride < runs[1].stride) {
    *B = 1;
    *M = runs[1].size;
    *N = runs[0].size;
    return true;
  }
  if (runs.size() == 3 && runs[0].stride > runs[1].stride && runs[0].stride > runs[2].stride &&
      runs[2].stride > runs[1].stride) {
    *B = runs[0].size;
    *M = runs[2].size;
    *N = runs[1].size;
    return true;
  }
  return false;
}

// Output rows of a permutation that keeps the innermost input run innermost (attention's
// [B, S, H, D] <-> [B, H, S, D]): each row is a contiguous copy of `inner` values; the other runs
// give the rows' input offsets. Rows are spread over the thread pool. (Any other permutation is
// copied one value per row: a dynamic innermost dim that turns out to be 1 at run time.)
void copy_permuted_rows(const uint32_t* px, uint32_t* py, std::vector<PermRun> runs, OpContext& ctx) {
  if (runs.back().stride != 1) runs.push_back({-1, 1, 1});
  const int64_t inner = runs.back().size;
  const size_t outer = runs.size() - 1;
  int64_t rows = 1;
  for (size_t d = 0; d < outer; ++d) rows *= runs[d].size;
  ctx.parallel_for(rows, std::max<int64_t>(1, 8192 / inner), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> index(outer);
    int64_t src = 0;
    for (size_t d = outer, rest = static_cast<size_t>(r0); d-- > 0;) {
      index[d] = static_cast<int64_t>(rest) % runs[d].size;
      rest /= static_cast<size_t>(runs[d].size);
      src += index[d] * runs[d].stride;
    }
    for (int64_t row = r0; row < r1; ++row) {
      std::memcpy(py + row * inner, px + src, static_cast<size_t>(inner) * 4);
      for (size_t d = outer; d-- > 0;) {  // next row's input offset (odometer)
        src += runs[d].stride;
        if (++index[d] < runs[d].size) break;
        src -= runs[d].size * runs[d].stride;
        index[d] = 0;
      }
    }
  });
}

void transpose_tiles(const uint32_t* px, uint32_t* py, int64_t B, int64_t M, int64_t N,
                     OpContext& ctx) {
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
}

std::unique_ptr<OpKernel> create_transpose(const KernelInit& init) {
  const TensorType& x = init.input_type(0);
  if (x.dtype != DType::Float32) return nullptr;
  // Dims unknown until run time count as "not 1" here and the runs are found again per run: a
  // dim that turns out to be 1 only merges runs, so a batched 2-D transpose stays one (or
  // becomes a copy) and a row copy stays a row copy.
  Shape shape = x.shape;
  bool deferred = false;
  for (int64_t& d : shape)
    if (d < 0) {
      d = 2;
      deferred = true;
    }
  const std::vector<int64_t> perm = init.attr_ints("perm");
  std::vector<PermRun> runs;
  int64_t B, M, N;
  if (!permutation_runs(shape, perm, &runs)) return nullptr;
  const bool tiles = transpose_as_batched_2d(runs, &B, &M, &N);
  if (!tiles && !runs.empty() && runs.back().stride != 1) return nullptr;  // the reference's copy
  return make_kernel(kernel_name(tiles ? "transpose_2d" : "transpose_rows"),
                     [runs, deferred, perm](OpContext& ctx) {
    std::vector<PermRun> now;
    if (deferred) permutation_runs(ctx.input(0).shape(), perm, &now);
    const std::vector<PermRun>& r = deferred ? now : runs;
    const uint32_t* px = static_cast<const uint32_t*>(ctx.input(0).raw_data());
    uint32_t* py = static_cast<uint32_t*>(ctx.output(0).raw_data());
    int64_t b, m, n;
    if (r.size() <= 1) std::memcpy(py, px, static_cast<size_t>(ctx.input(0).numel()) * 4);
    else if (transpose_as_batched_2d(r, &b, &m, &n)) transpose_tiles(px, py, b, m, n, ctx);
    else copy_permuted_rows(px, py, r, ctx);
  });
}

std::unique_ptr<OpKernel> create_split(const KernelInit& init) {
  if (init.input_type(0).dtype != DType::Float32) return nullptr;
  const int64_t rank = static_cast<int64_t>(init.input_type(0).shape.size());
  int64_t axis = init.attr_int("dim");
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return nullptr;  // the reference reports it
  return make_kernel(kernel_name("split"), [axis](OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
    const int64_t row = x.dim(axis) * inner, pieces = ctx.num_outputs();
    std::vector<int64_t> offset(static_cast<size_t>(pieces) + 1, 0);
    for (int64_t i = 0; i < pieces; ++i) offset[i + 1] = offset[i] + ctx.output(i).dim(axis) * inner;
    const float* src = x.data<float>();
    // Work items are (row, piece); at least ~16 KB per grain so small splits stay on one thread.
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, row));
    ctx.parallel_for(outer * pieces, grain, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = t / pieces, i = t % pieces, block = offset[i + 1] - offset[i];
        if (block > 0)
          std::memcpy(ctx.output(i).data<float>() + o * block, src + o * row + offset[i],
                      static_cast<size_t>(block) * 4);
      }
    });
  });
}

EMBER_VEC_REGISTER(expand, create_expand);
EMBER_VEC_REGISTER(split, create_split);
EMBER_VEC_REGISTER(transpose, create_transpose);

}  // namespace
}  // namespace ember::simd
