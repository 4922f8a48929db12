// OpHandle: one op bound once, for the eager front end's hot path.
//
// An OpHandle does the schema lookup once and caches the resolved attributes, the inferred
// output types and the kernel for the last (attributes, input types) it saw, so a repeated call
// only reads the inputs, allocates the outputs and runs the kernel. Inputs may be numpy arrays,
// None (absent optional input) or objects with a `_data` numpy array (frontend tensors); outputs
// are numpy arrays, or instances of `wrap` with `_data` set when a wrapper class is given.
// `_C.run_op(type, inputs, attrs)` calls the handle of its op type, so a repeated call costs what
// a frontend op costs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/thread_pool.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

// Outputs this large are computed with the GIL released (as in run_op).
constexpr int64_t kReleaseGilNumel = 1 << 14;

struct DTypeNums {
  int f32, f64, i64, i32, u8, i8, b;
  DTypeNums()
      : f32(py::dtype::of<float>().normalized_num()),
        f64(py::dtype::of<double>().normalized_num()),
        i64(py::dtype::of<int64_t>().normalized_num()),
        i32(py::dtype::of<int32_t>().normalized_num()),
        u8(py::dtype::of<uint8_t>().normalized_num()),
        i8(py::dtype::of<int8_t>().normalized_num()),
        b(py::dtype::of<bool>().normalized_num()) {}
  DType of(int num) const {
    if (num >= 0 && num <= py::detail::npy_api::NPY_VOID_) num = py::detail::normalized_dtype_num[num];
    if (num == f32) return DType::Float32;
    if (num == f64) return DType::Float64;
    if (num == i64) return DType::Int64;
    if (num == i32) return DType::Int32;
    if (num == u8) return DType::UInt8;
    if (num == i8) return DType::Int8;
    if (num == b) return DType::Bool;
    return DType::Undefined;
  }
};

const DTypeNums& dtype_nums() {
  static const DTypeNums nums;
  return nums;
}

// Output buffers of at least kMinBytes come from a cache of freed buffers keyed by exact byte size:
// a training loop allocates the same sizes every step, and reusing warm memory avoids the page
// faults of fresh allocations (which cost more than the arithmetic for element-wise ops). The
// cache holds at most kMaxCachedBytes; buffers beyond that are freed. Buffers are 64-byte aligned.
class BufferCache {
 public:
  static constexpr size_t kMinBytes = size_t(1) << 16;
  static constexpr size_t kMaxCachedBytes = size_t(256) << 20;

  void* get(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }

  void put(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + bytes > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    free_[bytes].push_back(p);
    cached_ += bytes;
  }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

// Never destroyed: arrays may outlive module teardown and return their buffers at any time.
BufferCache& buffer_cache() {
  static BufferCache* cache = new BufferCache;
  return *cache;
}

constexpr const char* kBufferCapsule = "ember.eager_buffer";

void release_buffer(PyObject* capsule) {
  void* p = PyCapsule_GetPointer(capsule, kBufferCapsule);
  auto bytes = reinterpret_cast<size_t>(PyCapsule_GetContext(capsule));
  if (p) buffer_cache().put(p, bytes);
}

// A C-contiguous numpy array of `type`, from the buffer cache when large enough.
PyObject* new_output_array(const py::detail::npy_api& api, PyObject* descr, const TensorType& type) {
  static_assert(sizeof(Py_intptr_t) == sizeof(int64_t), "shape element size");
  auto* dims = const_cast<Py_intptr_t*>(reinterpret_cast<const Py_intptr_t*>(type.shape.data()));
  const int nd = static_cast<int>(type.shape.size());
  const size_t bytes = static_cast<size_t>(type.numel()) * dtype_size(type.dtype);
  Py_INCREF(descr);  // PyArray_NewFromDescr steals it
  if (bytes < BufferCache::kMinBytes)
    return api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, dims, nullptr, nullptr, 0, nullptr);
  void* data = buffer_cache().get(bytes);
  PyObject* capsule = PyCapsule_New(data, kBufferCapsule, release_buffer);
  if (!capsule || PyCapsule_SetContext(capsule, reinterpret_cast<void*>(bytes)) != 0) {
    Py_XDECREF(capsule);
    buffer_cache().put(data, bytes);
    Py_DECREF(descr);
    return nullptr;
  }
  constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                         py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, dims, nullptr, data, kFlags, nullptr);
  if (!a) {
    Py_DECREF(capsule);  // returns the buffer
    return nullptr;
  }
  if (api.PyArray_SetBaseObject_(a, capsule) != 0) {  // steals the capsule
    Py_DECREF(a);
    return nullptr;
  }
  return a;
}

