// The operator registry: the one place an operator is defined.
//
// An op is declared once, with EMBER_REGISTER_OP, in one C++ file that holds its schema (inputs,
// outputs, typed attributes with defaults, a doc line), its shape/dtype inference function and its
// reference kernel. Fast kernels for other ISAs attach to the same op with EMBER_REGISTER_KERNEL.
// Eager dispatch, the graph runtime, the NetDef checker and `ember ops` all read this registry.
//
//   EMBER_REGISTER_OP(relu)
//       .doc("max(x, 0), element-wise.")
//       .input("x", kFloatTypes)
//       .output("y")
//       .infer(infer_same_as_input)
//       .kernel(DType::Float32, Isa::Reference, relu_reference_f32);
//
// Life of a call: resolve_attrs (types, defaults) -> infer (output types, validates shapes)
// -> create_kernel (chooses a kernel by dtype and ISA; may pre-pack constant inputs) -> run.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/attrs.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace ember {

class OpSchema;

extern const std::vector<DType> kFloatTypes;    // float32, float64
extern const std::vector<DType> kNumericTypes;  // every dtype but bool
extern const std::vector<DType> kIndexTypes;    // int64, int32
extern const std::vector<DType> kAllTypes;

// Shared by the inference, kernel-creation and run contexts: the op's identity (for messages)
// and its resolved attributes.
class AttrReader {
 public:
  AttrReader(const OpSchema* schema, const std::string* node_name, const AttrMap* attrs)
      : schema_(schema), node_name_(node_name), attrs_(attrs) {}

  int64_t attr_int(const std::string& name) const;
  bool attr_bool(const std::string& name) const;
  double attr_float(const std::string& name) const;
  const std::string& attr_string(const std::string& name) const;
  const std::vector<int64_t>& attr_ints(const std::string& name) const;
  const std::vector<double>& attr_floats(const std::string& name) const;
  const std::vector<std::string>& attr_strings(const std::string& name) const;
  const AttrMap& attrs() const { return *attrs_; }
  const OpSchema& schema() const { return *schema_; }
  const std::string& node_name() const { return *node_name_; }
  // "conv2d 'layer1.0.conv1'" (or just "conv2d" when the node has no name): the prefix of
  // every message about this op.
  std::string where() const;

  // Throws InvalidArgument("<where>: <message>").
  template <typename... Args>
  [[noreturn]] void fail(Args&&... args) const {
    ::ember::fail<InvalidArgument>(where(), ": ", std::forward<Args>(args)...);
  }

 private:
  const AttrValue& get(const std::string& name, AttrType type) const;
  const OpSchema* schema_;
  const std::string* node_name_;
  const AttrMap* attrs_;
};

// Input to a shape/dtype inference function. Absent optional inputs are nullptr.
class InferContext : public AttrReader {
 public:
  InferContext(const OpSchema* schema, const std::string* node_name, const AttrMap* attrs,
               std::vector<const TensorType*> inputs, int64_t num_outputs)
      : AttrReader(schema, node_name, attrs), inputs_(std::move(inputs)), num_outputs_(num_outputs) {}
  int64_t num_inputs() const { return static_cast<int64_t>(inputs_.size()); }
  bool has_input(int64_t i) const { return i < num_inputs() && inputs_[i] != nullptr; }
  const TensorType& input(int64_t i) const;
  // Name of input i in the schema (handles variadic inputs), for messages.
  std::string input_name(int64_t i) const;
  // Outputs the caller asked for (matters for ops with a variadic output such as split).
  int64_t num_outputs() const { return num_outputs_; }

 private:
  std::vector<const TensorType*> inputs_;
  int64_t num_outputs_;
};

// Everything a kernel sees when it runs. Outputs are allocated by the caller with the shapes
// the inference function returned.
class OpContext : public AttrReader {
 public:
  OpContext(const OpSchema* schema, const std::string* node_name, const AttrMap* attrs,
            std::vector<const Tensor*> inputs, std::vector<Tensor*> outputs, ThreadPool* pool)
      : AttrReader(schema, node_name, attrs),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        pool_(pool) {}
  int64_t num_inputs() const { return static_cast<int64_t>(inputs_.size()); }
  int64_t num_outputs() const { return static_cast<int64_t>(outputs_.size()); }
  bool has_input(int64_t i) const { return i < num_inputs() && inputs_[i] != nullptr; }
  const Tensor& input(int64_t i) const { return *inputs_[i]; }
  Tensor& output(int64_t i) const { return *outputs_[i]; }
  ThreadPool& pool() const { return *pool_; }
  int num_threads() const { return pool_->num_threads(); }
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn) const {
    pool_->parallel_for(n, grain, fn);
  }

 private:
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor*> outputs_;
  ThreadPool* pool_;
};

