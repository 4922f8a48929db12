// Vectorized fp32 element-wise kernels (the hot shapes of add/sub/mul/div/maximum/minimum,
// relu/relu6, and the per-channel affine step of batch_norm): plain loops in elementwise_impl.h, compiled once per ISA file so the compiler
// vectorizes each with that ISA; registered for every ISA by fast/elementwise_fast.cc.
#pragma once
#include <cstdint>

namespace ember::elementwise {

enum class BinaryOp : int { Add, Sub, Mul, Div, Maximum, Minimum, Count };
// How b (or a) is laid out against the output of n elements.
enum class Layout : int {
  Same,     // a, b, y all n elements
  BScalar,  // b has one element
  AScalar,  // a has one element
  BRow,     // b has `inner` elements, repeated along the leading dims of a (a bias row)
  ARow,     // a has `inner` elements, repeated along the leading dims of b
};
enum class UnaryOp : int { Relu, Relu6, Count };

using BinaryFn = void (*)(BinaryOp op, Layout layout, int64_t begin, int64_t end, int64_t inner,
                          const float* a, const float* b, float* y);
using UnaryFn = void (*)(UnaryOp op, int64_t begin, int64_t end, const float* x, float* y);
// y[i] = x[i] * scale + shift for i in [0, n) (batch_norm on one channel plane).
using AffineFn = void (*)(int64_t n, const float* x, float scale, float shift, float* y);

struct Table {
  BinaryFn binary;  // elements [begin, end) of y
  UnaryFn unary;
  AffineFn affine;
};

const Table& elementwise_portable();
#if defined(__x86_64__) || defined(_M_X64)
const Table& elementwise_avx2();
const Table& elementwise_avx512();
#endif

}  // namespace ember::elementwise
