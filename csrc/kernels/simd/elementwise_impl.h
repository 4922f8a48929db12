// Vectorized, threaded fp32 element-wise ops, written once on kernels/simd/vec.h and included by
// one file per ISA (x86/elementwise_avx512.cc, x86/elementwise_avx2.cc,
// portable/elementwise_portable.cc), which defines EMBER_VEC_BYTES, EMBER_VEC_ISA (an Isa) and
// EMBER_VEC_SUFFIX ("avx512") first. Kernels are named f32_<op>_<suffix>.
//
// Binary ops, comparisons and where handle the broadcasts that coalesce to at most three dims
// in which every operand is either contiguous or broadcast: same shape, a scalar operand, a row
// ([N, D] op [D]), a column ([N, D] op [N, 1]) and a channel ([N, C, H, W] op [1, C, 1, 1]).
// Their factories return nullptr for any other broadcast of known shapes, so the reference
// kernel runs then; when dims are unknown until run time (graph mode with a dynamic batch) the
// plan is made per run and handles any broadcast. Arithmetic is exact IEEE float like the reference's, so these
// results are bit-identical to it.
//
// Unary ops are bit-identical to the reference where the reference's double computation rounds
// to the float result (relu, neg, abs, relu6); exp, sigmoid, tanh, silu, gelu(tanh) use the
// approximations of vec.h, within the ulp bounds stated there and tested.
//
// Work is split into blocks of fixed size over the thread pool; element-wise results do not
// depend on the split.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>

#include "core/op_registry.h"
#include "kernels/simd/kernel_util.h"
#include "kernels/simd/vec.h"

#ifndef EMBER_VEC_ISA
#error "define EMBER_VEC_ISA and EMBER_VEC_SUFFIX before including kernels/simd/elementwise_impl.h"
#endif

