// graphruntime._C.sgemm / _C.SgemmPackedB: direct access to the packed GEMM, for kernel tests
// and benchmarks (ops reach it through linear, matmul and conv2d).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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
    gemm::Epilogue ep;
    ep.activation = activation_from(activation);
    Array bias_arr;
    if (!bias.is_none()) {
      bias_arr = Array::ensure(bias);
      if (bias_arr.ndim() != 1 || bias_arr.shape(0) != N)
        fail<InvalidArgument>("sgemm: 'bias' must have shape [", N, "]");
      ep.col_bias = bias_arr.data();
    }
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

}  // namespace

void register_gemm_binding(py::module_& m) {
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
        gemm::Epilogue ep;
        ep.activation = activation_from(activation);
        Array bias_arr;
        if (!bias.is_none()) {
          bias_arr = Array::ensure(bias);
          if (bias_arr.ndim() != 1 || bias_arr.shape(0) != N)
            fail<InvalidArgument>("sgemm: 'bias' must have shape [", N, "]");
          ep.col_bias = bias_arr.data();
        }
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
