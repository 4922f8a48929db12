// Fast fp32 gradients of conv2d (NCHW) on the packed GEMM, one factory per ISA:
//
//   conv2d_grad_input:  3x3 stride-1 layers with enough channels on x86: the forward Winograd
//                       convolution of dY with the transposed, turned weight; the others
//                       cols[K, P] = W_g^T [K, Og] x dY_g [Og, P], then col2im adds each column
//                       back into the input pixels it was gathered from (K = Cg*kh*kw taps,
//                       P = OH*OW pixels). A 1x1, stride-1, unpadded conv needs no col2im: the
//                       GEMM writes dX_g [Cg, P] directly.
//   conv2d_grad_weight: stride-1 layers of kernel width 3 on x86 take the direct kernel
//                       (conv2d_grad_weight_direct_impl.h: dot products along rows, no
//                       im2col); the others
//                       dW_g [Og, K] = sum over images of dY_g [Og, P] x im2col(X_g)^T [P, K],
//                       as one GEMM per chunk of images (the chunk's pixels concatenated along
//                       the GEMM's depth), chunk partials summed in chunk order. im2col^T is
//                       never stored: the GEMM's B packer gathers it block by block, so each
//                       input value is moved once, into the panel the microkernel reads.
//
// Threads: grad_input runs images in parallel (each image is independent; the GEMM inside is
// single-threaded then) or, with fewer images than threads, images in turn with a threaded
// GEMM. grad_weight runs chunks in parallel. Chunk sizes depend only on the shape, and the
// GEMM's summation order does not depend on the thread count, so 1 and N threads give the
// same bits.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/op_registry.h"
#include "kernels/conv2d_fast.h"
#include "kernels/gemm.h"

namespace ember::conv {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output columns ow whose input column ow * sw + off lies in [0, W): [lo, hi).
void valid_columns(const Conv2dShape& s, int64_t off, int64_t* lo, int64_t* hi) {
  *lo = off >= 0 ? 0 : ceil_div(-off, s.sw);
  *hi = s.W - 1 - off < 0 ? 0 : std::min(s.OW, (s.W - 1 - off) / s.sw + 1);
  if (*hi < *lo) *hi = *lo;
}

// col2im of one image's group: dx[c, ih, iw] = sum of the cols entries gathered from it.
void col2im(const Conv2dShape& s, int64_t Cg, const float* col, float* dx) {
  for (int64_t c = 0; c < Cg; ++c) {
    float* plane = dx + c * s.H * s.W;
    std::fill(plane, plane + s.H * s.W, 0.0f);
    for (int64_t ky = 0; ky < s.kh; ++ky)
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        const float* row = col + ((c * s.kh + ky) * s.kw + kx) * s.OH * s.OW;
        const int64_t off = kx * s.dw - s.pw;
        int64_t lo, hi;
        valid_columns(s, off, &lo, &hi);
        for (int64_t oh = 0; oh < s.OH; ++oh) {
          const int64_t ih = oh * s.sh - s.ph + ky * s.dh;
          if (ih < 0 || ih >= s.H) continue;
          float* d = plane + ih * s.W;
          const float* r = row + oh * s.OW;
          if (s.sw == 1) {
            float* dd = d + off;
            for (int64_t ow = lo; ow < hi; ++ow) dd[ow] += r[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow * s.sw + off] += r[ow];
          }
        }
      }
  }
}

