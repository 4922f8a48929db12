// AVX-512 VNNI kernels: vpdpbusd (u8 x s8, 4 products per int32 lane) for quantized_conv2d as
// GEMM (8 output channels x 32 pixels per tile; 16, 8 and 1 to 4 for a chunk's last pixels) and
// quantized_linear (dot products).

#include "kernels/quantized/requantize_simd.h"  // first: sets the warning pragma before intrinsics
#include "kernels/quantized/qgemm.h"

#include <array>
#include <utility>

namespace ember::quantized {
namespace {

// Accumulator vectors of a tile 16 pixels wide (zmm) or 8 (ymm: half a zmm's dot-product work
// on cores that split 512-bit operations in two).
template <int Pixels>
struct Lanes;
template <>
struct Lanes<16> {
  using V = __m512i;
  static V splat(int32_t v) { return _mm512_set1_epi32(v); }
  static V load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static V dot(V acc, V x, V w) { return _mm512_dpbusd_epi32(acc, x, w); }
  static V add(V a, V b) { return _mm512_add_epi32(a, b); }
  static __m512i wide(V v) { return v; }
};
template <>
struct Lanes<8> {
  using V = __m256i;
  static V splat(int32_t v) { return _mm256_set1_epi32(v); }
  static V load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static V dot(V acc, V x, V w) { return _mm256_dpbusd_epi32(acc, x, w); }
  static V add(V a, V b) { return _mm256_add_epi32(a, b); }
  static __m512i wide(V v) { return _mm512_zextsi256_si512(v); }
};

// How far ahead of the k-loop the weights are prefetched, in bytes (past the block's end: into
// the next block, which the next call reads). The first tile of a block streams its 8 x K
// weights from memory when a net's weights outgrow the cache (four ResNet-18 layer4 convs: 9.4
// MB), and the hardware prefetcher alone left a 7 x 7 layer 1.4x slower than with its weights
// cached; 4 KB and more ahead hide the stream.
constexpr int64_t kWeightPrefetch = 8192;

// 8 output channels x W pixels (32: two vectors per row; 16 and 8: one, for a chunk's last
// pixels).
template <int W>
void u8s8_conv_gemm_vnni(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride,
                         const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                         int64_t out_stride, int64_t mr, int64_t nr) {
  constexpr int MR = 8;
  using L = Lanes<W == 32 ? 16 : W>;
  using V = typename L::V;
  const int8_t* pw = static_cast<const int8_t*>(w);
  // Sixteen named accumulators (an array makes GCC shuffle and spill them in the loop); the
  // second of each row is unused below 32 pixels.
  // Below 32 pixels the second accumulator of each row takes the odd k-quads (summed at the
  // end: integer sums, so the same bits), as one chain of dependent vpdpbusd per row would wait
  // on its latency.
  constexpr bool kSplitK = W != 32;
  const int64_t step = kSplitK ? 2 : 1;
  const V zero = L::splat(0);
  V a00 = L::splat(rows[0].bias), a01 = kSplitK ? zero : a00;
  V a10 = L::splat(rows[1].bias), a11 = kSplitK ? zero : a10;
  V a20 = L::splat(rows[2].bias), a21 = kSplitK ? zero : a20;
  V a30 = L::splat(rows[3].bias), a31 = kSplitK ? zero : a30;
  V a40 = L::splat(rows[4].bias), a41 = kSplitK ? zero : a40;
  V a50 = L::splat(rows[5].bias), a51 = kSplitK ? zero : a50;
  V a60 = L::splat(rows[6].bias), a61 = kSplitK ? zero : a60;
  V a70 = L::splat(rows[7].bias), a71 = kSplitK ? zero : a70;
  int64_t q = 0;
  for (; q + step <= k4; q += step) {
    const uint8_t* c = col + q * col_stride;
    const V x0 = L::load(c);
    const V x1 = L::load(kSplitK ? c + col_stride : c + 64);
    const int8_t* wq = pw + q * MR * 4;
    _mm_prefetch(reinterpret_cast<const char*>(wq + kWeightPrefetch), _MM_HINT_T0);
#define EMBER_VNNI_ROW(R)                                                      \
  {                                                                            \
    const V wr = L::splat(load_i32(wq + (R) * 4));                             \
    a##R##0 = L::dot(a##R##0, x0, wr);                                         \
    a##R##1 = L::dot(a##R##1, x1, kSplitK ? L::splat(load_i32(wq + (MR + (R)) * 4)) : wr); \
  }
    EMBER_VNNI_ROW(0) EMBER_VNNI_ROW(1) EMBER_VNNI_ROW(2) EMBER_VNNI_ROW(3)
    EMBER_VNNI_ROW(4) EMBER_VNNI_ROW(5) EMBER_VNNI_ROW(6) EMBER_VNNI_ROW(7)
#undef EMBER_VNNI_ROW
  }
  if constexpr (kSplitK) {
    if (q < k4) {  // an odd last quad
      const V x0 = L::load(col + q * col_stride);
      const int8_t* wq = pw + q * MR * 4;
#define EMBER_VNNI_ROW(R) a##R##0 = L::dot(a##R##0, x0, L::splat(load_i32(wq + (R) * 4)));
      EMBER_VNNI_ROW(0) EMBER_VNNI_ROW(1) EMBER_VNNI_ROW(2) EMBER_VNNI_ROW(3)
      EMBER_VNNI_ROW(4) EMBER_VNNI_ROW(5) EMBER_VNNI_ROW(6) EMBER_VNNI_ROW(7)
#undef EMBER_VNNI_ROW
    }
#define EMBER_VNNI_ROW(R) a##R##0 = L::add(a##R##0, a##R##1);
    EMBER_VNNI_ROW(0) EMBER_VNNI_ROW(1) EMBER_VNNI_ROW(2) EMBER_VNNI_ROW(3)
    EMBER_VNNI_ROW(4) EMBER_VNNI_ROW(5) EMBER_VNNI_ROW(6) EMBER_VNNI_ROW(7)
#undef EMBER_VNNI_ROW
  }
  const __m512i acc[MR][2] = {{L::wide(a00), L::wide(a01)}, {L::wide(a10), L::wide(a11)},
                              {L::wide(a20), L::wide(a21)}, {L::wide(a30), L::wide(a31)},
                              {L::wide(a40), L::wide(a41)}, {L::wide(a50), L::wide(a51)},
                              {L::wide(a60), L::wide(a61)}, {L::wide(a70), L::wide(a71)}};
  const Pack64 pack(out_params);
  for (int r = 0; r < mr; r += 2) {  // two rows per packed store
    const Requant16 rq0(rows[r], out_params), rq1(rows[r + 1], out_params);
    const __m512i s00 = rq0.scale(acc[r][0]), s10 = rq1.scale(acc[r + 1][0]);
    const __m512i s01 = W == 32 ? rq0.scale(acc[r][1]) : s00;
    const __m512i s11 = W == 32 ? rq1.scale(acc[r + 1][1]) : s10;
    pack.store_rows(out + r * out_stride, r + 1 < mr ? out + (r + 1) * out_stride : nullptr, s00, s01, s10,
                    s11, nr);
  }
}

// The last NP (<= kNarrowPixels) pixels of a chunk: lane r of acc[p] is output channel r of
// pixel p, so each k-quad is one vpdpbusd per pixel (the pixel's four codes broadcast against
// the eight channels' weight quads) instead of the quarter tile's eight; the epilogue then has
// per-lane constants (vpsravq for the channels' shifts), with the arithmetic of Requant16.
template <int NP>
void u8s8_conv_gemm_narrow_vnni(int64_t k4, const int8_t* w, const uint8_t* col, int64_t col_stride,
                                const RequantRow* rows, const OutputParams& out_params, uint8_t* out,
                                int64_t out_stride, int64_t mr) {
  constexpr int MR = 8;
  alignas(32) int32_t bias[MR];
  alignas(64) int64_t multiplier[MR], rounding[MR], shift[MR];
  for (int r = 0; r < MR; ++r) {
    bias[r] = rows[r].bias;
    multiplier[r] = rows[r].multiplier;
    rounding[r] = int64_t{1} << (rows[r].shift - 1);
    shift[r] = rows[r].shift;
  }
  // U independent chains per pixel over interleaved k-quads (one chain would wait on the
  // vpdpbusd latency every quad), summed at the end.
  constexpr int U = NP == 1 ? 8 : NP == 2 ? 4 : 2;
  __m256i acc[NP][U];
  for (int p = 0; p < NP; ++p) {
    acc[p][0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias));
    for (int u = 1; u < U; ++u) acc[p][u] = _mm256_setzero_si256();
  }
  int64_t q = 0;
  for (; q + U <= k4; q += U)
    for (int u = 0; u < U; ++u) {
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (q + u) * MR * 4));
      const uint8_t* c = col + (q + u) * col_stride;
      for (int p = 0; p < NP; ++p)
        acc[p][u] = _mm256_dpbusd_epi32(acc[p][u], _mm256_set1_epi32(load_i32(c + 4 * p)), wq);
    }
  for (; q < k4; ++q) {
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + q * MR * 4));
    const uint8_t* c = col + q * col_stride;
    for (int p = 0; p < NP; ++p) acc[p][0] = _mm256_dpbusd_epi32(acc[p][0], _mm256_set1_epi32(load_i32(c + 4 * p)), wq);
  }
  for (int p = 0; p < NP; ++p)
    for (int u = 1; u < U; ++u) acc[p][0] = _mm256_add_epi32(acc[p][0], acc[p][u]);
  const __m512i m = _mm512_load_si512(multiplier), round = _mm512_load_si512(rounding), s = _mm512_load_si512(shift);
  const __m256i lo = _mm256_set1_epi32(out_params.min - out_params.zero_point);
  const __m256i hi = _mm256_set1_epi32(out_params.max - out_params.zero_point);
  const __m256i zp = _mm256_set1_epi32(out_params.zero_point);
  for (int p = 0; p < NP; ++p) {
    // Each lane's 64-bit product, rounded and shifted by its channel's shift (>= 31: fits int32).
    const __m512i wide = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_cvtepi32_epi64(acc[p][0]), m), round), s);
    const __m256i v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm512_cvtepi64_epi32(wide), lo), hi), zp);
    alignas(32) int32_t codes[MR];
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes), v);
    for (int64_t r = 0; r < mr; ++r) out[r * out_stride + p] = static_cast<uint8_t>(codes[r]);
  }
}

