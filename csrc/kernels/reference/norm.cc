// Normalization: batch_norm (inference, with the running statistics), batch_norm_train and its
// gradient (batch statistics), and layer_norm, as torch.nn.functional. Statistics and the affine step are computed in double.
#include <cmath>
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

// `shape` equals `expected` in every dim it knows (-1 = unknown until run time).
bool matches_where_known(const Shape& shape, const std::vector<int64_t>& expected) {
  if (shape.size() != expected.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] >= 0 && shape[i] != expected[i]) return false;
  return true;
}

// Input x of a batch norm op (at `x_index`) is [N, C, *]; the present inputs first..last are
// per-channel vectors [C] of x's dtype.
void check_channel_inputs(const InferContext& ctx, int64_t x_index, int64_t first, int64_t last) {
  const TensorType& x = ctx.input(x_index);
  if (x.ndim() < 2)
    ctx.fail("input 'x' must be [N, C, *] (at least 2 dims), got shape ", shape_str(x.shape));
  const int64_t channels = x.shape[1];
  for (int64_t i = first; i <= last; ++i) {
    if (!ctx.has_input(i)) continue;
    check_same_dtype(ctx, i, x_index);
    const Shape& s = ctx.input(i).shape;
    if (s.size() != 1 || (channels >= 0 && s[0] >= 0 && s[0] != channels))
      ctx.fail("input '", ctx.input_name(i), "' has shape ", shape_str(s), ", expected [",
               channels, "] for x ", shape_str(x.shape));
  }
}

// ---------------------------------------------------------------- batch_norm

std::vector<TensorType> infer_batch_norm(const InferContext& ctx) {
  check_channel_inputs(ctx, 0, 1, 4);
  return {ctx.input(0)};
}

template <typename T>
void batch_norm_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const T* mean = ctx.input(1).data<T>();
  const T* var = ctx.input(2).data<T>();
  const T* weight = ctx.has_input(3) ? ctx.input(3).data<T>() : nullptr;
  const T* bias = ctx.has_input(4) ? ctx.input(4).data<T>() : nullptr;
  const double eps = ctx.attr_float("eps");
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t inner = shape_numel(Shape(x.shape().begin() + 2, x.shape().end()));
  const T* px = x.data<T>();
  T* py = ctx.output(0).data<T>();
  for (int64_t c = 0; c < channels; ++c) {
    const double scale = (weight ? static_cast<double>(weight[c]) : 1.0) /
                         std::sqrt(static_cast<double>(var[c]) + eps);
    const double shift = bias ? static_cast<double>(bias[c]) : 0.0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (n * channels + c) * inner + i;
        py[at] = static_cast<T>((static_cast<double>(px[at]) - static_cast<double>(mean[c])) * scale + shift);
      }
  }
}

void batch_norm_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "batch_norm", [&] { batch_norm_loops<scalar_t>(ctx); });
}

// ---------------------------------------------------------------- batch_norm_train(_grad)
//
// Training-mode batch normalization with the batch's own statistics over all dims but 1, as
// torch.nn.functional.batch_norm(training=True): mean and biased variance per channel,
// y = (x - mean) * weight / sqrt(var + eps) + bias. The gradient is the closed form
//   gx = weight * invstd * (gy - sum(gy) / m - (x - mean) * invstd^2 * sum(gy * (x - mean)) / m)
// with m = N * prod(spatial), gweight = invstd * sum(gy * (x - mean)), gbias = sum(gy).

std::vector<TensorType> infer_batch_norm_train(const InferContext& ctx) {
  check_channel_inputs(ctx, 0, 1, 2);
  const TensorType& x = ctx.input(0);
  const TensorType stat{x.dtype, {x.shape[1]}};
  return {x, stat, stat};
}

std::vector<TensorType> infer_batch_norm_train_grad(const InferContext& ctx) {
  const TensorType& gy = ctx.input(0);
  const TensorType& x = ctx.input(1);
  check_channel_inputs(ctx, 1, 2, 4);
  check_same_dtype(ctx, 0, 1);
  if (!matches_where_known(gy.shape, x.shape) && !matches_where_known(x.shape, gy.shape))
    ctx.fail("input 'grad_y' has shape ", shape_str(gy.shape), ", but input 'x' has shape ",
             shape_str(x.shape));
  const TensorType stat{x.dtype, {x.shape[1]}};
  return {x, stat, stat};
}

