// Fast fp32 add/sub/mul/div/maximum/minimum (same shape, scalar, or a row broadcast along the
// leading dims: the bias-add shape), relu/relu6 and batch_norm (inference), for every ISA,
// threaded over large tensors.
// Other broadcasts run the op's reference kernel, created alongside as the fallback.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/elementwise_fast.h"

namespace ember::elementwise {
namespace {

// Elements per parallel chunk: enough work to pay for waking a thread.
constexpr int64_t kGrain = 1 << 15;

const Table* table_for(Isa isa) {
  switch (isa) {
    case Isa::Portable: return &elementwise_portable();
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::AVX2: return &elementwise_avx2();
    case Isa::AVX512: return &elementwise_avx512();
#endif
    default: return nullptr;
  }
}

std::unique_ptr<OpKernel> reference_kernel(const KernelInit& init) {
  for (const KernelEntry& k : init.schema().kernels())
    if (k.isa == Isa::Reference) return k.create(init);
  return nullptr;
}

// `small` (after dropping leading 1s) equals the trailing dims of `big`.
bool is_trailing_row(const Shape& small, const Shape& big) {
  size_t first = 0;
  while (first < small.size() && small[first] == 1) ++first;
  const size_t n = small.size() - first;
  if (n == 0 || n > big.size()) return false;
  for (size_t i = 0; i < n; ++i)
    if (small[first + i] != big[big.size() - n + i]) return false;
  return true;
}

class BinaryFastKernel : public OpKernel {
 public:
  BinaryFastKernel(BinaryOp op, const Table& table, std::string name,
                   std::unique_ptr<OpKernel> fallback)
      : op_(op), table_(&table), name_(std::move(name)), fallback_(std::move(fallback)) {}
  const char* name() const override { return name_.c_str(); }

  void run(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& y = ctx.output(0);
    const int64_t n = y.numel();
    Layout layout;
    int64_t inner = 1;
    if (a.shape() == y.shape() && b.shape() == y.shape()) {
      layout = Layout::Same;
    } else if (a.shape() == y.shape() && b.numel() == 1) {
      layout = Layout::BScalar;
    } else if (b.shape() == y.shape() && a.numel() == 1) {
      layout = Layout::AScalar;
    } else if (a.shape() == y.shape() && is_trailing_row(b.shape(), y.shape())) {
      layout = Layout::BRow;
      inner = b.numel();
    } else if (b.shape() == y.shape() && is_trailing_row(a.shape(), y.shape())) {
      layout = Layout::ARow;
      inner = a.numel();
    } else {
      fallback_->run(ctx);
      return;
    }
    if (n == 0) return;
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    if (layout == Layout::BRow || layout == Layout::ARow) {  // split by whole rows
      const int64_t rows = n / inner;
      ctx.parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
        table_->binary(op_, layout, r0 * inner, r1 * inner, inner, pa, pb, py);
      });
    } else {
      ctx.parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
        table_->binary(op_, layout, i0, i1, inner, pa, pb, py);
      });
    }
  }

 private:
  BinaryOp op_;
  const Table* table_;
  std::string name_;
  std::unique_ptr<OpKernel> fallback_;
};

class UnaryFastKernel : public OpKernel {
 public:
  UnaryFastKernel(UnaryOp op, const Table& table, std::string name)
      : op_(op), table_(&table), name_(std::move(name)) {}
  const char* name() const override { return name_.c_str(); }
  void run(OpContext& ctx) override {
    const float* x = ctx.input(0).data<float>();
    float* y = ctx.output(0).data<float>();
    ctx.parallel_for(ctx.output(0).numel(), kGrain,
                     [&](int64_t i0, int64_t i1) { table_->unary(op_, i0, i1, x, y); });
  }

 private:
  UnaryOp op_;
  const Table* table_;
  std::string name_;
};

