// Fast fp32 linear and matmul on the packed GEMM (kernels/gemm.h).
//   linear(x [*, in], weight [out, in], bias? [out]) = act(x W^T + b): the weight is B read
//   transposed; a constant weight is packed once when the kernel is created, otherwise per call.
//   matmul(a, b): torch.matmul semantics; batch dims broadcast; a batch that b does not have is
//   folded into M so one GEMM covers it.
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/gemm.h"

namespace ember {
namespace {

class LinearFastKernel : public OpKernel {
 public:
  LinearFastKernel(const gemm::SgemmKernel& kernel, const KernelInit& init) : kernel_(&kernel) {
    activation_ = gemm::parse_activation(init.attr_string("activation"), init);
    if (const Tensor* w = init.constant(1)) {
      const int64_t N = w->dim(0), K = w->dim(1);
      packed_ = gemm::pack_b(kernel, K, N, w->data<float>(), 1, K);
    }
    name_ = std::string("f32_linear_") + kernel.name;
  }
  const char* name() const override { return name_.c_str(); }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    Tensor& y = ctx.output(0);
    const int64_t N = w.dim(0), K = w.dim(1);
    if (y.numel() == 0) return;
    const int64_t M = y.numel() / N;
    gemm::Epilogue ep;
    ep.activation = activation_;
    ep.col_bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    const gemm::Operand b = packed_.defined() ? gemm::Operand::prepacked(packed_)
                                              : gemm::Operand::raw(w.data<float>(), 1, K);
    gemm::sgemm(*kernel_, M, N, K, gemm::Operand::raw(x.data<float>(), K, 1), b,
                y.data<float>(), N, ep, &ctx.pool());
  }

 private:
  const gemm::SgemmKernel* kernel_;
  gemm::Activation activation_ = gemm::Activation::None;
  gemm::PackedMatrix packed_;
  std::string name_;
};

class MatmulFastKernel : public OpKernel {
 public:
  explicit MatmulFastKernel(const gemm::SgemmKernel& kernel)
      : kernel_(&kernel), name_(std::string("f32_matmul_") + kernel.name) {}
  const char* name() const override { return name_.c_str(); }

  void run(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& y = ctx.output(0);
    if (y.numel() == 0) return;
    // Matrix views: a 1-D a is a row [1, K], a 1-D b a column [K, 1].
    const bool a_vec = a.ndim() == 1, b_vec = b.ndim() == 1;
    const int64_t M = a_vec ? 1 : a.dim(-2), K = a_vec ? a.dim(0) : a.dim(-1);
    const int64_t N = b_vec ? 1 : b.dim(-1);
    Shape a_batch(a.shape().begin(), a.shape().end() - (a_vec ? 1 : 2));
    Shape b_batch(b.shape().begin(), b.shape().end() - (b_vec ? 1 : 2));
    const int64_t nd = static_cast<int64_t>(std::max(a_batch.size(), b_batch.size()));
    a_batch.insert(a_batch.begin(), nd - static_cast<int64_t>(a_batch.size()), 1);
    b_batch.insert(b_batch.begin(), nd - static_cast<int64_t>(b_batch.size()), 1);
    Shape batch(static_cast<size_t>(nd));
    for (int64_t i = 0; i < nd; ++i) batch[i] = std::max(a_batch[i], b_batch[i]);
    const int64_t batches = shape_numel(batch);
    if (batches == 0 || M == 0 || N == 0) return;
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    const gemm::Epilogue ep;

    bool b_broadcast = true;  // b is the same matrix for every batch
    for (int64_t d : b_batch) b_broadcast = b_broadcast && d == 1;
    bool a_full = true;  // a has every batch dim itself (so its batches are contiguous rows)
    for (int64_t i = 0; i < nd; ++i) a_full = a_full && a_batch[i] == batch[i];
    if (b_broadcast && a_full) {  // one GEMM: [batches * M, K] x [K, N]
      gemm::sgemm(*kernel_, batches * M, N, K, gemm::Operand::raw(pa, K, 1),
                  gemm::Operand::raw(pb, b_vec ? 1 : N, 1), py, N, ep, &ctx.pool());
      return;
    }
    // Broadcast batch strides (0 where a dim is broadcast).
    std::vector<int64_t> sa(static_cast<size_t>(nd)), sb(static_cast<size_t>(nd));
    int64_t ra = M * K, rb = K * N;
    for (int64_t i = nd - 1; i >= 0; --i) {
      sa[i] = a_batch[i] == 1 ? 0 : ra;
      sb[i] = b_batch[i] == 1 ? 0 : rb;
      ra *= a_batch[i];
      rb *= b_batch[i];
    }
    auto product = [&](int64_t t, ThreadPool* pool) {
      int64_t oa = 0, ob = 0, rem = t;
      for (int64_t i = nd - 1; i >= 0; --i) {
        const int64_t idx = rem % batch[i];
        rem /= batch[i];
        oa += idx * sa[i];
        ob += idx * sb[i];
      }
      gemm::sgemm(*kernel_, M, N, K, gemm::Operand::raw(pa + oa, K, 1),
                  gemm::Operand::raw(pb + ob, b_vec ? 1 : N, 1), py + t * M * N, N, ep, pool);
    };
    // Attention heads and the like: one product per thread when that pays.
    if (gemm::one_product_per_thread(batches, ctx.pool().num_threads())) {
      ctx.pool().parallel_for(batches, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) product(t, nullptr);
      });
      return;
    }
    for (int64_t t = 0; t < batches; ++t) product(t, &ctx.pool());
  }

 private:
  const gemm::SgemmKernel* kernel_;
  std::string name_;
};

