// Single-precision GEMM: C[M, N] = epilogue(A[M, K] x B[K, N]), BLIS style.
//
// The driver blocks the problem for the caches (MC rows of A x KC depth x NC columns of B),
// packs A into micro-panels of MR rows ([K][MR], k-major) and B into micro-panels of NR columns
// ([K][NR]), and calls a register-blocked microkernel that computes one MR x NR tile of C held
// entirely in vector registers. Microkernels are named by ISA and tile (sgemm_14x32_avx512,
// sgemm_6x16_avx2, sgemm_4x16_portable); the best enabled one is picked by `select_sgemm_kernel`
// (the CPU dispatch decision is made in core/cpu_features, not here).
//
// Operands may be given raw (any row/column strides, so a transposed weight needs no copy) or
// pre-packed once with `pack_a` / `pack_b` (constant weights: done when a kernel is created).
// The epilogue (bias per row or per column, then relu / relu6) is fused into the microkernel's
// final store, so the output is written once.
//
// Threads: the (MC x NC) tiles of C are independent tasks spread over the ThreadPool. The
// summation order over K does not depend on the thread count, so 1 and N threads give the
// same bits.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "core/cpu_features.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace ember {
class AttrReader;
}

namespace ember::gemm {

enum class Activation { None, Relu, Relu6 };
// "none" | "relu" | "relu6"; anything else is an InvalidArgument naming the op.
Activation parse_activation(const std::string& name, const AttrReader& op);

// What the microkernel applies to a tile on its last K block.
struct UkernelParams {
  const float* row_bias = nullptr;  // mr values (bias per row of C), or null
  const float* col_bias = nullptr;  // n values (bias per column of C), or null
  float lo = 0.0f, hi = 0.0f;       // clamp bounds when `clamp`
  bool clamp = false;
  bool accumulate = false;  // add to what C holds (every K block but the first)
  bool last = false;        // apply bias and clamp (the last K block)
  int64_t k_block = 0;      // GemvFn: the depth of the driver's K blocks (see GemvFn)
};

// Computes an mr x n tile of C (mr <= MR, n <= NR): C (+)= Apanel x Bpanel over kc steps, where
// the A micro-panel holds MR floats per k step and the B micro-panel NR floats per k step, k
// steps `ldb` floats apart (NR when packed; the row stride when B is read in place). All NR
// columns of B are read even when n < NR.
using UkernelFn = void (*)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c,
                           int64_t ldc, int64_t n, const UkernelParams& p);

constexpr int kMaxMR = 16;
constexpr int kMaxNR = 32;

// Matrix-vector products for M == 1 (batch-1 linear layers, vector @ matrix) that read B in
// place, for columns [n0, n1) of y, with the epilogue (p.row_bias[0], p.col_bias indexed by
// column, clamp) applied:
//   rows: y[n] = sum_k a[k] B[k * ldb + n]   (row-major B: whole rows stream in order)
//   packed: B pre-packed (ldb unused); n0 and n1 - n0 multiples of NR unless n1 == N
// Sums run in k order, restarting every p.k_block steps with the block's sum then added to the
// earlier blocks' total: the order of the microkernel path's K blocks, so a row of a batch gets
// the same bits whether it runs alone or with other rows (and a batch split in pieces too).
using GemvFn = void (*)(int64_t K, int64_t n0, int64_t n1, const float* a, const float* B,
                        int64_t ldb, float* y, const UkernelParams& p);

struct SgemmKernel {
  const char* name;  // "sgemm_14x32_avx512"
  Isa isa;
  int mr, nr;
  int mc, kc, nc;                // cache blocking (mc multiple of mr, nc multiple of nr)
  UkernelFn ukernel[kMaxMR];     // ukernel[r - 1] computes r rows, r = 1..mr
  GemvFn gemv_rows = nullptr;    // optional M == 1 paths (null: use the microkernels)
  GemvFn gemv_packed = nullptr;
  // Optional: writes an mm x nn tile (row-major, ld_tile apart) transposed, c[j * ldc + i] =
  // tile[i * ld_tile + j] (the transposed products' store; null: a scalar loop).
  void (*store_transposed)(const float* tile, int64_t ld_tile, int64_t mm, int64_t nn, float* c,
                           int64_t ldc) = nullptr;
};

// The best kernel enabled at or below `cap` (max_isa() by default).
const SgemmKernel& select_sgemm_kernel();
const SgemmKernel& select_sgemm_kernel(Isa cap);
// The kernel of exactly this ISA if it is compiled in and enabled here, else null.
const SgemmKernel* sgemm_kernel_for(Isa isa);