void u8s8_conv_gemm_narrow(int64_t k4, const void* w, const uint8_t* col, int64_t col_stride, const RequantRow* rows,
                           const OutputParams& out_params, uint8_t* out, int64_t out_stride, int64_t mr, int64_t nr) {
  const int8_t* pw = static_cast<const int8_t*>(w);
  static_assert(kNarrowPixels == 4, "one case per pixel count");
  switch (nr) {
    case 1: return u8s8_conv_gemm_narrow_vnni<1>(k4, pw, col, col_stride, rows, out_params, out, out_stride, mr);
    case 2: return u8s8_conv_gemm_narrow_vnni<2>(k4, pw, col, col_stride, rows, out_params, out, out_stride, mr);
    case 3: return u8s8_conv_gemm_narrow_vnni<3>(k4, pw, col, col_stride, rows, out_params, out, out_stride, mr);
    default: return u8s8_conv_gemm_narrow_vnni<4>(k4, pw, col, col_stride, rows, out_params, out, out_stride, mr);
  }
}

void u8s8_dot_vnni(const uint8_t* x, const int8_t* w, int64_t k, int64_t rows, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* wr = w + r * k;
    __m512i acc = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 64 <= k; i += 64)
      acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(x + i), _mm512_loadu_si512(wr + i));
    if (i < k) {
      const __mmask64 mask = (~__mmask64{0}) >> (64 - (k - i));
      acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(mask, x + i), _mm512_maskz_loadu_epi8(mask, wr + i));
    }
    out[r] = _mm512_reduce_add_epi32(acc);
  }
}

