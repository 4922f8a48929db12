// Optimizer updates: sgd_update, torch.optim.SGD's rule for one parameter as one op (the eager
// optimizer would otherwise run four or five element-wise ops per parameter and step).
//
// Each step rounds in the parameter's dtype, in the order of the element-wise ops it replaces:
//   d = grad (negated when maximize); d = d + weight_decay * p
//   momentum: buf = d on the first step, else buf = buf * momentum + (1 - dampening) * d;
//             d = d + momentum * buf (nesterov) or d = buf
//   p = p - lr * d
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

std::vector<TensorType> infer_sgd_update(const InferContext& ctx) {
  const TensorType& p = ctx.input(0);
  for (int64_t i = 1; i <= 2; ++i) {
    if (!ctx.has_input(i)) continue;
    const TensorType& t = ctx.input(i);
    check_same_dtype(ctx, i);
    if (t.shape != p.shape)
      ctx.fail("input '", ctx.input_name(i), "' has shape ", shape_str(t.shape), ", but input 'param' has shape ",
               shape_str(p.shape));
  }
  return {p, p};
}

template <typename T>
void sgd_update_loops(const OpContext& ctx) {
  const int64_t n = ctx.input(0).numel();
  const T* p = ctx.input(0).data<T>();
  const T* g = ctx.input(1).data<T>();
  const T* buf = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
  T* p_out = ctx.output(0).data<T>();
  T* buf_out = ctx.output(1).data<T>();
  const T lr = static_cast<T>(ctx.attr_float("lr"));
  const T mu = static_cast<T>(ctx.attr_float("momentum"));
  const T damp = static_cast<T>(ctx.attr_float("dampening"));
  const T wd = static_cast<T>(ctx.attr_float("weight_decay"));
  const T keep = static_cast<T>(1) - damp;
  const bool nesterov = ctx.attr_bool("nesterov"), maximize = ctx.attr_bool("maximize");
  // One simple pass per step of the rule (each vectorizes; a loop testing every option per
  // element does not); the direction d lives in p_out until the last pass (outputs never
  // share an input's buffer: the schema declares no in-place input).
  T* d = p_out;
  if (maximize)
    for (int64_t i = 0; i < n; ++i) d[i] = -g[i];
  else
    for (int64_t i = 0; i < n; ++i) d[i] = g[i];
  if (wd != 0)
    for (int64_t i = 0; i < n; ++i) {
      const T decay = p[i] * wd;
      d[i] = d[i] + decay;
    }
  if (mu != 0 && buf) {
    for (int64_t i = 0; i < n; ++i) {
      const T old = buf[i] * mu;
      const T add = damp != 0 ? d[i] * keep : d[i];
      buf_out[i] = old + add;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) buf_out[i] = d[i];
  }
  if (mu != 0) {
    if (nesterov)
      for (int64_t i = 0; i < n; ++i) {
        const T look = buf_out[i] * mu;
        d[i] = d[i] + look;
      }
    else
      for (int64_t i = 0; i < n; ++i) d[i] = buf_out[i];
  }
  for (int64_t i = 0; i < n; ++i) {
    const T step = d[i] * lr;
    p_out[i] = p[i] - step;
  }
}

void sgd_update_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "sgd_update", [&] { sgd_update_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(sgd_update)
    .doc("One torch.optim.SGD step for one parameter: returns the new parameter and the new "
         "momentum buffer (with momentum 0: the update direction). Without momentum_buffer the "
         "buffer starts as the (decayed) gradient, as on torch's first step.")
    .input("param", kFloatTypes)
    .input("grad", kFloatTypes)
    .optional_input("momentum_buffer", kFloatTypes)
    .output("param_out")
    .output("momentum_buffer_out")
    .attr("lr", AttrType::Float, "learning rate")
    .attr("momentum", AttrValue::Float(0.0), "momentum factor")
    .attr("dampening", AttrValue::Float(0.0), "dampening of the gradient added to the buffer")
    .attr("weight_decay", AttrValue::Float(0.0), "L2 penalty added to the gradient")
    .attr("nesterov", AttrValue::Bool(false), "Nesterov momentum")
    .attr("maximize", AttrValue::Bool(false), "ascend instead of descend")
    .infer(infer_sgd_update)
    .kernel(DType::Undefined, Isa::Reference, sgd_update_reference);

}  // namespace ember
