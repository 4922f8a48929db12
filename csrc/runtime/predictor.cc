// The executor behind ember::Predictor: per input-shape signature it infers every value's type,
// computes lifetimes over the execution order, plans intermediates into one arena (with in-place
// reuse), validates the plan, and caches it. A run borrows an arena from a small pool, binds
// tensors to it, and calls each node's kernel in order.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "ember/predictor.h"
#include "runtime/memory_planner.h"
#include "runtime/model.h"

namespace ember {

namespace {

constexpr size_t kMaxCachedPlans = 64;

// Where a value lives during a run.
enum class Storage : uint8_t { Input, Constant, Arena, Output };

struct Plan {
  std::vector<TensorType> types;       // per value, concrete
  std::vector<Storage> storage;        // per value
  std::vector<size_t> offsets;         // per value (Arena only)
  size_t arena_size = 0;
  size_t naive_bytes = 0;
  size_t lower_bound = 0;
};

int default_threads(int n) {
  if (n > 0) return n;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// ---------------------------------------------------------------- batch splitting
// A model whose every node keeps batch rows apart runs a large batch as consecutive sub-batches
// whose arena fits a cache-sized budget: the activations then stay in cache from one layer to
// the next instead of streaming through DRAM (MobileNetV2 at batch 8, 224 x 224, 2 threads:
// sub-batches of 2 take 36.6 ms against 43.8 for the whole batch; ResNet-18 gains nothing and
// keeps sub-batches of 4).

// Default budget for one sub-batch's arena: half of a last-level cache of 32 MiB. (Virtual
// machines often report the host's whole L3, so a larger reported size is not trusted.)
size_t batch_split_budget() {
  if (const char* env = std::getenv("EMBER_BATCH_SPLIT_BYTES")) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0') return static_cast<size_t>(v);  // 0: never split
  }
  size_t budget = size_t{16} << 20;
#if defined(_SC_LEVEL3_CACHE_SIZE)
  const long l3 = ::sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0) budget = std::min(budget, static_cast<size_t>(l3) / 2);
#endif
  return budget;
}

// Whether `node` computes each row (index along dim 0) of its outputs from the same row of its
// batch-carrying inputs only, so that running a batch in pieces gives the same values.
bool node_keeps_rows_apart(const Model& m, const ModelNode& node) {
  static const std::set<std::string> row_local = {
      "conv2d", "quantized_conv2d", "linear", "quantized_linear", "max_pool2d", "avg_pool2d",
      "adaptive_avg_pool2d", "quantized_max_pool2d", "quantized_avg_pool2d",
      "quantized_adaptive_avg_pool2d", "batch_norm", "quantize", "dequantize", "relu", "relu6",
      "sigmoid", "tanh", "silu", "gelu", "hardswish", "hardsigmoid", "leaky_relu", "exp", "neg",
      "abs", "dropout", "identity"};
  static const std::set<std::string> elementwise = {"add", "sub", "mul", "div", "maximum",
                                                    "minimum", "quantized_add"};
  const std::string& op = node.schema->name();
  if (node.outputs.empty() || node.inputs.empty() || node.inputs[0] < 0) return false;
  const int64_t rank = m.values[static_cast<size_t>(node.inputs[0])].type.ndim();
  auto axis = [&](const char* attr) {
    const int64_t d = AttrReader(node.schema, &node.name, &node.attrs).attr_int(attr);
    return d < 0 ? d + rank : d;
  };
  if (row_local.count(op)) return true;
  if (elementwise.count(op)) {
    // An operand as deep as the output broadcasts along the batch only with one row, or is a
    // batch itself (dim 0 dynamic); shallower operands are broadcast to every row.
    const int64_t out_rank = m.values[static_cast<size_t>(node.outputs[0])].type.ndim();
    for (int64_t index : node.inputs) {
      if (index < 0) continue;
      const TensorType& t = m.values[static_cast<size_t>(index)].type;
      if (t.ndim() == out_rank && out_rank > 0 && t.shape[0] != 1 && t.shape[0] != -1) return false;
    }
    return true;
  }
  if (op == "flatten") return axis("start_dim") >= 1;
  if (op == "softmax" || op == "log_softmax") return axis("dim") != 0;
  return false;
}

// Whether the model's inputs and outputs all carry the batch on dim 0 and every node keeps
// rows apart.
bool model_splits_batches(const Model& m) {
  if (m.inputs.empty() || m.outputs.empty()) return false;
  std::set<int64_t> seen;
  for (int64_t index : m.outputs) {
    const ModelValue& v = m.values[static_cast<size_t>(index)];
    if (v.type.ndim() == 0 || v.type.shape[0] != -1 || v.is_input || v.is_constant || !seen.insert(index).second)
      return false;
  }
  for (int64_t index : m.inputs) {
    const TensorType& t = m.values[static_cast<size_t>(index)].type;
    if (t.ndim() == 0 || t.shape[0] != -1) return false;
  }
  for (const ModelNode& node : m.nodes)
    if (!node_keeps_rows_apart(m, node)) return false;
  return true;
}

}  // namespace

