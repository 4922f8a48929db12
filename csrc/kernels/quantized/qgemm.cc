// ISA-independent drivers of the fast quantized kernels: weight packing with zero-point
// folding (at model load when weights are constants, else per call), im2col into the
// dot-product layout, tiling and threading. See qgemm.h for the layouts.
#include "kernels/quantized/qgemm.h"

#include <algorithm>
#include <cstring>

#include "kernels/quantized/reference.h"

#if defined(__SSE2__)
#include <emmintrin.h>  // baseline on x86-64
#elif defined(__aarch64__)
#include <arm_neon.h>   // baseline on aarch64
#endif

namespace ember::quantized {

void interleave4_portable(const uint8_t* const rows[4], int64_t n, uint8_t* dst, int64_t block,
                          int64_t block_stride) {
  // 16 pixels (64 bytes) at a time; `left` pixels remain in the current block.
  const int64_t block_skip = block_stride - block * 4;
  int64_t i = 0, left = block;
  auto advance = [&] {
    dst += 64;
    if ((left -= 16) == 0) {
      dst += block_skip;
      left = block;
    }
  };
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16, advance()) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[0] + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[1] + i));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[2] + i));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[3] + i));
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
    const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi16(ab_lo, cd_lo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
  }
#elif defined(__aarch64__)
  for (; i + 16 <= n; i += 16, advance()) {
    uint8x16x4_t v = {{vld1q_u8(rows[0] + i), vld1q_u8(rows[1] + i), vld1q_u8(rows[2] + i), vld1q_u8(rows[3] + i)}};
    vst4q_u8(dst, v);
  }
#endif
  for (; i + 16 <= n; i += 16, advance())
    for (int64_t p = 0; p < 16; ++p)
      for (int j = 0; j < 4; ++j) dst[p * 4 + j] = rows[j][i + p];
}

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// dst[i] = src[i * step] for i < count, reading no further than src[available - 1].
void take_every(const uint8_t* src, int64_t step, int64_t count, int64_t available, uint8_t* dst) {
  if (step == 1) {
    std::memcpy(dst, src, static_cast<size_t>(count));
    return;
  }
  int64_t i = 0;
#if defined(__SSE2__)
  if (step == 2) {  // even bytes of 32 -> 16
    const __m128i low = _mm_set1_epi16(0x00FF);
    for (; i + 16 <= count && 2 * i + 32 <= available; i += 16) {
      const __m128i lo = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)), low);
      const __m128i hi = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i + 16)), low);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_packus_epi16(lo, hi));
    }
    if (i + 8 <= count && 2 * i + 16 <= available) {
      const __m128i v = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)), low);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm_packus_epi16(v, v));
      i += 8;
    }
  }
#elif defined(__aarch64__)
  if (step == 2) {
    for (; i + 16 <= count && 2 * i + 32 <= available; i += 16) vst1q_u8(dst + i, vld2q_u8(src + 2 * i).val[0]);
  }
#endif
  for (; i < count; ++i) dst[i] = src[i * step];
}

const Tensor* constant_or_null(const KernelInit& init, int64_t i) {
  return init.has_input(i) ? init.constant(i) : nullptr;
}

// Per-channel epilogue constants with the bias folded: bias + (offset - zx) * sum_k W[o, k].
std::vector<RequantRow> fold_rows(const Requantization& rq, const int8_t* w, int64_t out_channels,
                                  int64_t k, const int32_t* bias, int32_t activation_offset) {
  std::vector<RequantRow> rows(static_cast<size_t>(out_channels));
  for (int64_t o = 0; o < out_channels; ++o) {
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += w[o * k + i];
    RequantRow& r = rows[static_cast<size_t>(o)];
    r.bias = (bias ? bias[o] : 0) + (activation_offset - rq.input_zero_point) * sum;
    r.multiplier = rq.scales[o].multiplier;
    r.shift = rq.scales[o].shift;
  }
  return rows;
}

OutputParams output_params(const Requantization& rq) {
  return {rq.output_zero_point, rq.range.min, rq.range.max};
}

// Thread-local scratch: each thread (pool workers, concurrent predictors) packs into its own.
uint8_t* scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < bytes) buffer.resize(bytes);
  return buffer.data();
}

// ---------------------------------------------------------------- convolution as GEMM

struct PackedConv {
  bool fast = false;
  int64_t k = 0, k4 = 0, blocks = 0;          // per group
  std::vector<int8_t> w8;                     // [group][block][K4][MR][4]
  std::vector<int16_t> w16;
  std::vector<RequantRow> rows;               // [group][block * MR]
  OutputParams out{};
  // Channels-in-lanes layers (groups 1) keep only this layout: 64-channel blocks (the last
  // 16, 32 or 48 wide), each [K4][block width][4], and the epilogue constants per channel.
  bool lanes = false;
  std::vector<int8_t> w_lanes;
  std::vector<int32_t> lane_bias, lane_multiplier, lane_shift;
};

// Deep convolutions with 16-multiple output channels run channels-in-lanes tiles (the
// config's ukernel_lanes, see run_lanes): 64 channels x 6 pixels per tile instead of 8 x 32,
// each k-quad 4 weight vectors and 6 broadcasts for 24 dot products (8 x 32: 2 + 8 for 16),
// reading the input where it lies, as NHWC rows, when the channels fill whole quads. A 7 x 7
// map is nine full tiles, not 32 + 16 + 1 pixels, and a 64-channel block's weights stay in
// cache while all of the map's tiles pass. Alternating in one process on ResNet-18 int8 (Xeon,
// AVX-512 VNNI), 1 / 2 threads: layer1 3x3 convolutions 0.88-0.95 -> 0.64-0.69 / 0.73-0.76 ->
// 0.52-0.55 ms and layer2 0.81-0.84 -> 0.49-0.59 / 0.79-0.82 -> 0.42-0.45 (from 8 x 32 tiles over
// padded planes), layer3 1.0-1.07x / 1.08-1.15x faster than with an im2col matrix; whole net
// 14.3 -> 11.5 / 11.9 -> 9.1 ms (a slow phase of the machine).
// Channels that leave a partial quad per tap take an im2col matrix, built pixel-major by plain
// copies, on small maps only (on large ones it outgrows L2). 1x1 stride-1 layers keep their
// in-place planes (MobileNetV2's were 2x slower in lanes).
constexpr int64_t kLanesMaxPixels = 256;
constexpr int64_t kLanesMinDepth = 256;
bool padded_planes_path(const ConvGeometry& g) {
  const bool pointwise = g.kernel_h * g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
                         g.pad_w == 0;
  return !pointwise && g.stride_h == g.stride_w && (g.kernel_h * g.kernel_w > 1 || g.stride_w == 1);
}
bool takes_lanes(const QGemmConfig& cfg, const ConvGeometry& g) {
  const int64_t depth = g.in_channels_per_group() * g.kernel_h * g.kernel_w;
  const bool in_place_rows = g.in_channels % 4 == 0;  // run_lanes reads the NHWC rows, no im2col matrix
  return cfg.ukernel_lanes && g.groups == 1 && g.out_channels % 16 == 0 &&
         (in_place_rows || g.out_h * g.out_w <= kLanesMaxPixels) && depth >= kLanesMinDepth && padded_planes_path(g);
}

