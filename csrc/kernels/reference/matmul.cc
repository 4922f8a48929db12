// matmul with torch.matmul semantics: 1-D operands are promoted (a: [k] -> [1, k], b: [k] ->
// [k, 1]) and the added dim removed from the result; batch dims broadcast as in numpy.
#include <algorithm>
#include <vector>

#include "core/op_registry.h"
#include "core/shape_util.h"

namespace ember {
namespace {

// The operands seen as stacks of matrices: a [..., m, k], b [..., k, n].
struct MatmulShapes {
  Shape a_batch, b_batch, batch;  // batch = broadcast of a_batch and b_batch
  int64_t m, k, n;
  Shape out;
};

MatmulShapes matmul_shapes(const AttrReader& ctx, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty())
    ctx.fail("both inputs must have at least 1 dim, got 'a' ", shape_str(a), " and 'b' ",
             shape_str(b));
  MatmulShapes s;
  const bool a_vector = a.size() == 1, b_vector = b.size() == 1;
  Shape a2 = a_vector ? Shape{1, a[0]} : a;
  Shape b2 = b_vector ? Shape{b[0], 1} : b;
  s.m = a2[a2.size() - 2];
  s.k = a2.back();
  s.n = b2.back();
  const int64_t kb = b2[b2.size() - 2];
  if (s.k >= 0 && kb >= 0 && s.k != kb)
    ctx.fail("input 'a' ", shape_str(a), " and input 'b' ", shape_str(b),
             " cannot be multiplied (", s.k, " vs ", kb, " in the contracted dim)");
  if (s.k < 0) s.k = kb;
  s.a_batch.assign(a2.begin(), a2.end() - 2);
  s.b_batch.assign(b2.begin(), b2.end() - 2);
  // numpy broadcasting of the batch dims (right-aligned), with both full shapes in the error.
  const size_t rank = std::max(s.a_batch.size(), s.b_batch.size());
  s.batch.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - s.a_batch.size() ? 1 : s.a_batch[i - (rank - s.a_batch.size())];
    const int64_t db = i < rank - s.b_batch.size() ? 1 : s.b_batch[i - (rank - s.b_batch.size())];
    if (da == db || db == 1) {
      s.batch[i] = da;
    } else if (da == 1) {
      s.batch[i] = db;
    } else if (da < 0 || db < 0) {
      s.batch[i] = -1;  // unknown until run time
    } else {
      ctx.fail("the batch dims of input 'a' ", shape_str(a), " and input 'b' ", shape_str(b),
               " cannot be broadcast together (", da, " vs ", db, ")");
    }
  }
  s.out = s.batch;
  if (!a_vector) s.out.push_back(s.m);
  if (!b_vector) s.out.push_back(s.n);
  return s;
}

std::vector<TensorType> infer_matmul(const InferContext& ctx) {
  const TensorType& a = ctx.input(0);
  const TensorType& b = ctx.input(1);
  if (a.dtype != b.dtype)
    ctx.fail("inputs 'a' and 'b' have different dtypes: ", dtype_name(a.dtype), " and ",
             dtype_name(b.dtype));
  return {{a.dtype, matmul_shapes(ctx, a.shape, b.shape).out}};
}

template <typename T>
void matmul_loops(const OpContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const MatmulShapes s = matmul_shapes(ctx, a.shape(), b.shape());
  const Shape a_strides = broadcast_strides(s.a_batch, s.batch);  // in matrices
  const Shape b_strides = broadcast_strides(s.b_batch, s.batch);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* py = ctx.output(0).data<T>();
  const int64_t batches = shape_numel(s.batch);
  Shape index(s.batch.size(), 0);
  for (int64_t t = 0; t < batches; ++t) {
    int64_t a_matrix = 0, b_matrix = 0;
    for (size_t d = 0; d < index.size(); ++d) {
      a_matrix += index[d] * a_strides[d];
      b_matrix += index[d] * b_strides[d];
    }
    const T* am = pa + a_matrix * s.m * s.k;
    const T* bm = pb + b_matrix * s.k * s.n;
    T* ym = py + t * s.m * s.n;
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        double acc = 0.0;
        for (int64_t p = 0; p < s.k; ++p)
          acc += static_cast<double>(am[i * s.k + p]) * static_cast<double>(bm[p * s.n + j]);
        ym[i * s.n + j] = static_cast<T>(acc);
      }
    for (int64_t d = static_cast<int64_t>(index.size()) - 1; d >= 0; --d) {
      if (++index[d] < s.batch[d]) break;
      index[d] = 0;
    }
  }
}

void matmul_reference(OpContext& ctx) {
  EMBER_DISPATCH_FLOAT(ctx.input(0).dtype(), "matmul", [&] { matmul_loops<scalar_t>(ctx); });
}

}  // namespace

EMBER_REGISTER_OP(matmul)
    .doc("Matrix product with torch.matmul semantics: 1-D operands, batched operands, and "
         "broadcasting of the batch dims.")
    .input("a", kFloatTypes)
    .input("b", kFloatTypes)
    .output("y")
    .infer(infer_matmul)
    .kernel(DType::Undefined, Isa::Reference, matmul_reference);

}  // namespace ember