struct Predictor::Impl {
  std::unique_ptr<Model> model;
  std::unique_ptr<ThreadPool> pool;
  std::vector<TensorInfo> input_info, output_info;

  mutable std::mutex mutex;  // guards plans, last_plan and free_arenas
  mutable std::map<std::vector<Shape>, std::shared_ptr<const Plan>> plans;
  mutable std::shared_ptr<const Plan> last_plan;
  mutable std::vector<Tensor> free_arenas;
  bool splits_batches = false;  // model_splits_batches
  size_t split_budget = 0;      // batch_split_budget (0: never split)

  std::shared_ptr<const Plan> make_plan(const std::vector<Shape>& input_shapes) const;
  std::shared_ptr<const Plan> get_plan(const std::vector<Tensor>& inputs) const;
  std::shared_ptr<const Plan> get_plan_for_shapes(const std::vector<Shape>& shapes) const;
  // Runs `plan` on `inputs`; outputs go to `out_views` (in the model's output order) when given,
  // else to fresh tensors. Adds each node's seconds to *node_seconds (sized by the caller).
  std::vector<Tensor> run_plan(const Plan& plan, const std::vector<Tensor>& inputs,
                               const std::vector<Tensor>* out_views, std::vector<double>* node_seconds) const;
};

Predictor::Predictor() : impl_(std::make_unique<Impl>()) {}
Predictor::~Predictor() = default;

// ---------------------------------------------------------------- loading

namespace {
// Drops the whole pages inside [data, data + size) of a private, read-only file mapping: they
// are clean, so a later read faults them back in from the file.
void release_mapped_pages(const void* data, size_t size) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}
}  // namespace

std::unique_ptr<Predictor> Predictor::load_buffer(std::shared_ptr<void> owner, const void* data,
                                                  size_t size, int num_threads) {
  return load_aligned(std::move(owner), data, size, num_threads, false);
}

std::unique_ptr<Predictor> Predictor::load_aligned(std::shared_ptr<void> owner, const void* data,
                                                   size_t size, int num_threads, bool mapped) {
  if (reinterpret_cast<uintptr_t>(data) % kTensorAlignment != 0)
    return load_bytes(data, size, num_threads);
  std::unique_ptr<Predictor> p(new Predictor());
  p->impl_->model = load_model(std::move(owner), static_cast<const uint8_t*>(data), size,
                               mapped ? ReleaseFn(release_mapped_pages) : ReleaseFn());
  p->impl_->pool = std::make_unique<ThreadPool>(default_threads(num_threads));
  for (int64_t index : p->impl_->model->inputs)
    p->impl_->input_info.push_back({p->impl_->model->values[index].name,
                                    p->impl_->model->values[index].type});
  for (int64_t index : p->impl_->model->outputs)
    p->impl_->output_info.push_back({p->impl_->model->values[index].name,
                                     p->impl_->model->values[index].type});
  p->impl_->splits_batches = model_splits_batches(*p->impl_->model);
  p->impl_->split_budget = batch_split_budget();
  return p;
}

std::unique_ptr<Predictor> Predictor::load_bytes(const void* data, size_t size, int num_threads) {
  Tensor copy = Tensor::empty({static_cast<int64_t>(size)}, DType::UInt8);
  if (size) std::memcpy(copy.raw_data(), data, size);
  auto holder = std::make_shared<Tensor>(copy);
  return load_buffer(holder, holder->raw_data(), size, num_threads);
}