// A copy of an attribute dict whose list values are copied too, so a later equality test
// against a caller's fresh dict is meaningful even if the caller mutates its lists.
py::dict snapshot(const py::dict& attrs) {
  py::dict out;
  for (auto item : attrs) {
    if (PyList_Check(item.second.ptr()))
      out[item.first] = py::reinterpret_steal<py::object>(PyList_GetSlice(item.second.ptr(), 0, PY_SSIZE_T_MAX));
    else
      out[item.first] = item.second;
  }
  return out;
}

class OpHandle {
 public:
  OpHandle(const std::string& type, py::object wrap) : schema_(&OpRegistry::global().get(type)), wrap_(wrap) {
    try {
      defaults_ = schema_->resolve_attrs({});
      has_defaults_ = true;
    } catch (const Error&) {
      has_defaults_ = false;  // a required attribute: every call must pass attributes
    }
    data_name_ = py::str("_data");
    if (!wrap_.is_none() && !PyType_Check(wrap_.ptr()))
      fail<InvalidArgument>("OpHandle: wrap must be a class or None");
  }

  const std::string& type() const { return schema_->name(); }

  // Runs the op. `inputs` is a list or tuple; `attrs` a dict or None (defaults). Returns the
  // list of outputs, or the only output when `single` is set.
  py::object call(py::handle inputs, py::handle attrs, int64_t num_outputs, bool single) {
    // A call made while another one on this handle is active (another thread during a
    // GIL-released kernel, or re-entry through Python) uses no cached state at all.
    const bool nested = scratch_in_use_;
    AttrMap local_resolved;

    // 1. Attributes: defaults, the cached resolution, or a fresh one.
    const AttrMap* resolved;
    int attrs_key;
    if (attrs.is_none() || (PyDict_Check(attrs.ptr()) && PyDict_GET_SIZE(attrs.ptr()) == 0)) {
      if (!has_defaults_) schema_->resolve_attrs({});  // throws the missing-attribute error
      resolved = &defaults_;
      attrs_key = 0;
    } else {
      if (!PyDict_Check(attrs.ptr())) fail<InvalidArgument>(schema_->name(), ": attrs must be a dict");
      py::dict d = py::reinterpret_borrow<py::dict>(attrs);
      if (nested) {
        local_resolved = schema_->resolve_attrs(attrs_from_py(d, schema_->name()));
      } else if (!last_attrs_ || !d.equal(last_attrs_)) {
        last_resolved_ = schema_->resolve_attrs(attrs_from_py(d, schema_->name()));
        last_attrs_ = snapshot(d);
        ++attrs_version_;
      }
      resolved = nested ? &local_resolved : &last_resolved_;
      attrs_key = nested ? -2 : attrs_version_;
    }

    // 2. Inputs: borrow each array's memory.
    py::object seq = py::reinterpret_borrow<py::object>(inputs);
    if (!PyList_Check(seq.ptr()) && !PyTuple_Check(seq.ptr()))
      seq = py::reinterpret_steal<py::object>(PySequence_List(inputs.ptr()));
    if (!seq) throw py::error_already_set();
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    const size_t n = static_cast<size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
    // Per-call vectors come from a reused scratch (a nested or concurrent call gets its own).
    Scratch local;
    Scratch* sc = &local;
    if (!nested) {
      sc = &scratch_;
      scratch_in_use_ = true;
    }
    ScratchGuard guard{this, sc};
    std::vector<py::object>& keep = sc->keep;
    std::vector<Tensor>& tensors = sc->tensors;
    keep.resize(n);
    tensors.resize(n);
    std::vector<const Tensor*> ptrs(n, nullptr);
    // The kernel was chosen under an ISA cap; a changed cap (set_max_isa) chooses again.
    bool same_types = cached_kernel_ && cached_attrs_key_ == attrs_key && cached_in_.size() == n &&
                      cached_num_outputs_ == num_outputs && cached_isa_ == max_isa();
    const auto& api = py::detail::npy_api::get();
    for (size_t i = 0; i < n; ++i) {
      PyObject* arr = items[i];
      if (arr == Py_None) {
        same_types = same_types && cached_in_[i].dtype == DType::Undefined;
        continue;
      }
      py::object holder;
      if (!api.PyArray_Check_(arr)) {
        holder = py::reinterpret_steal<py::object>(PyObject_GetAttr(arr, data_name_.ptr()));
        if (!holder || !api.PyArray_Check_(holder.ptr())) {
          PyErr_Clear();
          holder = py::module_::import("numpy").attr("asarray")(py::handle(arr));
        }
        arr = holder.ptr();
      } else {
        holder = py::reinterpret_borrow<py::object>(arr);
      }
      auto* proxy = py::detail::array_proxy(arr);
      auto* descr = py::detail::array_descriptor_proxy(proxy->descr);
      DType dt = dtype_nums().of(descr->type_num);
      if (dt == DType::Undefined || descr->byteorder == '>' ||
          !(proxy->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_)) {
        // Slow path: copy to a contiguous native array, or report the unsupported dtype.
        int nd = proxy->nd;
        std::vector<py::ssize_t> dims(proxy->dimensions, proxy->dimensions + nd);
        py::array a = py::module_::import("numpy").attr("ascontiguousarray")(holder);
        if (a.ndim() != nd) a = a.reshape(dims);
        holder = a;
        tensors[i] = tensor_from_numpy(a, input_label(*schema_, i));
      } else {
        sc->shape.assign(proxy->dimensions, proxy->dimensions + proxy->nd);
        tensors[i] = Tensor::wrap(proxy->data, sc->shape, dt);
      }
      keep[i] = std::move(holder);
      ptrs[i] = &tensors[i];
      if (same_types) {
        const TensorType& c = cached_in_[i];
        same_types = c.dtype == tensors[i].dtype() && c.shape == tensors[i].shape();
      }
    }

    // 3. Output types and kernel: cached for repeated calls with the same types.
    std::unique_ptr<OpKernel> fresh;
    OpKernel* kernel;
    const std::vector<TensorType>* out_types;
    std::vector<TensorType> local_out;
    if (same_types && !nested) {
      kernel = cached_kernel_.get();
      out_types = &cached_out_;
    } else {
      std::vector<TensorType> in_types(n);
      std::vector<const TensorType*> in_ptrs(n, nullptr);
      for (size_t i = 0; i < n; ++i) {
        if (!ptrs[i]) continue;
        in_types[i] = ptrs[i]->type();
        in_ptrs[i] = &in_types[i];
      }
      local_out = schema_->infer_types(in_ptrs, *resolved, kNoName, num_outputs);
      KernelInit init(schema_, &kNoName, resolved, in_types, {});
      fresh = schema_->create_kernel(init);
      if (!nested) {
        cached_in_ = std::move(in_types);
        cached_out_ = local_out;
        cached_kernel_ = std::move(fresh);
        cached_attrs_key_ = attrs_key;
        cached_num_outputs_ = num_outputs;
        cached_isa_ = max_isa();
        kernel = cached_kernel_.get();
        out_types = &cached_out_;
      } else {
        kernel = fresh.get();
        out_types = &local_out;
      }
    }

    // 4. Allocate outputs (numpy arrays straight from the C API) and run.
    const size_t m = out_types->size();
    std::vector<py::object>& out_arrays = sc->out_arrays;
    std::vector<Tensor>& outs = sc->outs;
    out_arrays.resize(m);
    outs.resize(m);
    std::vector<Tensor*> out_ptrs(m);
    int64_t work = 0;
    for (size_t i = 0; i < m; ++i) {
      const TensorType& t = (*out_types)[i];
      PyObject* a = new_output_array(api, descr_for(t.dtype), t);
      if (!a) throw py::error_already_set();
      out_arrays[i] = py::reinterpret_steal<py::object>(a);
      outs[i] = Tensor::wrap(py::detail::array_proxy(a)->data, t.shape, t.dtype);
      out_ptrs[i] = &outs[i];
      work += t.numel();
    }
    OpContext ctx(schema_, &kNoName, resolved, std::move(ptrs), std::move(out_ptrs), &ThreadPool::global());
    if (work >= kReleaseGilNumel) {
      // The scratch stays marked in use, so concurrent calls keep off the cached state.
      py::gil_scoped_release release;
      kernel->run(ctx);
    } else {
      kernel->run(ctx);
    }

    // 5. Results, wrapped when a class was given.
    if (single) {
      if (m != 1) fail<InvalidArgument>(schema_->name(), ": expected one output, got ", m);
      return wrap(std::move(out_arrays[0]));
    }
    py::list result(m);
    for (size_t i = 0; i < m; ++i) PyList_SET_ITEM(result.ptr(), i, wrap(std::move(out_arrays[i])).release().ptr());
    return std::move(result);
  }

