#include "core/op_registry.h"

#include <algorithm>
#include <climits>
#include <sstream>

namespace ember {

const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float64};
const std::vector<DType> kNumericTypes = {DType::Float32, DType::Float64, DType::Int64,
                                          DType::Int32,   DType::UInt8,   DType::Int8};
const std::vector<DType> kIndexTypes = {DType::Int64, DType::Int32};
const std::vector<DType> kAllTypes = {DType::Float32, DType::Float64, DType::Int64, DType::Int32,
                                      DType::UInt8,   DType::Int8,    DType::Bool};

// ---------------------------------------------------------------- AttrReader

std::string AttrReader::where() const { return schema_->where(*node_name_); }

const AttrValue& AttrReader::get(const std::string& name, AttrType type) const {
  auto it = attrs_->find(name);
  if (it == attrs_->end())
    ::ember::fail<InvalidArgument>(where(), ": missing attribute '", name, "'");
  if (it->second.type != type)
    ::ember::fail<InvalidArgument>(where(), ": attribute '", name, "' is ",
                                   attr_type_name(it->second.type), ", expected ",
                                   attr_type_name(type));
  return it->second;
}

int64_t AttrReader::attr_int(const std::string& name) const { return get(name, AttrType::Int).i; }
bool AttrReader::attr_bool(const std::string& name) const {
  return get(name, AttrType::Bool).i != 0;
}
double AttrReader::attr_float(const std::string& name) const {
  return get(name, AttrType::Float).f;
}
const std::string& AttrReader::attr_string(const std::string& name) const {
  return get(name, AttrType::String).s;
}
const std::vector<int64_t>& AttrReader::attr_ints(const std::string& name) const {
  return get(name, AttrType::Ints).ints;
}
const std::vector<double>& AttrReader::attr_floats(const std::string& name) const {
  return get(name, AttrType::Floats).floats;
}
const std::vector<std::string>& AttrReader::attr_strings(const std::string& name) const {
  return get(name, AttrType::Strings).strings;
}

const TensorType& InferContext::input(int64_t i) const {
  if (!has_input(i)) fail("input ", i, " ('", input_name(i), "') is required but missing");
  return *inputs_[i];
}

std::string InferContext::input_name(int64_t i) const {
  const auto& defs = schema().inputs();
  if (defs.empty()) return std::to_string(i);
  if (i < static_cast<int64_t>(defs.size()) && !defs[i].variadic) return defs[i].name;
  const ArgDef& last = defs.back();
  int64_t k = i - static_cast<int64_t>(defs.size()) + 1;
  return last.name + "[" + std::to_string(k) + "]";
}

// ---------------------------------------------------------------- OpSchema builder

OpSchema& OpSchema::doc(std::string text) { doc_ = std::move(text); return *this; }

OpSchema& OpSchema::input(std::string name, std::vector<DType> dtypes, std::string doc) {
  inputs_.push_back({std::move(name), std::move(dtypes), false, false, std::move(doc)});
  return *this;
}
OpSchema& OpSchema::optional_input(std::string name, std::vector<DType> dtypes, std::string doc) {
  inputs_.push_back({std::move(name), std::move(dtypes), true, false, std::move(doc)});
  return *this;
}
OpSchema& OpSchema::variadic_input(std::string name, std::vector<DType> dtypes, std::string doc) {
  inputs_.push_back({std::move(name), std::move(dtypes), false, true, std::move(doc)});
  return *this;
}
OpSchema& OpSchema::output(std::string name, std::string doc) {
  outputs_.push_back({std::move(name), {}, false, false, std::move(doc)});
  return *this;
}
OpSchema& OpSchema::variadic_output(std::string name, std::string doc) {
  outputs_.push_back({std::move(name), {}, false, true, std::move(doc)});
  return *this;
}
OpSchema& OpSchema::attr(std::string name, AttrType type, std::string doc) {
  AttrDef d;
  d.name = std::move(name);
  d.type = type;
  d.required = true;
  d.default_value.type = type;
  d.doc = std::move(doc);
  attrs_.push_back(std::move(d));
  return *this;
}
OpSchema& OpSchema::attr(std::string name, AttrValue default_value, std::string doc) {
  AttrDef d;
  d.name = std::move(name);
  d.type = default_value.type;
  d.required = false;
  d.default_value = std::move(default_value);
  d.doc = std::move(doc);
  attrs_.push_back(std::move(d));
  return *this;
}
OpSchema& OpSchema::infer(InferFn fn) { infer_ = fn; return *this; }
OpSchema& OpSchema::dispatch_on(int64_t i) { dispatch_input_ = i; return *this; }
OpSchema& OpSchema::inplace(int64_t i) { inplace_input_ = i; return *this; }

