// cast: converts every element to another dtype (conversion rules in convert.h).
#include <cstring>

#include "core/op_registry.h"
#include "kernels/reference/convert.h"

namespace ember {
namespace {

const char* const kCastTargets[] = {"float32", "float64", "int64", "int32", "uint8", "int8", "bool"};

DType target_dtype(const AttrReader& ctx) {
  const std::string& name = ctx.attr_string("dtype");
  for (const char* t : kCastTargets)
    if (name == t) return dtype_from_name(name);
  ctx.fail("attribute 'dtype' is \"", name,
           "\"; expected one of float32, float64, int64, int32, uint8, int8, bool");
}

std::vector<TensorType> infer_cast(const InferContext& ctx) {
  return {{target_dtype(ctx), ctx.input(0).shape}};
}

void cast_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t n = x.numel();
  if (x.dtype() == y.dtype()) {
    if (n > 0 && x.raw_data() != y.raw_data()) std::memcpy(y.raw_data(), x.raw_data(), x.nbytes());
    return;
  }
  EMBER_DISPATCH_ALL(x.dtype(), "cast", [&] {
    using src_t = scalar_t;
    const src_t* px = x.data<src_t>();
    EMBER_DISPATCH_ALL(y.dtype(), "cast", [&] {
      scalar_t* py = y.data<scalar_t>();
      for (int64_t i = 0; i < n; ++i) py[i] = reference::convert_value<scalar_t>(px[i]);
    });
  });
}

}  // namespace

EMBER_REGISTER_OP(cast)
    .doc("Converts x to `dtype`: floats to integers truncate toward zero, integers wrap, "
         "nonzero (and NaN) becomes true.")
    .input("x", kAllTypes)
    .output("y")
    .attr("dtype", AttrType::String, "float32, float64, int64, int32, uint8, int8 or bool")
    .infer(infer_cast)
    .kernel(DType::Undefined, Isa::Reference, cast_reference);

}  // namespace ember