// A matrix packed for one kernel. A side: [ceil(M/MR)][K][MR]; B side: [ceil(N/NR)][K][NR];
// padding rows/columns are zero. Element (k, n) of a packed B is at
// ((n / NR) * K + k) * NR + n % NR (code that builds B itself, e.g. im2col, writes there).
struct PackedMatrix {
  const SgemmKernel* kernel = nullptr;
  int64_t rows = 0;  // M for A, N for B
  int64_t depth = 0;  // K
  Tensor storage;
  const float* data() const { return storage.data<float>(); }
  bool defined() const { return kernel != nullptr; }
};

int64_t packed_b_floats(const SgemmKernel& kernel, int64_t K, int64_t N);
int64_t packed_a_floats(const SgemmKernel& kernel, int64_t M, int64_t K);

// A[M, K] with element (m, k) at A[m * row_stride + k * col_stride].
PackedMatrix pack_a(const SgemmKernel& kernel, int64_t M, int64_t K, const float* A,
                    int64_t row_stride, int64_t col_stride);
// B[K, N] with element (k, n) at B[k * row_stride + n * col_stride].
PackedMatrix pack_b(const SgemmKernel& kernel, int64_t K, int64_t N, const float* B,
                    int64_t row_stride, int64_t col_stride);
// Packs into caller memory of packed_b_floats() floats, optionally in parallel over panels.
void pack_b_into(const SgemmKernel& kernel, int64_t K, int64_t N, const float* B,
                 int64_t row_stride, int64_t col_stride, float* out, ThreadPool* pool);

// Writes B's column panels [panel_begin, panel_end) over depth [k0, k0 + kc) in the packed
// layout: panel p at out + (p - panel_begin) * kc * NR, element (k0 + k, p * NR + j) at
// k * NR + j, columns past N zero. Lets a caller build B on the fly (implicit im2col).
using BPacker = std::function<void(int64_t k0, int64_t kc, int64_t panel_begin,
                                   int64_t panel_end, float* out)>;

// Optionally, beside a BPacker, a packer that writes B's columns [col_begin, col_end) (whole panels; columns
// past N zero) row-major: B[k0 + kk, col] at out[kk * ld + col - col_begin]. The microkernels
// read such a block in place (ldb = ld); a depth row's columns are then one run, not one per
// NR-column panel (implicit im2col: up to a whole output row per copy instead of 32 pixels).
using BRowPacker = std::function<void(int64_t k0, int64_t kc, int64_t col_begin, int64_t col_end,
                                      float* out, int64_t ld)>;

// One GEMM operand: raw strided memory, pre-packed (then `packed` is used), or for B only a
// packer that produces it block by block.
struct Operand {
  const float* data = nullptr;
  int64_t row_stride = 0, col_stride = 0;
  const float* packed = nullptr;  // in the kernel's packed layout for this side
  const BPacker* packer = nullptr;
  const BRowPacker* row_packer = nullptr;  // with packer: used where a block is packed per use

  static Operand raw(const float* p, int64_t rs, int64_t cs) { return {p, rs, cs, nullptr, nullptr, nullptr}; }
  static Operand prepacked(const PackedMatrix& m) { return {nullptr, 0, 0, m.data(), nullptr, nullptr}; }
  static Operand prepacked(const float* p) { return {nullptr, 0, 0, p, nullptr, nullptr}; }
  static Operand packed_by(const BPacker& f, const BRowPacker* rows = nullptr) {
    return {nullptr, 0, 0, nullptr, &f, rows};
  }
};

struct Epilogue {
  const float* row_bias = nullptr;  // [M]: conv (M = output channels)
  const float* col_bias = nullptr;  // [N]: linear (N = output features)
  Activation activation = Activation::None;
  // C is stored transposed: element (m, n) at C[n * ldc + m]. For products whose rows fit the
  // microkernel's MR better than their columns fit NR (a 1x1 convolution over 7x7 pixels,
  // computed as pixels x channels). K is then one block; each tile goes through a local buffer.
  bool transposed_c = false;
};

// Whether `products` independent GEMMs run one per thread (each single-threaded, pool null)
// rather than one after another, each split across `threads`: when they divide evenly among
// the threads, or are enough that an uneven last round costs little. Same bits either way (the
// summation order does not depend on threads); it saves a pool round trip per product.
bool one_product_per_thread(int64_t products, int threads);

// C[m * ldc + n] = act(sum_k A(m, k) B(k, n) + bias). `pool` may be null (one thread).
void sgemm(const SgemmKernel& kernel, int64_t M, int64_t N, int64_t K, const Operand& A,
           const Operand& B, float* C, int64_t ldc, const Epilogue& epilogue, ThreadPool* pool);

}  // namespace ember::gemm