std::unique_ptr<Predictor> Predictor::load_file(const std::string& path, int num_threads) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail<InvalidArgument>("cannot open model file '", path, "': ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail<InvalidArgument>("'", path, "' is not a regular file");
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    fail<InvalidModel>("model file '", path, "' is empty");
  }
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) fail<InvalidArgument>("cannot map model file '", path, "'");
  std::shared_ptr<void> owner(addr, [size](void* p) { ::munmap(p, size); });
  // Kernel creation reads weights (fast kernels pre-pack them). The mapping is private and never
  // written, so its pages are clean copies of the file: each weight's pages are dropped once its
  // nodes have kernels. Weights a kernel reads in place fault back in on first use; packed ones
  // are never touched again, so a weight is not resident twice, not even at the peak of loading.
  return load_aligned(owner, addr, size, num_threads, true);
}

const std::vector<TensorInfo>& Predictor::inputs() const { return impl_->input_info; }
const std::vector<TensorInfo>& Predictor::outputs() const { return impl_->output_info; }
const std::string& Predictor::name() const { return impl_->model->name; }
int Predictor::num_threads() const { return impl_->pool->num_threads(); }

std::vector<std::string> Predictor::kernel_names() const {
  std::vector<std::string> out;
  for (const ModelNode& node : impl_->model->nodes)
    out.push_back(node.where() + ": " + node.kernel->name());
  return out;
}

// ---------------------------------------------------------------- planning

std::shared_ptr<const Plan> Predictor::Impl::make_plan(const std::vector<Shape>& input_shapes) const {
  const Model& m = *model;
  auto plan = std::make_shared<Plan>();
  const size_t num_values = m.values.size();
  plan->types.resize(num_values);
  plan->storage.assign(num_values, Storage::Arena);
  plan->offsets.assign(num_values, 0);
  for (size_t i = 0; i < num_values; ++i) {
    if (m.values[i].is_constant) {
      plan->types[i] = m.values[i].type;
      plan->storage[i] = Storage::Constant;
    }
  }
  for (size_t k = 0; k < m.inputs.size(); ++k) {
    plan->types[m.inputs[k]] = {m.values[m.inputs[k]].type.dtype, input_shapes[k]};
    plan->storage[m.inputs[k]] = Storage::Input;
  }
  for (int64_t index : m.outputs)
    if (plan->storage[index] == Storage::Arena) plan->storage[index] = Storage::Output;

  // Types for these shapes; an op that rejects them (e.g. a reshape that baked in a batch size)
  // names itself in the error.
  std::vector<int64_t> last_use(num_values, -1);
  for (size_t n = 0; n < m.nodes.size(); ++n) {
    const ModelNode& node = m.nodes[n];
    std::vector<const TensorType*> ins;
    for (int64_t index : node.inputs) {
      ins.push_back(index < 0 ? nullptr : &plan->types[index]);
      if (index >= 0) last_use[index] = static_cast<int64_t>(n);
    }
    std::vector<TensorType> outs = node.schema->infer_types(
        ins, node.attrs, node.name, static_cast<int64_t>(node.outputs.size()));
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      double elements = 1;
      for (int64_t d : outs[k].shape) elements *= static_cast<double>(std::max<int64_t>(d, 0));
      if (elements > static_cast<double>(int64_t{1} << 40))
        fail<InvalidArgument>(node.where(), ": output '", m.values[node.outputs[k]].name,
                              "' would have ", elements, " elements (", shape_str(outs[k].shape), ")");
      for (int64_t d : outs[k].shape)
        if (d < 0)
          fail<InvalidArgument>(node.where(), ": could not infer the shape of output '",
                                m.values[node.outputs[k]].name, "' (", shape_str(outs[k].shape), ")");
      plan->types[node.outputs[k]] = outs[k];
    }
  }

  // Buffers: each arena value gets one, except that an op declared in-place writes its output
  // into the buffer of input `inplace_input()` when that input dies at this op and has the size.
  std::vector<int64_t> buffer_of(num_values, -1);
  std::vector<BufferRequest> requests;
  for (size_t n = 0; n < m.nodes.size(); ++n) {
    const ModelNode& node = m.nodes[n];
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      int64_t out = node.outputs[k];
      if (plan->storage[out] != Storage::Arena) continue;
      size_t nbytes = static_cast<size_t>(plan->types[out].numel()) * dtype_size(plan->types[out].dtype);
      plan->naive_bytes += align_up(nbytes, kTensorAlignment);
      int64_t end = std::max<int64_t>(last_use[out], static_cast<int64_t>(n));
      int64_t reuse = node.schema->inplace_input();
      if (k == 0 && reuse >= 0 && reuse < static_cast<int64_t>(node.inputs.size())) {
        int64_t in = node.inputs[reuse];
        if (in >= 0 && plan->storage[in] == Storage::Arena && last_use[in] == static_cast<int64_t>(n) &&
            plan->types[in].dtype == plan->types[out].dtype &&
            plan->types[in].numel() == plan->types[out].numel()) {
          int64_t b = buffer_of[in];
          buffer_of[out] = b;
          requests[b].last_use = std::max(requests[b].last_use, end);
          continue;
        }
      }
      buffer_of[out] = static_cast<int64_t>(requests.size());
      requests.push_back({nbytes, static_cast<int64_t>(n), end});
    }
  }
  MemoryPlan mp = plan_memory(requests, kTensorAlignment);
  validate_plan(requests, mp, kTensorAlignment);
  plan->arena_size = mp.arena_size;
  plan->lower_bound = lower_bound_bytes(requests, kTensorAlignment);
  for (size_t i = 0; i < num_values; ++i)
    if (buffer_of[i] >= 0) plan->offsets[i] = mp.offsets[buffer_of[i]];
  return plan;
}

