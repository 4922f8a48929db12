// Kernel-level access for tests and benchmarks: _C.sgemm / _C.SgemmPackedB (the packed GEMM
// itself; ops reach it through linear, matmul and conv2d), _C.PreparedOp (a kernel created once
// with constant inputs, as the graph runtime creates it at load time, then run many times) and
// _C.measure_cpu_ghz / _C.measure_fp32_peak_gflops.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/op_registry.h"
#include "kernels/gemm.h"
#include "python/bindings.h"

namespace ember::python {

namespace {

using Array = py::array_t<float, py::array::c_style | py::array::forcecast>;

const gemm::SgemmKernel& kernel_for(const std::string& isa) {
  if (isa.empty()) return gemm::select_sgemm_kernel();
  const gemm::SgemmKernel* k = gemm::sgemm_kernel_for(isa_from_name(isa));
  if (!k) fail<Unsupported>("sgemm: no microkernel for isa '", isa, "' on this machine");
  return *k;
}

gemm::Activation activation_from(const std::string& name) {
  if (name == "none") return gemm::Activation::None;
  if (name == "relu") return gemm::Activation::Relu;
  if (name == "relu6") return gemm::Activation::Relu6;
  fail<InvalidArgument>("sgemm: activation must be none, relu or relu6, got '", name, "'");
}

// The epilogue of act(a @ b + bias); `holder` keeps the bias array alive while it is used.
gemm::Epilogue epilogue_from(py::object bias, int64_t N, const std::string& activation,
                             Array* holder) {
  gemm::Epilogue ep;
  ep.activation = activation_from(activation);
  if (!bias.is_none()) {
    *holder = Array::ensure(bias);
    if (holder->ndim() != 1 || holder->shape(0) != N)
      fail<InvalidArgument>("sgemm: 'bias' must have shape [", N, "]");
    ep.col_bias = holder->data();
  }
  return ep;
}

void check_2d(const Array& x, const char* what) {
  if (x.ndim() != 2) fail<InvalidArgument>("sgemm: '", what, "' must be 2-D, got ", x.ndim(), "-D");
}

// B is [K, N], or [N, K] when `b_transposed` (a linear layer's weight).
struct SgemmPackedB {
  const gemm::SgemmKernel* kernel;
  gemm::PackedMatrix packed;
  int64_t K, N;

  py::array run(const Array& a, py::object bias, const std::string& activation) {
    check_2d(a, "a");
    if (a.shape(1) != K)
      fail<InvalidArgument>("sgemm: 'a' has ", a.shape(1), " columns, packed B has K=", K);
    Array bias_arr;
    const gemm::Epilogue ep = epilogue_from(bias, N, activation, &bias_arr);
    const int64_t M = a.shape(0);
    Array c({M, N});
    {
      py::gil_scoped_release release;
      gemm::sgemm(*kernel, M, N, K, gemm::Operand::raw(a.data(), K, 1),
                  gemm::Operand::prepacked(packed), c.mutable_data(), N, ep, &ThreadPool::global());
    }
    return c;
  }
};

// A kernel created once, with some inputs declared constant (pre-packed weights), as the graph
// runtime creates kernels at load time; run() then only runs it.
class PreparedOp {
 public:
  PreparedOp(const std::string& type, const py::sequence& inputs, const py::dict& attrs,
             const std::vector<int64_t>& constants)
      : schema_(&OpRegistry::global().get(type)) {
    attrs_ = schema_->resolve_attrs(attrs_from_py(attrs, schema_->name()));
    const size_t n = py::len(inputs);
    types_.resize(n);
    constant_arrays_.resize(n);
    constant_tensors_.resize(n);
    std::vector<const Tensor*> constant_ptrs(n, nullptr);
    py::object np = py::module_::import("numpy");
    for (size_t i = 0; i < n; ++i) {
      py::object item = inputs[i];
      if (item.is_none()) continue;
      py::array arr = np.attr("array")(item, py::arg("copy") = true, py::arg("order") = "C");
      Tensor t = tensor_from_numpy(arr, schema_->name() + ": input " + std::to_string(i));
      types_[i] = t.type();
      for (int64_t c : constants)
        if (c == static_cast<int64_t>(i)) {
          constant_arrays_[i] = arr;
          constant_tensors_[i] = t;
          constant_ptrs[i] = &constant_tensors_[i];
        }
    }
    KernelInit init(schema_, &name_, &attrs_, types_, constant_ptrs);
    kernel_ = schema_->create_kernel(init);
  }