PackedConv pack_conv(const AttrReader& ctx, const QGemmConfig& cfg, const Tensor& weight,
                     const Tensor& weight_scale, const Tensor* bias, int64_t groups, bool lanes) {
  PackedConv p;
  const int64_t out_channels = weight.dim(0);
  Requantization rq = make_requantization(ctx, weight_scale, out_channels);
  if (!rq.all_scales_below_one()) return p;  // the 32-bit SIMD epilogue needs scales < 1
  p.fast = true;
  p.k = weight.numel() / std::max<int64_t>(out_channels, 1);
  p.k4 = round_up(p.k, 4) / 4;
  const int64_t opg = out_channels / groups;
  p.blocks = round_up(opg, cfg.mr) / cfg.mr;
  const int8_t* w = weight.data<int8_t>();
  std::vector<RequantRow> folded =
      fold_rows(rq, w, out_channels, p.k, bias ? bias->data<int32_t>() : nullptr, cfg.activation_offset);
  if (lanes) {
    p.lanes = true;
    p.out = output_params(rq);
    p.w_lanes.assign(static_cast<size_t>(out_channels * p.k4 * 4), 0);
    // Depth in the im2col order of run_lanes: (ky, kx, input channel). Each row reordered once
    // into `row` (in L1), then its quads stored (ResNet-18's loads: one scattered byte store per
    // weight took 25 ms).
    const int64_t cpg = weight.dim(1), taps = p.k / std::max<int64_t>(cpg, 1);
    std::vector<int8_t> row(static_cast<size_t>(p.k4 * 4), 0);
    for (int64_t o = 0; o < out_channels; ++o) {
      const int64_t block = o / 64, width = std::min<int64_t>(64, out_channels - block * 64);
      const int8_t* src = w + o * p.k;
      for (int64_t t = 0; t < taps; ++t) {
        int8_t* to = row.data() + t * cpg;
        for (int64_t c = 0; c < cpg; ++c) to[c] = src[c * taps + t];
      }
      int8_t* dst = p.w_lanes.data() + block * 64 * p.k4 * 4 + (o - block * 64) * 4;
      for (int64_t q = 0; q < p.k4; ++q) std::memcpy(dst + q * width * 4, row.data() + q * 4, 4);
      const RequantRow& r = folded[static_cast<size_t>(o)];
      p.lane_bias.push_back(r.bias);
      p.lane_multiplier.push_back(r.multiplier);
      p.lane_shift.push_back(r.shift);
    }
    return p;
  }
  const int64_t block_elems = p.k4 * cfg.mr * 4;
  const size_t total = static_cast<size_t>(groups * p.blocks * block_elems);
  if (cfg.layout == WeightLayout::Int8Quads) p.w8.assign(total, 0); else p.w16.assign(total, 0);
  p.rows.assign(static_cast<size_t>(groups * p.blocks * cfg.mr), RequantRow{0, 1 << 30, 31, 0});
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t b = 0; b < p.blocks; ++b)
      for (int64_t r = 0; r < cfg.mr; ++r) {
        const int64_t oc = b * cfg.mr + r;  // within the group
        if (oc >= opg) continue;
        const int64_t o = g * opg + oc;
        p.rows[static_cast<size_t>((g * p.blocks + b) * cfg.mr + r)] = folded[static_cast<size_t>(o)];
        const int64_t base = (g * p.blocks + b) * block_elems;
        // Row o's k-quads go to every MR * 4 elements of the block (quad q at (q * MR + r) * 4).
        const int8_t* src = w + o * p.k;
        const int64_t full = p.k / 4;
        if (cfg.layout == WeightLayout::Int8Quads) {
          int8_t* dst = p.w8.data() + base + r * 4;
          for (int64_t q = 0; q < full; ++q) std::memcpy(dst + q * cfg.mr * 4, src + q * 4, 4);
          for (int64_t k = full * 4; k < p.k; ++k) dst[full * cfg.mr * 4 + k % 4] = src[k];
        } else {
          int16_t* dst = p.w16.data() + base + r * 4;
          for (int64_t q = 0; q < full; ++q)
            for (int j = 0; j < 4; ++j) dst[q * cfg.mr * 4 + j] = src[q * 4 + j];
          for (int64_t k = full * 4; k < p.k; ++k) dst[full * cfg.mr * 4 + k % 4] = src[k];
        }
      }
  p.out = output_params(rq);
  return p;
}