template <typename T>
void batch_norm_train_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const T* weight = ctx.has_input(1) ? ctx.input(1).data<T>() : nullptr;
  const T* bias = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
  const double eps = ctx.attr_float("eps");
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t inner = shape_numel(Shape(x.shape().begin() + 2, x.shape().end()));
  const double count = static_cast<double>(batch * inner);
  const T* px = x.data<T>();
  T* py = ctx.output(0).data<T>();
  T* pmean = ctx.output(1).data<T>();
  T* pvar = ctx.output(2).data<T>();
  for (int64_t c = 0; c < channels; ++c) {
    double sum = 0.0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < inner; ++i) sum += static_cast<double>(px[(n * channels + c) * inner + i]);
    const double mean = count > 0 ? sum / count : std::nan("");
    double sq = 0.0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const double d = static_cast<double>(px[(n * channels + c) * inner + i]) - mean;
        sq += d * d;
      }
    const double var = count > 0 ? sq / count : std::nan("");
    const double scale = (weight ? static_cast<double>(weight[c]) : 1.0) / std::sqrt(var + eps);
    const double shift = bias ? static_cast<double>(bias[c]) : 0.0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (n * channels + c) * inner + i;
        py[at] = static_cast<T>((static_cast<double>(px[at]) - mean) * scale + shift);
      }
    pmean[c] = static_cast<T>(mean);
    pvar[c] = static_cast<T>(var);
  }
}

template <typename T>
void batch_norm_train_grad_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(1);
  const T* pg = ctx.input(0).data<T>();
  const T* pmean = ctx.input(2).data<T>();
  const T* pvar = ctx.input(3).data<T>();
  const T* weight = ctx.has_input(4) ? ctx.input(4).data<T>() : nullptr;
  const double eps = ctx.attr_float("eps");
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t inner = shape_numel(Shape(x.shape().begin() + 2, x.shape().end()));
  const double count = static_cast<double>(batch * inner);
  const T* px = x.data<T>();
  T* pgx = ctx.output(0).data<T>();
  T* pgw = ctx.output(1).data<T>();
  T* pgb = ctx.output(2).data<T>();
  for (int64_t c = 0; c < channels; ++c) {
    const double mean = static_cast<double>(pmean[c]);
    const double invstd = 1.0 / std::sqrt(static_cast<double>(pvar[c]) + eps);
    double gsum = 0.0, gdot = 0.0;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (n * channels + c) * inner + i;
        const double g = static_cast<double>(pg[at]);
        gsum += g;
        gdot += g * (static_cast<double>(px[at]) - mean);
      }
    const double scale = (weight ? static_cast<double>(weight[c]) : 1.0) * invstd;
    const double gmean = gsum / count;
    const double k = invstd * invstd * gdot / count;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (n * channels + c) * inner + i;
        pgx[at] = static_cast<T>(
            scale * (static_cast<double>(pg[at]) - gmean - (static_cast<double>(px[at]) - mean) * k));
      }
    pgw[c] = static_cast<T>(gdot * invstd);
    pgb[c] = static_cast<T>(gsum);
  }
}

void batch_norm_train_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "batch_norm_train",
                       [&] { batch_norm_train_loops<scalar_t>(ctx); });
}

void batch_norm_train_grad_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(1).dtype(), "batch_norm_train_grad",
                       [&] { batch_norm_train_grad_loops<scalar_t>(ctx); });
}

// ---------------------------------------------------------------- layer_norm

std::vector<TensorType> infer_layer_norm(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const std::vector<int64_t>& normalized = ctx.attr_ints("normalized_shape");
  if (normalized.empty()) ctx.fail("attribute 'normalized_shape' must not be empty");
  for (int64_t d : normalized)
    if (d < 0) ctx.fail("attribute 'normalized_shape' = ", shape_str(normalized), " has a negative dim");
  bool matches = x.shape.size() >= normalized.size();
  for (size_t i = 0; matches && i < normalized.size(); ++i) {
    int64_t d = x.shape[x.shape.size() - normalized.size() + i];
    matches = d < 0 || d == normalized[i];
  }
  if (!matches)
    ctx.fail("input 'x' ", shape_str(x.shape), " does not end with attribute 'normalized_shape' = ",
             shape_str(normalized));
  for (int64_t i = 1; i <= 2; ++i) {
    if (!ctx.has_input(i)) continue;
    check_same_dtype(ctx, i);
    if (!matches_where_known(ctx.input(i).shape, normalized))
      ctx.fail("input '", ctx.input_name(i), "' has shape ", shape_str(ctx.input(i).shape),
               ", expected normalized_shape ", shape_str(normalized));
  }
  return {x};
}