// Reads the conv geometry from the attributes and the known input shapes; false when the fast
// path does not apply (unknown dims, invalid attributes: the reference kernel reports those).
bool read_shape(const KernelInit& init, const Shape& x, const Shape& w, Conv2dShape* s) {
  if (x.size() != 4 || w.size() != 4) return false;
  for (int64_t d : x)
    if (d < 0) return false;
  for (int64_t d : w)
    if (d <= 0) return false;
  const auto& stride = init.attr_ints("stride");
  const auto& padding = init.attr_ints("padding");
  const auto& dilation = init.attr_ints("dilation");
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2) return false;
  s->N = x[0];
  s->C = x[1];
  s->H = x[2];
  s->W = x[3];
  s->O = w[0];
  s->kh = w[2];
  s->kw = w[3];
  s->sh = stride[0];
  s->sw = stride[1];
  s->ph = padding[0];
  s->pw = padding[1];
  s->dh = dilation[0];
  s->dw = dilation[1];
  s->groups = init.attr_int("groups");
  if (s->groups <= 0 || s->sh <= 0 || s->sw <= 0 || s->dh <= 0 || s->dw <= 0 || s->ph < 0 ||
      s->pw < 0)
    return false;
  if (s->C != w[1] * s->groups || s->O % s->groups != 0) return false;
  s->OH = (s->H + 2 * s->ph - s->dh * (s->kh - 1) - 1) / s->sh + 1;
  s->OW = (s->W + 2 * s->pw - s->dw * (s->kw - 1) - 1) / s->sw + 1;
  if (s->H + 2 * s->ph - s->dh * (s->kh - 1) - 1 < 0 ||
      s->W + 2 * s->pw - s->dw * (s->kw - 1) - 1 < 0)
    return false;
  return true;
}

bool is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
}

}  // namespace

// Stride 1, no dilation, kernel width 3 (the padded rows are laid out for three taps), and an
// output at least one vector wide in total (else the GEMM form costs nothing anyway).
bool grad_weight_direct_supported(const Conv2dShape& s) {
  return s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 && s.kw == 3 && s.pw <= 2 &&
         s.OH > 0 && s.OW > 0 && s.N > 0;
}

namespace {

const gemm::SgemmKernel* gemm_for(Isa isa) {
  const gemm::SgemmKernel* k = gemm::sgemm_kernel_for(isa);
  if (!k || k->isa != (isa == Isa::AVX512_VNNI ? Isa::AVX512 : isa)) return nullptr;
  return k;
}

// The gradient of a 3x3 stride-1 convolution with padding p <= 2 is itself a 3x3 stride-1
// convolution: of dY, with the weight transposed (O <-> C) and turned by 180 degrees, padding
// 2 - p. Returns that convolution's shape when it would take Winograd, else N = -1.
Conv2dShape winograd_transposed_shape(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.N = -1;
  if (!(winograd_supported(s) && s.ph <= 2 && s.pw <= 2)) return t;
  t.N = s.N;
  t.C = s.O;
  t.O = s.C;
  t.H = s.OH;
  t.W = s.OW;
  t.OH = s.H;
  t.OW = s.W;
  t.ph = 2 - s.ph;
  t.pw = 2 - s.pw;
  // At least 32 outputs (the input's channels): fewer leave most of an AVX-512 GEMM tile
  // empty, and col2im is faster (16 channels at 28x28, batch 64: 7.7 against 7.0 ms).
  if (!prefer_winograd(t) || t.O < 32) t.N = -1;
  return t;
}

class Conv2dGradInputKernel : public OpKernel {
 public:
  Conv2dGradInputKernel(Isa isa, const gemm::SgemmKernel& gemm, Conv2dShape s)
      : gemm_(&gemm), s_(s), pointwise_(is_pointwise(s)) {
    transposed_ = winograd_transposed_shape(s);
    if (transposed_.N >= 0) winograd_ = winograd_for(isa);
    name_ = std::string(winograd_ ? "f32_conv2d_grad_input_winograd_f4x3_"
                        : pointwise_  ? "f32_conv2d_grad_input_1x1_"
                                      : "f32_conv2d_grad_input_col2im_") +
            gemm.name;
  }
  const char* name() const override { return name_.c_str(); }

