// sgemm against a naive triple loop (double accumulation), for every microkernel this machine
// can run, raw and pre-packed operands, with each fused epilogue, C stored plain or transposed,
// and 1 vs 2 threads.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/gemm.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::gemm;

namespace {

std::vector<const SgemmKernel*> all_kernels() {
  std::vector<const SgemmKernel*> out;
  for (Isa isa : {Isa::Portable, Isa::AVX2, Isa::AVX512})
    if (const SgemmKernel* k = sgemm_kernel_for(isa)) out.push_back(k);
  return out;
}

struct Case {
  int64_t M, N, K;
  bool b_transposed, prepack_a, prepack_b;
  int bias;  // 0 none, 1 per column, 2 per row
  Activation act;
  bool transposed_c = false;  // C stored [N, M]
  int c_offset = 0;           // floats between a 64-byte boundary and C's first element
};

void check_case(const SgemmKernel& kernel, const Case& c, std::mt19937& rng, ThreadPool& pool1,
                ThreadPool& pool2) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t M = c.M, N = c.N, K = c.K;
  std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N));
  std::vector<float> rb(static_cast<size_t>(M)), cb(static_cast<size_t>(N));
  for (auto& v : A) v = dist(rng);
  for (auto& v : B) v = dist(rng);
  for (auto& v : rb) v = dist(rng);
  for (auto& v : cb) v = dist(rng);
  // B is [K, N] row-major, or stored as [N, K] (a linear layer's weight) and read transposed.
  const int64_t brs = c.b_transposed ? 1 : N, bcs = c.b_transposed ? K : 1;
  Epilogue ep;
  ep.activation = c.act;
  if (c.bias == 1) ep.col_bias = cb.data();
  if (c.bias == 2) ep.row_bias = rb.data();

  PackedMatrix pa, pb;
  Operand a = Operand::raw(A.data(), K, 1), b = Operand::raw(B.data(), brs, bcs);
  if (c.prepack_a) { pa = pack_a(kernel, M, K, A.data(), K, 1); a = Operand::prepacked(pa); }
  if (c.prepack_b) { pb = pack_b(kernel, K, N, B.data(), brs, bcs); b = Operand::prepacked(pb); }

  // C with a row stride larger than its rows (N, or M when C is stored transposed).
  ep.transposed_c = c.transposed_c;
  const int64_t rows = c.transposed_c ? N : M, cols = c.transposed_c ? M : N, ldc = cols + 3;
  // Both outputs start c_offset floats past a 64-byte boundary.
  const size_t pad = 16;
  std::vector<float> C1buf(static_cast<size_t>(rows * ldc) + 2 * pad, -7.0f), C2buf = C1buf;
  auto at_offset = [&](std::vector<float>& v) {
    const auto misalign = reinterpret_cast<uintptr_t>(v.data()) % 64 / sizeof(float);
    return v.data() + (pad - misalign) + c.c_offset;
  };
  float* C1 = at_offset(C1buf);
  float* C2 = at_offset(C2buf);
  sgemm(kernel, M, N, K, a, b, C1, ldc, ep, &pool1);
  sgemm(kernel, M, N, K, a, b, C2, ldc, ep, &pool2);
  EXPECT(C1[-1] == -7.0f && C2[-1] == -7.0f);  // nothing written before C
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < ldc; ++col) {
      const float got = C1[r * ldc + col];
      if (col >= cols) {  // padding untouched
        EXPECT(got == -7.0f);
        continue;
      }
      const int64_t m = c.transposed_c ? col : r, n = c.transposed_c ? r : col;
      double ref = 0.0, mag = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double t = double(A[m * K + k]) * double(B[k * brs + n * bcs]);
        ref += t;
        mag += std::fabs(t);
      }
      if (ep.row_bias) { ref += rb[m]; mag += std::fabs(rb[m]); }
      if (ep.col_bias) { ref += cb[n]; mag += std::fabs(cb[n]); }
      if (c.act != Activation::None) ref = std::max(0.0, ref);
      if (c.act == Activation::Relu6) ref = std::min(6.0, ref);
      // fp32 summation of K + 2 terms: |error| <= (K + 2) * eps * sum|terms|.
      const double tol = (K + 2) * 1.2e-7 * mag + 1e-6;
      if (!(std::fabs(got - ref) <= tol)) {
        std::ostringstream os;
        os << kernel.name << " M=" << M << " N=" << N << " K=" << K << " at (" << m << ", " << n
           << "): got " << got << ", expected " << ref;
        throw std::runtime_error(os.str());
      }
      // Thread count does not change the summation order: identical bits.
      EXPECT(std::memcmp(&got, &C2[r * ldc + col], 4) == 0);
    }
  }
}

}  // namespace

TEST_CASE(sgemm_matches_naive_on_edge_shapes) {
  std::mt19937 rng(1234);
  ThreadPool pool1(1), pool2(2);
  for (const SgemmKernel* k : all_kernels()) {
    const int64_t mr = k->mr, nr = k->nr, kc = k->kc;
    std::vector<int64_t> ms = {1, mr - 1, mr, mr + 1, 2 * mr + 3, k->mc + 1};
    std::vector<int64_t> ns = {1, nr - 1, nr, nr + 1, 3 * nr + 5};
    std::vector<int64_t> ks = {1, 7, kc, kc + 1, 2 * kc + 3};
    int i = 0;
    for (int64_t M : ms)
      for (int64_t N : ns)
        for (int64_t K : ks) {
          if (M <= 0) continue;
          ++i;
          Case c{M, N, K, i % 2 == 0, i % 3 == 0, i % 5 == 0, i % 3,
                 static_cast<Activation>(i % 3), i % 4 == 1};
          check_case(*k, c, rng, pool1, pool2);
        }
  }
}

TEST_CASE(sgemm_k_zero_is_the_epilogue_of_zero) {
  ThreadPool pool(1);
  const SgemmKernel& k = select_sgemm_kernel();
  std::vector<float> cb = {-1.0f, 2.0f, 7.0f}, C(6, 5.0f);
  Epilogue ep;
  ep.col_bias = cb.data();
  ep.activation = Activation::Relu6;
  sgemm(k, 2, 3, 0, Operand::raw(nullptr, 0, 1), Operand::raw(nullptr, 3, 1), C.data(), 3, ep, &pool);
  std::vector<float> want = {0.0f, 2.0f, 6.0f, 0.0f, 2.0f, 6.0f};
  EXPECT(C == want);
}

TEST_CASE(sgemm_large_random_two_threads) {
  std::mt19937 rng(99);
  ThreadPool pool1(1), pool2(2);
  for (const SgemmKernel* k : all_kernels()) {
    check_case(*k, Case{301, 517, 600, false, false, false, 1, Activation::Relu}, rng, pool1, pool2);
    check_case(*k, Case{8, 1000, 512, true, false, true, 1, Activation::None}, rng, pool1, pool2);
    // Matrix-vector products split across the threads, with y at every alignment within a line
    // (the row-major kernel moves the split to a line boundary of y) and a few widths.
    for (int off : {0, 1, 4, 13})
      for (int64_t n : {1000, 300, 257})
        for (bool prepacked : {false, true})
          check_case(*k, Case{1, n, 512, false, false, prepacked, 1, Activation::Relu, false, off}, rng,
                     pool1, pool2);
    // Whole K blocks per thread (an even number of blocks), with a row bias and relu6.
    for (int64_t kdepth : {4 * k->kc, 2 * k->kc + 8})
      check_case(*k, Case{1, 300, kdepth, false, false, false, 2, Activation::Relu6, false, 3}, rng, pool1, pool2);
  }
}