std::shared_ptr<const Plan> Predictor::Impl::get_plan(const std::vector<Tensor>& inputs) const {
  const Model& m = *model;
  if (inputs.size() != m.inputs.size())
    fail<InvalidArgument>("model '", m.name, "' takes ", m.inputs.size(), " inputs, got ",
                          inputs.size());
  std::vector<Shape> shapes;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const ModelValue& v = m.values[m.inputs[k]];
    const Tensor& t = inputs[k];
    if (t.dtype() != v.type.dtype)
      fail<InvalidArgument>("input '", v.name, "': expected dtype ", dtype_name(v.type.dtype),
                            ", got ", dtype_name(t.dtype()));
    bool ok = t.ndim() == v.type.ndim();
    for (int64_t d = 0; ok && d < t.ndim(); ++d)
      ok = v.type.shape[d] == -1 || v.type.shape[d] == t.shape()[d];
    if (!ok)
      fail<InvalidArgument>("input '", v.name, "': expected shape ", shape_str(v.type.shape),
                            " (-1 = any), got ", shape_str(t.shape()));
    shapes.push_back(t.shape());
  }
  return get_plan_for_shapes(shapes);
}

std::shared_ptr<const Plan> Predictor::Impl::get_plan_for_shapes(const std::vector<Shape>& shapes) const {
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans.find(shapes);
    if (it != plans.end()) {
      last_plan = it->second;
      return it->second;
    }
  }
  std::shared_ptr<const Plan> plan = make_plan(shapes);
  std::lock_guard<std::mutex> lock(mutex);
  if (plans.size() >= kMaxCachedPlans) plans.clear();
  plans.emplace(shapes, plan);
  last_plan = plan;
  return plan;
}

MemoryStats Predictor::plan(const std::vector<Shape>& input_shapes) const {
  const Model& m = *impl_->model;
  if (input_shapes.size() != m.inputs.size())
    fail<InvalidArgument>("model '", m.name, "' takes ", m.inputs.size(), " inputs, got ",
                          input_shapes.size(), " shapes");
  for (size_t k = 0; k < input_shapes.size(); ++k) {
    const ModelValue& v = m.values[m.inputs[k]];
    bool ok = static_cast<int64_t>(input_shapes[k].size()) == v.type.ndim();
    for (size_t d = 0; ok && d < input_shapes[k].size(); ++d)
      ok = input_shapes[k][d] >= 0 && (v.type.shape[d] == -1 || v.type.shape[d] == input_shapes[k][d]);
    if (!ok)
      fail<InvalidArgument>("input '", v.name, "': expected shape ", shape_str(v.type.shape),
                            " (-1 = any), got ", shape_str(input_shapes[k]));
  }
  try {
    impl_->get_plan_for_shapes(input_shapes);
  } catch (const std::bad_alloc&) {
    fail<InvalidArgument>("model '", m.name, "': out of memory while planning");
  }
  return memory_stats();
}