class QuantizedConvGemmKernel : public OpKernel {
 public:
  QuantizedConvGemmKernel(const QGemmConfig& cfg, std::shared_ptr<const PackedConv> packed, bool lanes)
      : cfg_(cfg), packed_(std::move(packed)), lanes_(lanes) {}
  const char* name() const override { return lanes_ ? cfg_.lanes_name : cfg_.name; }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& weight = ctx.input(1);
    const ConvGeometry g = conv_geometry(ctx, x.shape(), weight.shape());
    std::shared_ptr<const PackedConv> packed = packed_;
    // (A layer packed for lanes at load and run at another map size repacks for the size.)
    const bool lanes = takes_lanes(cfg_, g);
    if (!packed || (packed->fast && packed->lanes != lanes))
      packed = std::make_shared<PackedConv>(pack_conv(ctx, cfg_, weight, ctx.input(2),
                                                      ctx.has_input(3) ? &ctx.input(3) : nullptr, g.groups, lanes));
    if (!packed->fast) return quantized_conv2d_reference(ctx);
    const PackedConv& p = *packed;
    const int64_t P = g.out_h * g.out_w;
    if (P == 0 || g.batch == 0 || g.out_channels == 0) return;
    if (p.lanes) return run_lanes(ctx, g, p);
    // Equal strides run on padded (phase) planes; strided 1x1 layers gather their one tap.
    if (padded_planes_path(g)) return run_on_padded_planes(ctx, g, p);
    const uint8_t zx = static_cast<uint8_t>(ctx.attr_int("input_zero_point"));
    const int64_t cpg = g.in_channels_per_group(), opg = g.out_channels_per_group();
    const int64_t block_elems = p.k4 * cfg_.mr * 4;
    const size_t elem = p.w8.empty() ? 2 : 1;
    // Work items: a chunk of pixels (im2col'ed by the item into its thread's buffer, so the
    // panel stays in cache) x a group of output-channel blocks (several groups only when there
    // are too few chunks to keep the threads busy).
    const int64_t align = std::max<int64_t>(cfg_.nr, 16);  // interleave4 works on 16 pixels
    const int64_t chunk = std::min<int64_t>(round_up(P, align), round_up(kPixelChunk, align));
    const int64_t chunks = (P + chunk - 1) / chunk;
    const int64_t want = ctx.num_threads() > 1 ? 4 * ctx.num_threads() : 1;
    const int64_t row_groups = chunks >= want ? 1 : std::min<int64_t>(p.blocks, (want + chunks - 1) / chunks);
    const int64_t blocks_per_group = (p.blocks + row_groups - 1) / row_groups;
    const int64_t items = g.batch * g.groups * chunks * row_groups;
    ctx.parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
      uint8_t* col = scratch(static_cast<size_t>(p.k4 * chunk * 4));
      int64_t packed_key = -1;
      for (int64_t item = i0; item < i1; ++item) {
        const int64_t rg = item % row_groups;
        const int64_t c = (item / row_groups) % chunks;
        const int64_t grp = (item / row_groups / chunks) % g.groups;
        const int64_t n = item / row_groups / chunks / g.groups;
        const int64_t p0 = c * chunk, count = std::min(chunk, P - p0);
        const int64_t key = item / row_groups;
        const uint8_t* xg = x.data<uint8_t>() + (n * g.in_channels + grp * cpg) * g.in_h * g.in_w;
        if (key != packed_key) {
          im2col_chunk(g, xg, zx, p.k, p.k4, p0, count, chunk, col);
          packed_key = key;
        }
        uint8_t* yg = ctx.output(0).data<uint8_t>() + (n * g.out_channels + grp * opg) * P;
        const uint8_t* wg = (p.w8.empty() ? reinterpret_cast<const uint8_t*>(p.w16.data())
                                          : reinterpret_cast<const uint8_t*>(p.w8.data())) +
                            grp * p.blocks * block_elems * elem;
        const RequantRow* rows = p.rows.data() + grp * p.blocks * cfg_.mr;
        const int64_t b0 = rg * blocks_per_group, b1 = std::min(p.blocks, b0 + blocks_per_group);
        // Row blocks outer: a block's weights stay in cache while the chunk's tiles pass under
        // them (tiles outer streamed all of a layer's weights once per tile: ResNet-18's layer4
        // 3x3 convolutions, 2.4 MB of weights, ran 1.3x slower at 1 thread).
        for (int64_t rb = b0; rb < b1; ++rb) {
          const int64_t mr = std::min<int64_t>(cfg_.mr, opg - rb * cfg_.mr);
          for_each_tile(count, [&](QGemmUkernel ukernel, int64_t j, int64_t nr) {
            ukernel(p.k4, wg + rb * block_elems * elem, panel_at(col, p.k4, j), panel_block() * 4,
                    rows + rb * cfg_.mr, p.out, yg + rb * cfg_.mr * P + p0 + j, P, mr, nr);
          });
        }
      }
    });
  }

 private:
  static constexpr int64_t kPixelChunk = 256;

  // A chunk's im2col panel is blocks of panel_block() pixels (the full tile's width, at least
  // the 16 that interleave4 works on), each [K4][panel_block()][4] (see Interleave4); no tile
  // crosses a block (full tiles start at multiples of nr, the last ones split its remainder).
  int64_t panel_block() const { return std::max<int64_t>(cfg_.nr, 16); }
  const uint8_t* panel_at(const uint8_t* col, int64_t k4, int64_t pixel) const {
    const int64_t b = panel_block();
    return col + pixel / b * (k4 * b * 4) + pixel % b * 4;
  }

  // How an input plane becomes its s x s phase planes (run_on_padded_planes).
  struct PhaseSplit {
    int64_t s, vw, plane_stride, in_h, in_w, pad_h;
    uint8_t zx;
    const char *row_used, *col_used;               // [s]: phases some tap reads
    const int64_t *first_col, *plane_col, *cols;  // [s]: see run_on_padded_planes
  };
  // The in_h x in_w plane `src` into phase planes (a, b) at phases + (a * s + b) * plane_stride,
  // padded with the zero point. (Taken by value so the geometry stays in registers: through
  // references the compiler reloads it after every copy, which may alias it.)
  static void clear_phases(const PhaseSplit ps, uint8_t* phases) {
    const int64_t s = ps.s;
    for (int64_t a = 0; a < s; ++a)
      for (int64_t b = 0; b < s; ++b)
        if (ps.row_used[a] && ps.col_used[b])
          std::memset(phases + (a * s + b) * ps.plane_stride, ps.zx, static_cast<size_t>(ps.plane_stride));
  }
  // Input rows [iy0, iy1) of the plane `src` into its (cleared) phase planes.
  static void split_rows(const PhaseSplit ps, const uint8_t* src, uint8_t* phases, int64_t iy0, int64_t iy1) {
    const int64_t s = ps.s;
    // Input row iy is padded row iy + pad_h = a + s * r: row r of the phases (a, *).
    for (int64_t iy = iy0, a = (iy0 + ps.pad_h) % s, r = (iy0 + ps.pad_h) / s; iy < iy1; ++iy) {
      if (ps.row_used[a]) {
        const uint8_t* row = src + iy * ps.in_w;
        for (int64_t b = 0; b < s; ++b) {
          if (ps.cols[b] == 0) continue;
          take_every(row + ps.first_col[b], s, ps.cols[b], ps.in_w - ps.first_col[b],
                     phases + (a * s + b) * ps.plane_stride + r * ps.vw + ps.plane_col[b]);
        }
      }
      if (++a == s) {
        a = 0;
        ++r;
      }
    }
  }
  static void split_into_phases(const PhaseSplit ps, const uint8_t* src, uint8_t* phases) {
    clear_phases(ps, phases);
    split_rows(ps, src, phases, 0, ps.in_h);
  }

  // The tiles over a chunk's first `count` pixels: full NR-pixel tiles and, where the config has
  // them, half and quarter tiles for the last pixels (49 pixels: 32 + 16 + 8 instead of 64).
  // Calls fn(ukernel, first pixel, pixels).
  template <typename Fn>
  void for_each_tile(int64_t count, const Fn& fn) const {
    for (int64_t j = 0; j < count;) {
      const int64_t left = count - j;
      QGemmUkernel ukernel = cfg_.ukernel;
      int64_t width = cfg_.nr;
      if (cfg_.ukernel_narrow && left <= kNarrowPixels) {
        ukernel = cfg_.ukernel_narrow;
        width = left;
      } else if (cfg_.ukernel_quarter && left <= cfg_.nr / 4) {
        ukernel = cfg_.ukernel_quarter;
        width = cfg_.nr / 4;
      } else if (cfg_.ukernel_half && left <= 3 * cfg_.nr / 4) {  // 16 + 8 rather than 32
        ukernel = cfg_.ukernel_half;
        width = cfg_.nr / 2;
      }
      fn(ukernel, j, std::min(width, left));
      j += width;
    }
  }

  // Convolution with equal strides s over zero-point-padded planes, each split into its s * s
  // phases: phase (a, b) holds padded[a + s * r][b + s * c] in a plane of width vw = ceil(pw / s).
  // Output (oy, ox) is virtual pixel j = oy * vw + ox; tap (ky, kx) reads phase
  // ((ky * dh) % s, (kx * dw) % s) at j + ((ky * dh) / s) * vw + (kx * dw) / s, so every im2col
  // row of a chunk is one contiguous slice of a plane: no gathers, no per-row bounds logic.
  // The vw - out_w virtual pixels past each output row are computed and dropped, except on
  // small maps, where they would be a large share of the work (7 x 7 outputs in rows of 9: 61
  // virtual pixels for 49): there a chunk is whole output rows and its im2col rows are first
  // compacted to the real pixels (out_w bytes from each of the chunk's rows of the plane).
  void run_on_padded_planes(OpContext& ctx, const ConvGeometry& g, const PackedConv& p) const {
    const Tensor& x = ctx.input(0);
    const uint8_t zx = static_cast<uint8_t>(ctx.attr_int("input_zero_point"));
    const int64_t s = g.stride_w, cpg = g.in_channels_per_group(), opg = g.out_channels_per_group();
    const int64_t ph = g.in_h + 2 * g.pad_h, pw = g.in_w + 2 * g.pad_w;
    const int64_t vh = (ph + s - 1) / s, vw = (pw + s - 1) / s, phases = s * s;
    const int64_t taps = g.kernel_h * g.kernel_w;
    const bool in_place = taps == 1 && g.pad_h == 0 && g.pad_w == 0 && s == 1;
    const bool compact = !in_place && (vw - g.out_w) * 8 >= g.out_w;  // >= 11 % of the pixels dropped
    const int64_t virtual_pixels = (g.out_h - 1) * vw + g.out_w;
    const int64_t align = std::max<int64_t>(cfg_.nr, 16);
    // Chunk c covers pixels [c * span, (c + 1) * span) (real ones when compact, else virtual),
    // packed `chunk` wide.
    const int64_t chunk_rows = std::max<int64_t>(1, std::min<int64_t>(g.out_h, kPixelChunk / g.out_w));
    const int64_t pixels = compact ? g.out_h * g.out_w : virtual_pixels;
    const int64_t chunk = compact ? round_up(chunk_rows * g.out_w, align)
                                  : std::min<int64_t>(round_up(virtual_pixels, align), round_up(kPixelChunk, align));
    const int64_t span = compact ? chunk_rows * g.out_w : chunk;
    const int64_t chunks = (pixels + span - 1) / span;
    // Reads reach chunks * chunk + the largest tap offset past a phase plane's start (compacting
    // reads 16-byte pieces: at most 15 bytes past a row's last tap, within the 64 to spare).
    const int64_t max_offset = ((g.kernel_h - 1) * g.dilation_h / s) * vw + (g.kernel_w - 1) * g.dilation_w / s;
    const int64_t plane_stride = round_up(std::max(vh * vw, chunks * chunk + max_offset) + 64, 64);
    // The phases some tap reads (a 1x1 stride-2 layer needs one of four).
    std::vector<char> row_used(static_cast<size_t>(s), 0), col_used(static_cast<size_t>(s), 0);
    for (int64_t ky = 0; ky < g.kernel_h; ++ky) row_used[static_cast<size_t>(ky * g.dilation_h % s)] = 1;
    for (int64_t kx = 0; kx < g.kernel_w; ++kx) col_used[static_cast<size_t>(kx * g.dilation_w % s)] = 1;
    // Offset of phase (a, b) of input channel ic from the planes' base.
    auto phase_offset = [&](int64_t ic, int64_t a, int64_t b) { return ((ic * s + a) * s + b) * plane_stride; };
    // Where im2col row k = (ic, ky, kx) starts, from the planes' base.
    // (Divisions once per tap row and column, not per row: a 64-bit division costs tens of
    // cycles and a layer has thousands of rows.)
    std::vector<int64_t> tap_y(static_cast<size_t>(g.kernel_h)), tap_x(static_cast<size_t>(g.kernel_w));
    std::vector<int64_t> phase_y(tap_y.size()), phase_x(tap_x.size());
    for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
      phase_y[static_cast<size_t>(ky)] = ky * g.dilation_h % s;
      tap_y[static_cast<size_t>(ky)] = ky * g.dilation_h / s * vw;
    }
    for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
      phase_x[static_cast<size_t>(kx)] = kx * g.dilation_w % s;
      tap_x[static_cast<size_t>(kx)] = kx * g.dilation_w / s;
    }
    std::vector<int64_t> row_offset(static_cast<size_t>(p.k));
    for (int64_t ic = 0, k = 0; ic < cpg; ++ic)
      for (size_t ky = 0; ky < tap_y.size(); ++ky)
        for (size_t kx = 0; kx < tap_x.size(); ++kx, ++k)
          row_offset[static_cast<size_t>(k)] = phase_offset(ic, phase_y[ky], phase_x[kx]) + tap_y[ky] + tap_x[kx];
    // Column phase b holds input columns first_col[b], first_col[b] + s, ... (cols[b] of them)
    // from column plane_col[b] of its plane on; the same for every row.
    std::vector<int64_t> first_col(static_cast<size_t>(s)), plane_col(static_cast<size_t>(s)), cols(static_cast<size_t>(s));
    for (int64_t b = 0; b < s; ++b) {
      const int64_t ix0 = ((b - g.pad_w) % s + s) % s;
      first_col[static_cast<size_t>(b)] = ix0;
      plane_col[static_cast<size_t>(b)] = (ix0 + g.pad_w) / s;
      cols[static_cast<size_t>(b)] = col_used[static_cast<size_t>(b)] && ix0 < g.in_w ? (g.in_w - ix0 + s - 1) / s : 0;
    }
    const int64_t block_elems = p.k4 * cfg_.mr * 4;
    const size_t elem = p.w8.empty() ? 2 : 1;
    const int64_t want = ctx.num_threads() > 1 ? 4 * ctx.num_threads() : 1;
    const int64_t row_groups = chunks >= want ? 1 : std::min<int64_t>(p.blocks, (want + chunks - 1) / chunks);
    const int64_t blocks_per_group = (p.blocks + row_groups - 1) / row_groups;
    // The calling thread's buffers (kept between calls: no page faults on every run).
    // NOTE: lambdas below must use the pointers, not the thread_local names (which would name
    // the worker thread's own, empty, buffers).
    thread_local std::vector<uint8_t> planes_buffer, virtual_out_buffer, panels_buffer;
    if (planes_buffer.size() < static_cast<size_t>(cpg * phases * plane_stride))
      planes_buffer.resize(static_cast<size_t>(cpg * phases * plane_stride));
    if (chunks < ctx.num_threads() && panels_buffer.size() < static_cast<size_t>(chunks * p.k4 * chunk * 4))
      panels_buffer.resize(static_cast<size_t>(chunks * p.k4 * chunk * 4));
    if (!compact && virtual_out_buffer.size() < static_cast<size_t>(opg * chunks * chunk))
      virtual_out_buffer.resize(static_cast<size_t>(opg * chunks * chunk));
    uint8_t* const planes = planes_buffer.data();
    uint8_t* const virtual_out = virtual_out_buffer.data();
    uint8_t* const panels = panels_buffer.data();
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const uint8_t* xg = x.data<uint8_t>() + (n * g.in_channels + grp * cpg) * g.in_h * g.in_w;
        // The padded planes, channels spread over the pool (at 2 threads, a serial copy here
        // was a tenth of a ResNet-18 layer's time).
        // A 1x1, stride-1, unpadded layer reads its input planes in place (its padded plane is
        // the plane itself); only the group's last plane is copied, since a chunk's reads run up
        // to `align` bytes past a plane's end, which is past the tensor for the last one.
        const int64_t first_plane = in_place ? cpg - 1 : 0;
        const PhaseSplit split{s, vw, plane_stride, g.in_h, g.in_w, g.pad_h, zx, row_used.data(), col_used.data(),
                               first_col.data(), plane_col.data(), cols.data()};
        const int64_t split_planes = cpg - first_plane;
        if (split_planes >= 8 * ctx.num_threads() || ctx.num_threads() == 1) {
          ctx.parallel_for(split_planes, 8, [&](int64_t c0, int64_t c1) {
            for (int64_t c = first_plane + c0; c < first_plane + c1; ++c)
              split_into_phases(split, xg + c * g.in_h * g.in_w, planes + phase_offset(in_place ? 0 : c, 0, 0));
          });
        } else {
          // Few, large planes (an RGB input: 3 of 224 x 224): split by bands of rows, so all
          // threads copy (whole planes per thread left MobileNetV2's first layer no faster at 2
          // threads than at 1; ResNet-18 int8 conv1 at 2 threads, alternating: 0.94 -> 0.75 ms).
          for (int64_t c = first_plane; c < cpg; ++c) clear_phases(split, planes + phase_offset(in_place ? 0 : c, 0, 0));
          const int64_t bands = std::min<int64_t>(g.in_h, (8 * ctx.num_threads() + split_planes - 1) / split_planes);
          ctx.parallel_for(split_planes * bands, 1, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) {
              const int64_t c = first_plane + i / bands, band = i % bands;
              split_rows(split, xg + c * g.in_h * g.in_w, planes + phase_offset(in_place ? 0 : c, 0, 0),
                         band * g.in_h / bands, (band + 1) * g.in_h / bands);
            }
          });
        }
        // Row k of the chunk starting at virtual pixel j0 (an in-place layer's row k is plane k).
        auto im2col_row = [&](int64_t k, int64_t j0) -> const uint8_t* {
          if (!in_place) return planes + row_offset[static_cast<size_t>(k)] + j0;
          return (k < cpg - 1 ? xg + k * g.in_h * g.in_w : planes) + j0;
        };
        const uint8_t* wg = (p.w8.empty() ? reinterpret_cast<const uint8_t*>(p.w16.data())
                                          : reinterpret_cast<const uint8_t*>(p.w8.data())) +
                            grp * p.blocks * block_elems * elem;
        const RequantRow* rows = p.rows.data() + grp * p.blocks * cfg_.mr;
        uint8_t* yg = ctx.output(0).data<uint8_t>() + (n * g.out_channels + grp * opg) * g.out_h * g.out_w;
        // Where every pixel is real (compact chunks, or no dropped columns) the tiles store
        // straight into the output planes; else they go to virtual_out and are copied out after.
        const bool direct = compact || vw == g.out_w;
        uint8_t* const tile_out = direct ? yg : virtual_out;
        const int64_t out_stride = direct ? g.out_h * g.out_w : chunks * chunk;
        const int64_t stage_stride = chunk + 64;
        const int64_t chunk_bytes = p.k4 * chunk * 4;
        // Quads [q0, q1) of the im2col panel of pixels [j0, j0 + count) (j0 a multiple of 16;
        // compact: of whole output rows) into col (the panel's start; rows `chunk` wide, the
        // first round_up(count, 16) bytes written); `stage` holds 4 compacted rows.
        auto pack_quads = [&](int64_t j0, int64_t count, int64_t q0, int64_t q1, uint8_t* stage, uint8_t* col) {
          for (int64_t q = q0; q < q1; ++q) {
            const uint8_t* src[4];
            for (int64_t j = 0; j < 4; ++j) {
              const int64_t k = q * 4 + j;
              if (k >= p.k) {
                src[j] = planes;  // any bytes: the packed weight is 0 there
                continue;
              }
              if (!compact) {
                src[j] = im2col_row(k, j0);
                continue;
              }
              // Output rows oy0.. of this tap, out_w bytes each, in 16-byte pieces (a row's
              // spill past out_w is overwritten by the next row; the last one's is slack).
              uint8_t* dst = stage + j * stage_stride;
              const uint8_t* from = planes + row_offset[static_cast<size_t>(k)] + j0 / g.out_w * vw;
              for (int64_t r = 0; r < count / g.out_w; ++r, from += vw)
                for (int64_t x0 = 0; x0 < g.out_w; x0 += 16) std::memcpy(dst + r * g.out_w + x0, from + x0, 16);
              src[j] = dst;
            }
            cfg_.interleave4(src, round_up(count, 16), col + q * panel_block() * 4, panel_block(),
                             p.k4 * panel_block() * 4);
          }
        };
        // Pixels [j0, j0 + count) x output-channel blocks [b0, b1) from the packed panel.
        auto gemm = [&](const uint8_t* col, int64_t j0, int64_t count, int64_t b0, int64_t b1) {
          for (int64_t rb = b0; rb < b1; ++rb) {  // row blocks outer, as in run()
            const int64_t mr = std::min<int64_t>(cfg_.mr, opg - rb * cfg_.mr);
            for_each_tile(count, [&](QGemmUkernel ukernel, int64_t j, int64_t nr) {
              ukernel(p.k4, wg + rb * block_elems * elem, panel_at(col, p.k4, j), panel_block() * 4,
                      rows + rb * cfg_.mr, p.out,
                      tile_out + rb * cfg_.mr * out_stride + j0 + j, out_stride, mr, nr);
            });
          }
        };
        // With fewer chunks than threads (small maps), threads sharing a chunk would each pack
        // all of it: the panels are packed once, split over the pool, into the caller's buffer.
        // (With more chunks, each thread packing its own keeps them in its core's cache.)
        const bool shared_panels = chunks < ctx.num_threads();
        if (shared_panels) {
          ctx.parallel_for(chunks * p.k4, 64, [&](int64_t i0, int64_t i1) {
            uint8_t* stage = scratch(static_cast<size_t>(4 * stage_stride));
            for (int64_t i = i0; i < i1;) {
              const int64_t c = i / p.k4, q0 = i % p.k4, q1 = std::min(p.k4, q0 + (i1 - i));
              pack_quads(c * span, std::min(span, pixels - c * span), q0, q1, stage, panels + c * chunk_bytes);
              i += q1 - q0;
            }
          });
        }
        const int64_t threads = ctx.num_threads();
        if (!shared_panels && !compact && threads > 1) {
          // Each thread takes an equal range of the pixels (16-aligned), in chunks: chunks of
          // the same size split in contiguous halves left one thread with the last, short
          // chunk and the other waiting (ResNet-18's 56 x 56 layers: 13 chunks, 7 against 5.7).
          ctx.parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
            uint8_t* col = scratch(static_cast<size_t>(chunk_bytes));
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t lo = pixels * t / threads / 16 * 16;
              const int64_t hi = t + 1 == threads ? pixels : pixels * (t + 1) / threads / 16 * 16;
              for (int64_t j0 = lo; j0 < hi; j0 += chunk) {
                const int64_t count = std::min(chunk, hi - j0);
                pack_quads(j0, count, 0, p.k4, nullptr, col);
                gemm(col, j0, count, 0, p.blocks);
              }
            }
          });
        } else {
          ctx.parallel_for(chunks * row_groups, 1, [&](int64_t i0, int64_t i1) {
            uint8_t* col = shared_panels ? nullptr : scratch(static_cast<size_t>(chunk_bytes + 4 * stage_stride));
            int64_t packed_chunk = -1;
            for (int64_t item = i0; item < i1; ++item) {
              const int64_t c = item / row_groups, rg = item % row_groups;
              const int64_t j0 = c * span, count = std::min(span, pixels - j0);
              if (shared_panels) {
                col = panels + c * chunk_bytes;
              } else if (c != packed_chunk) {
                pack_quads(j0, count, 0, p.k4, col + chunk_bytes, col);
                packed_chunk = c;
              }
              gemm(col, j0, count, rg * blocks_per_group, std::min(p.blocks, (rg + 1) * blocks_per_group));
            }
          });
        }
        if (direct) continue;
        // The real pixels of each output row, plane by plane (whole planes per thread: writing
        // each plane's rows in order beats copying chunk by chunk inside the tasks).
        ctx.parallel_for(opg, 8, [&](int64_t o0, int64_t o1) {
          for (int64_t o = o0; o < o1; ++o)
            for (int64_t oy = 0; oy < g.out_h; ++oy)
              std::memcpy(yg + (o * g.out_h + oy) * g.out_w, virtual_out + o * out_stride + oy * vw,
                          static_cast<size_t>(g.out_w));
        });
      }
  }

  // Channels-in-lanes layers (takes_lanes), per image: the input as padded rows of pixels of
  // in_channels bytes (NHWC), the im2col matrix pixel-major from it (one copy per pixel and tap
  // row: kw taps of in_channels bytes are contiguous at dilation 1), then 64-channel x 6-pixel
  // tiles over it, the channels split over the threads (each streams its part of the weights
  // once; the matrix is shared).
  void run_lanes(OpContext& ctx, const ConvGeometry& g, const PackedConv& p) const {
    const Tensor& x = ctx.input(0);
    const uint8_t zx = static_cast<uint8_t>(ctx.attr_int("input_zero_point"));
    const int64_t C = g.in_channels, ph = g.in_h + 2 * g.pad_h, pw = g.in_w + 2 * g.pad_w;
    const int64_t P = g.out_h * g.out_w, row = p.k4 * 4, plane = g.in_h * g.in_w;
    // A pixel's depth in the NHWC rows: segments of seg_bytes contiguous bytes (one tap row's
    // kw * C, per tap at dilation > 1) at tap_offsets from its first tap. With whole quads per
    // pixel (C % 4 == 0) the tiles read these segments in place; else they are copied into a
    // pixel-major im2col matrix, which is one segment per pixel.
    const bool direct = C % 4 == 0;
    std::vector<int64_t> tap_offsets;
    const int64_t seg_bytes = g.dilation_w == 1 ? g.kernel_w * C : C;
    for (int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (int64_t kx = 0; kx < (g.dilation_w == 1 ? 1 : g.kernel_w); ++kx)
        tap_offsets.push_back((ky * g.dilation_h * pw + kx * g.dilation_w) * C);
    const int64_t whole_row = 0;
    const LaneSegments depth = direct ? LaneSegments{seg_bytes / 4, static_cast<int64_t>(tap_offsets.size()),
                                                     tap_offsets.data()}
                                      : LaneSegments{p.k4, 1, &whole_row};
    // The calling thread's buffers; the lambdas use the pointers (see run_on_padded_planes).
    thread_local std::vector<uint8_t> nhwc_buffer, cols_buffer;
    if (nhwc_buffer.size() < static_cast<size_t>(ph * pw * C)) nhwc_buffer.resize(static_cast<size_t>(ph * pw * C));
    if (!direct && cols_buffer.size() < static_cast<size_t>(P * row)) cols_buffer.resize(static_cast<size_t>(P * row));
    uint8_t* const nhwc = nhwc_buffer.data();
    uint8_t* const cols = cols_buffer.data();
    // Pixel q's first tap in the NHWC rows, and where the tiles read its depth.
    auto first_tap = [&](int64_t q) -> const uint8_t* {
      return nhwc + ((q / g.out_w) * g.stride_h * pw + (q % g.out_w) * g.stride_w) * C;
    };
    auto pixel_at = [&](int64_t q) -> const uint8_t* { return direct ? first_tap(q) : cols + q * row; };
    // Threads split the channels (each streams its part of the weights once; the activations
    // are shared) while each part keeps whole 64-channel blocks, else the tiles (ResNet-18's
    // 64- and 128-channel layers: 16-channel parts ran one weight vector per six broadcasts).
    const int64_t threads = ctx.num_threads();
    const int64_t units = g.out_channels / 16, tiles = (P + kLanesPixels - 1) / kLanesPixels;
    const int64_t parts = std::min<int64_t>(units, threads > 1 ? 2 * threads : 1);
    const bool split_pixels = threads > 1 && units < 4 * parts && tiles >= 2 * threads;
    for (int64_t n = 0; n < g.batch; ++n) {
      const uint8_t* xn = x.data<uint8_t>() + n * C * plane;
      ctx.parallel_for(ph, 1, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          uint8_t* dst = nhwc + r * pw * C;
          const int64_t iy = r - g.pad_h;
          if (iy < 0 || iy >= g.in_h) {
            std::memset(dst, zx, static_cast<size_t>(pw * C));
            continue;
          }
          std::memset(dst, zx, static_cast<size_t>(g.pad_w * C));
          std::memset(dst + (g.pad_w + g.in_w) * C, zx, static_cast<size_t>(g.pad_w * C));
          // Eight channels' bytes of a pixel gathered into one 64-bit store (byte by byte, the
          // transpose cost a stride-2 layer over 28 x 28 x 128 more than its tiles saved).
          uint8_t* interior = dst + g.pad_w * C;
          int64_t c = 0;
          for (; c + 8 <= C; c += 8) {
            const uint8_t* src = xn + c * plane + iy * g.in_w;
            for (int64_t ix = 0; ix < g.in_w; ++ix) {
              uint64_t v = 0;
              for (int j = 0; j < 8; ++j) v |= static_cast<uint64_t>(src[j * plane + ix]) << (8 * j);
              std::memcpy(interior + ix * C + c, &v, 8);  // little-endian: channel c first
            }
          }
          for (; c < C; ++c) {
            const uint8_t* src = xn + c * plane + iy * g.in_w;
            for (int64_t ix = 0; ix < g.in_w; ++ix) interior[ix * C + c] = src[ix];
          }
        }
      });
      if (!direct) {
        ctx.parallel_for(P, 8, [&](int64_t q0, int64_t q1) {
          for (int64_t q = q0; q < q1; ++q) {
            uint8_t* dst = cols + q * row;
            const uint8_t* src = first_tap(q);
            for (size_t t = 0; t < tap_offsets.size(); ++t)
              std::memcpy(dst + static_cast<int64_t>(t) * seg_bytes, src + tap_offsets[t], static_cast<size_t>(seg_bytes));
            std::memset(dst + p.k, zx, static_cast<size_t>(row - p.k));  // the last quad's tail: weight 0
          }
        });
      }
      uint8_t* yn = ctx.output(0).data<uint8_t>() + n * g.out_channels * P;
      // Tile t: pixels [t * P / tiles, (t + 1) * P / tiles), 5 or 6 of them (49 = 4 x 6 + 5 x 5).
      auto tile_start = [&](int64_t t) { return t * P / tiles; };
      // Output channels [u0 * 16, u1 * 16) over tiles [t0, t1): 64-channel blocks outer (their
      // weights stay in cache while the tiles pass), tiles inner.
      auto tiles_of = [&](int64_t u0, int64_t u1, int64_t t0, int64_t t1) {
        const uint8_t* px[kLanesPixels];
        for (int64_t u = u0; u < u1;) {
          const int64_t c = u * 16, block = c / 64, width = std::min<int64_t>(64, g.out_channels - block * 64);
          const int64_t end = std::min(u1, (block * 64 + width) / 16);
          const int8_t* wl = p.w_lanes.data() + block * 64 * p.k4 * 4 + (c - block * 64) * 4;
          const LaneConsts consts{p.lane_bias.data() + c, p.lane_multiplier.data() + c, p.lane_shift.data() + c};
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t j = tile_start(t), np = tile_start(t + 1) - j;
            for (int64_t i = 0; i < np; ++i) px[i] = pixel_at(j + i);
            cfg_.ukernel_lanes(depth, wl, width * 4, static_cast<int>(end - u), px, static_cast<int>(np), consts,
                               p.out, yn + c * P + j, P);
          }
          u = end;
        }
      };
      if (split_pixels) {
        ctx.parallel_for(threads, 1, [&](int64_t a, int64_t b) {
          for (int64_t t = a; t < b; ++t) tiles_of(0, units, t * tiles / threads, (t + 1) * tiles / threads);
        });
      } else {
        ctx.parallel_for(parts, 1, [&](int64_t a, int64_t b) {
          for (int64_t t = a; t < b; ++t) tiles_of(t * units / parts, (t + 1) * units / parts, 0, tiles);
        });
      }
    }
  }

  // Row k of the im2col matrix for pixels [p0, p0 + count): padding taps hold the zero point.
  static void gather_row(const ConvGeometry& g, const uint8_t* xg, uint8_t zx, int64_t k, int64_t p0,
                         int64_t count, uint8_t* dst) {
    const int64_t taps = g.kernel_h * g.kernel_w;
    const int64_t c = k / taps, ky = (k % taps) / g.kernel_w, kx = k % g.kernel_w;
    const uint8_t* plane = xg + c * g.in_h * g.in_w;
    const int64_t off = kx * g.dilation_w - g.pad_w;  // ix = ox * stride + off
    // Valid ox: 0 <= ox * stride + off < in_w.
    const int64_t ox_lo = off >= 0 ? 0 : (-off + g.stride_w - 1) / g.stride_w;
    const int64_t ox_hi = g.in_w - off <= 0 ? 0 : (g.in_w - off + g.stride_w - 1) / g.stride_w;  // exclusive
    for (int64_t p = p0; p < p0 + count;) {
      const int64_t oy = p / g.out_w, ox0 = p % g.out_w;
      const int64_t n = std::min(g.out_w - ox0, p0 + count - p);
      const int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
      if (iy < 0 || iy >= g.in_h) {
        std::memset(dst, zx, static_cast<size_t>(n));
      } else {
        const uint8_t* src = plane + iy * g.in_w;
        const int64_t a = std::min(std::max(ox_lo, ox0), ox0 + n), b = std::max(a, std::min(ox_hi, ox0 + n));
        if (a > ox0) std::memset(dst, zx, static_cast<size_t>(a - ox0));
        if (b > a) take_every(src + a * g.stride_w + off, g.stride_w, b - a, g.in_w - (a * g.stride_w + off), dst + (a - ox0));
        if (ox0 + n > b) std::memset(dst + (b - ox0), zx, static_cast<size_t>(ox0 + n - b));
      }
      dst += n;
      p += n;
    }
  }

  // im2col of pixels [p0, p0 + count) into [K4][chunk][4] (pixels >= count and k >= K hold 0).
  void im2col_chunk(const ConvGeometry& g, const uint8_t* xg, uint8_t zx, int64_t k_total, int64_t k4,
                    int64_t p0, int64_t count, int64_t chunk, uint8_t* col) const {
    const int64_t taps = g.kernel_h * g.kernel_w;
    const bool pointwise = taps == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
    std::vector<uint8_t>& rows = row_buffer(4 * chunk);
    for (int64_t q = 0; q < k4; ++q) {
      const uint8_t* src[4];
      for (int64_t j = 0; j < 4; ++j) {
        const int64_t k = q * 4 + j;
        uint8_t* r = rows.data() + j * chunk;
        if (k >= k_total) {
          std::memset(r, 0, static_cast<size_t>(chunk));
          src[j] = r;
        } else if (pointwise) {
          src[j] = xg + k * g.in_h * g.in_w + p0;
          if (count < chunk) {  // copy so the tail reads zeros
            std::memcpy(r, src[j], static_cast<size_t>(count));
            std::memset(r + count, 0, static_cast<size_t>(chunk - count));
            src[j] = r;
          }
        } else {
          gather_row(g, xg, zx, k, p0, count, r);
          if (count < chunk) std::memset(r + count, 0, static_cast<size_t>(chunk - count));
          src[j] = r;
        }
      }
      cfg_.interleave4(src, chunk, col + q * panel_block() * 4, panel_block(), k4 * panel_block() * 4);
    }
  }

  static std::vector<uint8_t>& row_buffer(int64_t bytes) {
    thread_local std::vector<uint8_t> buffer;
    if (static_cast<int64_t>(buffer.size()) < bytes) buffer.resize(static_cast<size_t>(bytes));
    return buffer;
  }

 private:
  QGemmConfig cfg_;
  std::shared_ptr<const PackedConv> packed_;
  bool lanes_;  // channels-in-lanes tiles at the shapes known at load (the kernel's name)
};

