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
// Two vector widths: the ISA's full width, and half of it (at least 16 bytes) for narrow planes
// (7 columns fill 7 of 8 lanes instead of 7 of 16).
struct WideVec {
  typedef float F __attribute__((vector_size(EMBER_DW_VECTOR_BYTES)));
  typedef int I __attribute__((vector_size(EMBER_DW_VECTOR_BYTES)));
};
#define EMBER_DW_NARROW_BYTES (EMBER_DW_VECTOR_BYTES > 16 ? EMBER_DW_VECTOR_BYTES / 2 : 16)
struct NarrowVec {
  typedef float F __attribute__((vector_size(EMBER_DW_NARROW_BYTES)));
  typedef int I __attribute__((vector_size(EMBER_DW_NARROW_BYTES)));
};
constexpr int kLanes = EMBER_DW_VECTOR_BYTES / 4;
constexpr int kNarrowLanes = EMBER_DW_NARROW_BYTES / 4;

template <typename V>
inline typename V::F load(const float* p) {
  typename V::F v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename V>
inline typename V::F splat(float x) {
  return typename V::F{} + x;
}

// Consecutive outputs of input columns p[0], p[S], p[2S], ...
template <typename V, int S>
inline typename V::F load_strided(const float* p) {
  constexpr int lanes = sizeof(typename V::F) / 4;
  if constexpr (S == 1) {
    return load<V>(p);
  } else {
    static_assert(S == 2, "stride 1 or 2");
    typename V::I even;
    for (int i = 0; i < lanes; ++i) even[i] = 2 * i;
    return __builtin_shuffle(load<V>(p), load<V>(p + lanes), even);
  }
}

// Short copies and fills written as fixed-size moves (GCC turns plain loops into memcpy / memset
// calls, which cost more than copying a dozen floats): whole chunks of the vector width, then
// one overlapping chunk for the tail; shorter rows the same way with half-width chunks, down to
// 4 floats, then singles. Whole-vector stores also let the convolution's vector loads forward.
template <int CHUNK = kLanes>
inline void copy_floats(float* __restrict d, const float* __restrict s, int64_t n) {
  if (n >= 32) return (void)std::memcpy(d, s, static_cast<size_t>(n) * 4);  // long rows: the library's copy
  if constexpr (CHUNK >= 4) {
    if (n >= CHUNK) {
      int64_t i = 0;
      for (; i + CHUNK <= n; i += CHUNK) __builtin_memcpy(d + i, s + i, CHUNK * 4);
      if (i < n) __builtin_memcpy(d + n - CHUNK, s + n - CHUNK, CHUNK * 4);
      return;
    }
    if constexpr (CHUNK > 4) return copy_floats<CHUNK / 2>(d, s, n);
  }
  if (n > 0) d[0] = s[0];
  if (n > 1) d[1] = s[1];
  if (n > 2) d[2] = s[2];
}

inline void zero_floats(float* d, int64_t n) {
  static const float zeros[32] = {};  // copy_floats takes the library's path from 32 floats on
  if (n >= 32) return (void)std::memset(d, 0, static_cast<size_t>(n) * 4);
  copy_floats(d, zeros, n);
}

// Floats of padded plane for an output of OH x OW: rows of exactly (OW - 1) * S + K columns,
// plus slack after the last row for the lanes a partial last vector reads past its row (those
// lanes read the next row's values or the slack, and are never stored).
inline int64_t padded_floats(int64_t OH, int64_t OW, int64_t K, int64_t S) {
  return ((OH - 1) * S + K) * ((OW - 1) * S + K) + 2 * kLanes * S + K;
}

template <typename V, int K, int S>
void depthwise_plane(const float* __restrict x, int64_t H, int64_t W, const float* __restrict w,
                     float bias, float* __restrict y, int64_t OH, int64_t OW, int64_t ph,
                     int64_t pw, const ConvEpilogue& ep, float* __restrict pad) {
  using F = typename V::F;
  constexpr int L = sizeof(F) / 4;
  const int64_t PH = (OH - 1) * S + K, PW = (OW - 1) * S + K;
  const int64_t left = std::min(pw, PW);
  const int64_t copy = std::max<int64_t>(0, std::min(W, PW - left));
  for (int64_t r = 0; r < PH; ++r) {
    float* __restrict dst = pad + r * PW;
    const int64_t ih = r - ph;
    if (ih < 0 || ih >= H) {
      zero_floats(dst, PW);
      continue;
    }
    zero_floats(dst, left);
    copy_floats(dst + left, x + ih * W, copy);
    zero_floats(dst + left + copy, PW - left - copy);
  }
  F taps[K * K];
  for (int i = 0; i < K * K; ++i) taps[i] = splat<V>(w[i]);
  const bool clamp = ep.clamp;
  const F lo = splat<V>(ep.lo), hi = splat<V>(ep.hi), b = splat<V>(bias);
  for (int64_t oh = 0; oh < OH; ++oh) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = pad + (oh * S + ky) * PW;
    float* out = y + oh * OW;
    // The last vector of a row may be partial: it is computed whole.
    for (int64_t ow = 0; ow < OW; ow += L) {
      // One partial sum per kernel row: K short dependency chains instead of one of K * K
      // multiply-adds, which would leave the FMA units waiting on their own latency.
      F part[K];
#pragma GCC unroll 5
      for (int ky = 0; ky < K; ++ky) {
        const float* r = rows[ky] + ow * S;
        F t = taps[ky * K] * load_strided<V, S>(r);
#pragma GCC unroll 5
        for (int kx = 1; kx < K; ++kx) t += taps[ky * K + kx] * load_strided<V, S>(r + kx);
        part[ky] = t;
      }
      F s = b + part[0];
#pragma GCC unroll 5
      for (int ky = 1; ky < K; ++ky) s += part[ky];
      if (clamp) {  // comparisons keep a NaN
        s = s < lo ? lo : s;
        s = s > hi ? hi : s;
      }
      // A whole-vector store past the end of this row only writes rows of this plane that are
      // computed (and so overwritten) later; near the plane's end, store the valid lanes only.
      if (oh * OW + ow + L <= OH * OW) {
        __builtin_memcpy(out + ow, &s, sizeof(F));
      } else {
        for (int64_t l = 0; l < std::min<int64_t>(L, OW - ow); ++l) out[ow + l] = s[l];
      }
    }
  }
}

