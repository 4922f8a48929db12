// Direct weight gradient of a stride-1, undilated conv2d with kernel width 3 (NCHW):
//
//     dW[o, c, ky, kx] = sum over images n and output pixels (oh, ow) of
//                        dY[n, o, oh, ow] * X[n, c, oh + ky - ph, ow + kx - pw]
//
// as dot products along output rows, vectorized over ow, with no im2col: the GEMM form packs
// an im2col^T of 9 * C values per pixel, a transposition whose stores cost about as much as
// the multiplies when O is small (the training CNNs' 16..64 channels).
//
// Per chunk of images, dY is copied with each row padded to whole vectors (zeros) and X with
// the padding made explicit (zeros), so every load is a full vector. A task owns a block of OB
// output channels x one input channel x one ky and keeps OB x 3 accumulators (kx = 0, 1, 2) in
// registers over all the chunk's rows; lanes past the row's end (ow >= OW) are masked to zero
// on the X side, so values beyond the row never enter a sum (0 * inf would be NaN). Lane
// partial sums are kept per (o, c, ky, kx) across chunks in task order and reduced in lane
// order at the end: the summation order depends only on the shape, never on the thread count.
//
// Included by one file per ISA after defining EMBER_VEC_BYTES (vec.h); internal linkage.
#pragma once
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/conv2d_fast.h"
#include "kernels/simd/vec.h"

namespace ember::conv {
namespace {

using namespace ::ember::simd;

// Output channels per task: OB x 3 accumulators, plus two X vectors, their two shifts and a dY
// vector in registers (AVX-512: 24 + 5 of 32; AVX2: 12 + 4 of 16).
constexpr int kOB = kLanes >= 16 ? 8 : 4;

// Lanes 1.. and 2.. of the concatenation (a, b): X at columns ow + 1 and ow + 2 from two
// aligned loads (a shuffle, where an unaligned load would straddle two cache lines).
template <int Shift, int... I>
inline vf shifted(vf a, vf b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (I + Shift)...);
}

// One image's rows into the OB x 3 accumulators: dY rows of `vecs` vectors (VECS > 0: that
// many, known at compile time, so the row loop has no inner loop), X rows `xw` floats apart.
template <int VECS>
inline void image_rows(vf (&acc)[kOB][3], const float* const (&dyo)[kOB], const float* xc,
                       int64_t rows, int64_t vecs, int64_t owp, int64_t xw, vi tail_keep) {
  constexpr auto seq = std::make_integer_sequence<int, kLanes>();
  const int64_t nv = VECS > 0 ? VECS : vecs;
  for (int64_t oh = 0; oh < rows; ++oh) {
    const float* xr = xc + oh * xw;
#pragma GCC unroll 2
    for (int64_t v = 0; v < nv; ++v) {
      const vf xa = load(xr + v * kLanes), xb = load(xr + v * kLanes + kLanes);
      vf x0 = xa, x1 = shifted<1>(xa, xb, seq), x2 = shifted<2>(xa, xb, seq);
      if (v == nv - 1) {
        x0 = select(tail_keep, x0, vf{});
        x1 = select(tail_keep, x1, vf{});
        x2 = select(tail_keep, x2, vf{});
      }
#pragma GCC unroll 8
      for (int i = 0; i < kOB; ++i) {
        vf d = load(dyo[i] + oh * owp + v * kLanes);
        asm("" : "+v"(d));  // one load into a register, not three memory operands
        acc[i][0] = fmadd(d, x0, acc[i][0]);
        acc[i][1] = fmadd(d, x1, acc[i][1]);
        acc[i][2] = fmadd(d, x2, acc[i][2]);
      }
    }
  }
}

void grad_weight_direct_run(const Conv2dShape& s, const float* dy, const float* x, float* dw,
                            ThreadPool* pool) {
  const int64_t L = kLanes;
  const int64_t O = s.O, C = s.C, Cg = s.C / s.groups, Og = s.O / s.groups;
  const int64_t OH = s.OH, OW = s.OW, KH = s.kh;
  const int64_t vecs = (OW + L - 1) / L, OWp = vecs * L;  // padded dY row
  // Padded X plane (kw = 3): rows of whole vectors plus one, so the shifted taps of the last
  // vector come from an aligned next vector.
  const int64_t XR = OH + KH - 1, XW = OWp + L;
  // Images per chunk: about 2 MB of padded copies, so a chunk stays in L2/L3.
  const int64_t per_image = (O * OH * OWp + C * XR * XW) * 4;
  const int64_t chunk = std::clamp<int64_t>((2 << 20) / std::max<int64_t>(per_image, 1), 1, s.N);
  // 64-byte aligned (Tensor storage), so rows of whole vectors load aligned.
  Tensor dyp_buf = Tensor::empty({chunk * O * OH * OWp}, DType::Float32);
  Tensor xp_buf = Tensor::empty({chunk * C * XR * XW}, DType::Float32);
  float* const dyp = dyp_buf.data<float>();
  float* const xp = xp_buf.data<float>();
  // Lane partials [O][Cg][KH][3][L], summed over chunks.
  std::vector<float> part(static_cast<size_t>(O * Cg * KH * 3 * L), 0.0f);
  vi lane;
  for (int j = 0; j < kLanes; ++j) lane[j] = j;
  const vi tail_keep = lane < static_cast<int32_t>(OW - (vecs - 1) * L);  // last vector's lanes

  const int64_t oblocks = (Og + kOB - 1) / kOB;
  const int64_t tasks = s.groups * oblocks * Cg * KH;
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t nc = std::min(chunk, s.N - n0);
    // Padded copies, planes in parallel.
    auto copy_planes = [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        if (p < nc * O) {  // a dY plane
          const float* src = dy + (n0 * O + p) * OH * OW;
          float* dst = dyp + p * OH * OWp;
          for (int64_t r = 0; r < OH; ++r) {
            std::memcpy(dst + r * OWp, src + r * OW, static_cast<size_t>(OW) * 4);
            std::fill(dst + r * OWp + OW, dst + (r + 1) * OWp, 0.0f);
          }
        } else {  // an X plane, rows oh + ky - ph, columns ow + kx - pw
          const int64_t q = p - nc * O;
          const float* src = x + (n0 * C + q) * s.H * s.W;
          float* dst = xp + q * XR * XW;
          for (int64_t r = 0; r < XR; ++r) {
            float* row = dst + r * XW;
            std::fill(row, row + XW, 0.0f);
            const int64_t ih = r - s.ph;
            if (ih < 0 || ih >= s.H) continue;
            const int64_t c0 = std::max<int64_t>(0, s.pw), iw0 = std::max<int64_t>(0, -s.pw);
            const int64_t len = std::min<int64_t>(s.W - iw0, XW - c0);
            if (len > 0) std::memcpy(row + c0, src + ih * s.W + iw0, static_cast<size_t>(len) * 4);
          }
        }
      }
    };
    if (pool) pool->parallel_for(nc * (O + C), 1, copy_planes); else copy_planes(0, nc * (O + C));

