// The direct depthwise convolution, written once in plain C++ and included by one file per ISA
// (conv2d_depthwise_{portable,avx2,avx512}.cc), so each copy is vectorized with that file's
// compiler flags. Everything here has internal linkage: the copies never mix at link time.
//
// Each (image, channel) plane is copied into a zero-padded buffer, so the inner loop has no
// bounds checks; with the K x K taps unrolled, the loop over output columns is the innermost
// and vectorizes (one vector of outputs accumulates all taps in a register).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/conv2d_fast.h"

namespace ember::conv {
namespace {

inline float multiply_add(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

template <int K, int S>
void depthwise_plane(const float* __restrict x, int64_t H, int64_t W, const float* __restrict w,
                     float bias, float* __restrict y, int64_t OH, int64_t OW, int64_t ph,
                     int64_t pw, const ConvEpilogue& ep, float* __restrict pad) {
  const int64_t PH = (OH - 1) * S + K, PW = (OW - 1) * S + K;
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
  float taps[K * K];
  for (int i = 0; i < K * K; ++i) taps[i] = w[i];
  const bool clamp = ep.clamp;
  const float lo = ep.lo, hi = ep.hi;
  for (int64_t oh = 0; oh < OH; ++oh) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = pad + (oh * S + ky) * PW;
    float* __restrict out = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ++ow) {
      float s = bias;
#pragma GCC unroll 25
      for (int ky = 0; ky < K; ++ky)
#pragma GCC unroll 5
        for (int kx = 0; kx < K; ++kx) s = multiply_add(taps[ky * K + kx], rows[ky][ow * S + kx], s);
      if (clamp) {  // comparisons keep a NaN
        s = s < lo ? lo : s;
        s = s > hi ? hi : s;
      }
      out[ow] = s;
    }
  }
}

void depthwise_run(const Conv2dShape& s, const float* x, const float* w, float* y,
                   const ConvEpilogue& ep, ThreadPool* pool) {
  const int64_t planes = s.N * s.C;
  const int64_t K = s.kh, S = s.sh;
  const int64_t pad_floats = ((s.OH - 1) * S + K) * ((s.OW - 1) * S + K);
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
