#include <pybind11/stl.h>

#include "python/bindings.h"

namespace ember::python {

DType dtype_from_numpy(const py::dtype& dt) {
  char kind = dt.kind();
  auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::Float32;
  if (kind == 'f' && size == 8) return DType::Float64;
  if (kind == 'i' && size == 8) return DType::Int64;
  if (kind == 'i' && size == 4) return DType::Int32;
  if (kind == 'i' && size == 1) return DType::Int8;
  if (kind == 'u' && size == 1) return DType::UInt8;
  if (kind == 'b' && size == 1) return DType::Bool;
  return DType::Undefined;
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::Int32: return py::dtype::of<int32_t>();
    case DType::UInt8: return py::dtype::of<uint8_t>();
    case DType::Int8: return py::dtype::of<int8_t>();
    case DType::Bool: return py::dtype::of<bool>();
    default: fail<InvalidArgument>("no numpy dtype for ", dtype_name(t));
  }
}

namespace {

AttrValue attr_from_py(const py::handle& v, const std::string& where, const std::string& key) {
  if (py::isinstance<py::bool_>(v) || py::isinstance(v, py::module_::import("numpy").attr("bool_")))
    return AttrValue::Bool(v.cast<bool>());
  if (py::isinstance<py::int_>(v)) return AttrValue::Int(v.cast<int64_t>());
  if (py::isinstance<py::float_>(v)) return AttrValue::Float(v.cast<double>());
  if (py::isinstance<py::str>(v)) return AttrValue::String(v.cast<std::string>());
  py::object np = py::module_::import("numpy");
  if (py::isinstance(v, np.attr("integer"))) return AttrValue::Int(v.cast<int64_t>());
  if (py::isinstance(v, np.attr("floating"))) return AttrValue::Float(v.cast<double>());
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(v);
    bool all_int = true, all_num = true, all_str = true;
    for (auto item : seq) {
      bool is_bool = py::isinstance<py::bool_>(item);
      bool is_int = !is_bool && (py::isinstance<py::int_>(item) || py::isinstance(item, np.attr("integer")));
      bool is_float = py::isinstance<py::float_>(item) || py::isinstance(item, np.attr("floating"));
      all_int = all_int && is_int;
      all_num = all_num && (is_int || is_float);
      all_str = all_str && py::isinstance<py::str>(item);
    }
    if (all_int) {
      std::vector<int64_t> out;
      for (auto item : seq) out.push_back(item.cast<int64_t>());
      return AttrValue::Ints(std::move(out));
    }
    if (all_num) {
      std::vector<double> out;
      for (auto item : seq) out.push_back(item.cast<double>());
      return AttrValue::Floats(std::move(out));
    }
    if (all_str) {
      std::vector<std::string> out;
      for (auto item : seq) out.push_back(item.cast<std::string>());
      return AttrValue::Strings(std::move(out));
    }
  }
  fail<InvalidArgument>(where, ": attribute '", key, "' has an unsupported value ",
                        py::repr(v).cast<std::string>());
}

}  // namespace

AttrMap attrs_from_py(const py::dict& attrs, const std::string& where) {
  AttrMap out;
  for (auto item : attrs) {
    std::string key = py::str(item.first);
    out.emplace(key, attr_from_py(item.second, where, key));
  }
  return out;
}

py::dict attrs_to_py(const AttrMap& attrs) {
  py::dict d;
  for (const auto& [k, v] : attrs) {
    switch (v.type) {
      case AttrType::Int: d[py::str(k)] = v.i; break;
      case AttrType::Bool: d[py::str(k)] = py::bool_(v.i != 0); break;
      case AttrType::Float: d[py::str(k)] = v.f; break;
      case AttrType::String: d[py::str(k)] = v.s; break;
      case AttrType::Ints: d[py::str(k)] = py::cast(v.ints); break;
      case AttrType::Floats: d[py::str(k)] = py::cast(v.floats); break;
      case AttrType::Strings: d[py::str(k)] = py::cast(v.strings); break;
    }
  }
  return d;
}

std::string input_label(const OpSchema& schema, size_t i) {
  const auto& inputs = schema.inputs();
  const std::string name = inputs.empty() ? std::to_string(i) : inputs[std::min(i, inputs.size() - 1)].name;
  return schema.name() + ": input '" + name + "'";
}