namespace ember::simd {
namespace {

constexpr int64_t kBlock = 16384;  // elements per task along the inner dim
constexpr int64_t kTaskElems = 32768;  // rough minimum work per thread-pool chunk

// ---------------------------------------------------------------- broadcast plan
// The output viewed as [d0, ..., d(nd-1)] after coalescing (adjacent dims merged where every
// operand stays contiguous or broadcast across them; size-1 dims dropped); each operand's
// element stride along each dim is 0 (broadcast) or its contiguous stride, and along the last
// dim 0 or 1. With shapes known when the kernel is created, patterns needing more than
// kFastDims dims are left to the reference kernel; with dims unknown until run time (graph mode,
// dynamic batch) the plan is made per run and any pattern runs (outer dims by index
// arithmetic per row).
constexpr int kFastDims = 3;
constexpr int kMaxDims = 12;

template <int K>
struct Plan {
  int nd = 1;
  std::array<int64_t, kMaxDims> dims{};
  std::array<std::array<int64_t, kMaxDims>, K> strides{};
  bool inner_vec[K] = {};
};

bool all_known(const Shape& s) {
  for (int64_t d : s)
    if (d < 0) return false;
  return true;
}

// Builds the plan from the output and operand shapes (numpy broadcasting); false when the
// output has more than kMaxDims dims.
template <int K>
bool make_plan(const Shape& out, const std::array<const Shape*, K>& in, Plan<K>* plan) {
  const int64_t r = static_cast<int64_t>(out.size());
  if (r > kMaxDims) return false;
  // Per-dim strides of every operand aligned to the output (0 = broadcast).
  std::vector<std::array<int64_t, K>> st(static_cast<size_t>(r));
  for (int k = 0; k < K; ++k) {
    const Shape& s = *in[k];
    const int64_t lead = r - static_cast<int64_t>(s.size());
    int64_t stride = 1;
    for (int64_t i = r - 1; i >= 0; --i) {
      const int64_t d = i - lead >= 0 ? s[static_cast<size_t>(i - lead)] : 1;
      st[static_cast<size_t>(i)][k] = (d == 1 && out[static_cast<size_t>(i)] != 1) ? 0 : stride;
      stride *= d;
    }
  }
  // Coalesce from the innermost dim outwards, skipping size-1 dims.
  std::vector<int64_t> dims;
  std::vector<std::array<int64_t, K>> strides;
  for (int64_t i = r - 1; i >= 0; --i) {
    const int64_t d = out[static_cast<size_t>(i)];
    if (d == 1) continue;
    if (!dims.empty()) {
      bool merge = true;
      for (int k = 0; k < K; ++k)
        if (st[static_cast<size_t>(i)][k] != strides.back()[k] * dims.back()) merge = false;
      if (merge) {
        dims.back() *= d;
        continue;
      }
    }
    dims.push_back(d);
    strides.push_back(st[static_cast<size_t>(i)]);
  }
  const int n = static_cast<int>(dims.size());
  plan->nd = std::max(n, 1);
  plan->dims.fill(1);
  for (int k = 0; k < K; ++k) plan->strides[k].fill(0);
  for (int j = 0; j < n; ++j) {
    plan->dims[static_cast<size_t>(plan->nd - 1 - j)] = dims[static_cast<size_t>(j)];
    for (int k = 0; k < K; ++k)
      plan->strides[k][static_cast<size_t>(plan->nd - 1 - j)] = strides[static_cast<size_t>(j)][k];
  }
  for (int k = 0; k < K; ++k) plan->inner_vec[k] = plan->strides[k][static_cast<size_t>(plan->nd - 1)] != 0;
  return true;
}

// Runs body(offsets[K], out_offset, count) over contiguous inner runs, in parallel.
template <int K, typename Body>
void run_plan(const Plan<K>& p, ThreadPool& pool, const Body& body) {
  const int last = p.nd - 1;
  const int64_t inner = p.dims[static_cast<size_t>(last)];
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= p.dims[static_cast<size_t>(d)];
  if (inner == 0 || rows == 0) return;
  const int64_t nblk = (inner + kBlock - 1) / kBlock;
  const int64_t tasks = rows * nblk;
  const int64_t per_task = std::min(inner, kBlock);
  const int64_t grain = std::max<int64_t>(1, kTaskElems / per_task);
  pool.parallel_for(tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t row = t / nblk, blk = t % nblk;
      const int64_t j0 = blk * kBlock, j1 = std::min(inner, j0 + kBlock);
      std::array<int64_t, K> off;
      for (int k = 0; k < K; ++k) off[k] = j0 * p.strides[k][static_cast<size_t>(last)];
      for (int64_t d = last - 1, rest = row; d >= 0; --d) {  // the row's index, dim by dim
        const int64_t i = rest % p.dims[static_cast<size_t>(d)];
        rest /= p.dims[static_cast<size_t>(d)];
        for (int k = 0; k < K; ++k) off[k] += i * p.strides[k][static_cast<size_t>(d)];
      }
      body(off, row * inner + j0, j1 - j0);
    }
  });
}

// A plan for the factory: made now when every shape is known (nullptr-worthy when it needs
// more than kFastDims dims: *ok = false), else left for run time (*deferred = true).
template <int K>
bool plan_at_creation(const std::array<const Shape*, K>& in, const Shape* out_if_known,
                      Plan<K>* plan, bool* deferred) {
  bool known = out_if_known != nullptr;
  for (const Shape* s : in) known = known && all_known(*s);
  if (!known) {
    *deferred = true;
    size_t rank = out_if_known ? out_if_known->size() : 0;
    for (const Shape* s : in) rank = std::max(rank, s->size());
    return rank <= static_cast<size_t>(kMaxDims);
  }
  *deferred = false;
  return make_plan<K>(*out_if_known, in, plan) && plan->nd <= kFastDims;
}

// ---------------------------------------------------------------- binary ops
enum class BinOp { Add, Sub, Mul, Div, Max, Min };
enum class CmpOp { Eq, Ne, Lt, Le, Gt, Ge };