// Channels in lanes (see QLanesUkernel): NV vectors of 16 channels x NP pixels, NV x NP
// accumulators (24 at the full 64 x 6: with the 4 weight vectors and a broadcast, 29 of 32
// registers). The epilogue is Requant16's arithmetic with per-lane constants.
template <int NV, int NP>
void u8s8_conv_lanes_vnni(const LaneSegments& depth, const int8_t* w, int64_t w_stride, const uint8_t* const* pixels,
                          const LaneConsts& consts, const OutputParams& out_params, uint8_t* out,
                          int64_t out_stride) {
  // Named accumulators a<pixel><vector> (as in u8s8_conv_gemm_vnni: in an array GCC moved them
  // through the stack every quad, 2.5x slower); those past NP or NV are never used.
  const __m512i zero = _mm512_setzero_si512();
  const __m512i b0 = _mm512_loadu_si512(consts.bias);
  const __m512i b1 = NV > 1 ? _mm512_loadu_si512(consts.bias + 16) : zero;
  const __m512i b2 = NV > 2 ? _mm512_loadu_si512(consts.bias + 32) : zero;
  const __m512i b3 = NV > 3 ? _mm512_loadu_si512(consts.bias + 48) : zero;
#define EMBER_LANES_ACC(P) __m512i a##P##0 = b0, a##P##1 = b1, a##P##2 = b2, a##P##3 = b3;
  EMBER_LANES_ACC(0) EMBER_LANES_ACC(1) EMBER_LANES_ACC(2) EMBER_LANES_ACC(3) EMBER_LANES_ACC(4) EMBER_LANES_ACC(5)
#undef EMBER_LANES_ACC
  const uint8_t* const p0 = pixels[0];
  const uint8_t* const p1 = NP > 1 ? pixels[1] : p0;
  const uint8_t* const p2 = NP > 2 ? pixels[2] : p0;
  const uint8_t* const p3 = NP > 3 ? pixels[3] : p0;
  const uint8_t* const p4 = NP > 4 ? pixels[4] : p0;
  const uint8_t* const p5 = NP > 5 ? pixels[5] : p0;
  const int8_t* wq = w;
  for (int64_t seg = 0; seg < depth.segs; ++seg) {
    const int64_t off = depth.seg_offsets[seg];
    for (int64_t q = 0; q < depth.seg_k4; ++q, wq += w_stride) {
      // The first tile over a block streams its weights from memory (see kWeightPrefetch).
      _mm_prefetch(reinterpret_cast<const char*>(wq + kWeightPrefetch), _MM_HINT_T0);
      if constexpr (NV > 1) _mm_prefetch(reinterpret_cast<const char*>(wq + 64 + kWeightPrefetch), _MM_HINT_T0);
      if constexpr (NV > 2) _mm_prefetch(reinterpret_cast<const char*>(wq + 128 + kWeightPrefetch), _MM_HINT_T0);
      if constexpr (NV > 3) _mm_prefetch(reinterpret_cast<const char*>(wq + 192 + kWeightPrefetch), _MM_HINT_T0);
      const __m512i w0 = _mm512_loadu_si512(wq);
      const __m512i w1 = NV > 1 ? _mm512_loadu_si512(wq + 64) : zero;
      const __m512i w2 = NV > 2 ? _mm512_loadu_si512(wq + 128) : zero;
      const __m512i w3 = NV > 3 ? _mm512_loadu_si512(wq + 192) : zero;
      const int64_t at = off + 4 * q;
#define EMBER_LANES_PIXEL(P)                                                 \
  if constexpr (P < NP) {                                                    \
    const __m512i x = _mm512_set1_epi32(load_i32(p##P + at));                \
    a##P##0 = _mm512_dpbusd_epi32(a##P##0, x, w0);                           \
    if constexpr (NV > 1) a##P##1 = _mm512_dpbusd_epi32(a##P##1, x, w1);     \
    if constexpr (NV > 2) a##P##2 = _mm512_dpbusd_epi32(a##P##2, x, w2);     \
    if constexpr (NV > 3) a##P##3 = _mm512_dpbusd_epi32(a##P##3, x, w3);     \
  }
      EMBER_LANES_PIXEL(0) EMBER_LANES_PIXEL(1) EMBER_LANES_PIXEL(2)
      EMBER_LANES_PIXEL(3) EMBER_LANES_PIXEL(4) EMBER_LANES_PIXEL(5)
#undef EMBER_LANES_PIXEL
    }
  }
  // Only the accumulators in use: the others, copies of the bias, kept alive into the epilogue
  // made GCC spill the weight vectors to the stack in the 5-pixel tile's loop (a 7 x 7 map is
  // five such tiles and four of 6: 110 GMAC/s against 230 on 14 x 14).
#define EMBER_LANES_USED(P, V) (P < NP && V < NV ? a##P##V : zero)
#define EMBER_LANES_ROW(P) {EMBER_LANES_USED(P, 0), EMBER_LANES_USED(P, 1), EMBER_LANES_USED(P, 2), EMBER_LANES_USED(P, 3)}
  const __m512i acc[kLanesPixels][kLanesVectors] = {EMBER_LANES_ROW(0), EMBER_LANES_ROW(1), EMBER_LANES_ROW(2),
                                                    EMBER_LANES_ROW(3), EMBER_LANES_ROW(4), EMBER_LANES_ROW(5)};
#undef EMBER_LANES_ROW
#undef EMBER_LANES_USED
  const __m512i one = _mm512_set1_epi64(1), low32 = _mm512_set1_epi64(0xFFFFFFFFll);
  const __m512i lo = _mm512_set1_epi32(out_params.min - out_params.zero_point);
  const __m512i hi = _mm512_set1_epi32(out_params.max - out_params.zero_point);
  const __m512i zp = _mm512_set1_epi32(out_params.zero_point);
  for (int v = 0; v < NV; ++v) {
    const __m512i m = _mm512_loadu_si512(consts.multiplier + 16 * v), s = _mm512_loadu_si512(consts.shift + 16 * v);
    const __m512i m_odd = _mm512_srli_epi64(m, 32);
    const __m512i s_even = _mm512_and_si512(s, low32), s_odd = _mm512_srli_epi64(s, 32);
    const __m512i r_even = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_even, one));
    const __m512i r_odd = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_odd, one));
    __m128i x[kLanesPixels];  // the 16 channels' codes of each pixel
    for (int p = 0; p < kLanesPixels; ++p) {
      x[p] = _mm_setzero_si128();
      if (p >= NP) continue;
      const __m512i a = acc[p][v];
      const __m512i even = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, m), r_even), s_even);
      const __m512i odd =
          _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), m_odd), r_odd), s_odd);
      const __m512i scaled = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, static_cast<_MM_PERM_ENUM>(0xA0));
      x[p] = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(scaled, lo), hi), zp));
    }
    // Transposed to 8 bytes per channel (pixels 0-5, two spare), two channels per vector, so a
    // channel's pixels are one masked store, not a byte store per channel and pixel through the
    // stack (ResNet-18 int8, alternating: layer1 3x3 convolutions 1.13-1.20x faster, where the
    // depth is only 576).
    const __m128i z = _mm_setzero_si128();
    const __m128i a = _mm_unpacklo_epi8(x[0], x[1]), b = _mm_unpackhi_epi8(x[0], x[1]);  // (p0, p1): ch 0-7, 8-15
    const __m128i c = _mm_unpacklo_epi8(x[2], x[3]), d = _mm_unpackhi_epi8(x[2], x[3]);  // (p2, p3)
    const __m128i e = _mm_unpacklo_epi8(x[4], x[5]), f = _mm_unpackhi_epi8(x[4], x[5]);  // (p4, p5)
    const __m128i q[4] = {_mm_unpacklo_epi16(a, c), _mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(b, d),
                          _mm_unpackhi_epi16(b, d)};  // (p0 .. p3): ch 0-3, 4-7, 8-11, 12-15
    const __m128i t[4] = {_mm_unpacklo_epi16(e, z), _mm_unpackhi_epi16(e, z), _mm_unpacklo_epi16(f, z),
                          _mm_unpackhi_epi16(f, z)};  // (p4, p5, 0, 0)
    const __mmask16 first = static_cast<__mmask16>((1u << NP) - 1);
    uint8_t* o = out + 16 * v * out_stride;
    for (int i = 0; i < 4; ++i) {
      const __m128i lo2 = _mm_unpacklo_epi32(q[i], t[i]), hi2 = _mm_unpackhi_epi32(q[i], t[i]);  // ch 4i .. 4i + 3
      _mm_mask_storeu_epi8(o + (4 * i) * out_stride, first, lo2);
      _mm_mask_storeu_epi8(o + (4 * i + 1) * out_stride, first, _mm_bsrli_si128(lo2, 8));
      _mm_mask_storeu_epi8(o + (4 * i + 2) * out_stride, first, hi2);
      _mm_mask_storeu_epi8(o + (4 * i + 3) * out_stride, first, _mm_bsrli_si128(hi2, 8));
    }
  }
}