  const char* kernel_name() const { return kernel_->name(); }

  // Inputs in schema order; a constant input's slot may be None (its stored value is used).
  py::array run(const py::sequence& inputs) {
    const size_t n = py::len(inputs);
    if (n != types_.size())
      fail<InvalidArgument>(schema_->name(), ": prepared with ", types_.size(), " inputs, run with ", n);
    std::vector<py::array> keep(n);
    std::vector<Tensor> tensors(n);
    std::vector<const Tensor*> ptrs(n, nullptr);
    std::vector<TensorType> in_types(n);
    std::vector<const TensorType*> type_ptrs(n, nullptr);
    for (size_t i = 0; i < n; ++i) {
      if (constant_tensors_[i].defined()) {
        ptrs[i] = &constant_tensors_[i];
      } else if (!py::object(inputs[i]).is_none()) {
        keep[i] = py::array::ensure(inputs[i], py::array::c_style);
        tensors[i] = tensor_from_numpy(keep[i], schema_->name() + ": input " + std::to_string(i));
        ptrs[i] = &tensors[i];
      }
      if (ptrs[i]) {
        in_types[i] = ptrs[i]->type();
        type_ptrs[i] = &in_types[i];
      }
    }
    std::vector<TensorType> out_types = schema_->infer_types(type_ptrs, attrs_, name_);
    Tensor out;
    py::array result = new_numpy(out_types.at(0), &out);
    std::vector<Tensor*> outs = {&out};
    OpContext ctx(schema_, &name_, &attrs_, ptrs, outs, &ThreadPool::global());
    {
      py::gil_scoped_release release;
      kernel_->run(ctx);
    }
    return result;
  }

