// AVX-512 fp32 max_pool2d (forward) for column strides 1 and 2 without dilation: 16 outputs of
// an output row per vector, the window's taps visited in the reference's row-major order.
//
// Bit-identical to the reference (pool_window.h): each tap v replaces the running maximum m when
// v > m or v is NaN. vmaxps(v, m) returns v only when v > m (m on equality, so the first of
// tied values, -0 or +0, stays; m when either is NaN, so a NaN maximum stays), and a blend on
// isnan(v) takes a NaN tap. Taps outside the input load as -inf, which never replaces anything:
// the same as skipping them, so clipped windows (padding, ceil_mode) need no special case, and
// a window with no tap inside the input is -inf, as in the reference.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include "core/op_registry.h"
#include "kernels/bit_range.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;
using reference::PoolParams;

inline __m512 take(__m512 m, __m512 v) {
  const __m512 larger = _mm512_max_ps(v, m);
  return _mm512_mask_mov_ps(larger, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

// Widest kernel row the fast kernel takes (per-column masks live on the stack).
constexpr int64_t kMaxKernelWidth = 16;

template <int SW>
void pool_plane(const float* x, const Planes& in, int64_t out_h, int64_t out_w, const PoolParams& p, float* y) {
  const __m512 empty = _mm512_set1_ps(-INFINITY);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const int64_t kh = p.kernel[0], kw = p.kernel[1], sh = p.stride[0];
  for (int64_t ox0 = 0; ox0 < out_w; ox0 += 16) {
    const int64_t n = std::min<int64_t>(16, out_w - ox0);
    // Lane i of tap kx reads column col[kx] + SW * i; columns outside [0, width) and lanes
    // past the row's last output load as -inf (mask[kx]: the 16 or 32 loaded floats to read).
    int64_t col[kMaxKernelWidth];
    uint32_t mask[kMaxKernelWidth];
    for (int64_t kx = 0; kx < kw; ++kx) {
      col[kx] = ox0 * SW - p.padding[1] + kx;
      mask[kx] = bit_range(-col[kx], in.width - col[kx]) & bit_range(0, SW * (n - 1) + 1);
    }
    const __mmask16 store = static_cast<__mmask16>((1u << n) - 1);
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const int64_t iy0 = oy * sh - p.padding[0];
      const int64_t ky0 = std::max<int64_t>(0, -iy0), ky1 = std::min<int64_t>(kh, in.height - iy0);
      __m512 m = empty;
      for (int64_t ky = ky0; ky < ky1; ++ky) {
        const float* row = x + (iy0 + ky) * in.width;
        for (int64_t kx = 0; kx < kw; ++kx) {
          const float* t = row + col[kx];
          __m512 v = _mm512_mask_loadu_ps(empty, static_cast<__mmask16>(mask[kx]), t);
          if constexpr (SW == 2)
            v = _mm512_permutex2var_ps(v, even, _mm512_mask_loadu_ps(empty, static_cast<__mmask16>(mask[kx] >> 16), t + 16));
          m = take(m, v);
        }
      }
      _mm512_mask_storeu_ps(y + oy * out_w + ox0, store, m);
    }
  }
}

class MaxPoolAvx512 : public OpKernel {
 public:
  explicit MaxPoolAvx512(const PoolParams& p) : p_(p) {}
  const char* name() const override { return "f32_max_pool2d_avx512"; }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Planes in = reference::planes_of(x.shape());
    const Planes out = reference::planes_of(ctx.output(0).shape());
    const int64_t in_size = in.height * in.width, out_size = out.height * out.width;
    const float* px = x.data<float>();
    float* py = ctx.output(0).data<float>();
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(in_size, 1));
    ctx.parallel_for(in.batch * in.channels, grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xp = px + plane * in_size;
        float* yp = py + plane * out_size;
        if (p_.stride[1] == 1) {
          pool_plane<1>(xp, in, out.height, out.width, p_, yp);
        } else {
          pool_plane<2>(xp, in, out.height, out.width, p_, yp);
        }
      }
    });
  }

 private:
  PoolParams p_;
};

std::unique_ptr<OpKernel> create(const KernelInit& init) {
  if (init.input_type(0).dtype != DType::Float32) return nullptr;
  if (!reference::is_image_rank(init.input_type(0).shape)) return nullptr;  // the reference reports it
  const PoolParams p = reference::read_pool_params(init, true);
  if (p.dilation[0] != 1 || p.dilation[1] != 1 || (p.stride[1] != 1 && p.stride[1] != 2)) return nullptr;
  if (p.kernel[1] > kMaxKernelWidth) return nullptr;
  return std::make_unique<MaxPoolAvx512>(p);
}

}  // namespace

EMBER_REGISTER_KERNEL(max_pool2d, DType::Float32, Isa::AVX512, "f32_max_pool2d_avx512", create);

}  // namespace ember