// ---------------------------------------------------------------- running

std::vector<Tensor> Predictor::run(const std::vector<Tensor>& inputs) const {
  return run(inputs, nullptr);
}

std::vector<Tensor> Predictor::run(const std::vector<Tensor>& inputs,
                                   std::vector<double>* node_seconds) const {
  try {
    return run_unchecked(inputs, node_seconds);
  } catch (const std::bad_alloc&) {
    fail<InvalidArgument>("model '", impl_->model->name, "': out of memory for these input shapes");
  }
}

std::vector<Tensor> Predictor::run_unchecked(const std::vector<Tensor>& inputs,
                                             std::vector<double>* node_seconds) const {
  const Model& m = *impl_->model;
  std::shared_ptr<const Plan> plan = impl_->get_plan(inputs);
  if (node_seconds) node_seconds->assign(m.nodes.size(), 0.0);

  // A batch whose arena exceeds the budget runs in sub-batches of at least one row.
  const int64_t rows = inputs[0].ndim() > 0 ? inputs[0].dim(0) : 0;
  bool split = impl_->splits_batches && impl_->split_budget > 0 && rows > 1 &&
               plan->arena_size > impl_->split_budget;
  for (const Tensor& t : inputs) split = split && t.dim(0) == rows;
  for (int64_t index : m.outputs)
    split = split && plan->storage[static_cast<size_t>(index)] == Storage::Output &&
            plan->types[static_cast<size_t>(index)].shape[0] == rows;
  const int64_t sub = split ? std::max<int64_t>(1, static_cast<int64_t>(impl_->split_budget /
                                                                        (plan->arena_size / static_cast<size_t>(rows) + 1)))
                            : rows;
  if (!split || sub >= rows) return impl_->run_plan(*plan, inputs, nullptr, node_seconds);
  // The plan of an n-row sub-batch, or null unless it gives each output its n rows of the whole
  // batch's shape (a model the op checks misjudged: the batch then runs whole).
  auto part_plan = [&](int64_t n) -> std::shared_ptr<const Plan> {
    std::vector<Shape> shapes;
    for (const Tensor& t : inputs) {
      shapes.push_back(t.shape());
      shapes.back()[0] = n;
    }
    std::shared_ptr<const Plan> part = impl_->get_plan_for_shapes(shapes);
    for (int64_t index : m.outputs) {
      Shape want = plan->types[static_cast<size_t>(index)].shape;
      want[0] = n;
      if (part->storage[static_cast<size_t>(index)] != Storage::Output ||
          part->types[static_cast<size_t>(index)].shape != want)
        return nullptr;
    }
    return part;
  };
  const std::shared_ptr<const Plan> whole_part = part_plan(sub);
  const std::shared_ptr<const Plan> last_part = rows % sub ? part_plan(rows % sub) : whole_part;
  if (!whole_part || !last_part) return impl_->run_plan(*plan, inputs, nullptr, node_seconds);

  std::vector<Tensor> outputs;
  for (int64_t index : m.outputs)
    outputs.push_back(Tensor::empty(plan->types[static_cast<size_t>(index)].shape,
                                    plan->types[static_cast<size_t>(index)].dtype));
  // Rows [r0, r0 + n) of a tensor whose dim 0 is the batch: a view (dim 0 is outermost).
  auto rows_of = [](const Tensor& t, int64_t r0, int64_t n) {
    Shape shape = t.shape();
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(shape[0]);
    shape[0] = n;
    return Tensor::wrap(const_cast<char*>(static_cast<const char*>(t.raw_data())) + static_cast<size_t>(r0) * row_bytes,
                        shape, t.dtype());
  };
  for (int64_t r0 = 0; r0 < rows; r0 += sub) {
    const int64_t n = std::min(sub, rows - r0);
    std::vector<Tensor> part_inputs, part_outputs;
    for (const Tensor& t : inputs) part_inputs.push_back(rows_of(t, r0, n));
    for (const Tensor& t : outputs) part_outputs.push_back(rows_of(t, r0, n));
    impl_->run_plan(n == sub ? *whole_part : *last_part, part_inputs, &part_outputs, node_seconds);
  }
  return outputs;
}

