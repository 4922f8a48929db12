// Fast fp32 max_pool2d and max_pool2d_grad: the reference's window walk (pool_window.h: first
// maximum wins, NaN propagates, clipped windows of padding and ceil_mode), with the bounds of
// each window computed once instead of tested per tap, planes in parallel over the thread pool,
// and a branch-light path for the common 2x2 stride-2 unpadded window.
//
// Results are bit-identical to the reference: the forward op selects an input value, and the
// gradient adds each output gradient to the selected input in the reference's (oy, ox) order,
// in double when windows overlap (as the reference does), so the sum rounds once the same way.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "core/op_registry.h"
#include "kernels/reference/pool_window.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;
using reference::PoolParams;

// Taps of window (oy, ox) inside the input along one axis: k in [k0, k1).
inline void tap_range(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t kernel,
                      int64_t size, int64_t* k0, int64_t* k1) {
  const int64_t start = o * stride - pad;  // input index of tap 0
  int64_t lo = 0, hi = kernel;
  if (start < 0) lo = (-start + dil - 1) / dil;
  if (start + (kernel - 1) * dil >= size) hi = std::max<int64_t>(0, (size - 1 - start) / dil + 1);
  if (start >= size) hi = 0;
  *k0 = lo;
  *k1 = std::max(lo, hi);
}

// Index (iy * W + ix) of the window's maximum, as reference::max_pool_argmax; -1 if empty.
inline int64_t window_argmax(const float* xp, const Planes& in, const PoolParams& p, int64_t oy,
                             int64_t ox) {
  int64_t ky0, ky1, kx0, kx1;
  tap_range(oy, p.stride[0], p.padding[0], p.dilation[0], p.kernel[0], in.height, &ky0, &ky1);
  tap_range(ox, p.stride[1], p.padding[1], p.dilation[1], p.kernel[1], in.width, &kx0, &kx1);
  int64_t best = -1;
  float best_value = -std::numeric_limits<float>::infinity();
  for (int64_t ky = ky0; ky < ky1; ++ky) {
    const int64_t row = (oy * p.stride[0] - p.padding[0] + ky * p.dilation[0]) * in.width;
    for (int64_t kx = kx0; kx < kx1; ++kx) {
      const int64_t index = row + ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
      const float v = xp[index];
      if (best < 0) best = index;
      if (v > best_value || v != v) {
        best_value = v;
        best = index;
      }
    }
  }
  return best;
}

bool is_2x2_stride2(const PoolParams& p) {
  return p.kernel[0] == 2 && p.kernel[1] == 2 && p.stride[0] == 2 && p.stride[1] == 2 &&
         p.padding[0] == 0 && p.padding[1] == 0 && p.dilation[0] == 1 && p.dilation[1] == 1;
}

// The running maximum step of the reference: b replaces a when greater or NaN.
inline int pick(float a, float b) { return static_cast<int>(b > a) | static_cast<int>(b != b); }

inline uint32_t bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