// batch_norm (inference): per channel, scale = weight / sqrt(var + eps) and shift = bias -
// mean * scale are computed once in double, then every plane is one fused multiply-add pass.
class BatchNormFastKernel : public OpKernel {
 public:
  BatchNormFastKernel(const Table& table, std::string name) : table_(&table), name_(std::move(name)) {}
  const char* name() const override { return name_.c_str(); }
  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const float* mean = ctx.input(1).data<float>();
    const float* var = ctx.input(2).data<float>();
    const float* weight = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
    const float* bias = ctx.has_input(4) ? ctx.input(4).data<float>() : nullptr;
    const double eps = ctx.attr_float("eps");
    const int64_t batch = x.dim(0), channels = x.dim(1);
    const int64_t inner = channels == 0 || batch == 0 ? 0 : x.numel() / (batch * channels);
    std::vector<float> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) {
      const double s = (weight ? static_cast<double>(weight[c]) : 1.0) /
                       std::sqrt(static_cast<double>(var[c]) + eps);
      scale[c] = static_cast<float>(s);
      shift[c] = static_cast<float>((bias ? static_cast<double>(bias[c]) : 0.0) -
                                    static_cast<double>(mean[c]) * s);
    }
    const float* px = x.data<float>();
    float* py = ctx.output(0).data<float>();
    ctx.parallel_for(batch * channels, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)),
                     [&](int64_t p0, int64_t p1) {
                       for (int64_t p = p0; p < p1; ++p) {
                         const int64_t c = p % channels;
                         table_->affine(inner, px + p * inner, scale[c], shift[c], py + p * inner);
                       }
                     });
  }

 private:
  const Table* table_;
  std::string name_;
};

struct Registrations {
  Registrations() {
    const struct { const char* op; BinaryOp kind; } binaries[] = {
        {"add", BinaryOp::Add}, {"sub", BinaryOp::Sub}, {"mul", BinaryOp::Mul},
        {"div", BinaryOp::Div}, {"maximum", BinaryOp::Maximum}, {"minimum", BinaryOp::Minimum}};
    const struct { const char* op; UnaryOp kind; } unaries[] = {{"relu", UnaryOp::Relu},
                                                                {"relu6", UnaryOp::Relu6}};
    Isa isas[] = {Isa::Portable,
#if defined(__x86_64__) || defined(_M_X64)
                  Isa::AVX2, Isa::AVX512
#endif
    };
    for (Isa isa : isas) {
      for (const auto& b : binaries) {
        std::string name = std::string("f32_") + b.op + "_" + isa_name(isa);
        BinaryOp kind = b.kind;
        OpRegistry::global().add_kernel(
            b.op, KernelEntry{DType::Float32, isa, name,
                              [isa, kind, name](const KernelInit& init) -> std::unique_ptr<OpKernel> {
                                const Table* t = table_for(isa);
                                if (!t || init.input_type(1).dtype != DType::Float32) return nullptr;
                                auto fallback = reference_kernel(init);
                                if (!fallback) return nullptr;
                                return std::make_unique<BinaryFastKernel>(kind, *t, name,
                                                                          std::move(fallback));
                              }});
      }
      {
        std::string name = std::string("f32_batch_norm_") + isa_name(isa);
        OpRegistry::global().add_kernel(
            "batch_norm",
            KernelEntry{DType::Float32, isa, name,
                        [isa, name](const KernelInit& init) -> std::unique_ptr<OpKernel> {
                          const Table* t = table_for(isa);
                          for (int64_t i = 1; i < init.num_inputs(); ++i)
                            if (init.has_input(i) && init.input_type(i).dtype != DType::Float32)
                              return nullptr;
                          if (!t) return nullptr;
                          return std::make_unique<BatchNormFastKernel>(*t, name);
                        }});
      }
      for (const auto& u : unaries) {
        std::string name = std::string("f32_") + u.op + "_" + isa_name(isa);
        UnaryOp kind = u.kind;
        OpRegistry::global().add_kernel(
            u.op, KernelEntry{DType::Float32, isa, name,
                              [isa, kind, name](const KernelInit&) -> std::unique_ptr<OpKernel> {
                                const Table* t = table_for(isa);
                                if (!t) return nullptr;
                                return std::make_unique<UnaryFastKernel>(kind, *t, name);
                              }});
      }
    }
  }
};
const Registrations registrations;

}  // namespace
}  // namespace ember::elementwise
