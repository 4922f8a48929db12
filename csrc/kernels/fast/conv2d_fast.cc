// Fast fp32 conv2d (NCHW), one factory per ISA that picks the algorithm for the layer's shape:
//   - depthwise 3x3 / 5x5, stride 1 / 2: direct kernel (conv2d_depthwise_<isa>);
//   - 3x3 stride 1 with enough channels (x86): Winograd F(4x4, 3x3) (conv2d_winograd_<isa>);
//   - 1x1, stride 1, no padding: GEMM on the input as it lies, out[O, HW] = W[O, C] x in[C, HW];
//   - anything else: GEMM per group with implicit im2col (the GEMM's B packer gathers patches
//     straight into packed panels, one L2-sized block at a time; no im2col matrix in memory);
//   - on small output maps (7x7, 14x14) the 1x1 and im2col GEMMs run transposed, pixels x
//     channels, so the pixels fill MR-row tiles instead of NR-column panels
//     (prefer_transposed_conv; the im2col is then gathered into packed A panels).
// Bias and relu / relu6 are fused into the GEMM's store (or the depthwise loop). A constant
// weight (a model's) is packed once when the kernel is created.
#include <algorithm>
#include <cstring>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "core/scratch.h"
#include "kernels/conv2d_fast.h"
#include "kernels/gemm.h"
#include "kernels/reference/window2d.h"

namespace ember::conv {

bool depthwise_supported(const Conv2dShape& s) {
  return s.groups == s.C && s.O == s.C && s.kh == s.kw && (s.kh == 3 || s.kh == 5) &&
         s.sh == s.sw && (s.sh == 1 || s.sh == 2) && s.dh == 1 && s.dw == 1 && s.ph < s.kh &&
         s.pw < s.kw;
}

bool winograd_supported(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 &&
         s.groups == 1;
}

gemm::PackedMatrix winograd_pack_weights(const gemm::SgemmKernel& kernel, const float* w,
                                         int64_t O, int64_t C, int64_t o_stride,
                                         int64_t c_stride, int64_t t_stride) {
  const int64_t nr = kernel.nr, panels = (O + nr - 1) / nr;
  gemm::PackedMatrix out;
  out.kernel = &kernel;
  out.rows = O;
  out.depth = C;
  out.storage = Tensor::zeros({panels * C * 9 * nr}, DType::Float32);
  float* dst = out.storage.data<float>();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < 9; ++t)
        dst[((o / nr * C + c) * 9 + t) * nr + o % nr] = w[o * o_stride + c * c_stride + t * t_stride];
  return out;
}

WinogradRunFn winograd_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::AVX512:
    case Isa::AVX512_VNNI: return &conv2d_winograd_avx512;
    case Isa::AVX2: return &conv2d_winograd_avx2;
#endif
    default: return nullptr;
  }
}

// Winograd does 4x fewer multiplies but adds transforms: worth it with enough channels. The
// choice depends on the shape only, never on whether the weight is a constant, so eager calls
// and a loaded model run the same arithmetic (bit-identical results).
bool prefer_winograd(const Conv2dShape& s) {
  return winograd_supported(s) && s.C >= 16 && s.O >= 16;
}

bool prefer_transposed_conv(const gemm::SgemmKernel& kernel, int64_t P, int64_t O, int64_t K) {
  // The transposed product keeps K in one block: its A panels and each K x NR weight panel
  // must stay cache-sized.
  if (K > 4096) return false;
  auto round = [](int64_t v, int64_t m) { return (v + m - 1) / m * m; };
  // Tile area computed either way; a transposed tile also goes through a local buffer, which
  // costs about as much as kTransposeSteps steps of its K loop.
  constexpr double kTransposeSteps = 30.0;
  const double direct = static_cast<double>(round(O, kernel.mr) * round(P, kernel.nr));
  const double transposed = static_cast<double>(round(P, kernel.mr) * round(O, kernel.nr)) * (K + kTransposeSteps) / K;
  // Measured (AVX-512, 1 and 2 threads): at P <= 2 NR (7x7) the direct product also pays for
  // its zero-padded column panel, so the transposed one wins up to 5 % more tile area; up to
  // 16x16 it needs 8 % less; on larger maps the per-tile copies cost more than they save.
  if (P <= 2 * kernel.nr) return transposed < 1.05 * direct;
  return P <= 256 && transposed < 0.92 * direct;
}