const gemm::SgemmKernel* kernel_of(Isa isa) {
  const gemm::SgemmKernel* k = gemm::sgemm_kernel_for(isa);
  return k && k->isa == isa ? k : nullptr;
}

bool all_float32(const KernelInit& init) {
  for (int64_t i = 0; i < init.num_inputs(); ++i)
    if (init.has_input(i) && init.input_type(i).dtype != DType::Float32) return false;
  return true;
}

std::unique_ptr<OpKernel> create_linear(Isa isa, const KernelInit& init) {
  const gemm::SgemmKernel* k = kernel_of(isa);
  if (!k || !all_float32(init) || init.input_type(1).ndim() != 2) return nullptr;
  return std::make_unique<LinearFastKernel>(*k, init);
}

std::unique_ptr<OpKernel> create_matmul(Isa isa, const KernelInit& init) {
  const gemm::SgemmKernel* k = kernel_of(isa);
  if (!k || !all_float32(init)) return nullptr;
  if (init.input_type(0).ndim() < 1 || init.input_type(1).ndim() < 1) return nullptr;
  return std::make_unique<MatmulFastKernel>(*k);
}

}  // namespace

EMBER_REGISTER_KERNEL(linear, DType::Float32, Isa::Portable, "f32_linear_sgemm_4x16_portable",
                      [](const KernelInit& init) { return create_linear(Isa::Portable, init); });
EMBER_REGISTER_KERNEL(matmul, DType::Float32, Isa::Portable, "f32_matmul_sgemm_4x16_portable",
                      [](const KernelInit& init) { return create_matmul(Isa::Portable, init); });
#if defined(__x86_64__) || defined(_M_X64)
EMBER_REGISTER_KERNEL(linear, DType::Float32, Isa::AVX2, "f32_linear_sgemm_6x16_avx2",
                      [](const KernelInit& init) { return create_linear(Isa::AVX2, init); });
EMBER_REGISTER_KERNEL(matmul, DType::Float32, Isa::AVX2, "f32_matmul_sgemm_6x16_avx2",
                      [](const KernelInit& init) { return create_matmul(Isa::AVX2, init); });
EMBER_REGISTER_KERNEL(linear, DType::Float32, Isa::AVX512, "f32_linear_sgemm_14x32_avx512",
                      [](const KernelInit& init) { return create_linear(Isa::AVX512, init); });
EMBER_REGISTER_KERNEL(matmul, DType::Float32, Isa::AVX512, "f32_matmul_sgemm_14x32_avx512",
                      [](const KernelInit& init) { return create_matmul(Isa::AVX512, init); });
#endif

}  // namespace ember