template <int NV, int... P>
constexpr std::array<void (*)(const LaneSegments&, const int8_t*, int64_t, const uint8_t* const*, const LaneConsts&,
                              const OutputParams&, uint8_t*, int64_t),
                     sizeof...(P)>
lanes_row(std::integer_sequence<int, P...>) {
  return {u8s8_conv_lanes_vnni<NV, P + 1>...};
}

void u8s8_conv_lanes(const LaneSegments& depth, const int8_t* w, int64_t w_stride, int nv,
                     const uint8_t* const* pixels, int np, const LaneConsts& consts, const OutputParams& out_params,
                     uint8_t* out, int64_t out_stride) {
  static_assert(kLanesVectors == 4 && kLanesPixels == 6, "one table row per vector count");
  static constexpr auto kSeq = std::make_integer_sequence<int, kLanesPixels>();
  static constexpr decltype(lanes_row<1>(kSeq)) kTable[kLanesVectors] = {lanes_row<1>(kSeq), lanes_row<2>(kSeq),
                                                                        lanes_row<3>(kSeq), lanes_row<4>(kSeq)};
  kTable[nv - 1][np - 1](depth, w, w_stride, pixels, consts, out_params, out, out_stride);
}

// interleave4 on 64 pixels at a time: byte and word unpacks interleave within each 128-bit
// lane, then a 4 x 4 transpose of the lanes puts pixels 16L .. 16L + 15 in output vector L
// (a third of the SSE2 version's instructions); each vector is stored at its pixels' place in
// the blocks.
void interleave4_avx512(const uint8_t* const rows[4], int64_t n, uint8_t* dst, int64_t block,
                        int64_t block_stride) {
  const int64_t block_skip = block_stride - block * 4;
  int64_t i = 0, left = block;
  auto store = [&](__m512i v) {  // the next 16 pixels
    _mm512_storeu_si512(dst, v);
    dst += 64;
    if ((left -= 16) == 0) {
      dst += block_skip;
      left = block;
    }
  };
  for (; i + 64 <= n; i += 64) {
    const __m512i a = _mm512_loadu_si512(rows[0] + i), b = _mm512_loadu_si512(rows[1] + i);
    const __m512i c = _mm512_loadu_si512(rows[2] + i), d = _mm512_loadu_si512(rows[3] + i);
    const __m512i ab_lo = _mm512_unpacklo_epi8(a, b), ab_hi = _mm512_unpackhi_epi8(a, b);
    const __m512i cd_lo = _mm512_unpacklo_epi8(c, d), cd_hi = _mm512_unpackhi_epi8(c, d);
    // Lane L of q0..q3: pixels 16L + 0..3, 4..7, 8..11, 12..15.
    const __m512i q0 = _mm512_unpacklo_epi16(ab_lo, cd_lo), q1 = _mm512_unpackhi_epi16(ab_lo, cd_lo);
    const __m512i q2 = _mm512_unpacklo_epi16(ab_hi, cd_hi), q3 = _mm512_unpackhi_epi16(ab_hi, cd_hi);
    const __m512i t0 = _mm512_shuffle_i64x2(q0, q1, 0x44), t1 = _mm512_shuffle_i64x2(q0, q1, 0xEE);
    const __m512i t2 = _mm512_shuffle_i64x2(q2, q3, 0x44), t3 = _mm512_shuffle_i64x2(q2, q3, 0xEE);
    store(_mm512_shuffle_i64x2(t0, t2, 0x88));
    store(_mm512_shuffle_i64x2(t0, t2, 0xDD));
    store(_mm512_shuffle_i64x2(t1, t3, 0x88));
    store(_mm512_shuffle_i64x2(t1, t3, 0xDD));
  }
  for (; i < n; i += 16) {  // the rest (16, 32 or 48 pixels), 16 at a time
    const uint8_t* const rest[4] = {rows[0] + i, rows[1] + i, rows[2] + i, rows[3] + i};
    alignas(64) uint8_t quads[64];
    interleave4_portable(rest, 16, quads, 16, 64);
    store(_mm512_load_si512(quads));
  }
}