template <BinOp Op>
inline vf apply(vf a, vf b) {
  if constexpr (Op == BinOp::Add) return a + b;
  if constexpr (Op == BinOp::Sub) return a - b;
  if constexpr (Op == BinOp::Mul) return a * b;
  if constexpr (Op == BinOp::Div) return a / b;
  // NaN propagates (a first), as the reference's maximum / minimum.
  if constexpr (Op == BinOp::Max) return select(is_nan(a), a, select(is_nan(b), b, select(a > b, a, b)));
  if constexpr (Op == BinOp::Min) return select(is_nan(a), a, select(is_nan(b), b, select(a < b, a, b)));
}

template <CmpOp Op>
inline vi compare(vf a, vf b) {
  if constexpr (Op == CmpOp::Eq) return a == b;
  if constexpr (Op == CmpOp::Ne) return a != b;
  if constexpr (Op == CmpOp::Lt) return a < b;
  if constexpr (Op == CmpOp::Le) return a <= b;
  if constexpr (Op == CmpOp::Gt) return a > b;
  if constexpr (Op == CmpOp::Ge) return a >= b;
}

// Loads a vector from p (contiguous) or broadcasts *p; the tail loads through a zero-padded copy.
template <bool Vec>
inline vf get(const float* p, int64_t i, int64_t n) {
  if constexpr (!Vec) {
    return splat(*p);
  } else {
    if (n >= kLanes) return load(p + i);
    float tmp[kLanes] = {};
    std::memcpy(tmp, p + i, static_cast<size_t>(n) * 4);
    return load(tmp);
  }
}

inline void put(float* p, int64_t i, int64_t n, vf v) {
  if (n >= kLanes) return store(p + i, v);
  float tmp[kLanes];
  store(tmp, v);
  std::memcpy(p + i, tmp, static_cast<size_t>(n) * 4);
}

inline void put_bools(bool* p, int64_t i, int64_t n, vi m) {
  if (n >= kLanes) return store_bools(p + i, m);
  bool tmp[kLanes];
  store_bools(tmp, m);
  std::memcpy(p + i, tmp, static_cast<size_t>(n));
}

template <typename Fn>
inline void for_vectors(int64_t count, const Fn& fn) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) fn(i, kLanes);
  if (i < count) fn(i, count - i);
}

template <BinOp Op, bool VA, bool VB>
void binary_run(const float* a, const float* b, float* y, int64_t count) {
  for_vectors(count, [&](int64_t i, int64_t n) {
    put(y, i, n, apply<Op>(get<VA>(a, i, n), get<VB>(b, i, n)));
  });
}

template <CmpOp Op, bool VA, bool VB>
void compare_run(const float* a, const float* b, bool* y, int64_t count) {
  for_vectors(count, [&](int64_t i, int64_t n) {
    put_bools(y, i, n, compare<Op>(get<VA>(a, i, n), get<VB>(b, i, n)));
  });
}

template <bool VC, bool VX, bool VY>
void where_run(const bool* c, const float* x, const float* y, float* out, int64_t count) {
  for_vectors(count, [&](int64_t i, int64_t n) {
    vi m;
    if constexpr (VC) {
      if (n >= kLanes) {
        m = load_mask(c + i);
      } else {
        bool tmp[kLanes] = {};
        std::memcpy(tmp, c + i, static_cast<size_t>(n));
        m = load_mask(tmp);
      }
    } else {
      m = splat_i(*c ? -1 : 0);
    }
    put(out, i, n, select(m, get<VX>(x, i, n), get<VY>(y, i, n)));
  });
}

// Picks the instantiation for the operands' inner-dim modes.
template <BinOp Op>
auto binary_fn(bool va, bool vb) -> void (*)(const float*, const float*, float*, int64_t) {
  if (va && vb) return &binary_run<Op, true, true>;
  if (va) return &binary_run<Op, true, false>;
  if (vb) return &binary_run<Op, false, true>;
  return &binary_run<Op, false, false>;
}

