// SIMD copies of requantize.h's epilogue (x86): the same 64-bit products and rounding shift,
// lane by lane, so fast kernels match the reference bit for bit. Include only from files
// compiled for the ISA (the *_avx2.cc / *_avx512.cc / *_vnni.cc suffixes); everything here has
// internal linkage so differently-flagged files never share a definition.
#pragma once
// GCC 12 reports false "(may be) used uninitialized" warnings inside its AVX-512 headers (the
// undefined pass-through operand of some masked intrinsics).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

#include "kernels/quantized/qgemm.h"

namespace ember::quantized {
namespace {

#if defined(__AVX512F__)
// Per-row constants broadcast once per tile row.
struct Requant16 {
  __m512i multiplier, rounding, lo, hi, zero_point;
  __m128i shift;
  Requant16(const RequantRow& row, const OutputParams& out)
      : multiplier(_mm512_set1_epi32(row.multiplier)),
        rounding(_mm512_set1_epi64(int64_t{1} << (row.shift - 1))),
        lo(_mm512_set1_epi32(out.min - out.zero_point)),
        hi(_mm512_set1_epi32(out.max - out.zero_point)),
        zero_point(_mm512_set1_epi32(out.zero_point)),
        shift(_mm_cvtsi32_si128(row.shift)) {}
  // 16 int32 accumulators (bias included) -> the rescaled values, before the output clamp.
  __m512i scale(__m512i acc) const {
    __m512i even = _mm512_mul_epi32(acc, multiplier);
    __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), multiplier);
    even = _mm512_sra_epi64(_mm512_add_epi64(even, rounding), shift);
    odd = _mm512_sra_epi64(_mm512_add_epi64(odd, rounding), shift);
    // Each result fits the low dword of its qword (shift >= 31); move the odd ones up.
    return _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, static_cast<_MM_PERM_ENUM>(0xA0));
  }
  // 16 int32 accumulators (bias included) -> 16 output codes in int32 lanes.
  __m512i apply(__m512i acc) const {
    const __m512i r = _mm512_min_epi32(_mm512_max_epi32(scale(acc), lo), hi);
    return _mm512_add_epi32(r, zero_point);
  }
  // Stores the low byte of the first n (<= 16) lanes.
  static void store(uint8_t* out, __m512i codes, int64_t n) {
    const __mmask16 mask = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
    _mm512_mask_cvtepi32_storeu_epi8(out, mask, codes);
  }
};

// Turns four vectors of Requant16::scale results into 64 output codes with saturating packs:
// packing (a, b) then (c, d) to int16 and both to uint8 puts, in 128-bit lane L, four codes
// from a's lane L, then b's, c's and d's. Saturating at each step and clamping the bytes last
// equals clamping the int32 value to [min - zero_point, max - zero_point] and adding
// zero_point, as the reference does.
struct Pack64 {
  __m512i zero_point16, min8, max8;
  explicit Pack64(const OutputParams& out)
      : zero_point16(_mm512_set1_epi16(static_cast<int16_t>(out.zero_point))),
        min8(_mm512_set1_epi8(static_cast<char>(out.min))),
        max8(_mm512_set1_epi8(static_cast<char>(out.max))) {}
  __m512i codes(__m512i a, __m512i b, __m512i c, __m512i d) const {
    const __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(a, b), zero_point16);
    const __m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(c, d), zero_point16);
    return _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(ab, cd), min8), max8);
  }
  // 64 pixels whose lane L the callers hold as pixels 16L + 4k .. 16L + 4k + 3 in the k-th
  // vector (that lane order is then pixel order): stores the first n (<= 64).
  void store(uint8_t* out, __m512i a, __m512i b, __m512i c, __m512i d, int64_t n) const {
    const __m512i v = codes(a, b, c, d);
    if (n >= 64) {
      _mm512_storeu_si512(out, v);
    } else {
      _mm512_mask_storeu_epi8(out, (uint64_t{1} << n) - 1, v);
    }
  }
  // Two rows of 32 pixels in pixel order, (a, b) and (c, d): stores the first n (<= 32) codes
  // of the first row to out0 and, if out1 is not null, of the second to out1.
  void store_rows(uint8_t* out0, uint8_t* out1, __m512i a, __m512i b, __m512i c, __m512i d, int64_t n) const {
    // Dword 4L + k of the packed codes holds pixels 4L..4L+3 of vector k; gather each row's.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i v = _mm512_permutexvar_epi32(order, codes(a, b, c, d));
    const __mmask32 mask = n >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint32_t{1} << n) - 1);
    _mm256_mask_storeu_epi8(out0, mask, _mm512_castsi512_si256(v));
    if (out1) _mm256_mask_storeu_epi8(out1, mask, _mm512_extracti64x4_epi64(v, 1));
  }
};
#endif

#if defined(__AVX2__)
struct Requant8 {
  __m256i multiplier, offset_rounding, offset_out, lo, hi, zero_point;
  __m128i shift;
  // AVX2 has no 64-bit arithmetic shift: bias the product by 2**62 to make it non-negative,
  // shift logically, and remove 2**(62 - shift) afterwards (exact for shift <= 62).
  Requant8(const RequantRow& row, const OutputParams& out)
      : multiplier(_mm256_set1_epi32(row.multiplier)),
        offset_rounding(_mm256_set1_epi64x((int64_t{1} << 62) + (int64_t{1} << (row.shift - 1)))),
        offset_out(_mm256_set1_epi64x(int64_t{1} << (62 - row.shift))),
        lo(_mm256_set1_epi32(out.min - out.zero_point)),
        hi(_mm256_set1_epi32(out.max - out.zero_point)),
        zero_point(_mm256_set1_epi32(out.zero_point)),
        shift(_mm_cvtsi32_si128(row.shift)) {}
  __m256i apply(__m256i acc) const {
    __m256i even = _mm256_mul_epi32(acc, multiplier);
    __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), multiplier);
    even = _mm256_sub_epi64(_mm256_srl_epi64(_mm256_add_epi64(even, offset_rounding), shift), offset_out);
    odd = _mm256_sub_epi64(_mm256_srl_epi64(_mm256_add_epi64(odd, offset_rounding), shift), offset_out);
    __m256i r = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    r = _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
    return _mm256_add_epi32(r, zero_point);
  }
  static void store(uint8_t* out, __m256i codes, int64_t n) {
    __m256i t = _mm256_packus_epi32(codes, codes);
    t = _mm256_packus_epi16(t, t);
    __m128i bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    if (n >= 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      for (int64_t i = 0; i < n; ++i) out[i] = tmp[i];
    }
  }
};
#endif

inline int32_t load_i32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline int64_t load_i64(const void* p) {
  int64_t v;
  __builtin_memcpy(&v, p, 8);
  return v;
}

}  // namespace
}  // namespace ember::quantized
