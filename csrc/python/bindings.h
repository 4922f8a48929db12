// Conversions between Python values and Ember's C++ types, shared by the binding files.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "core/op_registry.h"

namespace ember::python {

namespace py = pybind11;

// numpy dtype -> DType; returns DType::Undefined for an unsupported numpy dtype.
DType dtype_from_numpy(const py::dtype& dt);
py::dtype numpy_dtype(DType t);
// Python dict of attribute values -> AttrMap (bool, int, float, str, and lists of those).
AttrMap attrs_from_py(const py::dict& attrs, const std::string& where);
py::dict attrs_to_py(const AttrMap& attrs);
// "<op>: input '<name>'", for errors about input i (variadic inputs share their schema entry's name).
std::string input_label(const OpSchema& schema, size_t i);
// Borrows a numpy array's memory; `what` names the op and input for errors. The array must
// stay alive while the Tensor is used.
Tensor tensor_from_numpy(const py::array& array, const std::string& what);
// A fresh numpy array of the given type, and a Tensor viewing its memory.
py::array new_numpy(const TensorType& type, Tensor* view);

// _C.run_op: runs one op through a cached OpHandle of its type (op_handle.cc).
py::object run_op_py(const std::string& type, py::handle inputs, py::handle attrs, int64_t num_outputs);
py::list infer_types_py(const std::string& type, const py::sequence& inputs, const py::dict& attrs,
                        int64_t num_outputs, const std::string& name);
py::dict resolve_attrs_py(const std::string& type, const py::dict& attrs, const std::string& name);
std::string kernel_name_py(const std::string& type, const py::sequence& inputs,
                           const py::dict& attrs);
void register_errors(py::module_& m);
// _C.OpHandle (op_handle.cc).
void register_op_handle(py::module_& m);
// Kernel-level access for tests and benchmarks (kernels_binding.cc).
void register_kernels_binding(py::module_& m);
// graphruntime._C.Predictor and the memory planner (predictor.cc).
void register_predictor(py::module_& m);

}  // namespace ember::python