template <CmpOp Op>
auto compare_fn(bool va, bool vb) -> void (*)(const float*, const float*, bool*, int64_t) {
  if (va && vb) return &compare_run<Op, true, true>;
  if (va) return &compare_run<Op, true, false>;
  if (vb) return &compare_run<Op, false, true>;
  return &compare_run<Op, false, false>;
}

using WhereFn = void (*)(const bool*, const float*, const float*, float*, int64_t);
WhereFn where_fn(bool vc, bool vx, bool vy) {
  static const WhereFn table[8] = {
      &where_run<false, false, false>, &where_run<false, false, true>,
      &where_run<false, true, false>,  &where_run<false, true, true>,
      &where_run<true, false, false>,  &where_run<true, false, true>,
      &where_run<true, true, false>,   &where_run<true, true, true>};
  return table[(vc ? 4 : 0) | (vx ? 2 : 0) | (vy ? 1 : 0)];
}

// The output shape of a broadcast of known shapes (the inference function already checked it).
Shape broadcast_of(const std::vector<const Shape*>& shapes) {
  size_t r = 0;
  for (const Shape* s : shapes) r = std::max(r, s->size());
  Shape out(r, 1);
  for (const Shape* s : shapes)
    for (size_t i = 0; i < s->size(); ++i) {
      const int64_t d = (*s)[i];
      int64_t& o = out[r - s->size() + i];
      if (d != 1) o = d;
    }
  return out;
}

// The broadcast shape of known shapes (the inference function already checked them), or
// nullptr when a dim is unknown.
std::unique_ptr<Shape> known_broadcast(const std::vector<const Shape*>& shapes) {
  for (const Shape* s : shapes)
    if (!all_known(*s)) return nullptr;
  return std::make_unique<Shape>(broadcast_of(shapes));
}

// Binary arithmetic and comparisons share one planner and loop; they differ only in the output
// type and the vector loop `make_fn(a_inner_is_vector, b_inner_is_vector)` returns.
template <typename OutT, typename MakeFn>
std::unique_ptr<OpKernel> create_two_input(const KernelInit& init, const char* op, MakeFn make_fn) {
  const TensorType& a = init.input_type(0);
  const TensorType& b = init.input_type(1);
  if (a.dtype != DType::Float32 || b.dtype != DType::Float32) return nullptr;
  Plan<2> plan;
  bool deferred;
  const auto out = known_broadcast({&a.shape, &b.shape});
  if (!plan_at_creation<2>({&a.shape, &b.shape}, out.get(), &plan, &deferred)) return nullptr;
  return make_kernel(kernel_name(op), [plan, deferred, make_fn](OpContext& ctx) {
    const float* pa = ctx.input(0).data<float>();
    const float* pb = ctx.input(1).data<float>();
    OutT* py = ctx.output(0).data<OutT>();
    Plan<2> p = plan;
    if (deferred) make_plan<2>(ctx.output(0).shape(), {&ctx.input(0).shape(), &ctx.input(1).shape()}, &p);
    auto fn = make_fn(p.inner_vec[0], p.inner_vec[1]);
    run_plan<2>(p, ctx.pool(), [&](const std::array<int64_t, 2>& off, int64_t o, int64_t n) {
      fn(pa + off[0], pb + off[1], py + o, n);
    });
  });
}

template <BinOp Op>
std::unique_ptr<OpKernel> create_binary(const KernelInit& init, const char* op) {
  return create_two_input<float>(init, op, [](bool va, bool vb) { return binary_fn<Op>(va, vb); });
}

template <CmpOp Op>
std::unique_ptr<OpKernel> create_compare(const KernelInit& init, const char* op) {
  return create_two_input<bool>(init, op, [](bool va, bool vb) { return compare_fn<Op>(va, vb); });
}

