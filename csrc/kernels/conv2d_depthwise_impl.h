// The direct depthwise convolution, written once in plain C++ and included by one file per ISA
// (conv2d_depthwise_{portable,avx2,avx512}.cc), so each copy is vectorized with that file's
// compiler flags. Everything here has internal linkage: the copies never mix at link time.
//
// Each (image, channel) plane is copied into a zero-padded buffer, so the inner loop has no
// bounds checks; a vector of adjacent outputs accumulates all K x K taps in a register (GCC
// vector extensions, lowered to the including file's ISA).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/conv2d_fast.h"

namespace ember::conv {
namespace {

// EMBER_DW_VECTOR_BYTES (set by the including file) is the SIMD width the compiler lowers the
// generic vector type to: 64 for AVX-512, 32 for AVX2, 16 for the baseline ISA.
#ifndef EMBER_DW_VECTOR_BYTES
#define EMBER_DW_VECTOR_BYTES 16
#endif
constexpr int kLanes = EMBER_DW_VECTOR_BYTES / 4;
typedef float VecF __attribute__((vector_size(EMBER_DW_VECTOR_BYTES)));
typedef int VecI __attribute__((vector_size(EMBER_DW_VECTOR_BYTES)));

inline VecF load(const float* p) {
  VecF v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, VecF v) { __builtin_memcpy(p, &v, sizeof(v)); }
inline VecF splat(float x) { return VecF{} + x; }

// kLanes consecutive outputs of input columns p[0], p[S], p[2S], ...
template <int S>
inline VecF load_strided(const float* p) {
  if constexpr (S == 1) {
    return load(p);
  } else {
    static_assert(S == 2, "stride 1 or 2");
    VecI even;
    for (int i = 0; i < kLanes; ++i) even[i] = 2 * i;
    return __builtin_shuffle(load(p), load(p + kLanes), even);
  }
}

template <int K, int S>
void depthwise_plane(const float* __restrict x, int64_t H, int64_t W, const float* __restrict w,
                     float bias, float* __restrict y, int64_t OH, int64_t OW, int64_t ph,
                     int64_t pw, const ConvEpilogue& ep, float* __restrict pad) {
  // Padded plane: every tap of every output is in bounds; kLanes * S spare columns let the
  // strided vector loads of the last full vector run past the window.
  const int64_t PH = (OH - 1) * S + K, PW = (OW - 1) * S + K + kLanes * S;
  for (int64_t r = 0; r < PH; ++r) {
    float* dst = pad + r * PW;
    const int64_t ih = r - ph;
    if (ih < 0 || ih >= H) {
      std::fill(dst, dst + PW, 0.0f);
      continue;
    }
    const int64_t left = std::min(pw, PW);
    const int64_t copy = std::max<int64_t>(0, std::min(W, PW - pw));
    std::fill(dst, dst + left, 0.0f);
    std::memcpy(dst + left, x + ih * W, static_cast<size_t>(copy) * 4);
    std::fill(dst + left + copy, dst + PW, 0.0f);
  }
  VecF taps[K * K];
  for (int i = 0; i < K * K; ++i) taps[i] = splat(w[i]);
  const bool clamp = ep.clamp;
  const VecF lo = splat(ep.lo), hi = splat(ep.hi), b = splat(bias);
  for (int64_t oh = 0; oh < OH; ++oh) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = pad + (oh * S + ky) * PW;
    float* out = y + oh * OW;
    // The last vector may be partial: it is computed whole (the padded rows are wide enough)
    // and only its valid lanes are stored.
    for (int64_t ow = 0; ow < OW; ow += kLanes) {
      VecF s = b;
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
        const float* r = rows[ky] + ow * S;
#pragma GCC unroll 5
        for (int kx = 0; kx < K; ++kx) s += taps[ky * K + kx] * load_strided<S>(r + kx);
      }
      if (clamp) {  // comparisons keep a NaN
        s = s < lo ? lo : s;
        s = s > hi ? hi : s;
      }
      if (ow + kLanes <= OW)
        store(out + ow, s);
      else
        __builtin_memcpy(out + ow, &s, static_cast<size_t>(OW - ow) * 4);
    }
  }
}

void depthwise_run(const Conv2dShape& s, const float* x, const float* w, float* y,
                   const ConvEpilogue& ep, ThreadPool* pool) {
  const int64_t planes = s.N * s.C;
  const int64_t K = s.kh, S = s.sh;
  const int64_t pad_floats = ((s.OH - 1) * S + K) * ((s.OW - 1) * S + K + kLanes * S);
  auto body = [&](int64_t p0, int64_t p1) {
    thread_local std::vector<float> pad;
    if (static_cast<int64_t>(pad.size()) < pad_floats) pad.resize(static_cast<size_t>(pad_floats));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % s.C;
      const float* xp = x + p * s.H * s.W;
      const float* wp = w + c * K * K;
      float* yp = y + p * s.OH * s.OW;
      const float b = ep.bias ? ep.bias[c] : 0.0f;
      if (K == 3 && S == 1)
        depthwise_plane<3, 1>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
      else if (K == 3)
        depthwise_plane<3, 2>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
      else if (S == 1)
        depthwise_plane<5, 1>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
      else
        depthwise_plane<5, 2>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
    }
  };
  // A plane is thousands of FMAs: one plane per chunk is already coarse enough.
  if (pool)
    pool->parallel_for(planes, 1, body);
  else
    body(0, planes);
}

}  // namespace
}  // namespace ember::conv