namespace {

using gemm::Activation;

// 64-bit fingerprint of a weight's bytes (four independent multiply-xor lanes, so it runs at
// memory speed): a weight updated in place gets a new fingerprint.
uint64_t fingerprint(const float* data, int64_t count) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  const size_t n = static_cast<size_t>(count) * 4;
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h[4] = {1, 2, 3, 4};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l) {
      uint64_t v;
      std::memcpy(&v, bytes + i + 8 * l, 8);
      h[l] = (h[l] ^ v) * kMul;
      h[l] ^= h[l] >> 29;
    }
  for (; i < n; ++i) h[0] = (h[0] ^ bytes[i]) * kMul;
  return ((h[0] * kMul) ^ h[1]) * kMul ^ ((h[2] * kMul) ^ h[3]);
}

// Packed Winograd weights for kernels created without a constant weight (an eager call creates
// a kernel per call): the gathering copy costs more than fingerprinting the weight, so results
// are kept, keyed by the weight's address, shape, microkernel and fingerprint, least recently
// used evicted beyond a byte budget. The cached value is exactly what a loaded model packs.
class WinogradWeightCache {
 public:
  std::shared_ptr<const gemm::PackedMatrix> get(const gemm::SgemmKernel& kernel, const float* w,
                                                int64_t O, int64_t C) {
    const Key key{w, O, C, &kernel, fingerprint(w, O * C * 9)};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it)
        if (it->key == key) {
          entries_.splice(entries_.begin(), entries_, it);  // most recently used first
          return entries_.front().value;
        }
    }
    auto value = std::make_shared<const gemm::PackedMatrix>(
        winograd_pack_weights(kernel, w, O, C, C * 9, 9, 1));
    const int64_t bytes = static_cast<int64_t>(value->storage.nbytes());
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_front({key, value, bytes});
    total_ += bytes;
    while (total_ > kBudgetBytes && entries_.size() > 1) {
      total_ -= entries_.back().bytes;
      entries_.pop_back();
    }
    return value;
  }

 private:
  struct Key {
    const float* w;
    int64_t O, C;
    const gemm::SgemmKernel* kernel;
    uint64_t hash;
    bool operator==(const Key& o) const {
      return w == o.w && O == o.O && C == o.C && kernel == o.kernel && hash == o.hash;
    }
  };
  struct Entry {
    Key key;
    std::shared_ptr<const gemm::PackedMatrix> value;
    int64_t bytes;
  };
  static constexpr int64_t kBudgetBytes = int64_t{256} << 20;
  std::mutex mutex_;
  std::list<Entry> entries_;
  int64_t total_ = 0;
};

WinogradWeightCache& winograd_cache() {
  static WinogradWeightCache* cache = new WinogradWeightCache();  // outlives static kernels
  return *cache;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

DepthwiseFn depthwise_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::AVX512:
    case Isa::AVX512_VNNI: return &conv2d_depthwise_avx512;
    case Isa::AVX2: return &conv2d_depthwise_avx2;
#endif
    default: return &conv2d_depthwise_portable;
  }
}

// Implicit im2col for one (image, group): B[k, p] with k = (c, ky, kx) over the group's input
// channels and p = (oh, ow) the output pixel, written straight into packed GEMM panels.
struct Im2colPacker {
  const Conv2dShape* s;
  const float* x;  // the group's first input channel of this image
  int nr;

  // Per depth row k = (c, ky, kx): the input plane, the row offset of tap ky, the column offset
  // of tap kx and the output columns [lo, hi) whose input column is inside the image.
  struct Row { const float* plane; int64_t dy, off, lo, hi; };