std::unique_ptr<OpKernel> create_where(const KernelInit& init) {
  const TensorType& c = init.input_type(0);
  const TensorType& x = init.input_type(1);
  const TensorType& y = init.input_type(2);
  if (c.dtype != DType::Bool || x.dtype != DType::Float32 || y.dtype != DType::Float32)
    return nullptr;
  Plan<3> plan;
  bool deferred;
  const auto out = known_broadcast({&c.shape, &x.shape, &y.shape});
  if (!plan_at_creation<3>({&c.shape, &x.shape, &y.shape}, out.get(), &plan, &deferred))
    return nullptr;
  return make_kernel(kernel_name("where"), [plan, deferred](OpContext& ctx) {
    const bool* pc = ctx.input(0).data<bool>();
    const float* px = ctx.input(1).data<float>();
    const float* py = ctx.input(2).data<float>();
    float* po = ctx.output(0).data<float>();
    Plan<3> p = plan;
    if (deferred)
      make_plan<3>(ctx.output(0).shape(),
                   {&ctx.input(0).shape(), &ctx.input(1).shape(), &ctx.input(2).shape()}, &p);
    WhereFn fn = where_fn(p.inner_vec[0], p.inner_vec[1], p.inner_vec[2]);
    run_plan<3>(p, ctx.pool(), [&](const std::array<int64_t, 3>& off, int64_t o, int64_t n) {
      fn(pc + off[0], px + off[1], py + off[2], po + o, n);
    });
  });
}

// ---------------------------------------------------------------- unary ops
// Runs f(vector) -> vector over the whole tensor in blocks, in parallel.
template <typename F>
void unary_apply(OpContext& ctx, const F& f) {
  const float* x = ctx.input(0).data<float>();
  float* y = ctx.output(0).data<float>();
  const int64_t total = ctx.input(0).numel();
  const int64_t nblk = (total + kBlock - 1) / kBlock;
  ctx.parallel_for(nblk, std::max<int64_t>(1, kTaskElems / kBlock), [&](int64_t b0, int64_t b1) {
    const int64_t start = b0 * kBlock, stop = std::min(total, b1 * kBlock);
    for_vectors(stop - start, [&](int64_t i, int64_t n) {
      put(y + start, i, n, f(get<true>(x + start, i, n)));
    });
  });
}

bool float32_input(const KernelInit& init) { return init.input_type(0).dtype == DType::Float32; }

inline vf relu6_v(vf v) {  // NaN passes through
  return select(v < splat(0.0f), splat(0.0f), select(v > splat(6.0f), splat(6.0f), v));
}

#define EMBER_VEC_UNARY(OP, EXPR)                                                        \
  std::unique_ptr<OpKernel> create_##OP(const KernelInit& init) {                        \
    if (!float32_input(init)) return nullptr;                                            \
    return make_kernel(kernel_name(#OP), [](OpContext& ctx) {                            \
      unary_apply(ctx, [](vf v) { return EXPR; });                                       \
    });                                                                                  \
  }
EMBER_VEC_UNARY(relu, select(v < splat(0.0f), splat(0.0f), v))
EMBER_VEC_UNARY(neg, -v)
EMBER_VEC_UNARY(abs, as_float(as_int(v) & splat_i(INT32_MAX)))
EMBER_VEC_UNARY(relu6, relu6_v(v))
EMBER_VEC_UNARY(exp, exp(v))
EMBER_VEC_UNARY(sigmoid, sigmoid(v))
EMBER_VEC_UNARY(tanh, tanh(v))
EMBER_VEC_UNARY(silu, v * sigmoid(v))
EMBER_VEC_UNARY(hardsigmoid, relu6_v(v + splat(3.0f)) / splat(6.0f))
EMBER_VEC_UNARY(hardswish, v * relu6_v(v + splat(3.0f)) / splat(6.0f))
#undef EMBER_VEC_UNARY

