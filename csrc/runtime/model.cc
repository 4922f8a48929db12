// Model loader: flatbuffers Verifier first, then every index, size, dtype and op is checked
// against the schemas before anything runs. Nothing a file contains can crash the process.
#include "runtime/model.h"

#include <algorithm>
#include <limits>
#include <new>
#include <unordered_set>

#include "schema/model_generated.h"

namespace ember {
namespace {

// Limits a hostile file cannot exceed (generous for real models).
constexpr int64_t kMaxDim = int64_t{1} << 40;
constexpr int64_t kMaxRank = 16;

// Strict UTF-8, as Python decodes it: no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    uint32_t cp, min_cp;
    if ((c >> 5) == 0x6) {
      extra = 1, cp = c & 0x1F, min_cp = 0x80;
    } else if ((c >> 4) == 0xE) {
      extra = 2, cp = c & 0x0F, min_cp = 0x800;
    } else if ((c >> 3) == 0x1E) {
      extra = 3, cp = c & 0x07, min_cp = 0x10000;
    } else {
      return false;
    }
    if (i + extra >= n) return false;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// Strings cross into Python (names in messages, input names): they must be valid UTF-8.
std::string checked_string(const flatbuffers::String* s, const char* what) {
  if (!s) return std::string();
  std::string out = s->str();
  if (!valid_utf8(out)) fail<InvalidModel>("model: ", what, " is not valid UTF-8");
  return out;
}

std::string value_label(const fb::Value* v, int64_t index) {
  if (v && v->name() && v->name()->size() > 0) return "'" + checked_string(v->name(), "a value name") + "'";
  return "#" + std::to_string(index);
}

DType checked_dtype(int32_t code, const std::string& what) {
  if (code < static_cast<int32_t>(DType::Float32) || code > static_cast<int32_t>(DType::Bool))
    fail<InvalidModel>(what, ": invalid dtype code ", code);
  return static_cast<DType>(code);
}

Shape checked_shape(const flatbuffers::Vector<int64_t>* dims, bool allow_dynamic,
                    const std::string& what) {
  Shape shape;
  if (!dims) return shape;
  if (dims->size() > kMaxRank) fail<InvalidModel>(what, ": rank ", dims->size(), " exceeds ", kMaxRank);
  int64_t numel = 1;
  for (int64_t d : *dims) {
    if (d < (allow_dynamic ? -1 : 0) || d > kMaxDim)
      fail<InvalidModel>(what, ": invalid dimension ", d);
    if (d > 0) {
      if (numel > kMaxDim / d) fail<InvalidModel>(what, ": shape is too large");
      numel *= d;
    }
    shape.push_back(d);
  }
  return shape;
}

AttrValue read_attribute(const fb::Attribute* a, const std::string& where) {
  if (!a || !a->name()) fail<InvalidModel>(where, ": attribute without a name");
  const std::string name = checked_string(a->name(), "an attribute name");
  AttrValue v;
  switch (a->type()) {
    case static_cast<int32_t>(AttrType::Int): return AttrValue::Int(a->i());
    case static_cast<int32_t>(AttrType::Bool):
      if (a->i() != 0 && a->i() != 1)
        fail<InvalidModel>(where, ": bool attribute '", name, "' has value ", a->i());
      return AttrValue::Bool(a->i() != 0);
    case static_cast<int32_t>(AttrType::Float): return AttrValue::Float(a->f());
    case static_cast<int32_t>(AttrType::String):
      return AttrValue::String(checked_string(a->s(), "a string attribute"));
    case static_cast<int32_t>(AttrType::Ints):
      return AttrValue::Ints(a->ints() ? std::vector<int64_t>(a->ints()->begin(), a->ints()->end())
                                       : std::vector<int64_t>());
    case static_cast<int32_t>(AttrType::Floats):
      return AttrValue::Floats(a->floats()
                                   ? std::vector<double>(a->floats()->begin(), a->floats()->end())
                                   : std::vector<double>());
    case static_cast<int32_t>(AttrType::Strings): {
      std::vector<std::string> out;
      if (a->strings())
        for (const auto* s : *a->strings()) out.push_back(checked_string(s, "a string attribute"));
      return AttrValue::Strings(std::move(out));
    }
    default:
      fail<InvalidModel>(where, ": attribute '", name, "' has invalid type code ", a->type());
  }
}

std::unique_ptr<Model> load_model_unchecked(std::shared_ptr<void> owner, const uint8_t* data,
                                            size_t size, const ReleaseFn& release) {
  if (data == nullptr || size < 8) fail<InvalidModel>("model: ", size, " bytes is too short");
  if (!flatbuffers::BufferHasIdentifier(data, fb::ModelIdentifier()))
    fail<InvalidModel>("model: not an Ember model (missing the 'EMBR' identifier)");
  flatbuffers::Verifier::Options options;
  options.max_depth = 16;
  options.max_tables = 10'000'000;
  flatbuffers::Verifier verifier(data, size, options);
  if (!fb::VerifyModelBuffer(verifier))
    fail<InvalidModel>("model: the flatbuffer failed verification (truncated or corrupt)");
  const fb::Model* fm = fb::GetModel(data);
  if (fm->format_version() < 1 || fm->format_version() > kModelFormatVersion)
    fail<InvalidModel>("model: format version ", fm->format_version(), " is not supported (this "
                       "runtime reads up to ", kModelFormatVersion, ")");

  auto model = std::make_unique<Model>();
  model->buffer_owner = std::move(owner);
  model->name = checked_string(fm->name(), "the model name");
  const auto* fvalues = fm->values();
  const int64_t num_values = fvalues ? static_cast<int64_t>(fvalues->size()) : 0;
  const uint8_t* blob = fm->data() ? fm->data()->data() : nullptr;
  const int64_t blob_size = fm->data() ? static_cast<int64_t>(fm->data()->size()) : 0;
  if (blob && reinterpret_cast<uintptr_t>(blob) % kTensorAlignment != 0)
    fail<InvalidModel>("model: the weight data is not ", kTensorAlignment, "-byte aligned");

  // ---- values
  model->values.resize(static_cast<size_t>(num_values));
  for (int64_t i = 0; i < num_values; ++i) {
    const fb::Value* fv = fvalues->Get(static_cast<flatbuffers::uoffset_t>(i));
    ModelValue& v = model->values[static_cast<size_t>(i)];
    std::string what = "value " + value_label(fv, i);
    v.name = fv->name() ? checked_string(fv->name(), "a value name") : "#" + std::to_string(i);
    if (fv->data_offset() >= 0) {
      v.is_constant = true;
      v.type.dtype = checked_dtype(fv->dtype(), what);
      v.type.shape = checked_shape(fv->shape(), false, what);
      int64_t offset = fv->data_offset(), nbytes = fv->data_size();
      int64_t expected = v.type.numel() * static_cast<int64_t>(dtype_size(v.type.dtype));
      if (nbytes != expected)
        fail<InvalidModel>(what, ": holds ", nbytes, " bytes, its shape ", shape_str(v.type.shape),
                           " of ", dtype_name(v.type.dtype), " needs ", expected);
      if (offset % static_cast<int64_t>(kTensorAlignment) != 0 || offset > blob_size ||
          nbytes > blob_size - offset)
        fail<InvalidModel>(what, ": data range [", offset, ", +", nbytes,
                           ") is misaligned or outside the ", blob_size, "-byte weight data");
      v.constant = Tensor::wrap(const_cast<uint8_t*>(blob ? blob + offset : nullptr), v.type.shape,
                                v.type.dtype);
      model->weight_bytes += static_cast<size_t>(nbytes);
    }
  }

  auto check_index = [&](int64_t index, const std::string& what) {
    if (index < 0 || index >= num_values)
      fail<InvalidModel>(what, ": value index ", index, " is out of range (", num_values, " values)");
    return index;
  };

  // ---- graph inputs and outputs
  std::vector<bool> defined(static_cast<size_t>(num_values), false);
  for (int64_t i = 0; i < num_values; ++i) defined[i] = model->values[i].is_constant;
  if (fm->inputs()) {
    for (int32_t index : *fm->inputs()) {
      check_index(index, "graph input");
      ModelValue& v = model->values[index];
      const fb::Value* fv = fvalues->Get(static_cast<flatbuffers::uoffset_t>(index));
      std::string what = "graph input '" + v.name + "'";
      if (defined[index]) fail<InvalidModel>(what, " is also a constant or listed twice");
      v.is_input = true;
      v.type.dtype = checked_dtype(fv->dtype(), what);
      v.type.shape = checked_shape(fv->shape(), true, what);
      defined[index] = true;
      model->inputs.push_back(index);
    }
  }

  // ---- nodes
  const auto* fnodes = fm->nodes();
  const int64_t num_nodes = fnodes ? static_cast<int64_t>(fnodes->size()) : 0;
  model->nodes.resize(static_cast<size_t>(num_nodes));
  for (int64_t n = 0; n < num_nodes; ++n) {
    const fb::Node* fn = fnodes->Get(static_cast<flatbuffers::uoffset_t>(n));
    ModelNode& node = model->nodes[static_cast<size_t>(n)];
    node.name = checked_string(fn->name(), "a node name");
    std::string type = checked_string(fn->type(), "an op type");
    std::string where = "node " + std::to_string(n) + " (" + type +
                        (node.name.empty() ? "" : " '" + node.name + "'") + ")";
    node.schema = OpRegistry::global().find(type);
    if (!node.schema) fail<Unsupported>(where, ": unknown op '", type, "'");
    where = node.where();

    AttrMap given;
    if (fn->attributes())
      for (const fb::Attribute* a : *fn->attributes()) {
        AttrValue value = read_attribute(a, where);
        std::string attr_name = a->name()->str();
        if (!given.emplace(attr_name, std::move(value)).second)
          fail<InvalidModel>(where, ": attribute '", attr_name, "' is given twice");
      }
    node.attrs = node.schema->resolve_attrs(given, node.name);

    std::vector<const TensorType*> in_types;
    if (fn->inputs()) {
      for (int32_t index : *fn->inputs()) {
        if (index == -1) {
          node.inputs.push_back(-1);
          in_types.push_back(nullptr);
          continue;
        }
        check_index(index, where + ": input");
        if (!defined[index])
          fail<InvalidModel>(where, ": input '", model->values[index].name,
                             "' is used before it is defined");
        node.inputs.push_back(index);
        in_types.push_back(&model->values[index].type);
      }
    }
    int64_t num_outputs = fn->outputs() ? static_cast<int64_t>(fn->outputs()->size()) : 0;
    std::vector<TensorType> out_types =
        node.schema->infer_types(in_types, node.attrs, node.name, num_outputs);
    if (static_cast<int64_t>(out_types.size()) != num_outputs)
      fail<InvalidModel>(where, ": lists ", num_outputs, " outputs, the op produces ",
                         out_types.size());
    for (int64_t k = 0; k < num_outputs; ++k) {
      int32_t index = fn->outputs()->Get(static_cast<flatbuffers::uoffset_t>(k));
      check_index(index, where + ": output");
      ModelValue& v = model->values[index];
      if (defined[index])
        fail<InvalidModel>(where, ": output '", v.name, "' is already defined (constant, input "
                           "or another node's output)");
      defined[index] = true;
      v.type = out_types[static_cast<size_t>(k)];
      v.producer = n;
      node.outputs.push_back(index);
    }
  }

  if (fm->outputs()) {
    for (int32_t index : *fm->outputs()) {
      check_index(index, "graph output");
      ModelValue& v = model->values[index];
      if (!defined[index]) fail<InvalidModel>("graph output '", v.name, "' is never computed");
      if (v.is_output) fail<InvalidModel>("graph output '", v.name, "' is listed twice");
      v.is_output = true;
      model->outputs.push_back(index);
    }
  }

  // ---- kernels, created once; constant inputs are passed so fast kernels can pre-pack them
  std::vector<int64_t> last_reader(model->values.size(), -1);
  for (size_t n = 0; n < model->nodes.size(); ++n)
    for (int64_t index : model->nodes[n].inputs)
      if (index >= 0) last_reader[index] = static_cast<int64_t>(n);
  for (size_t n = 0; n < model->nodes.size(); ++n) {
    ModelNode& node = model->nodes[n];
    std::vector<TensorType> types;
    std::vector<const Tensor*> constants;
    for (int64_t index : node.inputs) {
      if (index < 0) {
        types.emplace_back();
        constants.push_back(nullptr);
        continue;
      }
      const ModelValue& v = model->values[index];
      types.push_back(v.type);
      constants.push_back(v.is_constant ? &v.constant : nullptr);
    }
    KernelInit init(node.schema, &node.name, &node.attrs, std::move(types), std::move(constants));
    node.kernel = node.schema->create_kernel(init);
    if (!node.kernel) fail<Unsupported>(node.where(), ": no kernel");
    if (release)
      for (int64_t index : node.inputs)
        if (index >= 0 && model->values[index].is_constant && last_reader[index] == static_cast<int64_t>(n))
          release(model->values[index].constant.raw_data(), model->values[index].constant.nbytes());
  }
  return model;
}

}  // namespace

std::unique_ptr<Model> load_model(std::shared_ptr<void> owner, const uint8_t* data, size_t size,
                                  const ReleaseFn& release) {
  try {
    return load_model_unchecked(std::move(owner), data, size, release);
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    fail<InvalidModel>("model: out of memory while loading (is the file corrupt?)");
  } catch (const std::exception& e) {
    fail<InvalidModel>("model: ", e.what());
  }
}

}  // namespace ember