namespace {
class FunctionKernel : public OpKernel {
 public:
  FunctionKernel(KernelFn fn, const char* name) : fn_(fn), name_(name) {}
  void run(OpContext& ctx) override { fn_(ctx); }
  const char* name() const override { return name_; }

 private:
  KernelFn fn_;
  const char* name_;
};
}  // namespace

std::unique_ptr<OpKernel> make_function_kernel(KernelFn fn, const char* name) {
  return std::make_unique<FunctionKernel>(fn, name);
}

OpSchema& OpSchema::kernel(DType dtype, Isa isa, KernelFn fn, std::string name) {
  if (name.empty())
    name = name_ + "_" + (dtype == DType::Undefined ? "any" : dtype_name(dtype)) + "_" + isa_name(isa);
  KernelEntry e;
  e.dtype = dtype;
  e.isa = isa;
  e.name = name;
  // The entry owns its name; the kernel instance points at the registry's copy.
  auto stored = std::make_shared<std::string>(name);
  e.create = [fn, stored](const KernelInit&) { return make_function_kernel(fn, stored->c_str()); };
  kernels_.push_back(std::move(e));
  return *this;
}

OpSchema& OpSchema::kernel_factory(DType dtype, Isa isa, std::string name, KernelFactory factory) {
  kernels_.push_back({dtype, isa, std::move(name), std::move(factory)});
  return *this;
}

// ---------------------------------------------------------------- OpSchema queries

int64_t OpSchema::min_inputs() const {
  int64_t n = 0;
  for (const auto& a : inputs_) n += (a.optional ? 0 : 1);
  return n;
}
int64_t OpSchema::max_inputs() const {
  if (!inputs_.empty() && inputs_.back().variadic) return INT64_MAX;
  return static_cast<int64_t>(inputs_.size());
}
int64_t OpSchema::min_outputs() const {
  int64_t n = 0;
  for (const auto& a : outputs_) n += (a.optional ? 0 : 1);
  return n;
}
int64_t OpSchema::max_outputs() const {
  if (!outputs_.empty() && outputs_.back().variadic) return INT64_MAX;
  return static_cast<int64_t>(outputs_.size());
}

std::string OpSchema::where(const std::string& node_name) const {
  if (node_name.empty()) return name_;
  return name_ + " '" + node_name + "'";
}