    auto run_tasks = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t ky = t % KH, c = (t / KH) % Cg, ob = (t / (KH * Cg)) % oblocks;
        const int64_t g = t / (KH * Cg * oblocks);
        const int64_t o0 = g * Og + ob * kOB;
        const int nob = static_cast<int>(std::min<int64_t>(kOB, Og - ob * kOB));
        vf acc[kOB][3];
        for (int i = 0; i < kOB; ++i) acc[i][0] = acc[i][1] = acc[i][2] = vf{};
        for (int64_t n = 0; n < nc; ++n) {
          const float* dyo[kOB];
          for (int i = 0; i < kOB; ++i)
            dyo[i] = dyp + ((n * O) + o0 + std::min(i, nob - 1)) * OH * OWp;
          const float* xc = xp + (n * C + g * Cg + c) * XR * XW + ky * XW;
          if (vecs == 1)
            image_rows<1>(acc, dyo, xc, OH, 1, OWp, XW, tail_keep);
          else if (vecs == 2)
            image_rows<2>(acc, dyo, xc, OH, 2, OWp, XW, tail_keep);
          else
            image_rows<0>(acc, dyo, xc, OH, vecs, OWp, XW, tail_keep);
        }
        for (int i = 0; i < nob; ++i)
          for (int kx = 0; kx < 3; ++kx) {
            float* p = part.data() + ((((o0 + i) * Cg + c) * KH + ky) * 3 + kx) * L;
            store(p, load(p) + acc[i][kx]);
          }
      }
    };
    if (pool) pool->parallel_for(tasks, 1, run_tasks); else run_tasks(0, tasks);
  }
  // dW [O, Cg, KH, 3]: each partial's lanes in order.
  const int64_t outputs = O * Cg * KH * 3;
  for (int64_t i = 0; i < outputs; ++i) {
    const float* p = part.data() + i * L;
    float sum = 0.0f;
    for (int64_t j = 0; j < L; ++j) sum += p[j];
    dw[i] = sum;
  }
}

}  // namespace
}  // namespace ember::conv