const QGemmConfig kConvGemm = {"u8s8_conv_gemm_8x32_vnni", 8, 32, WeightLayout::Int8Quads, 0,
                               u8s8_conv_gemm_vnni<32>, false, interleave4_avx512,
                               u8s8_conv_gemm_vnni<16>, u8s8_conv_gemm_vnni<8>, u8s8_conv_gemm_narrow,
                               u8s8_conv_lanes, "u8s8_conv_lanes_64x6_vnni"};

}  // namespace

EMBER_REGISTER_KERNEL(quantized_conv2d, DType::UInt8, Isa::AVX512_VNNI, "u8s8_conv_gemm_8x32_vnni",
                      [](const KernelInit& init) { return make_quantized_conv2d_gemm(init, kConvGemm); });
EMBER_REGISTER_KERNEL(quantized_linear, DType::UInt8, Isa::AVX512_VNNI, "u8s8_linear_dot_vnni",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_dot_vnni", u8s8_dot_vnni);
                      });
EMBER_REGISTER_KERNEL(quantized_linear_float, DType::UInt8, Isa::AVX512_VNNI, "u8s8_linear_float_dot_vnni",
                      [](const KernelInit& init) {
                        return make_quantized_linear_dot(init, "u8s8_linear_float_dot_vnni", u8s8_dot_vnni, true);
                      });

}  // namespace ember::quantized