  // Rows k0 .. k0 + kc - 1 decoded into rows_small, or into `large` when there are more.
  Row* decode(int64_t k0, int64_t kc, Row* rows_small, std::vector<Row>& large) const {
    const Conv2dShape& c = *s;
    const int64_t taps = c.kh * c.kw;
    if (kc > 256) large.resize(static_cast<size_t>(kc));
    Row* rows = kc > 256 ? large.data() : rows_small;
    for (int64_t kk = 0; kk < kc; ++kk) {
      const int64_t k = k0 + kk;
      const int64_t ch = k / taps, r = k % taps, ky = r / c.kw, kx = r % c.kw;
      const int64_t off = kx * c.dw - c.pw;  // iw = ow * sw + off
      rows[kk] = {x + ch * c.H * c.W, ky * c.dh - c.ph, off, off >= 0 ? 0 : ceil_div(-off, c.sw),
                  c.W - 1 - off < 0 ? 0 : std::min(c.OW, (c.W - 1 - off) / c.sw + 1)};
    }
    return rows;
  }

  // Output pixels ow .. ow + len - 1 of output row oh for depth row `row` into d (zero where
  // the tap falls outside the image).
  void run(const Row& row, int64_t oh, int64_t ow, int64_t len, float* d) const {
    const Conv2dShape& c = *s;
    const int64_t ih = oh * c.sh + row.dy;
    // Inline loops, not fill/memcpy calls: runs are at most an output row, where a library call
    // would cost about as much as the copy.
    if (ih < 0 || ih >= c.H) {
      for (int64_t j = 0; j < len; ++j) d[j] = 0.0f;
      return;
    }
    const float* in_row = row.plane + ih * c.W;
    const int64_t a = std::clamp(row.lo, ow, ow + len);
    const int64_t b = std::clamp(row.hi, a, ow + len);
    for (int64_t j = 0; j < a - ow; ++j) d[j] = 0.0f;
    float* __restrict dm = d - ow;
    const float* __restrict src = in_row + row.off;
    if (c.sw == 1) {
      for (int64_t q = a; q < b; ++q) dm[q] = src[q];
    } else if (c.sw == 2) {
      for (int64_t q = a; q < b; ++q) dm[q] = src[2 * q];
    } else {
      for (int64_t q = a; q < b; ++q) dm[q] = src[q * c.sw];
    }
    for (int64_t j = b - ow; j < len; ++j) d[j] = 0.0f;
  }

  // BRowPacker: columns (output pixels) [col_begin, col_end) of depth rows [k0, k0 + kc),
  // row-major with row stride ld. Each depth row is one run per output row the columns span.
  void rows(int64_t k0, int64_t kc, int64_t col_begin, int64_t col_end, float* out, int64_t ld) const {
    const Conv2dShape& c = *s;
    const int64_t last = std::min(col_end, c.OH * c.OW);
    Row rows_small[256];
    std::vector<Row> large;
    const Row* rows = decode(k0, kc, rows_small, large);
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* d = out + kk * ld - col_begin;
      for (int64_t q = std::max(last, col_begin); q < col_end; ++q) d[q] = 0.0f;  // past the image's pixels
      for (int64_t pix = col_begin; pix < last;) {
        const int64_t oh = pix / c.OW, ow = pix % c.OW, len = std::min(c.OW - ow, last - pix);
        run(rows[kk], oh, ow, len, d + pix);
        pix += len;
      }
    }
  }

  void operator()(int64_t k0, int64_t kc, int64_t panel_begin, int64_t panel_end,
                  float* out) const {
    const Conv2dShape& c = *s;
    const int64_t P = c.OH * c.OW;
    Row rows_small[256];
    std::vector<Row> large;
    const Row* rows = decode(k0, kc, rows_small, large);
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      float* panel = out + (p - panel_begin) * kc * nr;
      const int64_t p0 = p * nr, cols = std::min<int64_t>(nr, P - p0);
      // Runs of the panel's pixels that share an output row.
      struct Run { int64_t oh, ow, len, j; } runs[64];
      int nruns = 0;
      for (int64_t j = 0, pix = p0; j < cols;) {
        const int64_t oh = pix / c.OW, ow = pix % c.OW;
        const int64_t len = std::min(c.OW - ow, cols - j);
        runs[nruns++] = {oh, ow, len, j};
        j += len;
        pix += len;
      }
      for (int64_t kk = 0; kk < kc; ++kk) {
        const Row& row_info = rows[kk];
        float* d = panel + kk * nr;
        for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;  // columns past the image's pixels
        for (int ri = 0; ri < nruns; ++ri) run(row_info, runs[ri].oh, runs[ri].ow, runs[ri].len, d + runs[ri].j);
      }
    }
  }
};