 private:
  const OpSchema* schema_;
  std::string name_;
  AttrMap attrs_;
  std::vector<TensorType> types_;
  std::vector<py::array> constant_arrays_;
  std::vector<Tensor> constant_tensors_;
  std::unique_ptr<OpKernel> kernel_;
};

}  // namespace

// Cycles of a chain of dependent integer adds (one cycle each on every x86-64 and aarch64 core
// we target) over this thread's CPU time (so time slices lost to other processes on a shared
// machine do not count): the core clock while busy, for peak-FLOP/s arithmetic.
double measure_cpu_ghz() {
  constexpr int64_t kSteps = 200'000'000;
  uint64_t x = 0;
  auto thread_seconds = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const double t0 = thread_seconds();
  for (int64_t i = 0; i < kSteps; i += 8) {
#if defined(__x86_64__)
    asm volatile(
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
        : "+r"(x));
#elif defined(__aarch64__)
    asm volatile(
        "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
        "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1"
        : "+r"(x));
#else
    x += 8;
#endif
  }
  const double seconds = thread_seconds() - t0;
  return static_cast<double>(x) / seconds / 1e9;
}

// Single-precision FLOP/s of one core on independent fused multiply-adds at the widest vector
// width `isa` allows (12 accumulator chains: more than FMA latency x FMA pipes on every core we
// target), over this thread's CPU time: the core's fp32 peak, measured rather than assumed from
// its model (AMD Zen 4 runs 512-bit FMAs as two halves, Zen 5 server cores do not).
#if defined(__x86_64__)
#define EMBER_FMA12(op, r)                                                                      \
  op " %%" r "13, %%" r "14, %%" r "0\n\t" op " %%" r "13, %%" r "14, %%" r "1\n\t"          \
  op " %%" r "13, %%" r "14, %%" r "2\n\t" op " %%" r "13, %%" r "14, %%" r "3\n\t"          \
  op " %%" r "13, %%" r "14, %%" r "4\n\t" op " %%" r "13, %%" r "14, %%" r "5\n\t"          \
  op " %%" r "13, %%" r "14, %%" r "6\n\t" op " %%" r "13, %%" r "14, %%" r "7\n\t"          \
  op " %%" r "13, %%" r "14, %%" r "8\n\t" op " %%" r "13, %%" r "14, %%" r "9\n\t"          \
  op " %%" r "13, %%" r "14, %%" r "10\n\t" op " %%" r "13, %%" r "14, %%" r "11\n\t"

// The registers start at zero: whatever earlier code left in them can be a denormal, and FMAs
// on denormals take a microcode assist each (the probe then read 1 GFLOP/s).
#define EMBER_ZERO15                                                                            \
  asm volatile(                                                                                 \
      "vxorps %%xmm0, %%xmm0, %%xmm0\n\tvxorps %%xmm1, %%xmm1, %%xmm1\n\t"                   \
      "vxorps %%xmm2, %%xmm2, %%xmm2\n\tvxorps %%xmm3, %%xmm3, %%xmm3\n\t"                   \
      "vxorps %%xmm4, %%xmm4, %%xmm4\n\tvxorps %%xmm5, %%xmm5, %%xmm5\n\t"                   \
      "vxorps %%xmm6, %%xmm6, %%xmm6\n\tvxorps %%xmm7, %%xmm7, %%xmm7\n\t"                   \
      "vxorps %%xmm8, %%xmm8, %%xmm8\n\tvxorps %%xmm9, %%xmm9, %%xmm9\n\t"                   \
      "vxorps %%xmm10, %%xmm10, %%xmm10\n\tvxorps %%xmm11, %%xmm11, %%xmm11\n\t"             \
      "vxorps %%xmm13, %%xmm13, %%xmm13\n\tvxorps %%xmm14, %%xmm14, %%xmm14" ::                \
          : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",      \
            "xmm10", "xmm11", "xmm13", "xmm14")

__attribute__((target("avx512f"))) void fma_loop_avx512(int64_t iterations) {
  EMBER_ZERO15;
  for (int64_t i = 0; i < iterations; ++i)
    asm volatile(EMBER_FMA12("vfmadd231ps", "zmm") ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
                 "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
}
__attribute__((target("avx2,fma"))) void fma_loop_avx2(int64_t iterations) {
  EMBER_ZERO15;
  for (int64_t i = 0; i < iterations; ++i)
    asm volatile(EMBER_FMA12("vfmadd231ps", "ymm") ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
                 "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
}
#undef EMBER_FMA12
#undef EMBER_ZERO15
#endif

double measure_fp32_peak_gflops(Isa isa) {
  constexpr int64_t kIterations = 20'000'000;
  int lanes = 0;
  void (*loop)(int64_t) = nullptr;
#if defined(__x86_64__)
  if (!isa_enabled(isa)) {
  } else if (isa == Isa::AVX512 || isa == Isa::AVX512_VNNI) {
    loop = fma_loop_avx512;
    lanes = 16;
  } else if (isa == Isa::AVX2) {
    loop = fma_loop_avx2;
    lanes = 8;
  }
#endif
  if (!loop) fail<Unsupported>("measure_fp32_peak_gflops: no FMA loop for isa '", isa_name(isa),
                               "' on this machine");
  auto thread_seconds = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  loop(kIterations / 10);  // wake the vector units (some cores power the upper halves on demand)
  const double t0 = thread_seconds();
  loop(kIterations);
  const double seconds = thread_seconds() - t0;
  return static_cast<double>(kIterations) * 12 * lanes * 2 / seconds / 1e9;
}

void register_kernels_binding(py::module_& m) {
  m.def("measure_fp32_peak_gflops", [](const std::string& isa) {
    const Isa target = isa.empty() ? max_isa() : isa_from_name(isa);
    py::gil_scoped_release release;
    return measure_fp32_peak_gflops(target);
  }, py::arg("isa") = "",
     "Measures one core's fp32 FMA throughput in GFLOP/s at the widest vector width of `isa` "
     "(default: this machine's best). For benchmarks.");

  m.def("measure_cpu_ghz", [] {
    py::gil_scoped_release release;
    return measure_cpu_ghz();
  }, "Measures the busy core clock in GHz (a chain of dependent adds). For benchmarks.");

  m.def(
      "sgemm",
      [](const Array& a, const Array& b, py::object bias, const std::string& activation,
         bool b_transposed, const std::string& isa) {
        check_2d(a, "a");
        check_2d(b, "b");
        const gemm::SgemmKernel& kernel = kernel_for(isa);
        const int64_t M = a.shape(0), K = a.shape(1);
        const int64_t N = b_transposed ? b.shape(0) : b.shape(1);
        const int64_t Kb = b_transposed ? b.shape(1) : b.shape(0);
        if (Kb != K) fail<InvalidArgument>("sgemm: 'a' has K=", K, ", 'b' has K=", Kb);
        Array bias_arr;
        const gemm::Epilogue ep = epilogue_from(bias, N, activation, &bias_arr);
        Array c({M, N});
        {
          py::gil_scoped_release release;
          gemm::sgemm(kernel, M, N, K, gemm::Operand::raw(a.data(), K, 1),
                      gemm::Operand::raw(b.data(), b_transposed ? 1 : N, b_transposed ? K : 1),
                      c.mutable_data(), N, ep, &ThreadPool::global());
        }
        return c;
      },
      py::arg("a"), py::arg("b"), py::arg("bias") = py::none(), py::arg("activation") = "none",
      py::arg("b_transposed") = false, py::arg("isa") = "",
      "act(a @ b + bias) with the packed fp32 GEMM (b is [K, N], or [N, K] if b_transposed); "
      "isa picks the microkernel ('' = best enabled). For tests and benchmarks.");

  py::class_<PreparedOp>(m, "PreparedOp",
                         "An op's kernel created once with the inputs listed in `constants` "
                         "fixed (weights pre-packed, as at model load); run(inputs) runs it on "
                         "new values of the other inputs. Single-output ops.")
      .def(py::init<const std::string&, const py::sequence&, const py::dict&,
                    const std::vector<int64_t>&>(),
           py::arg("type"), py::arg("inputs"), py::arg("attrs") = py::dict(),
           py::arg("constants") = std::vector<int64_t>{})
      .def("run", &PreparedOp::run, py::arg("inputs"))
      .def_property_readonly("kernel_name", &PreparedOp::kernel_name);

  py::class_<SgemmPackedB>(m, "SgemmPackedB",
                           "A GEMM right-hand side packed once (as a constant weight is at load "
                           "time); run(a, bias, activation) computes act(a @ B + bias).")
      .def(py::init([](const Array& b, bool b_transposed, const std::string& isa) {
             check_2d(b, "b");
             const gemm::SgemmKernel& kernel = kernel_for(isa);
             const int64_t N = b_transposed ? b.shape(0) : b.shape(1);
             const int64_t K = b_transposed ? b.shape(1) : b.shape(0);
             SgemmPackedB p{&kernel, gemm::pack_b(kernel, K, N, b.data(), b_transposed ? 1 : N,
                                                  b_transposed ? K : 1),
                            K, N};
             return p;
           }),
           py::arg("b"), py::arg("b_transposed") = false, py::arg("isa") = "")
      .def("run", &SgemmPackedB::run, py::arg("a"), py::arg("bias") = py::none(),
           py::arg("activation") = "none")
      .def_property_readonly("kernel_name", [](const SgemmPackedB& p) { return p.kernel->name; });
}

}  // namespace ember::python
