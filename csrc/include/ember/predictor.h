// Ember's public C++ API: load a runtime model (the flatbuffer written by graphruntime.lower or
// mobile.export) and run it.
//
//   auto predictor = ember::Predictor::load_file("model.ember", /*num_threads=*/2);
//   std::vector<ember::Tensor> outputs = predictor->run({ember::Tensor::wrap(data, {1, 3, 224, 224},
//                                                                           ember::DType::Float32)});
//
// Loading verifies the file (flatbuffers Verifier), checks every op against its schema, infers
// types, and creates each node's kernel once (fast kernels pre-pack their weights then). Weights
// are used in place from the mapped file. `run` infers shapes for the given inputs, plans the
// intermediates into one arena (the plan is cached by input shapes), and runs the ops in order on
// the predictor's thread pool. Errors are ember::InvalidModel / InvalidArgument / Unsupported,
// naming the op and tensor; nothing aborts. `run` may be called from several threads at once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace ember {

// Name, dtype and shape (-1 = dynamic) of a model input or output.
struct TensorInfo {
  std::string name;
  TensorType type;
};

struct MemoryStats {
  size_t arena_bytes = 0;        // arena of the most recent plan
  size_t naive_bytes = 0;        // sum of all intermediates' sizes (no reuse)
  size_t lower_bound_bytes = 0;  // most bytes simultaneously live: no plan can do better
  size_t weight_bytes = 0;       // constants, used in place from the model buffer
  size_t num_plans = 0;          // plans cached (one per distinct input-shape signature)
};

class Model;

class Predictor {
 public:
  // Memory-maps the file (weights are used in place). num_threads <= 0: hardware threads.
  static std::unique_ptr<Predictor> load_file(const std::string& path, int num_threads = 0);
  // Copies `size` bytes into an aligned buffer owned by the predictor.
  static std::unique_ptr<Predictor> load_bytes(const void* data, size_t size, int num_threads = 0);
  // Borrows `data` (kept alive by `owner`); copies it first only if it is not 64-byte aligned.
  static std::unique_ptr<Predictor> load_buffer(std::shared_ptr<void> owner, const void* data,
                                                size_t size, int num_threads = 0);
  ~Predictor();

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const std::string& name() const;
  int num_threads() const;

  // Inputs in the order of inputs(); returns freshly allocated outputs in the order of outputs().
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) const;
  // Same, and stores each node's wall time in seconds (in node order) into *node_seconds.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, std::vector<double>* node_seconds) const;

  MemoryStats memory_stats() const;
  // Infers shapes and plans memory for these input shapes without running (the plan is cached
  // and becomes the one memory_stats() reports). Useful to warm up or to size a deployment.
  MemoryStats plan(const std::vector<Shape>& input_shapes) const;
  // Kernel chosen for each node, "<op> '<node>': <kernel>", for profiling and tests.
  std::vector<std::string> kernel_names() const;

 private:
  Predictor();
  static std::unique_ptr<Predictor> load_aligned(std::shared_ptr<void> owner, const void* data,
                                                 size_t size, int num_threads, bool mapped);
  std::vector<Tensor> run_unchecked(const std::vector<Tensor>& inputs,
                                    std::vector<double>* node_seconds) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember
