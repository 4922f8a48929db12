// Fast fp32 average pooling and its gradients: avg_pool2d, avg_pool2d_grad, adaptive_avg_pool2d,
// adaptive_avg_pool2d_grad. Each (image, channel) plane is independent, so planes run in
// parallel over the thread pool; a gradient accumulates into a per-plane double buffer that
// stays in cache (the reference keeps one for the whole tensor). Global pooling (output 1 x 1,
// the classifier head of most CNNs) is a plane sum, and its gradient a fill.
//
// Per element the arithmetic is the reference's (the same double sums in the same order, the
// same divisions), so results are bit-identical to it.
#include <algorithm>
#include <memory>
#include <vector>

#include "core/op_registry.h"
#include "kernels/reference/pool_window.h"
#include "kernels/reference/window2d.h"

namespace ember {
namespace {

using reference::Planes;

enum class Kind { AvgPool, AvgPoolGrad, Adaptive, AdaptiveGrad };

const char* kernel_name(Kind k) {
  switch (k) {
    case Kind::AvgPool: return "f32_avg_pool2d_portable";
    case Kind::AvgPoolGrad: return "f32_avg_pool2d_grad_portable";
    case Kind::Adaptive: return "f32_adaptive_avg_pool2d_portable";
    case Kind::AdaptiveGrad: return "f32_adaptive_avg_pool2d_grad_portable";
  }
  return "";
}

// The input window [y0, y1) x [x0, x1) of output (oy, ox) and its divisor (0: write 0).
struct Window {
  int64_t y0, y1, x0, x1;
  double divisor;
};

class AvgPoolKernel : public OpKernel {
 public:
  AvgPoolKernel(Kind kind, reference::PoolParams p, bool count_include_pad)
      : kind_(kind), p_(p), count_include_pad_(count_include_pad) {}
  const char* name() const override { return kernel_name(kind_); }

  void run(OpContext& ctx) override {
    const bool grad = kind_ == Kind::AvgPoolGrad || kind_ == Kind::AdaptiveGrad;
    // The input-side (large) and output-side (pooled) tensors.
    const Planes in = reference::planes_of(grad ? ctx.output(0).shape() : ctx.input(0).shape());
    const Planes out = reference::planes_of(grad ? ctx.input(0).shape() : ctx.output(0).shape());
    const int64_t planes = in.batch * in.channels;
    const int64_t in_size = in.height * in.width, out_size = out.height * out.width;
    const float* src = ctx.input(0).data<float>();
    float* dst = ctx.output(0).data<float>();
    // Windows of one plane, shared by all planes.
    std::vector<Window> windows(static_cast<size_t>(out_size));
    for (int64_t oy = 0; oy < out.height; ++oy)
      for (int64_t ox = 0; ox < out.width; ++ox) {
        Window& w = windows[static_cast<size_t>(oy * out.width + ox)];
        if (kind_ == Kind::Adaptive || kind_ == Kind::AdaptiveGrad) {
          w.y0 = reference::adaptive_start(oy, in.height, out.height);
          w.y1 = reference::adaptive_end(oy, in.height, out.height);
          w.x0 = reference::adaptive_start(ox, in.width, out.width);
          w.x1 = reference::adaptive_end(ox, in.width, out.width);
          w.divisor = static_cast<double>((w.y1 - w.y0) * (w.x1 - w.x0));
        } else {
          const reference::AvgWindow a = reference::avg_pool_window(in, p_, count_include_pad_, oy, ox);
          w = {a.y0, a.y1, a.x0, a.x1, static_cast<double>(a.divisor)};
        }
      }
    const bool global = out_size == 1 && windows[0].y0 == 0 && windows[0].y1 == in.height &&
                        windows[0].x0 == 0 && windows[0].x1 == in.width && windows[0].divisor > 0;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(in_size, 1));
    ctx.parallel_for(planes, grain, [&](int64_t begin, int64_t end) {
      std::vector<double> sum(grad && !global ? static_cast<size_t>(in_size) : 0);
      for (int64_t plane = begin; plane < end; ++plane) {
        if (!grad) {
          const float* xp = src + plane * in_size;
          float* yp = dst + plane * out_size;
          if (global) {
            double s = 0.0;
            for (int64_t i = 0; i < in_size; ++i) s += static_cast<double>(xp[i]);
            yp[0] = static_cast<float>(s / windows[0].divisor);
            continue;
          }
          for (int64_t o = 0; o < out_size; ++o) {
            const Window& w = windows[static_cast<size_t>(o)];
            double s = 0.0;
            for (int64_t iy = w.y0; iy < w.y1; ++iy)
              for (int64_t ix = w.x0; ix < w.x1; ++ix) s += static_cast<double>(xp[iy * in.width + ix]);
            yp[o] = w.divisor == 0 ? 0.0f : static_cast<float>(s / w.divisor);
          }
          continue;
        }
        const float* gp = src + plane * out_size;
        float* dx = dst + plane * in_size;
        if (global) {  // 0 + share, rounded once, as the reference
          const float v = static_cast<float>(0.0 + static_cast<double>(gp[0]) / windows[0].divisor);
          std::fill(dx, dx + in_size, v);
          continue;
        }
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t o = 0; o < out_size; ++o) {
          const Window& w = windows[static_cast<size_t>(o)];
          if (w.divisor == 0) continue;
          const double share = static_cast<double>(gp[o]) / w.divisor;
          for (int64_t iy = w.y0; iy < w.y1; ++iy)
            for (int64_t ix = w.x0; ix < w.x1; ++ix) sum[static_cast<size_t>(iy * in.width + ix)] += share;
        }
        for (int64_t i = 0; i < in_size; ++i) dx[i] = static_cast<float>(sum[static_cast<size_t>(i)]);
      }
    });
  }

 private:
  Kind kind_;
  reference::PoolParams p_;
  bool count_include_pad_;
};

std::unique_ptr<OpKernel> create(const KernelInit& init, Kind kind) {
  if (init.input_type(0).dtype != DType::Float32) return nullptr;
  const bool grad = kind == Kind::AvgPoolGrad || kind == Kind::AdaptiveGrad;
  const size_t rank = grad ? init.attr_ints("input_shape").size() : init.input_type(0).shape.size();
  if (rank != 3 && rank != 4) return nullptr;  // the reference reports it
  if (init.input_type(0).ndim() != static_cast<int64_t>(rank)) return nullptr;
  reference::PoolParams p{};
  bool count_include_pad = true;
  if (kind == Kind::AvgPool || kind == Kind::AvgPoolGrad) {
    p = reference::read_pool_params(init, /*has_dilation=*/false);
    count_include_pad = init.attr_bool("count_include_pad");
  }
  return std::make_unique<AvgPoolKernel>(kind, p, count_include_pad);
}

}  // namespace

EMBER_REGISTER_KERNEL(avg_pool2d, DType::Float32, Isa::Portable, "f32_avg_pool2d_portable",
                      [](const KernelInit& i) { return create(i, Kind::AvgPool); });
EMBER_REGISTER_KERNEL(avg_pool2d_grad, DType::Float32, Isa::Portable,
                      "f32_avg_pool2d_grad_portable",
                      [](const KernelInit& i) { return create(i, Kind::AvgPoolGrad); });
EMBER_REGISTER_KERNEL(adaptive_avg_pool2d, DType::Float32, Isa::Portable,
                      "f32_adaptive_avg_pool2d_portable",
                      [](const KernelInit& i) { return create(i, Kind::Adaptive); });
EMBER_REGISTER_KERNEL(adaptive_avg_pool2d_grad, DType::Float32, Isa::Portable,
                      "f32_adaptive_avg_pool2d_grad_portable",
                      [](const KernelInit& i) { return create(i, Kind::AdaptiveGrad); });

}  // namespace ember
