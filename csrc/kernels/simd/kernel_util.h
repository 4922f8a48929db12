// Small pieces shared by the kernels built on kernels/simd/vec.h: kernels made from lambdas,
// their names (f32_<op>_<suffix>) and registration for the including file's ISA.
#pragma once
#include <memory>
#include <string>

#include "core/op_registry.h"

#ifndef EMBER_VEC_ISA
#error "define EMBER_VEC_ISA and EMBER_VEC_SUFFIX before including kernels/simd/kernel_util.h"
#endif

namespace ember::simd {
namespace {

std::string kernel_name(const char* op) {
  return std::string("f32_") + op + "_" + EMBER_VEC_SUFFIX;
}

// A kernel whose run is a lambda over the context.
template <typename Fn>
class LambdaKernel : public OpKernel {
 public:
  LambdaKernel(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  const char* name() const override { return name_.c_str(); }
  void run(OpContext& ctx) override { fn_(ctx); }

 private:
  std::string name_;
  Fn fn_;
};
template <typename Fn>
std::unique_ptr<OpKernel> make_kernel(std::string name, Fn fn) {
  return std::make_unique<LambdaKernel<Fn>>(std::move(name), std::move(fn));
}

}  // namespace
}  // namespace ember::simd

// Registration, once per including file.
#define EMBER_VEC_REGISTER(OP, FACTORY)                                                 \
  EMBER_REGISTER_KERNEL(OP, ::ember::DType::Float32, EMBER_VEC_ISA,                     \
                        "f32_" #OP "_" EMBER_VEC_SUFFIX, FACTORY)