// What a kernel factory sees when a kernel is created (once per node at model load, or per
// eager call). Input shapes may contain -1 for dims unknown until run time. `constant(i)` is the
// value of input i when it is a model weight (so a kernel can pre-pack it), else nullptr.
class KernelInit : public AttrReader {
 public:
  KernelInit(const OpSchema* schema, const std::string* node_name, const AttrMap* attrs,
             std::vector<TensorType> input_types, std::vector<const Tensor*> constants)
      : AttrReader(schema, node_name, attrs),
        input_types_(std::move(input_types)),
        constants_(std::move(constants)) {}
  int64_t num_inputs() const { return static_cast<int64_t>(input_types_.size()); }
  bool has_input(int64_t i) const {
    return i < num_inputs() && input_types_[i].dtype != DType::Undefined;
  }
  const TensorType& input_type(int64_t i) const { return input_types_[i]; }
  const Tensor* constant(int64_t i) const {
    return i < static_cast<int64_t>(constants_.size()) ? constants_[i] : nullptr;
  }

 private:
  std::vector<TensorType> input_types_;
  std::vector<const Tensor*> constants_;
};

// A kernel instance bound to one node. Stateless kernels are plain functions wrapped in one.
class OpKernel {
 public:
  virtual ~OpKernel() = default;
  virtual void run(OpContext& ctx) = 0;
  // Name of the implementation (e.g. "sgemm_6x16_avx512"), for profiling and tests.
  virtual const char* name() const = 0;
};

using KernelFn = void (*)(OpContext&);
using InferFn = std::vector<TensorType> (*)(const InferContext&);
// Returns nullptr when this kernel does not handle the given attributes/shapes; the next
// candidate (lower ISA) is tried then.
using KernelFactory = std::function<std::unique_ptr<OpKernel>(const KernelInit&)>;

struct KernelEntry {
  DType dtype = DType::Undefined;  // dtype of the dispatch input; Undefined = any dtype
  Isa isa = Isa::Reference;
  std::string name;
  KernelFactory create;
};

struct ArgDef {
  std::string name;
  std::vector<DType> dtypes;  // allowed dtypes; empty = any
  bool optional = false;
  bool variadic = false;  // last input/output only: any number >= 1 (0 if optional)
  std::string doc;
};

struct AttrDef {
  std::string name;
  AttrType type = AttrType::Int;
  bool required = false;
  AttrValue default_value;
  std::string doc;
};

class OpSchema {
 public:
  explicit OpSchema(std::string name) : name_(std::move(name)) {}

  // --- declaration (builder) ---
  OpSchema& doc(std::string text);
  OpSchema& input(std::string name, std::vector<DType> dtypes = {}, std::string doc = "");
  OpSchema& optional_input(std::string name, std::vector<DType> dtypes = {}, std::string doc = "");
  OpSchema& variadic_input(std::string name, std::vector<DType> dtypes = {}, std::string doc = "");
  OpSchema& output(std::string name, std::string doc = "");
  OpSchema& variadic_output(std::string name, std::string doc = "");
  // Required attribute (no default).
  OpSchema& attr(std::string name, AttrType type, std::string doc = "");
  // Attribute with a default.
  OpSchema& attr(std::string name, AttrValue default_value, std::string doc = "");
  OpSchema& infer(InferFn fn);
  // Kernels are keyed by the dtype of this input (default 0).
  OpSchema& dispatch_on(int64_t input_index);
  // Output 0 may reuse input `input_index`'s buffer when that input dies here (element-wise).
  OpSchema& inplace(int64_t input_index);
  OpSchema& kernel(DType dtype, Isa isa, KernelFn fn, std::string name = "");
  OpSchema& kernel_factory(DType dtype, Isa isa, std::string name, KernelFactory factory);