// ---------------------------------------------------------------- depthwise

struct PackedDepthwise {
  bool fast = false;
  std::vector<RequantRow> rows;
  OutputParams out{};
};

PackedDepthwise pack_depthwise(const AttrReader& ctx, const Tensor& weight, const Tensor& weight_scale,
                               const Tensor* bias) {
  PackedDepthwise p;
  const int64_t out_channels = weight.dim(0);
  Requantization rq = make_requantization(ctx, weight_scale, out_channels);
  if (!rq.all_scales_below_one()) return p;
  p.fast = true;
  p.rows = fold_rows(rq, weight.data<int8_t>(), out_channels, weight.numel() / std::max<int64_t>(out_channels, 1),
                     bias ? bias->data<int32_t>() : nullptr, 0);
  p.out = output_params(rq);
  return p;
}

// Copies n bytes (a row of a small feature map) without a library call: MobileNetV2's 7x7
// and 14x14 layers have thousands of planes, and two memcpy calls per row cost more than the
// convolution of the row. Fixed-size copies compile to single moves; overlapping halves cover
// any n from 4 to 16 exactly.
inline void copy_row(uint8_t* d, const uint8_t* s, int64_t n) {
  if (n > 16) {
    std::memcpy(d, s, static_cast<size_t>(n));
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(d, &a, 8);
    std::memcpy(d + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(d, &a, 4);
    std::memcpy(d + n - 4, &b, 4);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

class QuantizedDepthwiseKernel : public OpKernel {
 public:
  QuantizedDepthwiseKernel(const char* name, QDepthwiseRowUkernel row, QDepthwisePlaneUkernel plane3x3,
                           std::shared_ptr<const PackedDepthwise> packed)
      : name_(name), row_(row), plane3x3_(plane3x3), packed_(std::move(packed)) {}
  const char* name() const override { return name_; }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& weight = ctx.input(1);
    const ConvGeometry g = conv_geometry(ctx, x.shape(), weight.shape());
    std::shared_ptr<const PackedDepthwise> packed = packed_;
    if (!packed)
      packed = std::make_shared<PackedDepthwise>(
          pack_depthwise(ctx, weight, ctx.input(2), ctx.has_input(3) ? &ctx.input(3) : nullptr));
    if (!packed->fast) return quantized_conv2d_reference(ctx);
    if (plane3x3_) return run_planes(ctx, g, *packed);
    const int64_t ph = g.in_h + 2 * g.pad_h, pw = g.in_w + 2 * g.pad_w;
    // Narrow planes run as one long row: output (oy, ox) at virtual index j = oy * pw + ox reads
    // padded[stride * j + tap offset] when the strides are equal, so every tap is a constant
    // offset; the pw - out_w columns past each row are computed and dropped.
    const bool flat = g.stride_h == g.stride_w && g.out_w < kFlatBelow;
    const int64_t slack = 256 + (flat ? g.stride_w * pw * 2 : 0);  // vector loads run past the end
    const int64_t plane_bytes = ph * pw + slack;
    const uint8_t zx = static_cast<uint8_t>(ctx.attr_int("input_zero_point"));
    const int64_t multiplier = g.out_channels_per_group();
    const int64_t taps = g.kernel_h * g.kernel_w;
    const int8_t* w = weight.data<int8_t>();
    uint8_t* y = ctx.output(0).data<uint8_t>();
    const int64_t planes = g.batch * g.in_channels;
    std::vector<int64_t> tap_offsets(static_cast<size_t>(taps));
    for (int64_t t = 0; t < taps; ++t)
      tap_offsets[t] = (t / g.kernel_w) * g.dilation_h * pw + (t % g.kernel_w) * g.dilation_w;
    // Small planes go kGroup at a time, each step (pad, convolve, copy out) over the whole
    // group: a plane's freshly stored bytes are then read back only after the stores have
    // drained, not through a store-to-load forwarding stall per vector load.
    const int64_t group = flat ? kGroup : 1;
    ctx.parallel_for(planes, 1, [&](int64_t b, int64_t e) {
      thread_local std::vector<uint8_t> padded, virtual_out;
      if (static_cast<int64_t>(padded.size()) < group * plane_bytes)
        padded.resize(static_cast<size_t>(group * plane_bytes));
      if (flat && static_cast<int64_t>(virtual_out.size()) < group * multiplier * g.out_h * pw)
        virtual_out.resize(static_cast<size_t>(group * multiplier * g.out_h * pw));
      DepthwiseRowArgs args;
      args.in_stride = pw;
      args.tap_offsets = tap_offsets.data();
      args.kernel_h = g.kernel_h;
      args.kernel_w = g.kernel_w;
      args.stride_w = g.stride_w;
      args.dilation_h = g.dilation_h;
      args.dilation_w = g.dilation_w;
      args.out_params = packed->out;
      for (int64_t first = b; first < e; first += group) {
        const int64_t count = std::min(group, e - first);
        for (int64_t i = 0; i < count; ++i) {
          uint8_t* pad = padded.data() + i * plane_bytes;
          const uint8_t* src = x.data<uint8_t>() + (first + i) * g.in_h * g.in_w;
          std::memset(pad, zx, static_cast<size_t>(plane_bytes));
          for (int64_t iy = 0; iy < g.in_h; ++iy)
            copy_row(pad + (iy + g.pad_h) * pw + g.pad_w, src + iy * g.in_w, g.in_w);
        }
        for (int64_t i = 0; i < count; ++i) {
          const int64_t plane = first + i, n = plane / g.in_channels, c = plane % g.in_channels;
          const uint8_t* pad = padded.data() + i * plane_bytes;
          for (int64_t m = 0; m < multiplier; ++m) {
            const int64_t o = c * multiplier + m;
            args.w = w + o * taps;
            args.row = packed->rows[static_cast<size_t>(o)];
            if (flat) {
              args.in = pad;
              args.out_w = (g.out_h - 1) * pw + g.out_w;
              args.out = virtual_out.data() + (i * multiplier + m) * g.out_h * pw;
              row_(args);
              continue;
            }
            uint8_t* out = y + (n * g.out_channels + o) * g.out_h * g.out_w;
            args.out_w = g.out_w;
            for (int64_t oy = 0; oy < g.out_h; ++oy) {
              args.in = pad + oy * g.stride_h * pw;
              args.out = out + oy * g.out_w;
              row_(args);
            }
          }
        }
        if (!flat) continue;
        for (int64_t i = 0; i < count; ++i) {
          const int64_t plane = first + i, n = plane / g.in_channels, c = plane % g.in_channels;
          for (int64_t m = 0; m < multiplier; ++m) {
            const int64_t o = c * multiplier + m;
            uint8_t* out = y + (n * g.out_channels + o) * g.out_h * g.out_w;
            const uint8_t* virt = virtual_out.data() + (i * multiplier + m) * g.out_h * pw;
            for (int64_t oy = 0; oy < g.out_h; ++oy) copy_row(out + oy * g.out_w, virt + oy * pw, g.out_w);
          }
        }
      }
    });
  }

 private:
  // The convolutions plane3x3_ takes (chosen at creation): a whole plane per call, in place.
  void run_planes(OpContext& ctx, const ConvGeometry& g, const PackedDepthwise& packed) {
    const uint8_t* x = ctx.input(0).data<uint8_t>();
    const int8_t* w = ctx.input(1).data<int8_t>();
    uint8_t* y = ctx.output(0).data<uint8_t>();
    const uint8_t zx = static_cast<uint8_t>(ctx.attr_int("input_zero_point"));
    ctx.parallel_for(g.batch * g.in_channels, 1, [&](int64_t b, int64_t e) {
      DepthwisePlaneArgs args;
      args.in_h = g.in_h;
      args.in_w = g.in_w;
      args.out_h = g.out_h;
      args.out_w = g.out_w;
      args.stride = g.stride_h;
      args.input_zero_point = zx;
      args.out_params = packed.out;
      for (int64_t plane = b; plane < e; ++plane) {
        const int64_t c = plane % g.in_channels;
        args.in = x + plane * g.in_h * g.in_w;
        args.w = w + c * 9;
        args.row = packed.rows[static_cast<size_t>(c)];
        args.out = y + plane * g.out_h * g.out_w;
        plane3x3_(args);
      }
    });
  }

  static constexpr int64_t kFlatBelow = 48;  // output widths that run as one long row
  static constexpr int64_t kGroup = 8;       // small planes per step
  const char* name_;
  QDepthwiseRowUkernel row_;
  QDepthwisePlaneUkernel plane3x3_;
  std::shared_ptr<const PackedDepthwise> packed_;
};

// ---------------------------------------------------------------- linear

struct PackedLinear {
  Requantization rq;            // quantized_linear
  DequantizeEpilogue dequant;   // quantized_linear_float
  std::vector<int32_t> bias;    // folded
};

PackedLinear pack_linear(const AttrReader& ctx, const Tensor& weight, const Tensor& weight_scale,
                         const Tensor* bias, bool float_output) {
  PackedLinear p;
  const int64_t out_features = weight.dim(0), in_features = weight.dim(1);
  if (float_output) {
    p.dequant = make_dequantize_epilogue(ctx, weight_scale, out_features);
    p.rq.input_zero_point = p.dequant.input_zero_point;  // all fold_rows needs besides sizes
    p.rq.scales.resize(static_cast<size_t>(out_features));
  } else {
    p.rq = make_requantization(ctx, weight_scale, out_features);
  }
  std::vector<RequantRow> rows = fold_rows(p.rq, weight.data<int8_t>(), out_features, in_features,
                                           bias ? bias->data<int32_t>() : nullptr, 0);
  for (const auto& r : rows) p.bias.push_back(r.bias);
  return p;
}

class QuantizedLinearKernel : public OpKernel {
 public:
  QuantizedLinearKernel(const char* name, QDotUkernel dot, bool float_output,
                        std::shared_ptr<const PackedLinear> packed)
      : name_(name), dot_(dot), float_output_(float_output), packed_(std::move(packed)) {}
  const char* name() const override { return name_; }

  void run(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& weight = ctx.input(1);
    std::shared_ptr<const PackedLinear> packed = packed_;
    if (!packed)
      packed = std::make_shared<PackedLinear>(
          pack_linear(ctx, weight, ctx.input(2), ctx.has_input(3) ? &ctx.input(3) : nullptr, float_output_));
    const PackedLinear& p = *packed;
    const int64_t out_features = weight.dim(0), in_features = weight.dim(1);
    const int64_t rows = in_features == 0 ? x.numel() : x.numel() / in_features;
    constexpr int64_t kBlock = 16;
    const int64_t blocks = (out_features + kBlock - 1) / kBlock;
    const uint8_t* px = x.data<uint8_t>();
    const int8_t* pw = weight.data<int8_t>();
    uint8_t* py = float_output_ ? nullptr : ctx.output(0).data<uint8_t>();
    float* pf = float_output_ ? ctx.output(0).data<float>() : nullptr;
    ctx.parallel_for(rows * blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(in_features, 1)),
                     [&](int64_t t0, int64_t t1) {
      int32_t acc[kBlock];
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t m = t / blocks, o0 = (t % blocks) * kBlock;
        const int64_t count = std::min(kBlock, out_features - o0);
        dot_(px + m * in_features, pw + o0 * in_features, in_features, count, acc);
        if (pf) {
          for (int64_t i = 0; i < count; ++i)
            pf[m * out_features + o0 + i] = p.dequant.apply(acc[i] + p.bias[o0 + i], o0 + i);
          continue;
        }
        for (int64_t i = 0; i < count; ++i) {
          const int64_t o = o0 + i;
          py[m * out_features + o] = requantize_to_uint8(acc[i] + p.bias[o], p.rq.scales[o],
                                                         p.rq.output_zero_point, p.rq.range);
        }
      }
    });
  }

 private:
  const char* name_;
  QDotUkernel dot_;
  bool float_output_;
  std::shared_ptr<const PackedLinear> packed_;
};

}  // namespace

std::unique_ptr<OpKernel> make_quantized_conv2d_gemm(const KernelInit& init, const QGemmConfig& config) {
  const TensorType& w = init.input_type(1);
  if (w.ndim() != 4) return nullptr;
  const TensorType& x = init.input_type(0);
  // Depthwise convolutions have their own direct kernels.
  const int64_t groups = init.attr_int("groups");
  if (!config.handles_depthwise && groups > 1 && w.shape[1] == 1 && x.ndim() == 4 && x.shape[1] == groups)
    return nullptr;
  const Tensor* weight = constant_or_null(init, 1);
  const Tensor* scale = constant_or_null(init, 2);
  const bool has_bias = init.has_input(3);
  const Tensor* bias = constant_or_null(init, 3);
  // Map size known (not a dynamic dimension): channels-in-lanes tiles where they fit.
  bool lanes = false;
  if (x.ndim() == 4 && x.shape[1] >= 0 && x.shape[2] >= 0 && x.shape[3] >= 0)
    lanes = takes_lanes(config, conv_geometry(init, x.shape, w.shape));
  std::shared_ptr<const PackedConv> packed;
  if (weight && scale && (!has_bias || bias)) {
    auto p = std::make_shared<PackedConv>(pack_conv(init, config, *weight, *scale, bias, groups, lanes));
    if (!p->fast) return nullptr;
    packed = std::move(p);
  }
  return std::make_unique<QuantizedConvGemmKernel>(config, std::move(packed), lanes);
}