template <int K, int S>
void depthwise_plane_any(const float* x, int64_t H, int64_t W, const float* w, float bias,
                         float* y, int64_t OH, int64_t OW, int64_t ph, int64_t pw,
                         const ConvEpilogue& ep, float* pad) {
  if (OW <= kNarrowLanes && kNarrowLanes < kLanes)
    depthwise_plane<NarrowVec, K, S>(x, H, W, w, bias, y, OH, OW, ph, pw, ep, pad);
  else
    depthwise_plane<WideVec, K, S>(x, H, W, w, bias, y, OH, OW, ph, pw, ep, pad);
}

void depthwise_run(const Conv2dShape& s, const float* x, const float* w, float* y,
                   const ConvEpilogue& ep, ThreadPool* pool) {
  const int64_t planes = s.N * s.C;
  const int64_t K = s.kh, S = s.sh;
  const int64_t pad_floats = padded_floats(s.OH, s.OW, K, S);
  auto body = [&](int64_t p0, int64_t p1) {
    thread_local std::vector<float> pad;  // resize zero-fills: the slack is never garbage
    if (static_cast<int64_t>(pad.size()) < pad_floats) pad.resize(static_cast<size_t>(pad_floats));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % s.C;
      const float* xp = x + p * s.H * s.W;
      const float* wp = w + c * K * K;
      float* yp = y + p * s.OH * s.OW;
      const float b = ep.bias ? ep.bias[c] : 0.0f;
      if (K == 3 && S == 1)
        depthwise_plane_any<3, 1>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
      else if (K == 3)
        depthwise_plane_any<3, 2>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
      else if (S == 1)
        depthwise_plane_any<5, 1>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
      else
        depthwise_plane_any<5, 2>(xp, s.H, s.W, wp, b, yp, s.OH, s.OW, s.ph, s.pw, ep, pad.data());
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
