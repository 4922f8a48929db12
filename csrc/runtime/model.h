// The loaded form of a runtime model: values, nodes with resolved attributes and their kernels.
// Built by load_model(), which validates everything so that running can assume a sound graph.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"

namespace ember {

struct ModelValue {
  std::string name;
  TensorType type;             // declared (inputs, constants) or inferred at load (-1 = dynamic)
  bool is_constant = false;
  bool is_input = false;
  bool is_output = false;
  int64_t producer = -1;       // node index, -1 for inputs and constants
  Tensor constant;             // constants: borrowed from the model buffer
};

struct ModelNode {
  const OpSchema* schema = nullptr;
  std::string name;
  std::vector<int64_t> inputs;   // value indices; -1 = absent optional input
  std::vector<int64_t> outputs;
  AttrMap attrs;                 // resolved (defaults filled)
  std::unique_ptr<OpKernel> kernel;
  std::string where() const { return schema->where(name); }
};

struct Model {
  std::string name;
  std::vector<ModelValue> values;
  std::vector<int64_t> inputs, outputs;
  std::vector<ModelNode> nodes;
  size_t weight_bytes = 0;
  std::shared_ptr<void> buffer_owner;  // keeps the model bytes (and so the weights) alive
};

constexpr int32_t kModelFormatVersion = 1;

// Verifies and loads a flatbuffer model; `data` must stay alive through `owner` and be 64-byte
// aligned. Throws InvalidModel (corrupt or inconsistent), Unsupported (unknown op, no kernel)
// or InvalidArgument (attributes or shapes an op rejects).
// `release`, when given, is called with each constant's bytes once the kernels of the nodes
// reading it exist (a memory-mapped model drops those pages: see Predictor::load_file).
using ReleaseFn = std::function<void(const void* data, size_t size)>;
std::unique_ptr<Model> load_model(std::shared_ptr<void> owner, const uint8_t* data, size_t size,
                                  const ReleaseFn& release = nullptr);

}  // namespace ember