 private:
  struct Scratch {
    std::vector<py::object> keep, out_arrays;
    std::vector<Tensor> tensors, outs;
    Shape shape;
  };
  struct ScratchGuard {
    OpHandle* handle;
    Scratch* scratch;
    ~ScratchGuard() {
      scratch->keep.clear();
      scratch->out_arrays.clear();
      scratch->tensors.clear();
      scratch->outs.clear();
      if (scratch == &handle->scratch_) handle->scratch_in_use_ = false;
    }
  };
  Scratch scratch_;
  bool scratch_in_use_ = false;

  py::object wrap(py::object array) {
    if (wrap_.is_none()) return array;
    auto* type = reinterpret_cast<PyTypeObject*>(wrap_.ptr());
    py::object obj = py::reinterpret_steal<py::object>(type->tp_alloc(type, 0));
    if (!obj || PyObject_SetAttr(obj.ptr(), data_name_.ptr(), array.ptr()) != 0) throw py::error_already_set();
    return obj;
  }

  PyObject* descr_for(DType t) {
    auto& slot = descrs_[static_cast<size_t>(t)];
    if (!slot) slot = numpy_dtype(t);
    return slot.ptr();
  }

  std::array<py::object, 32> descrs_;
  static inline const std::string kNoName;
  const OpSchema* schema_;
  py::object wrap_;
  py::object data_name_;
  AttrMap defaults_;
  bool has_defaults_ = false;
  py::object last_attrs_;
  AttrMap last_resolved_;
  int attrs_version_ = 0;
  // Cache for the last (attributes, input types).
  std::vector<TensorType> cached_in_;
  std::vector<TensorType> cached_out_;
  std::unique_ptr<OpKernel> cached_kernel_;
  int cached_attrs_key_ = -1;
  int64_t cached_num_outputs_ = -1;
  Isa cached_isa_ = Isa::Reference;
};

}  // namespace