  void run(OpContext& ctx) override {
    const Conv2dShape& s = s_;
    const float* dy = ctx.input(0).data<float>();
    const float* w = ctx.input(1).data<float>();
    float* dx = ctx.output(0).data<float>();
    if (ctx.output(0).numel() == 0) return;
    if (winograd_ && s.OH > 0 && s.OW > 0) {
      // dX = conv(dY, W') with W'[c, o, t] = W[o, c, 8 - t] (taps turned by 180 degrees), packed
      // straight from W.
      const Conv2dShape& t = transposed_;
      const gemm::PackedMatrix pw =
          winograd_pack_weights(*gemm_, w + 8, t.O, t.C, /*o_stride=*/9, /*c_stride=*/s.C * 9,
                                /*t_stride=*/-1);
      winograd_(t, dy, *gemm_, pw.data(), dx, ConvEpilogue{}, &ctx.pool());
      return;
    }
    const int64_t Og = s.O / s.groups, Cg = s.C / s.groups, K = Cg * s.kh * s.kw;
    const int64_t P = s.OH * s.OW;
    if (P == 0 || Og == 0) {
      std::fill(dx, dx + ctx.output(0).numel(), 0.0f);
      return;
    }
    // One image: for each group, cols = W_g^T x dY_g, then col2im (or straight into dX).
    auto image = [&](int64_t n, float* cols, ThreadPool* pool) {
      for (int64_t g = 0; g < s.groups; ++g) {
        const float* wg = w + g * Og * K;
        const float* dyg = dy + (n * s.O + g * Og) * P;
        float* dxg = dx + (n * s.C + g * Cg) * s.H * s.W;
        const gemm::Operand a = gemm::Operand::raw(wg, 1, K);  // A(k, o) = W[o, k]
        const gemm::Operand b = gemm::Operand::raw(dyg, P, 1);
        if (pointwise_) {
          gemm::sgemm(*gemm_, K, P, Og, a, b, dxg, P, gemm::Epilogue{}, pool);
        } else {
          gemm::sgemm(*gemm_, K, P, Og, a, b, cols, P, gemm::Epilogue{}, pool);
          col2im(s, Cg, cols, dxg);
        }
      }
    };
    const int64_t col_floats = pointwise_ ? 0 : K * P;
    if (s.N >= ctx.num_threads() && ctx.num_threads() > 1) {
      ctx.parallel_for(s.N, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> cols(static_cast<size_t>(col_floats));
        for (int64_t n = begin; n < end; ++n) image(n, cols.data(), nullptr);
      });
    } else {
      std::vector<float> cols(static_cast<size_t>(col_floats));
      for (int64_t n = 0; n < s.N; ++n) image(n, cols.data(), &ctx.pool());
    }
  }

 private:
  const gemm::SgemmKernel* gemm_;
  Conv2dShape s_;
  bool pointwise_;
  Conv2dShape transposed_;  // the Winograd convolution of dY that gives dX (N = -1: none)
  WinogradRunFn winograd_ = nullptr;
  std::string name_;
};

// Implicit im2col^T for the weight gradient: B[q, j] = the input value under tap j = (c, ky, kx)
// at pixel q of the chunk (q = image * P + oh * OW + ow), written straight into the GEMM's
// packed B panels (element (q, j) of panel j / NR at q * NR + j % NR), one K block at a time.
// Pixels are walked in runs along an output row, so for each tap the input is read as a
// contiguous row (stride 1) and each run's block of the panel stays in L1 while every tap of
// the panel fills it.
struct Im2colTransposedPacker {
  const Conv2dShape* s;
  const float* x;      // the chunk's first image, the group's first channel
  int64_t image_stride;  // floats from one image to the next (C * H * W)
  int64_t taps;        // K = Cg * kh * kw
  int nr;

