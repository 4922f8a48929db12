// graphruntime._C: the Python face of the C++ operator library.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/op_registry.h"
#include "python/bindings.h"

namespace py = pybind11;

namespace ember::python {

namespace {

py::object default_to_py(const AttrValue& v) {
  switch (v.type) {
    case AttrType::Int: return py::int_(v.i);
    case AttrType::Bool: return py::bool_(v.i != 0);
    case AttrType::Float: return py::float_(v.f);
    case AttrType::String: return py::str(v.s);
    case AttrType::Ints: return py::cast(v.ints);
    case AttrType::Floats: return py::cast(v.floats);
    case AttrType::Strings: return py::cast(v.strings);
  }
  return py::none();
}

py::list args_to_py(const std::vector<ArgDef>& args) {
  py::list out;
  for (const auto& a : args) {
    py::list dtypes;
    for (DType t : a.dtypes) dtypes.append(dtype_name(t));
    py::dict d;
    d["name"] = a.name;
    d["dtypes"] = dtypes;
    d["optional"] = a.optional;
    d["variadic"] = a.variadic;
    d["doc"] = a.doc;
    out.append(d);
  }
  return out;
}

py::dict schema_to_py(const OpSchema& s) {
  py::dict d;
  d["name"] = s.name();
  d["doc"] = s.doc_text();
  d["inputs"] = args_to_py(s.inputs());
  d["outputs"] = args_to_py(s.outputs());
  py::list attrs;
  for (const auto& a : s.attr_defs()) {
    py::dict ad;
    ad["name"] = a.name;
    ad["type"] = attr_type_name(a.type);
    ad["required"] = a.required;
    ad["default"] = a.required ? py::none() : default_to_py(a.default_value);
    ad["doc"] = a.doc;
    attrs.append(ad);
  }
  d["attrs"] = attrs;
  py::list kernels;
  for (const auto& k : s.kernels()) {
    py::dict kd;
    kd["dtype"] = k.dtype == DType::Undefined ? "any" : dtype_name(k.dtype);
    kd["isa"] = isa_name(k.isa);
    kd["name"] = k.name;
    kernels.append(kd);
  }
  d["kernels"] = kernels;
  d["dispatch_input"] = s.dispatch_input();
  d["inplace_input"] = s.inplace_input();
  return d;
}

py::dict cpu_features_to_py() {
  const CpuFeatures& f = cpu_features();
  py::dict d;
  d["avx2"] = f.avx2;
  d["fma"] = f.fma;
  d["avx512f"] = f.avx512f;
  d["avx512bw"] = f.avx512bw;
  d["avx512dq"] = f.avx512dq;
  d["avx512vl"] = f.avx512vl;
  d["avx512_vnni"] = f.avx512_vnni;
  d["avx512_vbmi"] = f.avx512_vbmi;
  d["neon"] = f.neon;
  d["neon_dot"] = f.neon_dot;
  d["detected_isa"] = isa_name(detected_isa());
  d["max_isa"] = isa_name(max_isa());
  py::list enabled;
  for (Isa isa : enabled_isas()) enabled.append(isa_name(isa));
  d["isas"] = enabled;
  return d;
}

}  // namespace

void register_errors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    auto raise = [](const char* cls, const char* what) {
      py::object errors = py::module_::import("graphruntime.errors");
      PyErr_SetString(errors.attr(cls).ptr(), what);
    };
    try {
      std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      raise("InvalidArgumentError", e.what());
    } catch (const InvalidModel& e) {
      raise("InvalidModelError", e.what());
    } catch (const Unsupported& e) {
      raise("UnsupportedError", e.what());
    } catch (const Error& e) {
      raise("EmberError", e.what());
    }
  });
}

}  // namespace ember::python

PYBIND11_MODULE(_C, m) {
  using namespace ember;
  using namespace ember::python;
  m.doc() = "Ember's C++ operator library: op schemas, kernels, thread pool, CPU features.";
  register_errors(m);
  register_op_handle(m);
  register_predictor(m);

  m.def("op_schemas", [] {
    py::list out;
    for (const OpSchema* s : OpRegistry::global().all()) out.append(schema_to_py(*s));
    return out;
  }, "Every registered op schema as a dict (name, doc, inputs, outputs, attrs, kernels).");

  m.def("op_schema", [](const std::string& name) { return schema_to_py(OpRegistry::global().get(name)); },
        py::arg("name"), "The schema of one op; raises UnsupportedError for an unknown op.");

  m.def("run_op", &run_op_py, py::arg("type"), py::arg("inputs"), py::arg("attrs") = py::dict(),
        py::arg("num_outputs") = -1,
        "Runs one op on numpy arrays (None for an absent optional input) and returns the list of "
        "outputs. Contiguous inputs are used in place, never copied.");

  m.def("infer_types", &infer_types_py, py::arg("type"), py::arg("inputs"),
        py::arg("attrs") = py::dict(), py::arg("num_outputs") = -1, py::arg("name") = "",
        "Shape/dtype inference: inputs are (dtype_name, shape) pairs or None; returns a list of "
        "(dtype_name, shape) for the outputs.");

  m.def("resolve_attrs", &resolve_attrs_py, py::arg("type"), py::arg("attrs"), py::arg("name") = "",
        "Checks attributes against the schema and fills defaults; returns the full dict.");

  m.def("kernel_name", &kernel_name_py, py::arg("type"), py::arg("inputs"),
        py::arg("attrs") = py::dict(),
        "Name of the kernel run_op would choose for these inputs under the current ISA cap.");

  m.def("set_num_threads", [](int n) { ThreadPool::set_global_num_threads(n); }, py::arg("n"),
        "Sets the number of threads eager kernels use (1 = exactly one thread).");
  m.def("get_num_threads", [] { return ThreadPool::global().num_threads(); });

  m.def("cpu_features", &cpu_features_to_py,
        "Detected CPU features, the detected ISA, the active cap (EMBER_ISA) and the ISA levels "
        "this machine can run.");
  m.def("set_max_isa", [](const std::string& name) { set_max_isa(isa_from_name(name)); },
        py::arg("isa"),
        "Caps the kernels' instruction set (like EMBER_ISA): 'reference' forces the scalar oracle.");
  m.def("get_max_isa", [] { return std::string(isa_name(max_isa())); });
  register_kernels_binding(m);
}