// im2col transposed, straight into packed GEMM A panels for one (image, group): row p = (oh, ow)
// the output pixel, column k = (c, ky, kx); element (p, k) at ((p / MR) * K + k) * MR + p % MR,
// rows past P zero. Panels [panel_begin, panel_end).
void im2col_packed_a(const Conv2dShape& c, const float* x, int mr, int64_t K, int64_t panel_begin,
                     int64_t panel_end, float* out) {
  const int64_t P = c.OH * c.OW, taps = c.kh * c.kw;
  for (int64_t pi = panel_begin; pi < panel_end; ++pi) {
    // The panel's pixels: top-left input corner of each, or past the end.
    int64_t ih0[gemm::kMaxMR], iw0[gemm::kMaxMR];
    bool valid[gemm::kMaxMR];
    for (int i = 0; i < mr; ++i) {
      const int64_t pix = pi * mr + i;
      valid[i] = pix < P;
      ih0[i] = valid[i] ? (pix / c.OW) * c.sh - c.ph : 0;
      iw0[i] = valid[i] ? (pix % c.OW) * c.sw - c.pw : 0;
    }
    float* panel = out + pi * K * mr;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t ch = k / taps, r = k % taps, dy = (r / c.kw) * c.dh, dx = (r % c.kw) * c.dw;
      const float* plane = x + ch * c.H * c.W;
      float* d = panel + k * mr;
      for (int i = 0; i < mr; ++i) {
        const int64_t ih = ih0[i] + dy, iw = iw0[i] + dx;
        d[i] = valid[i] && ih >= 0 && ih < c.H && iw >= 0 && iw < c.W ? plane[ih * c.W + iw] : 0.0f;
      }
    }
  }
}

class Conv2dFastKernel : public OpKernel {
 public:
  Conv2dFastKernel(Isa isa, const gemm::SgemmKernel& gemm, const KernelInit& init,
                   Conv2dShape shape)
      : gemm_(&gemm), shape_(shape) {
    activation_ = gemm::parse_activation(init.attr_string("activation"), init);
    if (activation_ != Activation::None) {
      ep_.clamp = true;
      ep_.lo = 0.0f;
      ep_.hi = activation_ == Activation::Relu6 ? 6.0f : std::numeric_limits<float>::infinity();
    }
    if (depthwise_supported(shape_)) {
      depthwise_ = depthwise_for(isa);
      name_ = std::string("f32_conv2d_dw") + std::to_string(shape_.kh) + "x" +
              std::to_string(shape_.kw) + "_" + isa_name(isa);
      return;
    }
    const WinogradRunFn wino = winograd_for(isa);
    if (wino && prefer_winograd(shape_)) {
      winograd_ = wino;
      name_ = std::string("f32_conv2d_winograd_f4x3_") + gemm.name;
      if (const Tensor* w = init.constant(1))
        packed_.push_back(winograd_pack_weights(gemm, w->data<float>(), shape_.O, shape_.C,
                                                shape_.C * 9, 9, 1));
      return;
    }
    pointwise_ = shape_.kh == 1 && shape_.kw == 1 && shape_.sh == 1 && shape_.sw == 1 &&
                 shape_.ph == 0 && shape_.pw == 0;
    const int64_t Og = shape_.O / shape_.groups, K = shape_.C / shape_.groups * shape_.kh * shape_.kw;
    // (An im2col layer also gathers its patches element by element for the transposed product:
    // worth it on 7x7 maps, not on 14x14 ones, measured.)
    transposed_ = shape_.OH > 0 && shape_.OW > 0 && (pointwise_ || shape_.OH * shape_.OW <= 2 * gemm.nr) &&
                  prefer_transposed_conv(gemm, shape_.OH * shape_.OW, Og, K);
    name_ = std::string(pointwise_ ? (transposed_ ? "f32_conv2d_1x1t_" : "f32_conv2d_1x1_")
                                   : (transposed_ ? "f32_conv2d_im2colt_" : "f32_conv2d_im2col_")) +
            gemm.name;
    if (const Tensor* w = init.constant(1)) {
      for (int64_t g = 0; g < shape_.groups; ++g) {
        const float* wg = w->data<float>() + g * Og * K;
        // The transposed product's B is W^T: element (k, o) at wg[o * K + k].
        packed_.push_back(transposed_ ? gemm::pack_b(gemm, K, Og, wg, 1, K) : gemm::pack_a(gemm, Og, K, wg, K, 1));
      }
    }
  }