AttrMap OpSchema::resolve_attrs(const AttrMap& given, const std::string& node_name) const {
  AttrMap out;
  for (const auto& [key, value] : given) {
    auto def = std::find_if(attrs_.begin(), attrs_.end(),
                            [&](const AttrDef& d) { return d.name == key; });
    if (def == attrs_.end()) {
      std::string known;
      for (const auto& d : attrs_) known += (known.empty() ? "" : ", ") + d.name;
      fail<InvalidArgument>(where(node_name), ": unknown attribute '", key, "' (known: ",
                            known.empty() ? "none" : known, ")");
    }
    AttrValue v = value;
    if (v.type != def->type) {
      // Lossless conversions a caller can reasonably expect.
      if (def->type == AttrType::Float && v.type == AttrType::Int) {
        v = AttrValue::Float(static_cast<double>(v.i));
      } else if (def->type == AttrType::Bool && v.type == AttrType::Int && (v.i == 0 || v.i == 1)) {
        v = AttrValue::Bool(v.i != 0);
      } else if (def->type == AttrType::Int && v.type == AttrType::Bool) {
        v = AttrValue::Int(v.i);
      } else if (def->type == AttrType::Floats && v.type == AttrType::Ints) {
        v = AttrValue::Floats(std::vector<double>(v.ints.begin(), v.ints.end()));
      } else if ((def->type == AttrType::Ints || def->type == AttrType::Floats ||
                  def->type == AttrType::Strings) &&
                 ((v.type == AttrType::Ints && v.ints.empty()) ||
                  (v.type == AttrType::Floats && v.floats.empty()) ||
                  (v.type == AttrType::Strings && v.strings.empty()))) {
        v = AttrValue();
        v.type = def->type;  // an empty list of any element type
      } else {
        fail<InvalidArgument>(where(node_name), ": attribute '", key, "' must be ",
                              attr_type_name(def->type), ", got ", attr_type_name(v.type), " ",
                              v.str());
      }
    }
    out.emplace(key, std::move(v));
  }
  for (const auto& d : attrs_) {
    if (out.count(d.name)) continue;
    if (d.required) fail<InvalidArgument>(where(node_name), ": missing required attribute '", d.name, "' (", attr_type_name(d.type), ")");
    out.emplace(d.name, d.default_value);
  }
  return out;
}

std::vector<TensorType> OpSchema::infer_types(const std::vector<const TensorType*>& inputs,
                                              const AttrMap& resolved,
                                              const std::string& node_name,
                                              int64_t num_outputs) const {
  int64_t n = static_cast<int64_t>(inputs.size());
  // Trailing absent optional inputs do not count.
  while (n > 0 && inputs[n - 1] == nullptr && n > min_inputs()) --n;
  if (n < min_inputs() || n > max_inputs()) {
    std::string expected = max_inputs() == INT64_MAX
                               ? "at least " + std::to_string(min_inputs())
                               : (min_inputs() == max_inputs()
                                      ? std::to_string(min_inputs())
                                      : std::to_string(min_inputs()) + " to " +
                                            std::to_string(max_inputs()));
    fail<InvalidArgument>(where(node_name), ": expected ", expected, " inputs, got ", n);
  }
  if (num_outputs >= 0 && (num_outputs < min_outputs() || num_outputs > max_outputs()))
    fail<InvalidArgument>(where(node_name), ": expected ",
                          max_outputs() == INT64_MAX ? "at least " : "",
                          max_outputs() == INT64_MAX ? min_outputs() : max_outputs(),
                          " outputs, got ", num_outputs);
  for (int64_t i = 0; i < n; ++i) {
    const ArgDef& def = inputs_[std::min<size_t>(static_cast<size_t>(i), inputs_.size() - 1)];
    if (inputs[i] == nullptr) {
      if (!def.optional)
        fail<InvalidArgument>(where(node_name), ": input '", def.name, "' is required but missing");
      continue;
    }
    if (!def.dtypes.empty() &&
        std::find(def.dtypes.begin(), def.dtypes.end(), inputs[i]->dtype) == def.dtypes.end()) {
      std::string allowed;
      for (DType t : def.dtypes) allowed += std::string(allowed.empty() ? "" : ", ") + dtype_name(t);
      fail<InvalidArgument>(where(node_name), ": input '", def.name, "' has dtype ",
                            dtype_name(inputs[i]->dtype), ", expected one of ", allowed);
    }
  }
  std::vector<const TensorType*> trimmed(inputs.begin(), inputs.begin() + n);
  InferContext ctx(this, &node_name, &resolved, trimmed,
                   num_outputs >= 0 ? num_outputs : min_outputs());
  if (!infer_) fail<Unsupported>(where(node_name), ": op has no shape inference function");
  std::vector<TensorType> out = infer_(ctx);
  for (const auto& t : out)
    for (int64_t d : t.shape)
      if (d < -1) fail<InvalidArgument>(where(node_name), ": inferred an invalid output shape ", shape_str(t.shape));
  return out;
}