// gelu: "tanh" as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), since
// 0.5 (1 + tanh(u)) = sigmoid(2u) without the cancellation of 1 + tanh(u) for negative x.
// "none" (erf) is left to the reference kernel.
std::unique_ptr<OpKernel> create_gelu(const KernelInit& init) {
  if (!float32_input(init) || init.attr_string("approximate") != "tanh") return nullptr;
  return make_kernel(kernel_name("gelu_tanh"), [](OpContext& ctx) {
    unary_apply(ctx, [](vf v) {
      const vf u = splat(0.79788456080286535588f) * (v + splat(0.044715f) * v * v * v);
      return v * sigmoid(u + u);
    });
  });
}

// leaky_relu: x > 0 ? x : x * slope (the product rounded from float, within 1 ulp of the
// reference's double product).
std::unique_ptr<OpKernel> create_leaky_relu(const KernelInit& init) {
  if (!float32_input(init)) return nullptr;
  const float slope = static_cast<float>(init.attr_float("negative_slope"));
  return make_kernel(kernel_name("leaky_relu"), [slope](OpContext& ctx) {
    unary_apply(ctx, [slope](vf v) { return select(v > splat(0.0f), v, v * splat(slope)); });
  });
}

}  // namespace
}  // namespace ember::simd

namespace ember::simd {
namespace {
EMBER_VEC_REGISTER(add, [](const KernelInit& i) { return create_binary<BinOp::Add>(i, "add"); });
EMBER_VEC_REGISTER(sub, [](const KernelInit& i) { return create_binary<BinOp::Sub>(i, "sub"); });
EMBER_VEC_REGISTER(mul, [](const KernelInit& i) { return create_binary<BinOp::Mul>(i, "mul"); });
EMBER_VEC_REGISTER(div, [](const KernelInit& i) { return create_binary<BinOp::Div>(i, "div"); });
EMBER_VEC_REGISTER(maximum, [](const KernelInit& i) { return create_binary<BinOp::Max>(i, "maximum"); });
EMBER_VEC_REGISTER(minimum, [](const KernelInit& i) { return create_binary<BinOp::Min>(i, "minimum"); });
EMBER_VEC_REGISTER(eq, [](const KernelInit& i) { return create_compare<CmpOp::Eq>(i, "eq"); });
EMBER_VEC_REGISTER(ne, [](const KernelInit& i) { return create_compare<CmpOp::Ne>(i, "ne"); });
EMBER_VEC_REGISTER(lt, [](const KernelInit& i) { return create_compare<CmpOp::Lt>(i, "lt"); });
EMBER_VEC_REGISTER(le, [](const KernelInit& i) { return create_compare<CmpOp::Le>(i, "le"); });
EMBER_VEC_REGISTER(gt, [](const KernelInit& i) { return create_compare<CmpOp::Gt>(i, "gt"); });
EMBER_VEC_REGISTER(ge, [](const KernelInit& i) { return create_compare<CmpOp::Ge>(i, "ge"); });
EMBER_VEC_REGISTER(where, create_where);
EMBER_VEC_REGISTER(relu, create_relu);
EMBER_VEC_REGISTER(neg, create_neg);
EMBER_VEC_REGISTER(abs, create_abs);
EMBER_VEC_REGISTER(relu6, create_relu6);
EMBER_VEC_REGISTER(exp, create_exp);
EMBER_VEC_REGISTER(sigmoid, create_sigmoid);
EMBER_VEC_REGISTER(tanh, create_tanh);
EMBER_VEC_REGISTER(silu, create_silu);
EMBER_VEC_REGISTER(hardsigmoid, create_hardsigmoid);
EMBER_VEC_REGISTER(hardswish, create_hardswish);
EMBER_VEC_REGISTER(gelu, create_gelu);
EMBER_VEC_REGISTER(leaky_relu, create_leaky_relu);
}  // namespace
}  // namespace ember::simd
