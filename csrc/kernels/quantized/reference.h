// Reference kernels of quantized ops that fast kernels fall back to for cases they do not
// handle at run time (e.g. weights that are not model constants with a scale >= 1).
#pragma once
#include "core/op_registry.h"

namespace ember::quantized {

std::vector<TensorType> infer_quantized_linear(const InferContext& ctx);
std::vector<TensorType> infer_quantized_conv2d(const InferContext& ctx);
void quantized_linear_reference(OpContext& ctx);
void quantized_conv2d_reference(OpContext& ctx);
void quantized_add_reference(OpContext& ctx);

// Fast quantized_add kernels handle equal shapes; the factory accepts shapes equal up to
// dynamic (-1) dims, and the kernel checks the run-time shapes (else the reference runs).
bool same_static_shape(const KernelInit& init);

}  // namespace ember::quantized