  // --- queries ---
  const std::string& name() const { return name_; }
  const std::string& doc_text() const { return doc_; }
  const std::vector<ArgDef>& inputs() const { return inputs_; }
  const std::vector<ArgDef>& outputs() const { return outputs_; }
  const std::vector<AttrDef>& attr_defs() const { return attrs_; }
  const std::vector<KernelEntry>& kernels() const { return kernels_; }
  int64_t dispatch_input() const { return dispatch_input_; }
  int64_t inplace_input() const { return inplace_input_; }  // -1 = none
  int64_t min_inputs() const;
  int64_t max_inputs() const;  // INT64_MAX when variadic
  int64_t min_outputs() const;
  int64_t max_outputs() const;

  // --- the life of a call ---
  // Checks names and types of the given attributes, converts int -> float / bool where the
  // schema asks, and fills defaults. Unknown, missing or ill-typed attributes are errors.
  AttrMap resolve_attrs(const AttrMap& given, const std::string& node_name = "") const;
  // Checks arity and input dtypes against the schema, then runs the inference function.
  std::vector<TensorType> infer_types(const std::vector<const TensorType*>& inputs,
                                      const AttrMap& resolved, const std::string& node_name = "",
                                      int64_t num_outputs = -1) const;
  // Picks the best enabled kernel for the dispatch dtype; throws Unsupported if none applies.
  std::unique_ptr<OpKernel> create_kernel(const KernelInit& init) const;

  std::string where(const std::string& node_name) const;

 private:
  friend class OpRegistry;
  std::string name_, doc_;
  std::vector<ArgDef> inputs_, outputs_;
  std::vector<AttrDef> attrs_;
  InferFn infer_ = nullptr;
  std::vector<KernelEntry> kernels_;
  int64_t dispatch_input_ = 0;
  int64_t inplace_input_ = -1;
};

class OpRegistry {
 public:
  static OpRegistry& global();
  void add(OpSchema schema);
  void add_kernel(const std::string& op, KernelEntry entry);
  const OpSchema* find(const std::string& name) const;
  // Throws Unsupported("unknown op '<name>'").
  const OpSchema& get(const std::string& name) const;
  std::vector<const OpSchema*> all() const;  // sorted by name

 private:
  std::map<std::string, OpSchema> ops_;
  std::map<std::string, std::vector<KernelEntry>> pending_kernels_;
};

struct OpRegistrar {
  OpRegistrar(OpSchema& schema) { OpRegistry::global().add(std::move(schema)); }  // NOLINT
  OpRegistrar(OpSchema&& schema) { OpRegistry::global().add(std::move(schema)); }  // NOLINT
};
struct KernelRegistrar {
  KernelRegistrar(const char* op, KernelEntry entry) {
    OpRegistry::global().add_kernel(op, std::move(entry));
  }
};

// Wraps a plain function as an OpKernel.
std::unique_ptr<OpKernel> make_function_kernel(KernelFn fn, const char* name);

// Runs one op eagerly: resolve attributes, infer, allocate outputs with `allocate`, create the
// kernel and run it. Used by the Python binding's run_op and by tests.
std::vector<Tensor> run_op(const std::string& op, const std::vector<const Tensor*>& inputs,
                           const AttrMap& attrs, ThreadPool& pool,
                           const std::function<Tensor(const TensorType&)>& allocate,
                           int64_t num_outputs = -1);

}  // namespace ember

#define EMBER_CONCAT_INNER(a, b) a##b
#define EMBER_CONCAT(a, b) EMBER_CONCAT_INNER(a, b)
#define EMBER_REGISTER_OP(NAME) \
  static ::ember::OpRegistrar EMBER_CONCAT(ember_op_registrar_, __COUNTER__) = ::ember::OpSchema(#NAME)
// EMBER_REGISTER_KERNEL(conv2d, DType::Float32, Isa::AVX512, "conv2d_direct_avx512", factory);
#define EMBER_REGISTER_KERNEL(OP, DTYPE, ISA, NAME, FACTORY)                          \
  static ::ember::KernelRegistrar EMBER_CONCAT(ember_kernel_registrar_, __COUNTER__)( \
      #OP, ::ember::KernelEntry{DTYPE, ISA, NAME, FACTORY})
// Same, for a stateless kernel function.
#define EMBER_REGISTER_KERNEL_FN(OP, DTYPE, ISA, NAME, FN)                                \
  EMBER_REGISTER_KERNEL(OP, DTYPE, ISA, NAME,                                             \
                        [](const ::ember::KernelInit&) -> std::unique_ptr<::ember::OpKernel> { \
                          return ::ember::make_function_kernel(FN, NAME);                  \
                        })
