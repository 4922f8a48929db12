// graphruntime._C.Predictor: the C++ runtime from Python. Runs release the GIL; outputs become
// numpy arrays that own the runtime's buffers (no copy).
#include <pybind11/stl.h>

#include "ember/predictor.h"
#include "python/bindings.h"
#include "runtime/memory_planner.h"

namespace ember::python {
namespace {

py::array to_numpy(const Tensor& t) {
  auto* holder = new Tensor(t);
  py::capsule owner(holder, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : contiguous_strides(t.shape()))
    strides.push_back(static_cast<py::ssize_t>(s * static_cast<int64_t>(dtype_size(t.dtype()))));
  return py::array(numpy_dtype(t.dtype()), shape, strides, holder->raw_data(), owner);
}

py::list info_to_py(const std::vector<TensorInfo>& infos) {
  py::list out;
  for (const auto& i : infos)
    out.append(py::make_tuple(i.name, dtype_name(i.type.dtype), py::cast(i.type.shape)));
  return out;
}

py::list run_py(const Predictor& p, const py::sequence& feeds, std::vector<double>* node_seconds);

py::list run_plain_py(const Predictor& p, const py::sequence& feeds) { return run_py(p, feeds, nullptr); }

py::tuple run_profiled_py(const Predictor& p, const py::sequence& feeds) {
  std::vector<double> seconds;
  py::list outputs = run_py(p, feeds, &seconds);
  return py::make_tuple(outputs, seconds);
}

py::list run_py(const Predictor& p, const py::sequence& feeds, std::vector<double>* node_seconds) {
  const auto& infos = p.inputs();
  if (py::len(feeds) != infos.size())
    fail<InvalidArgument>("model takes ", infos.size(), " inputs, got ", py::len(feeds));
  std::vector<py::array> keep;
  std::vector<Tensor> inputs;
  py::object np = py::module_::import("numpy");
  for (size_t k = 0; k < infos.size(); ++k) {
    // asarray keeps 0-d feeds 0-d (ascontiguousarray would make them 1-d).
    py::array arr = np.attr("asarray")(feeds[k], py::arg("order") = "C");
    keep.push_back(arr);
    inputs.push_back(tensor_from_numpy(arr, "input '" + infos[k].name + "'"));
  }
  std::vector<Tensor> outputs;
  {
    py::gil_scoped_release release;
    outputs = p.run(inputs, node_seconds);
  }
  py::list out;
  for (const Tensor& t : outputs) out.append(to_numpy(t));
  return out;
}

py::dict stats_py(const Predictor& p) {
  MemoryStats s = p.memory_stats();
  py::dict d;
  d["arena_bytes"] = s.arena_bytes;
  d["naive_bytes"] = s.naive_bytes;
  d["lower_bound_bytes"] = s.lower_bound_bytes;
  d["weight_bytes"] = s.weight_bytes;
  d["num_plans"] = s.num_plans;
  return d;
}

std::vector<BufferRequest> requests_from_py(const std::vector<size_t>& sizes,
                                            const std::vector<int64_t>& firsts,
                                            const std::vector<int64_t>& lasts) {
  if (sizes.size() != firsts.size() || sizes.size() != lasts.size())
    fail<InvalidArgument>("plan_memory: sizes, first_uses and last_uses differ in length");
  std::vector<BufferRequest> r;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (firsts[i] > lasts[i])
      fail<InvalidArgument>("plan_memory: buffer ", i, " is last used before it is written");
    r.push_back({sizes[i], firsts[i], lasts[i]});
  }
  return r;
}

}  // namespace

void register_predictor(py::module_& m) {
  py::class_<Predictor>(m, "Predictor", "A loaded runtime model (see graphruntime.Predictor).")
      .def_static("from_file", [](const std::string& path, int num_threads) {
        return Predictor::load_file(path, num_threads);
      }, py::arg("path"), py::arg("num_threads") = 0,
         "Memory-maps a runtime model file; weights are used in place.")
      .def_static("from_bytes", [](const py::buffer& data, int num_threads) {
        py::buffer_info info = data.request();
        size_t size = static_cast<size_t>(info.size) * static_cast<size_t>(info.itemsize);
        return Predictor::load_bytes(info.ptr, size, num_threads);
      }, py::arg("data"), py::arg("num_threads") = 0,
         "Loads a runtime model from bytes-like data (copied into an aligned buffer).")
      .def_property_readonly("inputs", [](const Predictor& p) { return info_to_py(p.inputs()); })
      .def_property_readonly("outputs", [](const Predictor& p) { return info_to_py(p.outputs()); })
      .def_property_readonly("name", &Predictor::name)
      .def_property_readonly("num_threads", &Predictor::num_threads)
      .def("run", &run_plain_py, py::arg("inputs"),
           "Runs the model on arrays given in input order; returns the outputs in order.")
      .def("run_profiled", &run_profiled_py, py::arg("inputs"),
           "Like run; returns (outputs, seconds per node in node order).")
      .def("memory_stats", &stats_py)
      .def("plan", [](const Predictor& p, const std::vector<Shape>& shapes) {
        p.plan(shapes);
        return stats_py(p);
      }, py::arg("input_shapes"), "Plans memory for these input shapes (in input order) without running.")
      .def("kernel_names", &Predictor::kernel_names);

  m.def("plan_memory", [](const std::vector<size_t>& sizes, const std::vector<int64_t>& firsts,
                          const std::vector<int64_t>& lasts, bool naive) {
    auto requests = requests_from_py(sizes, firsts, lasts);
    MemoryPlan plan = naive ? plan_memory_naive(requests) : plan_memory(requests);
    return py::make_tuple(plan.offsets, plan.arena_size, lower_bound_bytes(requests));
  }, py::arg("sizes"), py::arg("first_uses"), py::arg("last_uses"), py::arg("naive") = false,
     "The memory planner as a pure function: returns (offsets, arena_size, lower_bound).");
  m.def("validate_memory_plan", [](const std::vector<size_t>& sizes,
                                   const std::vector<int64_t>& firsts,
                                   const std::vector<int64_t>& lasts,
                                   const std::vector<size_t>& offsets, size_t arena_size) {
    MemoryPlan plan{offsets, arena_size};
    validate_plan(requests_from_py(sizes, firsts, lasts), plan);
  }, py::arg("sizes"), py::arg("first_uses"), py::arg("last_uses"), py::arg("offsets"),
     py::arg("arena_size"),
     "Raises EmberError if two buffers alive at the same step overlap in the arena.");
}

}  // namespace ember::python