  const char* name() const override { return name_.c_str(); }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    Tensor& y = ctx.output(0);
    Conv2dShape s = shape_;
    s.N = x.ndim() == 4 ? x.dim(0) : 1;  // [C, H, W] is one image
    s.H = x.dim(-2);
    s.W = x.dim(-1);
    s.OH = y.dim(-2);
    s.OW = y.dim(-1);
    ConvEpilogue ep = ep_;
    ep.bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    if (y.numel() == 0) return;
    if (depthwise_) {
      depthwise_(s, x.data<float>(), w.data<float>(), y.data<float>(), ep, &ctx.pool());
      return;
    }
    if (winograd_) {
      std::shared_ptr<const gemm::PackedMatrix> cached;
      if (packed_.empty()) cached = winograd_cache().get(*gemm_, w.data<float>(), s.O, s.C);
      const float* pw = packed_.empty() ? cached->data() : packed_[0].data();
      winograd_(s, x.data<float>(), *gemm_, pw, y.data<float>(), ep, &ctx.pool());
      return;
    }
    const int64_t Og = s.O / s.groups, Cg = s.C / s.groups, K = Cg * s.kh * s.kw;
    const int64_t P = s.OH * s.OW;
    auto product = [&](int64_t n, int64_t g, ThreadPool* pool) {
      const float* xg = x.data<float>() + (n * s.C + g * Cg) * s.H * s.W;
      float* yg = y.data<float>() + (n * s.O + g * Og) * P;
      const float* bias = ep.bias ? ep.bias + g * Og : nullptr;
      const float* wg = w.data<float>() + g * Og * K;
      gemm::Epilogue gep;
      gep.activation = activation_;
      if (transposed_) {
        // out^T[P, Og] = im2col^T[P, K] x W^T[K, Og], stored transposed into out[Og, P]; a
        // 1x1 layer's im2col^T is its input read with swapped strides, any other's is gathered
        // into packed A panels first.
        gep.col_bias = bias;
        gep.transposed_c = true;
        const gemm::Operand wt = packed_.empty() ? gemm::Operand::raw(wg, 1, K) : gemm::Operand::prepacked(packed_[g]);
        if (pointwise_) {
          gemm::sgemm(*gemm_, P, Og, K, gemm::Operand::raw(xg, 1, P), wt, yg, P, gep, pool);
          return;
        }
        thread_local FloatScratch a_panels;
        const int64_t panels = (P + gemm_->mr - 1) / gemm_->mr;
        float* a = a_panels.get(panels * K * gemm_->mr, "conv2d");
        auto gather = [&](int64_t p0, int64_t p1) { im2col_packed_a(s, xg, gemm_->mr, K, p0, p1, a); };
        if (pool) pool->parallel_for(panels, 1, gather); else gather(0, panels);
        gemm::sgemm(*gemm_, P, Og, K, gemm::Operand::prepacked(static_cast<const float*>(a)), wt, yg, P, gep, pool);
        return;
      }
      gep.row_bias = bias;
      const gemm::Operand a = packed_.empty() ? gemm::Operand::raw(wg, K, 1) : gemm::Operand::prepacked(packed_[g]);
      if (pointwise_) {
        gemm::sgemm(*gemm_, Og, P, K, a, gemm::Operand::raw(xg, P, 1), yg, P, gep, pool);
      } else {
        const Im2colPacker im2col{&s, xg, gemm_->nr};
        const gemm::BPacker packer = im2col;
        const gemm::BRowPacker row_packer = [&im2col](int64_t k0, int64_t kc, int64_t c0, int64_t c1, float* out,
                                                      int64_t ld) { im2col.rows(k0, kc, c0, c1, out, ld); };
        gemm::sgemm(*gemm_, Og, P, K, a, gemm::Operand::packed_by(packer, &row_packer), yg, P, gep, pool);
      }
    };
    // A batch runs one image's product per thread when that pays (one_product_per_thread):
    // each thread's working set is one image.
    const int64_t items = s.N * s.groups;
    if (s.N >= ctx.pool().num_threads() && gemm::one_product_per_thread(items, ctx.pool().num_threads())) {
      ctx.pool().parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) product(i / s.groups, i % s.groups, nullptr);
      });
      return;
    }
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t g = 0; g < s.groups; ++g) product(n, g, &ctx.pool());
  }

 private:
  const gemm::SgemmKernel* gemm_;
  Conv2dShape shape_;
  Activation activation_ = Activation::None;
  ConvEpilogue ep_;
  DepthwiseFn depthwise_ = nullptr;
  WinogradRunFn winograd_ = nullptr;
  bool pointwise_ = false;
  bool transposed_ = false;  // computed as pixels x channels (see prefer_transposed_conv)
  std::vector<gemm::PackedMatrix> packed_;
  std::string name_;
};

