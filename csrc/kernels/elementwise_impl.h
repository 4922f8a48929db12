// The element-wise loops behind elementwise_fast.h, included by one file per ISA (internal
// linkage only). Expressions match the reference kernels' exactly (same NaN rules; one IEEE
// operation per element), so results are bit-identical to the reference.
#pragma once
#include "kernels/elementwise_fast.h"

namespace ember::elementwise {
namespace {

template <BinaryOp OP>
inline float apply(float x, float y) {
  if constexpr (OP == BinaryOp::Add) return x + y;
  if constexpr (OP == BinaryOp::Sub) return x - y;
  if constexpr (OP == BinaryOp::Mul) return x * y;
  if constexpr (OP == BinaryOp::Div) return x / y;
  // NaN propagates, as in torch.maximum/minimum (and the reference).
  if constexpr (OP == BinaryOp::Maximum) return (x != x) ? x : ((y != y) ? y : (x > y ? x : y));
  if constexpr (OP == BinaryOp::Minimum) return (x != x) ? x : ((y != y) ? y : (x < y ? x : y));
  return 0.0f;
}

template <BinaryOp OP>
void binary_typed(Layout layout, int64_t begin, int64_t end, int64_t inner,
                  const float* a, const float* b, float* y) {  // y may be a (in place)
  switch (layout) {
    case Layout::Same:
      for (int64_t i = begin; i < end; ++i) y[i] = apply<OP>(a[i], b[i]);
      break;
    case Layout::BScalar: {
      const float s = b[0];
      for (int64_t i = begin; i < end; ++i) y[i] = apply<OP>(a[i], s);
      break;
    }
    case Layout::AScalar: {
      const float s = a[0];
      for (int64_t i = begin; i < end; ++i) y[i] = apply<OP>(s, b[i]);
      break;
    }
    case Layout::BRow:
    case Layout::ARow: {
      // [begin, end) is whole rows of `inner` elements (the caller splits by rows).
      for (int64_t r0 = begin; r0 < end; r0 += inner) {
        float* yr = y + r0;
        if (layout == Layout::BRow) {
          const float* ar = a + r0;
          for (int64_t j = 0; j < inner; ++j) yr[j] = apply<OP>(ar[j], b[j]);
        } else {
          const float* br = b + r0;
          for (int64_t j = 0; j < inner; ++j) yr[j] = apply<OP>(a[j], br[j]);
        }
      }
      break;
    }
  }
}

void binary(BinaryOp op, Layout layout, int64_t begin, int64_t end, int64_t inner,
            const float* a, const float* b, float* y) {
  switch (op) {
    case BinaryOp::Add: return binary_typed<BinaryOp::Add>(layout, begin, end, inner, a, b, y);
    case BinaryOp::Sub: return binary_typed<BinaryOp::Sub>(layout, begin, end, inner, a, b, y);
    case BinaryOp::Mul: return binary_typed<BinaryOp::Mul>(layout, begin, end, inner, a, b, y);
    case BinaryOp::Div: return binary_typed<BinaryOp::Div>(layout, begin, end, inner, a, b, y);
    case BinaryOp::Maximum:
      return binary_typed<BinaryOp::Maximum>(layout, begin, end, inner, a, b, y);
    case BinaryOp::Minimum:
      return binary_typed<BinaryOp::Minimum>(layout, begin, end, inner, a, b, y);
    default: return;
  }
}

void unary(UnaryOp op, int64_t begin, int64_t end, const float* x, float* y) {
  if (op == UnaryOp::Relu) {
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];  // NaN stays
  } else {
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i];
      y[i] = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);  // NaN stays
    }
  }
}

void affine(int64_t n, const float* x, float scale, float shift, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

}  // namespace
}  // namespace ember::elementwise