std::unique_ptr<OpKernel> OpSchema::create_kernel(const KernelInit& init) const {
  DType key = DType::Undefined;
  if (init.has_input(dispatch_input_)) key = init.input_type(dispatch_input_).dtype;
  // Highest ISA first; among equals, the first registered.
  std::vector<const KernelEntry*> candidates;
  for (const auto& k : kernels_)
    if ((k.dtype == DType::Undefined || k.dtype == key) && isa_enabled(k.isa))
      candidates.push_back(&k);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const KernelEntry* a, const KernelEntry* b) {
                     return static_cast<int>(a->isa) > static_cast<int>(b->isa);
                   });
  for (const KernelEntry* k : candidates)
    if (auto kernel = k->create(init)) return kernel;
  fail<Unsupported>(init.where(), ": no kernel for dtype ", dtype_name(key),
                    " (input '", inputs_.empty() ? "?" : inputs_[std::min<size_t>(dispatch_input_, inputs_.size() - 1)].name,
                    "')");
}

// ---------------------------------------------------------------- OpRegistry

OpRegistry& OpRegistry::global() {
  static OpRegistry* registry = new OpRegistry();  // never destroyed: used by static kernels
  return *registry;
}

void OpRegistry::add(OpSchema schema) {
  std::string name = schema.name();
  if (ops_.count(name)) fail<Error>("op '", name, "' is registered twice");
  auto pending = pending_kernels_.find(name);
  if (pending != pending_kernels_.end()) {
    for (auto& k : pending->second) schema.kernels_.push_back(std::move(k));
    pending_kernels_.erase(pending);
  }
  ops_.emplace(name, std::move(schema));
}

void OpRegistry::add_kernel(const std::string& op, KernelEntry entry) {
  auto it = ops_.find(op);
  if (it == ops_.end()) {
    pending_kernels_[op].push_back(std::move(entry));
    return;
  }
  it->second.kernels_.push_back(std::move(entry));
}

const OpSchema* OpRegistry::find(const std::string& name) const {
  auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : &it->second;
}

const OpSchema& OpRegistry::get(const std::string& name) const {
  const OpSchema* s = find(name);
  if (!s) fail<Unsupported>("unknown op '", name, "'");
  return *s;
}

std::vector<const OpSchema*> OpRegistry::all() const {
  std::vector<const OpSchema*> out;
  for (const auto& [name, schema] : ops_) out.push_back(&schema);
  return out;
}

// ---------------------------------------------------------------- eager execution

std::vector<Tensor> run_op(const std::string& op, const std::vector<const Tensor*>& inputs,
                           const AttrMap& attrs, ThreadPool& pool,
                           const std::function<Tensor(const TensorType&)>& allocate,
                           int64_t num_outputs) {
  static const std::string kNoName;
  const OpSchema& schema = OpRegistry::global().get(op);
  AttrMap resolved = schema.resolve_attrs(attrs);
  std::vector<TensorType> in_types(inputs.size());
  std::vector<const TensorType*> in_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    in_types[i] = inputs[i]->type();
    in_ptrs[i] = &in_types[i];
  }
  std::vector<TensorType> out_types = schema.infer_types(in_ptrs, resolved, kNoName, num_outputs);
  std::vector<Tensor> outputs;
  outputs.reserve(out_types.size());
  for (const auto& t : out_types) outputs.push_back(allocate(t));
  KernelInit init(&schema, &kNoName, &resolved, in_types, {});
  std::unique_ptr<OpKernel> kernel = schema.create_kernel(init);
  std::vector<Tensor*> out_ptrs;
  for (auto& t : outputs) out_ptrs.push_back(&t);
  OpContext ctx(&schema, &kNoName, &resolved, inputs, out_ptrs, &pool);
  kernel->run(ctx);
  return outputs;
}

}  // namespace ember