  void operator()(int64_t k0, int64_t kc, int64_t panel_begin, int64_t panel_end,
                  float* out) const {
    const Conv2dShape& c = *s;
    const int64_t P = c.OH * c.OW, khw = c.kh * c.kw;
    // Per tap of a panel, decoded once per panel (not per run of pixels): the input plane's
    // offset, the row offset of ky, the column offset of kx and the valid output columns.
    struct Tap { int64_t plane, dy, off, lo, hi; };
    Tap tap_info[64];
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      float* dst = out + (panel - panel_begin) * kc * nr;
      const int64_t j0 = panel * nr, cols = std::min<int64_t>(nr, taps - j0);
      if (cols < nr)
        for (int64_t kk = 0; kk < kc; ++kk)
          std::fill(dst + kk * nr + cols, dst + kk * nr + nr, 0.0f);
      for (int64_t jj = 0; jj < cols; ++jj) {
        const int64_t j = j0 + jj, ch = j / khw, r = j % khw, ky = r / c.kw, kx = r % c.kw;
        Tap& t = tap_info[jj];
        t.plane = ch * c.H * c.W;
        t.dy = ky * c.dh - c.ph;
        t.off = kx * c.dw - c.pw;
        valid_columns(c, t.off, &t.lo, &t.hi);
      }
      for (int64_t q = k0; q < k0 + kc;) {
        const int64_t image = q / P, pix = q % P, oh = pix / c.OW, ow0 = pix % c.OW;
        const int64_t len = std::min(c.OW - ow0, k0 + kc - q);
        float* block = dst + (q - k0) * nr;
        const float* img = x + image * image_stride;
        for (int64_t jj = 0; jj < cols; ++jj) {
          const Tap& t = tap_info[jj];
          const int64_t ih = oh * c.sh + t.dy;
          float* d = block + jj;
          if (ih < 0 || ih >= c.H) {
            for (int64_t i = 0; i < len; ++i) d[i * nr] = 0.0f;
            continue;
          }
          const int64_t lo = std::clamp(t.lo, ow0, ow0 + len);
          const int64_t hi = std::clamp(t.hi, lo, ow0 + len);
          const float* row = img + t.plane + ih * c.W + t.off;
          int64_t ow = ow0;
          for (; ow < lo; ++ow) d[(ow - ow0) * nr] = 0.0f;
          if (c.sw == 1) {
            for (; ow < hi; ++ow) d[(ow - ow0) * nr] = row[ow];
          } else {
            for (; ow < hi; ++ow) d[(ow - ow0) * nr] = row[ow * c.sw];
          }
          for (; ow < ow0 + len; ++ow) d[(ow - ow0) * nr] = 0.0f;
        }
        q += len;
      }
    }
  }
};

GradWeightDirectFn grad_weight_direct_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::AVX512:
    case Isa::AVX512_VNNI: return &conv2d_grad_weight_direct_avx512;
    case Isa::AVX2: return &conv2d_grad_weight_direct_avx2;
#endif
    default: return nullptr;
  }
}

class Conv2dGradWeightKernel : public OpKernel {
 public:
  Conv2dGradWeightKernel(Isa isa, const gemm::SgemmKernel& gemm, Conv2dShape s)
      : gemm_(&gemm), s_(s) {
    if (grad_weight_direct_supported(s)) direct_ = grad_weight_direct_for(isa);
    name_ = direct_ ? std::string("f32_conv2d_grad_weight_direct_") + isa_name(isa)
                    : std::string("f32_conv2d_grad_weight_implicit_") + gemm.name;
  }
  const char* name() const override { return name_.c_str(); }

  void run(OpContext& ctx) override {
    const Conv2dShape& s = s_;
    const float* dy = ctx.input(0).data<float>();
    const float* x = ctx.input(1).data<float>();
    float* dw = ctx.output(0).data<float>();
    if (direct_) {
      direct_(s, dy, x, dw, &ctx.pool());
      return;
    }
    const int64_t Og = s.O / s.groups, Cg = s.C / s.groups, K = Cg * s.kh * s.kw;
    const int64_t P = s.OH * s.OW;
    const int64_t wsize = s.O * K;
    if (s.N == 0 || P == 0) {
      std::fill(dw, dw + wsize, 0.0f);
      return;
    }
    // Images per chunk: enough depth (about 4096 pixels) to keep the GEMM efficient; a
    // function of the shape only, so the result does not depend on the thread count.
    const int64_t chunk = std::clamp<int64_t>(ceil_div(4096, P), 1, s.N);
    const int64_t num_chunks = ceil_div(s.N, chunk);
    // Chunk partials of dW [O, K], summed in chunk order at the end.
    std::vector<float> partial(static_cast<size_t>(num_chunks * wsize));
    auto run_chunk = [&](int64_t ci, ThreadPool* pool) {
      const int64_t n0 = ci * chunk, nc = std::min(chunk, s.N - n0), depth = nc * P;
      float* out = partial.data() + ci * wsize;
      std::vector<float> dyc(static_cast<size_t>(Og * depth));
      for (int64_t g = 0; g < s.groups; ++g) {
        for (int64_t i = 0; i < nc; ++i)
          for (int64_t o = 0; o < Og; ++o)
            std::memcpy(dyc.data() + o * depth + i * P, dy + ((n0 + i) * s.O + g * Og + o) * P,
                        static_cast<size_t>(P) * 4);
        // dW_g [Og, K] = dYc [Og, depth] x im2col^T [depth, K], B packed on the fly.
        const gemm::BPacker packer = Im2colTransposedPacker{
            &s, x + (n0 * s.C + g * Cg) * s.H * s.W, s.C * s.H * s.W, K, gemm_->nr};
        gemm::sgemm(*gemm_, Og, K, depth, gemm::Operand::raw(dyc.data(), depth, 1),
                    gemm::Operand::packed_by(packer), out + g * Og * K, K, gemm::Epilogue{},
                    pool);
      }
    };
    if (num_chunks == 1) {
      run_chunk(0, &ctx.pool());
    } else {
      ctx.parallel_for(num_chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t ci = begin; ci < end; ++ci) run_chunk(ci, nullptr);
      });
    }
    ctx.parallel_for(wsize, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        float acc = partial[static_cast<size_t>(j)];
        for (int64_t ci = 1; ci < num_chunks; ++ci) acc += partial[static_cast<size_t>(ci * wsize + j)];
        dw[j] = acc;
      }
    });
  }

 private:
  const gemm::SgemmKernel* gemm_;
  Conv2dShape s_;
  GradWeightDirectFn direct_ = nullptr;
  std::string name_;
};