class MaxPoolKernel : public OpKernel {
 public:
  MaxPoolKernel(const PoolParams& p, bool grad) : p_(p), grad_(grad) {}
  const char* name() const override {
    return grad_ ? "f32_max_pool2d_grad_portable" : "f32_max_pool2d_portable";
  }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(grad_ ? 1 : 0);
    const Planes in = reference::planes_of(x.shape());
    const Planes out = reference::planes_of(grad_ ? ctx.input(0).shape() : ctx.output(0).shape());
    const int64_t planes = in.batch * in.channels;
    const int64_t in_size = in.height * in.width, out_size = out.height * out.width;
    const float* px = x.data<float>();
    float* py = ctx.output(0).data<float>();
    const float* pg = grad_ ? ctx.input(0).data<float>() : nullptr;
    const bool fast2x2 = is_2x2_stride2(p_) && !p_.ceil_mode;
    // Windows overlap when a stride is shorter than the dilated kernel.
    const bool overlap = p_.stride[0] < (p_.kernel[0] - 1) * p_.dilation[0] + 1 ||
                         p_.stride[1] < (p_.kernel[1] - 1) * p_.dilation[1] + 1;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(in_size, 1));
    ctx.parallel_for(planes, grain, [&](int64_t begin, int64_t end) {
      std::vector<double> sum(grad_ && overlap ? static_cast<size_t>(in_size) : 0);
      const size_t scratch = grad_ || fast2x2 ? 0 : static_cast<size_t>(out.width);
      std::vector<int64_t> columns(3 * scratch);
      std::vector<float> row_max(scratch), tap_max(scratch);
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xp = px + plane * in_size;
        if (!grad_) {
          float* yp = py + plane * out_size;
          if (fast2x2) {
            forward_2x2(xp, in, out, yp);
            continue;
          }
          forward_separable(xp, in, out, p_, yp, columns, row_max, tap_max);
          continue;
        }
        const float* gp = pg + plane * out_size;
        float* dx = py + plane * in_size;
        if (fast2x2) {
          backward_2x2(xp, gp, in, out, dx);
          continue;
        }
        if (overlap) {
          std::fill(sum.begin(), sum.end(), 0.0);
          for (int64_t oy = 0; oy < out.height; ++oy)
            for (int64_t ox = 0; ox < out.width; ++ox) {
              const int64_t i = window_argmax(xp, in, p_, oy, ox);
              if (i >= 0) sum[static_cast<size_t>(i)] += static_cast<double>(gp[oy * out.width + ox]);
            }
          for (int64_t i = 0; i < in_size; ++i) dx[i] = static_cast<float>(sum[static_cast<size_t>(i)]);
        } else {
          std::fill(dx, dx + in_size, 0.0f);
          for (int64_t oy = 0; oy < out.height; ++oy)
            for (int64_t ox = 0; ox < out.width; ++ox) {
              const int64_t i = window_argmax(xp, in, p_, oy, ox);
              // Each input is in one window at most; 0 + g as the reference (-0 becomes +0).
              if (i >= 0) dx[i] = 0.0f + gp[oy * out.width + ox];
            }
        }
      }
    });
  }

 private:
  // Taps in the reference's order: (0,0), (0,1), (1,0), (1,1). Outputs cover whole windows
  // (floor mode), so every tap is inside the input.
  static void forward_2x2(const float* xp, const Planes& in, const Planes& out, float* yp) {
    for (int64_t oy = 0; oy < out.height; ++oy) {
      const float* r0 = xp + 2 * oy * in.width;
      const float* r1 = r0 + in.width;
      float* y = yp + oy * out.width;
      for (int64_t ox = 0; ox < out.width; ++ox) {
        float m = r0[2 * ox];
        m = pick(m, r0[2 * ox + 1]) ? r0[2 * ox + 1] : m;
        m = pick(m, r1[2 * ox]) ? r1[2 * ox] : m;
        m = pick(m, r1[2 * ox + 1]) ? r1[2 * ox + 1] : m;
        y[ox] = m;
      }
    }
  }

  // Any window: the maximum of each window row first, then across the rows. The reference's
  // row-major walk selects the first tap equal to the maximum, or the last NaN; the first row
  // holding the maximum, at its first tap, or the last row holding a NaN, at its last NaN, is
  // the same tap. Windows wholly inside a row are done tap by tap across all of them
  // (independent selects the compiler vectorizes); the few clipped ones at the edges window by
  // window. `columns` holds 3 * OW and `row_max` OW entries of scratch.
  static void forward_separable(const float* xp, const Planes& in, const Planes& out,
                                const PoolParams& p, float* yp, std::vector<int64_t>& columns,
                                std::vector<float>& row_max, std::vector<float>& tap_max) {
    const int64_t OW = out.width, sw = p.stride[1], dw = p.dilation[1], kw = p.kernel[1];
    int64_t* first = columns.data();  // input column of each window's first tap
    int64_t* taps = first + OW;       // taps of each window inside the row (0: empty)
    int64_t lo = OW, hi = 0;          // windows [lo, hi) have all kw taps
    for (int64_t ox = 0; ox < OW; ++ox) {
      int64_t k0, k1;
      tap_range(ox, sw, p.padding[1], dw, kw, in.width, &k0, &k1);
      first[ox] = ox * sw - p.padding[1] + k0 * dw;
      taps[ox] = k1 - k0;
      if (taps[ox] == kw) {
        lo = std::min(lo, ox);
        hi = ox + 1;
      }
    }
    constexpr float kEmpty = -std::numeric_limits<float>::infinity();
    float* rm = row_max.data();
    float* tm = tap_max.data();
    for (int64_t oy = 0; oy < out.height; ++oy) {
      int64_t ky0, ky1;
      tap_range(oy, p.stride[0], p.padding[0], p.dilation[0], p.kernel[0], in.height, &ky0, &ky1);
      float* y = yp + oy * OW;
      for (int64_t ky = ky0; ky < ky1; ++ky) {
        const float* row = xp + (oy * p.stride[0] - p.padding[0] + ky * p.dilation[0]) * in.width;
        float* m = ky == ky0 ? rm : tm;  // the first row writes the result directly
        for (int64_t ox = 0; ox < lo; ++ox) m[ox] = row_window_max(row + first[ox], taps[ox], dw);
        for (int64_t ox = hi; ox < OW; ++ox) m[ox] = row_window_max(row + first[ox], taps[ox], dw);
        if (lo < hi) {
          const float* base = row + first[lo] - lo * sw;  // tap 0 of window ox at base + ox * sw
          for (int64_t ox = lo; ox < hi; ++ox) m[ox] = base[ox * sw];
          for (int64_t kx = 1; kx < kw; ++kx) {
            const float* b = base + kx * dw;
            for (int64_t ox = lo; ox < hi; ++ox) {
              const float v = b[ox * sw];
              m[ox] = (v > m[ox]) | (v != v) ? v : m[ox];
            }
          }
        }
        if (ky != ky0)
          for (int64_t ox = 0; ox < OW; ++ox) {
            const float v = tm[ox];
            rm[ox] = (v > rm[ox]) | (v != v) ? v : rm[ox];
          }
      }
      if (ky0 >= ky1) std::fill(rm, rm + OW, kEmpty);
      std::memcpy(y, rm, static_cast<size_t>(OW) * 4);
    }
  }

  // One clipped window row (n taps, maybe none) by the reference's running maximum.
  static float row_window_max(const float* t, int64_t n, int64_t dw) {
    if (n <= 0) return -std::numeric_limits<float>::infinity();
    float m = t[0];
    for (int64_t k = 1; k < n; ++k) m = pick(m, t[k * dw]) ? t[k * dw] : m;
    return m;
  }

  // Writes all four inputs of each window (the selected one gets 0 + g, the others +0) with the
  // selection done in integer bit operations: compilers turn float ternaries into branches,
  // which random data mispredicts half the time.
  static void backward_2x2(const float* xp, const float* gp, const Planes& in, const Planes& out,
                           float* dx) {
    for (int64_t oy = 0; oy < out.height; ++oy) {
      const float* r0 = xp + 2 * oy * in.width;
      const float* r1 = r0 + in.width;
      float* d0 = dx + 2 * oy * in.width;
      float* d1 = d0 + in.width;
      const float* g = gp + oy * out.width;
      for (int64_t ox = 0; ox < out.width; ++ox) {
        const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        // Running maximum (as bits) and the index of the selected tap.
        uint32_t m = bits(a), which = 0;
        uint32_t take = 0u - static_cast<uint32_t>(pick(from_bits(m), b));
        m = (bits(b) & take) | (m & ~take);
        which = (1u & take) | (which & ~take);
        take = 0u - static_cast<uint32_t>(pick(from_bits(m), c));
        m = (bits(c) & take) | (m & ~take);
        which = (2u & take) | (which & ~take);
        take = 0u - static_cast<uint32_t>(pick(from_bits(m), d));
        which = (3u & take) | (which & ~take);
        const uint32_t gv = bits(0.0f + g[ox]);
        d0[2 * ox] = from_bits(gv & (0u - static_cast<uint32_t>(which == 0)));
        d0[2 * ox + 1] = from_bits(gv & (0u - static_cast<uint32_t>(which == 1)));
        d1[2 * ox] = from_bits(gv & (0u - static_cast<uint32_t>(which == 2)));
        d1[2 * ox + 1] = from_bits(gv & (0u - static_cast<uint32_t>(which == 3)));
      }
    }
    // An odd last row / column belongs to no window.
    if (in.height > 2 * out.height)
      std::fill(dx + 2 * out.height * in.width, dx + in.height * in.width, 0.0f);
    if (in.width > 2 * out.width)
      for (int64_t iy = 0; iy < 2 * out.height; ++iy) dx[iy * in.width + in.width - 1] = 0.0f;
  }

  PoolParams p_;
  bool grad_;
};

std::unique_ptr<OpKernel> create(const KernelInit& init, bool grad) {
  for (int64_t i = 0; i < init.num_inputs(); ++i)
    if (init.input_type(i).dtype != DType::Float32) return nullptr;
  const Shape& x = init.input_type(grad ? 1 : 0).shape;
  if (x.size() != 3 && x.size() != 4) return nullptr;  // the reference reports it
  return std::make_unique<MaxPoolKernel>(reference::read_pool_params(init, true), grad);
}

}  // namespace

EMBER_REGISTER_KERNEL(max_pool2d, DType::Float32, Isa::Portable, "f32_max_pool2d_portable",
                      [](const KernelInit& init) { return create(init, false); });
EMBER_REGISTER_KERNEL(max_pool2d_grad, DType::Float32, Isa::Portable,
                      "f32_max_pool2d_grad_portable",
                      [](const KernelInit& init) { return create(init, true); });

}  // namespace ember