std::unique_ptr<OpKernel> make_quantized_conv2d_depthwise(const KernelInit& init, const char* name,
                                                          QDepthwiseRowUkernel row, const char* plane3x3_name,
                                                          QDepthwisePlaneUkernel plane3x3) {
  const TensorType& w = init.input_type(1);
  const TensorType& x = init.input_type(0);
  const int64_t groups = init.attr_int("groups");
  if (!(groups > 1 && w.ndim() == 4 && w.shape[1] == 1 && x.ndim() == 4 && x.shape[1] == groups))
    return nullptr;
  if (w.shape[2] * w.shape[3] > kMaxDepthwiseTaps) return nullptr;
  if (plane3x3) {
    const ConvGeometry g = conv_geometry(init, x.shape, w.shape);
    const bool takes = g.kernel_h == 3 && g.kernel_w == 3 && g.pad_h == 1 && g.pad_w == 1 && g.dilation_h == 1 &&
                       g.dilation_w == 1 && g.stride_h == g.stride_w && (g.stride_h == 1 || g.stride_h == 2) &&
                       g.out_channels == g.in_channels;
    if (!takes) return nullptr;
    name = plane3x3_name;
  }
  const Tensor* weight = constant_or_null(init, 1);
  const Tensor* scale = constant_or_null(init, 2);
  const bool has_bias = init.has_input(3);
  const Tensor* bias = constant_or_null(init, 3);
  std::shared_ptr<const PackedDepthwise> packed;
  if (weight && scale && (!has_bias || bias)) {
    auto p = std::make_shared<PackedDepthwise>(pack_depthwise(init, *weight, *scale, bias));
    if (!p->fast) return nullptr;
    packed = std::move(p);
  }
  return std::make_unique<QuantizedDepthwiseKernel>(name, row, plane3x3, std::move(packed));
}

std::unique_ptr<OpKernel> make_quantized_linear_dot(const KernelInit& init, const char* name, QDotUkernel dot,
                                                    bool float_output) {
  const TensorType& w = init.input_type(1);
  if (w.ndim() != 2) return nullptr;
  const Tensor* weight = constant_or_null(init, 1);
  const Tensor* scale = constant_or_null(init, 2);
  const bool has_bias = init.has_input(3);
  const Tensor* bias = constant_or_null(init, 3);
  std::shared_ptr<const PackedLinear> packed;
  if (weight && scale && (!has_bias || bias))
    packed = std::make_shared<PackedLinear>(pack_linear(init, *weight, *scale, bias, float_output));
  return std::make_unique<QuantizedLinearKernel>(name, dot, float_output, std::move(packed));
}

}  // namespace ember::quantized
