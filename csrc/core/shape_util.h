// Shape helpers shared by inference functions and kernels.
#pragma once
#include <cstdint>
#include <vector>

#include "core/op_registry.h"
#include "core/tensor.h"

namespace ember {

// numpy broadcasting of two shapes; `ctx` names the op in the error.
Shape broadcast_shapes(const Shape& a, const Shape& b, const AttrReader& ctx);
// Strides (in elements) to read a tensor of shape `in` as if broadcast to `out` (0 on
// broadcast dims); `in` is right-aligned to `out`.
Shape broadcast_strides(const Shape& in, const Shape& out);
// Maps a possibly negative axis into [0, ndim); error names the op and attribute.
int64_t normalize_axis(int64_t axis, int64_t ndim, const AttrReader& ctx,
                       const char* attr = "dim");

// Fails unless input i (when present) has input `ref`'s dtype; the error names both inputs:
// "input 'weight' has dtype float64, but input 'input' has float32".
void check_same_dtype(const InferContext& ctx, int64_t i, int64_t ref = 0);

// Common inference functions.
std::vector<TensorType> infer_same_as_input(const InferContext& ctx);   // output = input 0
std::vector<TensorType> infer_broadcast_binary(const InferContext& ctx);  // a, b -> broadcast
std::vector<TensorType> infer_broadcast_compare(const InferContext& ctx); // ... dtype bool

}  // namespace ember
