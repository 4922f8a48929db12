// A float vector of the including file's width, written once with GCC/Clang vector extensions and
// compiled per ISA: the including file defines EMBER_VEC_BYTES (16 portable, 32 AVX2, 64
// AVX-512) before including, and its compiler flags decide the instructions. Everything here
// has internal linkage, so the copies of different widths never mix at link time.
//
// Math functions (exp, sigmoid, tanh) are branch-free polynomial approximations; their error
// bounds against the double-precision reference are stated with each and tested in
// tests/kernels/test_fast_elementwise.py.
#pragma once
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef EMBER_VEC_BYTES
#error "define EMBER_VEC_BYTES (vector width in bytes) before including kernels/simd/vec.h"
#endif

namespace ember::simd {
namespace {

constexpr int kLanes = EMBER_VEC_BYTES / 4;
typedef float vf __attribute__((vector_size(EMBER_VEC_BYTES)));
typedef int32_t vi __attribute__((vector_size(EMBER_VEC_BYTES)));
typedef uint8_t vb __attribute__((vector_size(EMBER_VEC_BYTES / 4)));
typedef double vd __attribute__((vector_size(EMBER_VEC_BYTES * 2)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float s) { return vf{} + s; }
inline vi splat_i(int32_t s) { return vi{} + s; }
inline vf as_float(vi v) { return (vf)v; }  // bit reinterpretation
inline vi as_int(vf v) { return (vi)v; }
// mask (all ones / zeros per lane, as a comparison gives) ? a : b.
inline vf select(vi mask, vf a, vf b) { return as_float((mask & as_int(a)) | (~mask & as_int(b))); }
inline vi is_nan(vf x) { return x != x; }

// a * b + c rounded once where the ISA has FMA (the build turns off implicit contraction, so a
// kernel that wants FMA asks for it), else a * b + c.
inline vf fmadd(vf a, vf b, vf c) {
#if EMBER_VEC_BYTES == 64 && defined(__AVX512F__)
  return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif EMBER_VEC_BYTES == 32 && defined(__FMA__)
  return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

// Bools (one byte each, 0 or 1) <-> lane masks. On x86 the load is one zero-extending move;
// GCC lowers the generic byte-to-int conversion to a byte-by-byte extract-and-insert sequence.
inline vi load_mask(const bool* p) {
#if EMBER_VEC_BYTES == 64 && defined(__AVX512F__)
  const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return (vi)v != 0;
#elif EMBER_VEC_BYTES == 32 && defined(__AVX2__)
  const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return (vi)v != 0;
#else
  vb b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, vi) != 0;
#endif
}
inline void store_bools(bool* p, vi mask) {
  vb b = __builtin_convertvector(mask & 1, vb);
  std::memcpy(p, &b, sizeof b);
}

// 2^n for integer lanes n in [-126, 127].
inline vf pow2i(vi n) { return as_float((n + 127) << 23); }

// exp(x): Cephes' expf reduction (x = n ln2 + r, |r| <= ln2 / 2, ln2 split in two parts so n ln2
// is exact) and degree-6 polynomial in Horner form on fused multiply-adds (where the ISA has
// them: a third fewer instructions, and each step rounds once); 2^n applied in two halves so
// results from FLT_MAX down to the subnormals are produced without overflow in the exponent
// field. Within 2 ulp of the correctly rounded exp for normal results; inf above 88.72, 0 below
// -103.97, NaN stays NaN.
inline vf exp(vf x) {
  const vf xc = select(x > splat(89.0f), splat(89.0f), select(x < splat(-105.0f), splat(-105.0f), x));
  const vf magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const vf n = fmadd(xc, splat(1.44269504088896341f), magic) - magic;
  // n * 0.693359375 is exact (the constant has 9 significant bits), so the first step is exact
  // with or without FMA.
  const vf r = fmadd(n, splat(2.12194440e-4f), fmadd(n, splat(-0.693359375f), xc));
  vf p = splat(1.9875691500e-4f);
  p = fmadd(p, r, splat(1.3981999507e-3f));
  p = fmadd(p, r, splat(8.3334519073e-3f));
  p = fmadd(p, r, splat(4.1665795894e-2f));
  p = fmadd(p, r, splat(1.6666665459e-1f));
  p = fmadd(p, r, splat(5.0000001201e-1f));
  vf y = fmadd(p, r * r, r) + splat(1.0f);
  const vi ni = __builtin_convertvector(n, vi);
  const vi n1 = ni >> 1;
  y = y * pow2i(n1) * pow2i(ni - n1);
  return select(is_nan(x), x, y);
}

// 1 / (1 + exp(-x)), as e / (1 + e) with e = exp(-|x|) for x < 0 so small results keep their
// relative accuracy. Within 4 ulp for normal results.
inline vf sigmoid(vf x) {
  const vi neg = x < splat(0.0f);
  const vf e = exp(select(neg, x, -x));
  const vf inv = splat(1.0f) / (splat(1.0f) + e);
  return select(neg, e * inv, inv);
}

// tanh(x): Cephes' tanhf odd polynomial for |x| < 0.625, else sign(x) (1 - 2 / (exp(2|x|) + 1)).
// Within 4 ulp.
inline vf tanh(vf x) {
  const vi sign = as_int(x) & splat_i(INT32_MIN);
  const vf ax = as_float(as_int(x) & splat_i(INT32_MAX));
  const vf z = x * x;
  vf p = splat(-5.70498872745e-3f);
  p = p * z + splat(2.06390887954e-2f);
  p = p * z + splat(-5.37397155531e-2f);
  p = p * z + splat(1.33314422036e-1f);
  p = p * z + splat(-3.33332819422e-1f);
  const vf small = p * z * ax + ax;
  const vf e = exp(ax + ax);
  const vf big = splat(1.0f) - splat(2.0f) / (e + splat(1.0f));
  return as_float(as_int(select(ax < splat(0.625f), small, big)) | sign);  // tanh(-0) = -0
}

}  // namespace
}  // namespace ember::simd