std::unique_ptr<OpKernel> create_grad_input(Isa isa, const KernelInit& init) {
  const gemm::SgemmKernel* gemm = gemm_for(isa);
  if (!gemm) return nullptr;
  if (init.input_type(0).dtype != DType::Float32 || init.input_type(1).dtype != DType::Float32)
    return nullptr;
  Conv2dShape s;
  if (!read_shape(init, init.attr_ints("input_shape"), init.input_type(1).shape, &s))
    return nullptr;
  return std::make_unique<Conv2dGradInputKernel>(isa, *gemm, s);
}

std::unique_ptr<OpKernel> create_grad_weight(Isa isa, const KernelInit& init) {
  const gemm::SgemmKernel* gemm = gemm_for(isa);
  if (!gemm) return nullptr;
  if (init.input_type(0).dtype != DType::Float32 || init.input_type(1).dtype != DType::Float32)
    return nullptr;
  Conv2dShape s;
  if (!read_shape(init, init.input_type(1).shape, init.attr_ints("weight_shape"), &s))
    return nullptr;
  return std::make_unique<Conv2dGradWeightKernel>(isa, *gemm, s);
}

}  // namespace

EMBER_REGISTER_KERNEL(conv2d_grad_input, DType::Float32, Isa::Portable,
                      "f32_conv2d_grad_input_portable",
                      [](const KernelInit& init) { return create_grad_input(Isa::Portable, init); });
EMBER_REGISTER_KERNEL(conv2d_grad_weight, DType::Float32, Isa::Portable,
                      "f32_conv2d_grad_weight_portable",
                      [](const KernelInit& init) { return create_grad_weight(Isa::Portable, init); });
#if defined(__x86_64__) || defined(_M_X64)
EMBER_REGISTER_KERNEL(conv2d_grad_input, DType::Float32, Isa::AVX2, "f32_conv2d_grad_input_avx2",
                      [](const KernelInit& init) { return create_grad_input(Isa::AVX2, init); });
EMBER_REGISTER_KERNEL(conv2d_grad_weight, DType::Float32, Isa::AVX2,
                      "f32_conv2d_grad_weight_avx2",
                      [](const KernelInit& init) { return create_grad_weight(Isa::AVX2, init); });
EMBER_REGISTER_KERNEL(conv2d_grad_input, DType::Float32, Isa::AVX512,
                      "f32_conv2d_grad_input_avx512",
                      [](const KernelInit& init) { return create_grad_input(Isa::AVX512, init); });
EMBER_REGISTER_KERNEL(conv2d_grad_weight, DType::Float32, Isa::AVX512,
                      "f32_conv2d_grad_weight_avx512",
                      [](const KernelInit& init) { return create_grad_weight(Isa::AVX512, init); });
#endif

}  // namespace ember::conv