template <typename T>
void layer_norm_loops(const OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const T* weight = ctx.has_input(1) ? ctx.input(1).data<T>() : nullptr;
  const T* bias = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
  const double eps = ctx.attr_float("eps");
  const int64_t inner = shape_numel(ctx.attr_ints("normalized_shape"));
  const int64_t rows = inner == 0 ? 0 : x.numel() / inner;
  const T* px = x.data<T>();
  T* py = ctx.output(0).data<T>();
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = px + r * inner;
    double mean = 0.0;
    for (int64_t i = 0; i < inner; ++i) mean += static_cast<double>(xr[i]);
    mean /= static_cast<double>(inner);
    double var = 0.0;  // biased, as PyTorch
    for (int64_t i = 0; i < inner; ++i) {
      const double d = static_cast<double>(xr[i]) - mean;
      var += d * d;
    }
    var /= static_cast<double>(inner);
    const double inv_std = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < inner; ++i) {
      double v = (static_cast<double>(xr[i]) - mean) * inv_std;
      if (weight) v *= static_cast<double>(weight[i]);
      if (bias) v += static_cast<double>(bias[i]);
      py[r * inner + i] = static_cast<T>(v);
    }
  }
}

void layer_norm_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "layer_norm", [&] { layer_norm_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(batch_norm)
    .doc("Inference batch normalization as torch.nn.functional.batch_norm(training=False): "
         "(x - running_mean) / sqrt(running_var + eps) * weight + bias over dim 1 of x [N, C, *].")
    .input("x", kFloatTypes)
    .input("running_mean", kFloatTypes)
    .input("running_var", kFloatTypes)
    .optional_input("weight", kFloatTypes)
    .optional_input("bias", kFloatTypes)
    .output("y")
    .attr("eps", AttrValue::Float(1e-5), "added to the variance")
    .infer(infer_batch_norm)
    .kernel(DType::Undefined, Isa::Reference, batch_norm_reference);

EMBER_REGISTER_OP(batch_norm_train)
    .doc("Training batch normalization as torch.nn.functional.batch_norm(training=True): the "
         "batch's mean and biased variance per channel (dim 1 of x [N, C, *]), y = (x - mean) / "
         "sqrt(var + eps) * weight + bias. Outputs y, mean and var (the caller updates running "
         "statistics, with var * m / (m - 1) for the unbiased one).")
    .input("x", kFloatTypes)
    .optional_input("weight", kFloatTypes)
    .optional_input("bias", kFloatTypes)
    .output("y")
    .output("mean")
    .output("var")
    .attr("eps", AttrValue::Float(1e-5), "added to the variance")
    .infer(infer_batch_norm_train)
    .kernel(DType::Undefined, Isa::Reference, batch_norm_train_reference);

EMBER_REGISTER_OP(batch_norm_train_grad)
    .doc("Gradients of batch_norm_train given grad_y and the forward's x, mean and var: "
         "grad_x, grad_weight = sum(grad_y * (x - mean)) / sqrt(var + eps) and grad_bias = "
         "sum(grad_y), per channel.")
    .input("grad_y", kFloatTypes)
    .input("x", kFloatTypes)
    .input("mean", kFloatTypes)
    .input("var", kFloatTypes)
    .optional_input("weight", kFloatTypes)
    .output("grad_x")
    .output("grad_weight")
    .output("grad_bias")
    .attr("eps", AttrValue::Float(1e-5), "added to the variance")
    .infer(infer_batch_norm_train_grad)
    .kernel(DType::Undefined, Isa::Reference, batch_norm_train_grad_reference);

EMBER_REGISTER_OP(layer_norm)
    .doc("Layer normalization as torch.nn.functional.layer_norm over the trailing "
         "normalized_shape dims (biased variance), then weight and bias of that shape.")
    .input("x", kFloatTypes)
    .optional_input("weight", kFloatTypes)
    .optional_input("bias", kFloatTypes)
    .output("y")
    .attr("normalized_shape", AttrType::Ints, "the trailing dims normalized together")
    .attr("eps", AttrValue::Float(1e-5), "added to the variance")
    .infer(infer_layer_norm)
    .kernel(DType::Undefined, Isa::Reference, layer_norm_reference);

}  // namespace ember