py::object run_op_py(const std::string& type, py::handle inputs, py::handle attrs, int64_t num_outputs) {
  // One handle per op type, made on first use (the GIL guards the map). Never destroyed: the
  // handles hold Python objects that must not be released after the interpreter is gone.
  static auto* handles = new std::unordered_map<std::string, std::unique_ptr<OpHandle>>();
  auto it = handles->find(type);
  if (it == handles->end())  // an unknown op throws here, before anything is stored
    it = handles->emplace(type, std::make_unique<OpHandle>(type, py::none())).first;
  return it->second->call(inputs, attrs, num_outputs, false);
}

void register_op_handle(py::module_& m) {
  py::class_<OpHandle>(m, "OpHandle",
                       "An op bound once for repeated eager calls: caches the schema lookup, resolved "
                       "attributes, output types and kernel of the last call.\n\n"
                       "    add = _C.OpHandle('add')\n"
                       "    (y,) = add([a, b], {})")
      .def(py::init<const std::string&, py::object>(), py::arg("type"), py::arg("wrap") = py::none())
      .def_property_readonly("type", &OpHandle::type)
      .def("__call__", [](OpHandle& h, py::handle inputs, py::handle attrs, int64_t num_outputs) {
             return h.call(inputs, attrs, num_outputs, false);
           }, py::arg("inputs"), py::arg("attrs") = py::none(), py::arg("num_outputs") = -1,
           "Runs the op and returns the list of outputs; inputs are numpy arrays, None, or objects "
           "with a `_data` array; attrs is a dict or None for the defaults.")
      .def("one", [](OpHandle& h, py::handle inputs, py::handle attrs) { return h.call(inputs, attrs, -1, true); },
           py::arg("inputs"), py::arg("attrs") = py::none(),
           "Like calling the handle, for single-output ops: returns the output itself.");
}

}  // namespace ember::python