Tensor tensor_from_numpy(const py::array& array, const std::string& what) {
  DType t = dtype_from_numpy(array.dtype());
  if (t == DType::Undefined)
    fail<InvalidArgument>(what, " has unsupported dtype ", py::str(array.dtype()).cast<std::string>());
  if (!(array.flags() & py::array::c_style))
    fail<InvalidArgument>(what, " must be C-contiguous");
  Shape shape(array.shape(), array.shape() + array.ndim());
  return Tensor::wrap(const_cast<void*>(array.data()), shape, t);
}

py::array new_numpy(const TensorType& type, Tensor* view) {
  std::vector<py::ssize_t> shape(type.shape.begin(), type.shape.end());
  py::array out(numpy_dtype(type.dtype), shape);
  *view = Tensor::wrap(out.mutable_data(), type.shape, type.dtype);
  return out;
}

namespace {

struct PreparedInputs {
  std::vector<py::array> keep;  // contiguous arrays backing the tensors
  std::vector<Tensor> tensors;
  std::vector<const Tensor*> ptrs;
};

PreparedInputs prepare_inputs(const OpSchema& schema, const py::sequence& inputs) {
  PreparedInputs p;
  size_t n = py::len(inputs);
  p.keep.resize(n);
  p.tensors.resize(n);
  p.ptrs.assign(n, nullptr);
  py::object np = py::module_::import("numpy");
  for (size_t i = 0; i < n; ++i) {
    py::object item = inputs[i];
    if (item.is_none()) continue;
    const std::string what = input_label(schema, i);
    py::array arr;
    if (py::isinstance<py::array>(item)) {
      arr = py::reinterpret_borrow<py::array>(item);
      if (!(arr.flags() & py::array::c_style)) arr = np.attr("ascontiguousarray")(arr);
    } else {
      // Python scalars and sequences become arrays of numpy's default dtype.
      arr = np.attr("asarray")(item, py::arg("order") = "C");  // keeps 0-d (ascontiguousarray makes 1-d)
    }
    p.keep[i] = arr;
    p.tensors[i] = tensor_from_numpy(arr, what);
    p.ptrs[i] = &p.tensors[i];
  }
  return p;
}

std::vector<TensorType> types_from_py(const py::sequence& inputs) {
  std::vector<TensorType> out;
  for (auto item : inputs) {
    if (item.is_none()) {
      out.push_back({});
      continue;
    }
    auto pair = item.cast<py::tuple>();
    TensorType t;
    t.dtype = dtype_from_name(pair[0].cast<std::string>());
    t.shape = pair[1].cast<std::vector<int64_t>>();
    out.push_back(t);
  }
  return out;
}
}  // namespace

py::list infer_types_py(const std::string& type, const py::sequence& inputs, const py::dict& attrs,
                        int64_t num_outputs, const std::string& name) {
  const OpSchema& schema = OpRegistry::global().get(type);
  AttrMap resolved = schema.resolve_attrs(attrs_from_py(attrs, schema.where(name)), name);
  std::vector<TensorType> types = types_from_py(inputs);
  std::vector<const TensorType*> ptrs;
  for (const auto& t : types) ptrs.push_back(t.dtype == DType::Undefined ? nullptr : &t);
  py::list out;
  for (const auto& t : schema.infer_types(ptrs, resolved, name, num_outputs))
    out.append(py::make_tuple(dtype_name(t.dtype), py::cast(t.shape)));
  return out;
}

py::dict resolve_attrs_py(const std::string& type, const py::dict& attrs, const std::string& name) {
  const OpSchema& schema = OpRegistry::global().get(type);
  return attrs_to_py(schema.resolve_attrs(attrs_from_py(attrs, schema.where(name)), name));
}

std::string kernel_name_py(const std::string& type, const py::sequence& inputs,
                           const py::dict& attrs) {
  static const std::string kNoName;
  const OpSchema& schema = OpRegistry::global().get(type);
  AttrMap resolved = schema.resolve_attrs(attrs_from_py(attrs, schema.name()));
  PreparedInputs in = prepare_inputs(schema, inputs);
  std::vector<TensorType> in_types(in.ptrs.size());
  for (size_t i = 0; i < in.ptrs.size(); ++i)
    if (in.ptrs[i]) in_types[i] = in.ptrs[i]->type();
  KernelInit init(&schema, &kNoName, &resolved, in_types, in.ptrs);
  return schema.create_kernel(init)->name();
}

}  // namespace ember::python
