// The fused activation epilogue of linear and conv2d: attribute `activation` = "none" | "relu" |
// "relu6", applied after the bias. NaN passes through, as torch.relu / F.relu6 do.
#pragma once
#include <string>

#include "core/op_registry.h"

namespace ember::reference {

enum class Activation { None, Relu, Relu6 };

// Reads and validates attribute `activation`; the error names the op and the value.
inline Activation read_activation(const AttrReader& ctx) {
  const std::string& name = ctx.attr_string("activation");
  if (name == "none") return Activation::None;
  if (name == "relu") return Activation::Relu;
  if (name == "relu6") return Activation::Relu6;
  ctx.fail("attribute 'activation' = '", name, "' is not one of 'none', 'relu', 'relu6'");
}

inline double apply_activation(Activation act, double v) {
  switch (act) {
    case Activation::None: return v;
    case Activation::Relu: return v < 0.0 ? 0.0 : v;
    case Activation::Relu6: return v < 0.0 ? 0.0 : (v > 6.0 ? 6.0 : v);
  }
  return v;
}

}  // namespace ember::reference
