// Indexing ops: gather, index_select, embedding (PyTorch semantics).
//
// Indices are data, so their range is checked while the kernel runs: an index outside
// [0, size) raises InvalidArgument naming the op, the index value and where it was found
// (negative indices are errors, as in torch.gather and F.embedding). Elements are moved as
// bytes, so every dtype is supported.
#include <cstring>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

// Reads index i of an int64 or int32 tensor.
int64_t index_at(const Tensor& index, int64_t i) {
  return index.dtype() == DType::Int32 ? static_cast<int64_t>(index.data<int32_t>()[i])
                                       : index.data<int64_t>()[i];
}

void check_index(const OpContext& ctx, int64_t value, int64_t size, int64_t position,
                 const char* tensor, int64_t dim) {
  if (value < 0 || value >= size)
    ctx.fail("index ", value, " (element ", position, " of input '", tensor,
             "') is out of range for dim ", dim, " of size ", size);
}

// ---------------------------------------------------------------- gather

std::vector<TensorType> infer_gather(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& index = ctx.input(1);
  int64_t axis = normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx, "dim");
  if (index.ndim() != x.ndim())
    ctx.fail("input 'index' has rank ", index.ndim(), ", input 'x' has rank ", x.ndim(),
             " (they must be equal)");
  for (int64_t d = 0; d < x.ndim(); ++d) {
    size_t u = static_cast<size_t>(d);
    if (d != axis && index.shape[u] >= 0 && x.shape[u] >= 0 && index.shape[u] > x.shape[u])
      ctx.fail("input 'index' ", shape_str(index.shape), " is larger than input 'x' ",
               shape_str(x.shape), " in dim ", d, " (only dim ", axis, " may be larger)");
  }
  return {{x.dtype, index.shape}};
}

void gather_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& index = ctx.input(1);
  Tensor& y = ctx.output(0);
  const int64_t nd = x.ndim();
  int64_t axis = normalize_axis(ctx.attr_int("dim"), nd, ctx, "dim");
  const Shape x_strides = contiguous_strides(x.shape());
  const Shape& ishape = index.shape();
  const size_t es = dtype_size(x.dtype());
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(y.raw_data());
  const int64_t axis_size = nd == 0 ? 1 : x.dim(axis);
  Shape pos(static_cast<size_t>(nd), 0);  // multi-index into `index`
  for (int64_t i = 0; i < index.numel(); ++i) {
    int64_t k = index_at(index, i);
    check_index(ctx, k, axis_size, i, "index", axis);
    int64_t offset = 0;
    for (int64_t d = 0; d < nd; ++d) {
      size_t u = static_cast<size_t>(d);
      offset += (d == axis ? k : pos[u]) * x_strides[u];
    }
    std::memcpy(dst + i * static_cast<int64_t>(es), src + offset * static_cast<int64_t>(es), es);
    for (int64_t d = nd - 1; d >= 0; --d) {
      size_t u = static_cast<size_t>(d);
      if (++pos[u] < ishape[u]) break;
      pos[u] = 0;
    }
  }
}

// ---------------------------------------------------------------- index_select

std::vector<TensorType> infer_index_select(const InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  const TensorType& index = ctx.input(1);
  int64_t axis = normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx, "dim");
  if (index.ndim() > 1)
    ctx.fail("input 'index' must be 1-D (or a scalar), got shape ", shape_str(index.shape));
  Shape out = x.shape;
  if (x.ndim() == 0) {
    if (index.numel() != 1 && index.numel() >= 0)
      ctx.fail("input 'x' is a scalar, so input 'index' must hold one value, got ",
               shape_str(index.shape));
    return {{x.dtype, out}};
  }
  out[static_cast<size_t>(axis)] = index.ndim() == 0 ? 1 : index.shape[0];
  return {{x.dtype, out}};
}

void index_select_reference(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& index = ctx.input(1);
  Tensor& y = ctx.output(0);
  const size_t es = dtype_size(x.dtype());
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(y.raw_data());
  if (x.ndim() == 0) {
    check_index(ctx, index_at(index, 0), 1, 0, "index", 0);
    std::memcpy(dst, src, es);
    return;
  }
  int64_t axis = normalize_axis(ctx.attr_int("dim"), x.ndim(), ctx, "dim");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  const int64_t n = x.dim(axis), m = index.numel();
  const int64_t chunk = inner * static_cast<int64_t>(es);
  for (int64_t j = 0; j < m; ++j) check_index(ctx, index_at(index, j), n, j, "index", axis);
  if (chunk == 0) return;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      std::memcpy(dst + (o * m + j) * chunk, src + (o * n + index_at(index, j)) * chunk,
                  static_cast<size_t>(chunk));
}

// ---------------------------------------------------------------- embedding

std::vector<TensorType> infer_embedding(const InferContext& ctx) {
  const TensorType& weight = ctx.input(0);
  const TensorType& indices = ctx.input(1);
  if (weight.ndim() != 2)
    ctx.fail("input 'weight' must be 2-D [num_embeddings, embedding_dim], got shape ",
             shape_str(weight.shape));
  Shape out = indices.shape;
  out.push_back(weight.shape[1]);
  return {{weight.dtype, out}};
}

void embedding_reference(OpContext& ctx) {
  const Tensor& weight = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  Tensor& y = ctx.output(0);
  const int64_t rows = weight.dim(0);
  const int64_t row_bytes = weight.dim(1) * static_cast<int64_t>(dtype_size(weight.dtype()));
  const char* src = static_cast<const char*>(weight.raw_data());
  char* dst = static_cast<char*>(y.raw_data());
  for (int64_t i = 0; i < indices.numel(); ++i) {
    int64_t k = index_at(indices, i);
    check_index(ctx, k, rows, i, "indices", 0);
    if (row_bytes > 0) std::memcpy(dst + i * row_bytes, src + k * row_bytes, static_cast<size_t>(row_bytes));
  }
}

}  // namespace

EMBER_REGISTER_OP(gather)
    .doc("y[i][j][k] = x[index[i][j][k]][j][k] for dim 0, and so on (torch.gather); index has "
         "x's rank and is no larger outside `dim`.")
    .input("x", kAllTypes)
    .input("index", {DType::Int64})
    .output("y")
    .attr("dim", AttrType::Int, "the dim the index values address")
    .infer(infer_gather)
    .kernel(DType::Undefined, Isa::Reference, gather_reference);

EMBER_REGISTER_OP(index_select)
    .doc("Selects entries of x along `dim` by a 1-D index (torch.index_select).")
    .input("x", kAllTypes)
    .input("index", kIndexTypes)
    .output("y")
    .attr("dim", AttrType::Int, "the dim to select along")
    .infer(infer_index_select)
    .kernel(DType::Undefined, Isa::Reference, index_select_reference);

EMBER_REGISTER_OP(embedding)
    .doc("Rows of weight [V, D] looked up by integer indices of any shape -> indices.shape + [D] "
         "(F.embedding; weight comes first).")
    .input("weight", kAllTypes)
    .input("indices", kIndexTypes)
    .output("y")
    .infer(infer_embedding)
    .kernel(DType::Undefined, Isa::Reference, embedding_reference);

}  // namespace ember