std::unique_ptr<OpKernel> create_conv2d(Isa isa, const KernelInit& init) {
  const gemm::SgemmKernel* gemm = gemm::sgemm_kernel_for(isa);
  if (!gemm || gemm->isa != (isa == Isa::AVX512_VNNI ? Isa::AVX512 : isa)) return nullptr;
  const TensorType& xt = init.input_type(0);
  const TensorType& wt = init.input_type(1);
  if (xt.dtype != DType::Float32 || wt.dtype != DType::Float32) return nullptr;
  if (init.has_input(2) && init.input_type(2).dtype != DType::Float32) return nullptr;
  if ((xt.ndim() != 4 && xt.ndim() != 3) || wt.ndim() != 4) return nullptr;
  for (int64_t d : wt.shape)
    if (d <= 0) return nullptr;  // weight shape unknown until run time: leave it to the reference
  Conv2dShape s;
  s.C = xt.shape[xt.ndim() - 3];
  s.H = xt.shape[xt.ndim() - 2];  // -1 when dynamic
  s.W = xt.shape[xt.ndim() - 1];
  s.O = wt.shape[0];
  s.kh = wt.shape[2];
  s.kw = wt.shape[3];
  const auto& stride = init.attr_ints("stride");
  const auto& padding = init.attr_ints("padding");
  const auto& dilation = init.attr_ints("dilation");
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2) return nullptr;
  s.sh = stride[0];
  s.sw = stride[1];
  s.ph = padding[0];
  s.pw = padding[1];
  s.dh = dilation[0];
  s.dw = dilation[1];
  s.groups = init.attr_int("groups");
  if (s.groups <= 0 || s.sh <= 0 || s.sw <= 0 || s.dh <= 0 || s.dw <= 0 || s.ph < 0 || s.pw < 0)
    return nullptr;  // invalid: the reference kernel's checks report it
  // The output size when the input's is static (-1 otherwise: such layers are not transposed).
  s.OH = reference::conv_output_size(s.H, s.kh, s.sh, s.ph, s.dh);
  s.OW = reference::conv_output_size(s.W, s.kw, s.sw, s.pw, s.dw);
  if (s.C < 0) s.C = wt.shape[1] * s.groups;
  if (s.C != wt.shape[1] * s.groups || s.O % s.groups != 0) return nullptr;
  return std::make_unique<Conv2dFastKernel>(isa, *gemm, init, s);
}

}  // namespace

EMBER_REGISTER_KERNEL(conv2d, DType::Float32, Isa::Portable, "f32_conv2d_portable",
                      [](const KernelInit& init) { return create_conv2d(Isa::Portable, init); });
#if defined(__x86_64__) || defined(_M_X64)
EMBER_REGISTER_KERNEL(conv2d, DType::Float32, Isa::AVX2, "f32_conv2d_avx2",
                      [](const KernelInit& init) { return create_conv2d(Isa::AVX2, init); });
EMBER_REGISTER_KERNEL(conv2d, DType::Float32, Isa::AVX512, "f32_conv2d_avx512",
                      [](const KernelInit& init) { return create_conv2d(Isa::AVX512, init); });
#endif

}  // namespace ember::conv