std::vector<Tensor> Predictor::Impl::run_plan(const Plan& plan, const std::vector<Tensor>& inputs,
                                              const std::vector<Tensor>* out_views,
                                              std::vector<double>* node_seconds) const {
  const Model& m = *model;
  Tensor arena;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto fit = std::find_if(free_arenas.begin(), free_arenas.end(), [&](const Tensor& a) {
      return static_cast<size_t>(a.numel()) >= plan.arena_size;
    });
    if (fit != free_arenas.end()) {
      arena = *fit;
      free_arenas.erase(fit);
    }
  }
  if (!arena.defined())
    arena = Tensor::empty({static_cast<int64_t>(std::max<size_t>(plan.arena_size, 1))}, DType::UInt8);
  struct ArenaReturn {
    const Impl* impl;
    Tensor* arena;
    ~ArenaReturn() {
      std::lock_guard<std::mutex> lock(impl->mutex);
      if (impl->free_arenas.size() < 4) impl->free_arenas.push_back(*arena);
    }
  } give_back{this, &arena};

  std::vector<Tensor> values(m.values.size());
  uint8_t* base = arena.data<uint8_t>();
  for (size_t i = 0; i < m.values.size(); ++i) {
    switch (plan.storage[i]) {
      case Storage::Constant: values[i] = m.values[i].constant; break;
      case Storage::Arena:
        values[i] = Tensor::wrap(base + plan.offsets[i], plan.types[i].shape, plan.types[i].dtype);
        break;
      case Storage::Output:
        if (!out_views) values[i] = Tensor::empty(plan.types[i].shape, plan.types[i].dtype);
        break;
      case Storage::Input: break;
    }
  }
  for (size_t k = 0; k < m.inputs.size(); ++k) values[m.inputs[k]] = inputs[k];
  if (out_views)  // the outputs are distinct Storage::Output values (see run_unchecked)
    for (size_t k = 0; k < m.outputs.size(); ++k) values[static_cast<size_t>(m.outputs[k])] = (*out_views)[k];

  for (size_t n = 0; n < m.nodes.size(); ++n) {
    const ModelNode& node = m.nodes[n];
    auto start = node_seconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    std::vector<const Tensor*> ins;
    ins.reserve(node.inputs.size());
    for (int64_t index : node.inputs) ins.push_back(index < 0 ? nullptr : &values[index]);
    std::vector<Tensor*> outs;
    outs.reserve(node.outputs.size());
    for (int64_t index : node.outputs) outs.push_back(&values[index]);
    OpContext ctx(node.schema, &node.name, &node.attrs, std::move(ins), std::move(outs), pool.get());
    node.kernel->run(ctx);
    if (node_seconds)
      (*node_seconds)[n] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  std::vector<Tensor> outputs;
  for (int64_t index : m.outputs) {
    if (plan.storage[index] == Storage::Output) {
      outputs.push_back(values[index]);
    } else {  // an input or a constant returned as is: hand out a copy
      Tensor copy = Tensor::empty(values[index].shape(), values[index].dtype());
      if (copy.nbytes()) std::memcpy(copy.raw_data(), values[index].raw_data(), copy.nbytes());
      outputs.push_back(copy);
    }
  }
  return outputs;
}

MemoryStats Predictor::memory_stats() const {
  MemoryStats s;
  s.weight_bytes = impl_->model->weight_bytes;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  s.num_plans = impl_->plans.size();
  if (impl_->last_plan) {
    s.arena_bytes = impl_->last_plan->arena_size;
    s.naive_bytes = impl_->last_plan->naive_bytes;
    s.lower_bound_bytes = impl_->last_plan->lower_bound;
  }
  return s;
}

}  // namespace ember
