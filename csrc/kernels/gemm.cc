// The sgemm driver: cache blocking, packing, threading, and the choice of microkernel.
#include "kernels/gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "core/error.h"
#include "core/scratch.h"
#include "core/op_registry.h"

namespace ember::gemm {

// Microkernel tables, one per file (kernels/portable, kernels/x86).
const SgemmKernel& sgemm_4x16_portable();
#if defined(__x86_64__) || defined(_M_X64)
const SgemmKernel& sgemm_6x16_avx2();
const SgemmKernel& sgemm_14x32_avx512();
#endif

Activation parse_activation(const std::string& name, const AttrReader& op) {
  if (name == "none") return Activation::None;
  if (name == "relu") return Activation::Relu;
  if (name == "relu6") return Activation::Relu6;
  op.fail("attribute 'activation' must be \"none\", \"relu\" or \"relu6\", got \"", name, "\"");
}

const SgemmKernel* sgemm_kernel_for(Isa isa) {
  if (!isa_enabled(isa)) return nullptr;
  switch (isa) {
    case Isa::Portable: return &sgemm_4x16_portable();
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::AVX2: return &sgemm_6x16_avx2();
    case Isa::AVX512:
    case Isa::AVX512_VNNI: return &sgemm_14x32_avx512();
#endif
    default: return nullptr;
  }
}

const SgemmKernel& select_sgemm_kernel(Isa cap) {
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    if (static_cast<int>(isa) <= static_cast<int>(cap))
      if (const SgemmKernel* k = sgemm_kernel_for(isa)) return *k;
  }
  return sgemm_4x16_portable();
}

const SgemmKernel& select_sgemm_kernel() { return select_sgemm_kernel(max_isa()); }

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Columns of a row-major B packed together per (task, K block) in BMode::PerBlock: 256 x KC
// floats (256 KB) stay in L2 while the row tiles use them.
constexpr int64_t kGroupCols = 256;
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Packing buffers of one thread (core/scratch.h), reused across calls.
FloatScratch& a_scratch() {
  thread_local FloatScratch s;
  return s;
}
FloatScratch& b_scratch() {
  thread_local FloatScratch s;
  return s;
}
FloatScratch& b_block_scratch() {
  thread_local FloatScratch s;
  return s;
}

// Packs rows [0, m) x depth [0, kc) of a strided A into micro-panels of MR rows, k stride MR.
// Panel p starts at out + p * panel_stride.
void pack_a_block(int mr, int64_t m, int64_t kc, const float* A, int64_t rs, int64_t cs,
                  float* out, int64_t panel_stride) {
  for (int64_t p0 = 0; p0 < m; p0 += mr) {
    float* dst = out + (p0 / mr) * panel_stride;
    const int64_t rows = std::min<int64_t>(mr, m - p0);
    if (cs == 1) {
      for (int64_t i = 0; i < rows; ++i) {
        const float* src = A + (p0 + i) * rs;
        for (int64_t k = 0; k < kc; ++k) dst[k * mr + i] = src[k];
      }
      for (int64_t i = rows; i < mr; ++i)
        for (int64_t k = 0; k < kc; ++k) dst[k * mr + i] = 0.0f;
    } else if (rs == 1 && rows == mr && (mr == 14 || mr == 6)) {
      // A^T of a row-major matrix (a transposed 1x1 convolution reads its NCHW input so): each
      // depth row of the panel is MR consecutive floats, copied with a fixed-size memcpy
      // (inlined; the loop below went element by element, 19 % of a 576 -> 96 layer at 14 x 14).
      auto depth_rows = [&](auto width) {  // MR as a constant (as pack_b_rows does NR)
        constexpr int kMR = decltype(width)::value;
        for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * kMR, A + p0 + k * cs, kMR * sizeof(float));
      };
      if (mr == 14) depth_rows(std::integral_constant<int, 14>());
      else depth_rows(std::integral_constant<int, 6>());
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (p0)*rs + k * cs;
        for (int64_t i = 0; i < rows; ++i) dst[k * mr + i] = src[i * rs];
        for (int64_t i = rows; i < mr; ++i) dst[k * mr + i] = 0.0f;
      }
    }
  }
}

// Packs column panels [panel_begin, panel_end) of B[K, N], depth [k0, k0 + kc), into panels
// of NR columns, k-major; panel p is written at out + (p - panel_begin) * kc * NR.
void pack_b_panels(int nr, int64_t k0, int64_t kc, int64_t N, const float* B, int64_t rs,
                   int64_t cs, float* out, int64_t panel_begin, int64_t panel_end) {
  B += k0 * rs;
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    const int64_t n0 = p * nr;
    const int64_t cols = std::min<int64_t>(nr, N - n0);
    float* dst = out + (p - panel_begin) * kc * nr;
    if (cs == 1) {
      // Inline loops (a panel row is 16-32 floats: a memcpy call per row would cost more).
      for (int64_t k = 0; k < kc; ++k) {
        const float* __restrict src = B + k * rs + n0;
        float* __restrict d = dst + k * nr;
        for (int64_t j = 0; j < cols; ++j) d[j] = src[j];
        for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;
      }
    } else {
      int64_t j = 0;
#if defined(__SSE2__)
      if (rs == 1) {
        // Columns contiguous along k (a transposed weight, as linear's [N, K]): 4 x 4 blocks
        // transposed in registers, each panel row written 4 floats at a time instead of one
        // float per column (eager linear 64 x 512 x 784: the pack was 150 of 630 us).
        for (; j + 4 <= cols; j += 4) {
          const float* s0 = B + (n0 + j) * cs;
          const float* s1 = s0 + cs;
          const float* s2 = s1 + cs;
          const float* s3 = s2 + cs;
          int64_t k = 0;
          for (; k + 4 <= kc; k += 4) {
            __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k);
            __m128 r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(dst + k * nr + j, r0);
            _mm_storeu_ps(dst + (k + 1) * nr + j, r1);
            _mm_storeu_ps(dst + (k + 2) * nr + j, r2);
            _mm_storeu_ps(dst + (k + 3) * nr + j, r3);
          }
          for (; k < kc; ++k) {
            float* d = dst + k * nr + j;
            d[0] = s0[k];
            d[1] = s1[k];
            d[2] = s2[k];
            d[3] = s3[k];
          }
        }
      }
#endif
      for (; j < cols; ++j) {
        const float* src = B + (n0 + j) * cs;
        for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = src[k * rs];
      }
      for (j = cols; j < nr; ++j)
        for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = 0.0f;
    }
  }
}

// Row-major B (column stride 1): the same result as pack_b_panels, but each row of B is read
// across all the panels at once, one contiguous run of (panel_end - panel_begin) * NR floats
// per k. Reading one panel at a time touches only NR floats per row, a new page every row when
// B is wide; this order lets the hardware prefetcher stream B (the 64 x 3136 x 576 matmul of
// benchmarks/kernels.py went from 48 to 80 GFLOP/s on one AVX-512 core).
void pack_b_rows(int nr, int64_t k0, int64_t kc, int64_t N, const float* B, int64_t rs,
                 float* out, int64_t panel_begin, int64_t panel_end) {
  const int64_t full_end = std::min<int64_t>(panel_end, N / nr);
  auto rows = [&](auto width) {  // NR as a constant: each panel row is a fixed-size copy
    constexpr int kNR = decltype(width)::value;
    // Rows are short runs far apart (a new stream every row for the hardware prefetcher):
    // fetch the row kPrefetchRows ahead (64 x 3136 x 576 matmul: +8 %).
    constexpr int64_t kPrefetchRows = 4;
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * rs;
      if (k + kPrefetchRows < kc) {
        const char* next =
            reinterpret_cast<const char*>(src + kPrefetchRows * rs + panel_begin * kNR);
        const int64_t bytes = (full_end - panel_begin) * kNR * 4;
        for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(next + off);
      }
      for (int64_t p = panel_begin; p < full_end; ++p)
        std::memcpy(out + (p - panel_begin) * kc * kNR + k * kNR, src + p * kNR, kNR * 4);
    }
  };
  if (nr == 32) {
    rows(std::integral_constant<int, 32>());
  } else if (nr == 16) {
    rows(std::integral_constant<int, 16>());
  } else {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t p = panel_begin; p < full_end; ++p)
        std::memcpy(out + (p - panel_begin) * kc * nr + k * nr, B + (k0 + k) * rs + p * nr,
                    static_cast<size_t>(nr) * 4);
  }
  if (full_end < panel_end)  // the partial last panel, zero-padded
    pack_b_panels(nr, k0, kc, N, B, rs, 1, out + (full_end - panel_begin) * kc * nr, full_end,
                  panel_end);
}

// K == 0: C is the epilogue applied to zero.
void fill_epilogue_only(int64_t M, int64_t N, float* C, int64_t ldc, const Epilogue& ep) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float v = 0.0f;
      if (ep.row_bias) v += ep.row_bias[m];
      if (ep.col_bias) v += ep.col_bias[n];
      if (ep.activation != Activation::None && !(v != v)) {
        v = std::max(0.0f, v);
        if (ep.activation == Activation::Relu6) v = std::min(6.0f, v);
      }
      C[m * ldc + n] = v;
    }
}

}  // namespace

int64_t packed_b_floats(const SgemmKernel& kernel, int64_t K, int64_t N) {
  return ceil_div(N, kernel.nr) * kernel.nr * K;
}

int64_t packed_a_floats(const SgemmKernel& kernel, int64_t M, int64_t K) {
  return ceil_div(M, kernel.mr) * kernel.mr * K;
}

PackedMatrix pack_a(const SgemmKernel& kernel, int64_t M, int64_t K, const float* A,
                    int64_t row_stride, int64_t col_stride) {
  PackedMatrix out;
  out.kernel = &kernel;
  out.rows = M;
  out.depth = K;
  out.storage = Tensor::empty({std::max<int64_t>(packed_a_floats(kernel, M, K), 1)}, DType::Float32);
  pack_a_block(kernel.mr, M, K, A, row_stride, col_stride, out.storage.data<float>(),
               K * kernel.mr);
  return out;
}

void pack_b_into(const SgemmKernel& kernel, int64_t K, int64_t N, const float* B,
                 int64_t row_stride, int64_t col_stride, float* out, ThreadPool* pool) {
  const int64_t panels = ceil_div(N, kernel.nr);
  // A row-major B row by row across the panels (pack_b_rows: one stream per row, not a new page
  // every 32 floats; the 1024^3 matmul op spent 13 % of its time here).
  auto body = [&](int64_t b, int64_t e) {
    if (col_stride == 1)
      pack_b_rows(kernel.nr, 0, K, N, B, row_stride, out + b * K * kernel.nr, b, e);
    else
      pack_b_panels(kernel.nr, 0, K, N, B, row_stride, col_stride, out + b * K * kernel.nr, b, e);
  };
  // Parallel only when there is enough to copy to pay for waking the workers.
  if (pool && pool->num_threads() > 1 && K * N >= (1 << 16))
    pool->parallel_for(panels, 1, body);
  else
    body(0, panels);
}

PackedMatrix pack_b(const SgemmKernel& kernel, int64_t K, int64_t N, const float* B,
                    int64_t row_stride, int64_t col_stride) {
  PackedMatrix out;
  out.kernel = &kernel;
  out.rows = N;
  out.depth = K;
  out.storage = Tensor::empty({std::max<int64_t>(packed_b_floats(kernel, K, N), 1)}, DType::Float32);
  pack_b_into(kernel, K, N, B, row_stride, col_stride, out.storage.data<float>(), nullptr);
  return out;
}

// K blocks of equal depth (576 = 3 x 192, not 256 + 256 + 64: a shallow last block pays the C
// tile's load and store for little work). The M == 1 products use the same blocks.
static int64_t k_block_depth(const SgemmKernel& kernel, int64_t K) {
  return std::min<int64_t>(kernel.kc, round_up(ceil_div(K, ceil_div(K, kernel.kc)), 8));
}

// y[n] = epilogue(sum of the K blocks' sums of column n, added in block order as the matrix-vector
// kernels add them: each block's sum to the total of the blocks before it). Epilogue as the
// kernels apply it: + row bias, + column bias, then clamp keeping a NaN.
// One pass per step (simple loops the compiler vectorizes; per element the same operations in
// the same order as one loop).
static void add_block_sums_and_epilogue(const float* sums, int64_t blocks, int64_t N, float* y,
                                        const UkernelParams& p) {
  std::memcpy(y, sums, static_cast<size_t>(N) * sizeof(float));
  for (int64_t b = 1; b < blocks; ++b) {
    const float* s = sums + b * N;
    for (int64_t n = 0; n < N; ++n) y[n] = s[n] + y[n];
  }
  if (p.row_bias) {
    const float rb = p.row_bias[0];
    for (int64_t n = 0; n < N; ++n) y[n] = y[n] + rb;
  }
  if (p.col_bias)
    for (int64_t n = 0; n < N; ++n) y[n] = y[n] + p.col_bias[n];
  if (p.clamp)
    for (int64_t n = 0; n < N; ++n) {
      const float v = y[n] < p.lo ? p.lo : y[n];
      y[n] = v > p.hi ? p.hi : v;
    }
}

bool one_product_per_thread(int64_t products, int threads) {
  return threads > 1 && products >= threads && (products % threads == 0 || products >= 4 * threads);
}

void sgemm(const SgemmKernel& kernel, int64_t M, int64_t N, int64_t K, const Operand& A,
           const Operand& B, float* C, int64_t ldc, const Epilogue& ep, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    fill_epilogue_only(M, N, C, ldc, ep);
    return;
  }
  const int mr = kernel.mr, nr = kernel.nr;
  const int threads = pool ? pool->num_threads() : 1;

  // One row of A: a matrix-vector product. Whatever B's layout (row-major read in place,
  // pre-packed, or packed now), each output sums its K products in k order, so a constant
  // weight packed at load gives the same bits as an eager call.
  if (M == 1 && !A.packed && A.col_stride == 1 && !B.packer && kernel.gemv_packed &&
      kernel.gemv_rows && !ep.transposed_c) {
    {
      GemvFn gemv = kernel.gemv_packed;
      int64_t ldb = 0;
      const float* b_data = B.packed;
      if (!b_data && B.col_stride == 1) {
        gemv = kernel.gemv_rows;
        ldb = B.row_stride;
        b_data = B.data;
      } else if (!b_data) {
        float* buf = b_scratch().get(packed_b_floats(kernel, K, N), "sgemm");
        pack_b_into(kernel, K, N, B.data, B.row_stride, B.col_stride, buf, pool);
        b_data = buf;
      }
      UkernelParams p;
      p.row_bias = ep.row_bias;
      p.col_bias = ep.col_bias;
      p.last = true;
      p.k_block = k_block_depth(kernel, K);
      if (ep.activation != Activation::None) {
        p.clamp = true;
        p.hi = ep.activation == Activation::Relu6 ? 6.0f : std::numeric_limits<float>::infinity();
      }
      // Column blocks of 4 NR (whole packed panels); threads only when there is enough to read
      // to pay for waking them.
      const int64_t width = 4 * nr;
      const int64_t blocks = ceil_div(N, width);
      auto body = [&](int64_t b0, int64_t b1) {
        gemv(K, b0 * width, std::min<int64_t>(N, b1 * width), A.data, b_data, ldb, C, p);
      };
      if (pool && threads > 1 && K * N >= (1 << 15)) {
        // One contiguous run of blocks per thread: a call walks all K rows once, so many
        // narrow calls would repeat that walk (1 x 1000 x 512 at 2 threads: 35 -> 47 GFLOP/s).
        const int64_t parts = std::min<int64_t>(threads, blocks);
        const int64_t k_blocks = ceil_div(K, p.k_block);
        if (gemv == kernel.gemv_rows && k_blocks >= threads && k_blocks % threads == 0) {
          // Row-major B with whole K blocks per thread: each thread streams its own contiguous
          // rows of B (the column split gives every thread a piece of each row) into the sums
          // of its blocks, then the blocks' sums are added in block order, as one thread adds
          // them: the same bits. At 2 threads (alternating in one process): 1 x 1024 x 4096
          // 184-195 -> 161-164 us, 1 x 4096 x 1024 190 -> 177-185, 1 x 1000 x 512 1-2 % faster.
          thread_local FloatScratch block_sums;  // the caller's; the threads write their blocks
          float* sums = block_sums.get(k_blocks * N, "sgemm");
          UkernelParams block = p;
          block.row_bias = block.col_bias = nullptr;
          block.clamp = false;
          pool->parallel_for(k_blocks, 1, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
              const int64_t k0 = b * p.k_block, depth = std::min(p.k_block, K - k0);
              gemv(depth, 0, N, A.data + k0, b_data + k0 * ldb, ldb, sums + b * N, block);
            }
          });
          add_block_sums_and_epilogue(sums, k_blocks, N, C, p);
        } else if (gemv == kernel.gemv_rows) {
          // The rows kernel rewrites y once per group of rows: the threads' runs of columns
          // end on a cache line of y, so that no line is written by two cores (y is the
          // caller's buffer, 16-byte aligned by numpy). 2 threads: 17.3 -> 16.6 us.
          const int64_t skew = static_cast<int64_t>(reinterpret_cast<uintptr_t>(C) % 64 / sizeof(float));
          auto edge = [&](int64_t t) {
            return t == 0 ? 0 : t == parts ? N : std::max<int64_t>(0, t * blocks / parts * width - skew);
          };
          pool->parallel_for(parts, 1, [&](int64_t t0, int64_t t1) {
            gemv(K, edge(t0), edge(t1), A.data, b_data, ldb, C, p);
          });
        } else {
          pool->parallel_for(parts, 1, [&](int64_t t0, int64_t t1) {
            body(t0 * blocks / parts, t1 * blocks / parts);
          });
        }
      } else {
        body(0, blocks);
      }
      return;
    }
  }

  // Blocking. Tasks are (MC x NC) tiles of C; make at least one per thread when the
  // problem allows, splitting N first (A blocks are the cheaper thing to re-pack).
  const int64_t kc_block = ep.transposed_c ? K : k_block_depth(kernel, K);
  int64_t mc = std::min<int64_t>(kernel.mc, round_up(M, mr));
  int64_t m_blocks = ceil_div(M, mc);
  int64_t nc = std::min<int64_t>(kernel.nc, round_up(N, nr));
  if (threads > 1 && B.packed && N <= 2 * kGroupCols && M >= 2 * threads * mr) {
    // B packed once (a weight) and few columns: split the rows, so each thread packs only its
    // own rows of A (splitting N makes every thread pack all of A: 128 x 256 x 1024 at 2
    // threads: 142 -> 186 GFLOP/s).
    mc = std::min<int64_t>(mc, round_up(ceil_div(M, threads), mr));
    m_blocks = ceil_div(M, mc);
  } else if (threads > 1) {
    // One block of rows (skinny M): several column blocks per thread, of at least kGroupCols,
    // so a thread slowed down by anything else on its core does not hold the others up (two
    // blocks for two threads: 64 x 3136 x 576 at 154 GFLOP/s; eight: 181).
    // The count is a multiple of the thread count (768 columns in 3 blocks would leave one
    // thread idle for a third of the time).
    int64_t want_n_blocks = ceil_div(threads, m_blocks);
    if (m_blocks == 1)
      want_n_blocks = std::max<int64_t>(threads, std::min<int64_t>(4 * threads, N / kGroupCols) /
                                                     threads * threads);
    if (ceil_div(N, nc) < want_n_blocks)
      nc = std::max<int64_t>(nr, round_up(ceil_div(N, want_n_blocks), nr));
    if (m_blocks * ceil_div(N, nc) < threads && M > mr) {
      mc = std::max<int64_t>(mr, round_up(ceil_div(M, threads), mr));
      m_blocks = ceil_div(M, mc);
    }
  }
  const int64_t n_blocks = ceil_div(N, nc);
  // Row blocks hold whole micro-panels spread evenly (not MC, MC, ..., remainder), and their
  // count makes the tasks a multiple of the thread count when it can: the pool hands each thread
  // an equal run of tasks, so unequal tasks would leave a thread idle (512 rows in blocks of
  // 168 gave one thread 336 rows and the other 176).
  const int64_t m_panels = ceil_div(M, mr);
  if (threads > 1 && m_blocks > 1)
    while ((m_blocks * n_blocks) % threads != 0 && m_blocks < m_panels) ++m_blocks;
  mc = ceil_div(m_panels, m_blocks) * mr;  // the largest block
  // One block of rows per thread, A packed here: equal blocks in multiples of 4 rows rather than
  // of MR (128 rows in 14-row panels: 70 and 58; evenly: 64 = 4 x 14 + 8 each, a tile of 8 rows
  // as fast per row as a full one). A pre-packed A fixes the panels' rows.
  const bool even_rows =
      threads > 1 && !A.packed && m_blocks > 1 && m_blocks * n_blocks == threads;
  auto block_rows = [&](int64_t ib, int64_t* m0, int64_t* m) {
    if (even_rows) {
      *m0 = ib * M / m_blocks / 4 * 4;
      *m = (ib + 1 == m_blocks ? M : (ib + 1) * M / m_blocks / 4 * 4) - *m0;
      return;
    }
    const int64_t p0 = ib * m_panels / m_blocks, p1 = (ib + 1) * m_panels / m_blocks;
    *m0 = p0 * mr;
    *m = std::min<int64_t>(p1 * mr, M) - *m0;
  };
  if (even_rows) {
    int64_t largest = 0;
    for (int64_t ib = 0, m0, m; ib < m_blocks; ++ib) {
      block_rows(ib, &m0, &m);
      largest = std::max(largest, m);
    }
    mc = round_up(largest, mr);
  }
  const int64_t tasks = m_blocks * n_blocks;

  // How B reaches the microkernel:
  //  - pre-packed by the caller (constant weights);
  //  - read in place when M is a couple of micro-panels (skinny M: packing B would cost as much
  //    as the product) and B is row-major; only a partial last panel is copied (zero-padded);
  //  - packed panel by panel just before use when every B panel belongs to one task (a single
  //    block of rows), so the copy is read back from L1/L2;
  //  - else packed whole up front (in parallel) and shared by the tasks over M.
  enum class BMode { Prepacked, InPlace, PerBlock, Whole };
  BMode b_mode;
  const float* packed_b = B.packed;
  const float* b_tail = nullptr;
  const int64_t full_panels = N / nr;
  if (packed_b) {
    b_mode = BMode::Prepacked;
  } else if (!B.packer && B.col_stride == 1 && M <= 2 * mr) {
    b_mode = BMode::InPlace;
    if (N % nr) {
      float* tail = b_scratch().get(K * nr, "sgemm");
      pack_b_panels(nr, 0, K, N, B.data, B.row_stride, 1, tail, full_panels, full_panels + 1);
      b_tail = tail;
    }
  } else if (m_blocks == 1) {
    b_mode = BMode::PerBlock;
  } else {
    b_mode = BMode::Whole;
    float* buf = b_scratch().get(packed_b_floats(kernel, K, N), "sgemm");
    if (B.packer) {
      const BPacker& packer = *B.packer;
      auto body = [&](int64_t b, int64_t e) { packer(0, K, b, e, buf + b * K * nr); };
      if (pool) pool->parallel_for(ceil_div(N, nr), 1, body); else body(0, ceil_div(N, nr));
    } else {
      pack_b_into(kernel, K, N, B.data, B.row_stride, B.col_stride, buf, pool);
    }
    packed_b = buf;
  }

  UkernelParams base;
  if (ep.activation != Activation::None) {
    base.clamp = true;
    base.lo = 0.0f;
    base.hi = ep.activation == Activation::Relu6 ? 6.0f : std::numeric_limits<float>::infinity();
  }

  auto run_tasks = [&](int64_t t0, int64_t t1) {
    float* a_buf = A.packed ? nullptr : a_scratch().get(mc * kc_block, "sgemm");
    // PerBlock packs kGroupCols columns (whole panels) at a time from a row-major B (see
    // pack_b_rows) or through a packer (whose per-depth-row set-up is then shared by the
    // group's panels); a strided B one panel at a time.
    const bool group_rows = b_mode == BMode::PerBlock && (B.packer || B.col_stride == 1);
    const int64_t group = group_rows ? std::max<int64_t>(1, kGroupCols / nr) : 1;
    float* b_buf =
        b_mode == BMode::PerBlock ? b_block_scratch().get(group * nr * kc_block, "sgemm") : nullptr;
    for (int64_t t = t0; t < t1;) {
      // A run of this thread's tasks in one block of rows, as many columns as one NC block:
      // their A block is packed once per K block and shared by the run's column blocks (the
      // split of N for the threads made every block re-pack all of A: 128 x 1024 x 256 at 2
      // threads spent 12 % packing). Each C element still sums its K blocks in order.
      const int64_t ib = t / n_blocks, jb0 = t % n_blocks;
      int64_t jb1 = jb0 + 1;
      while (t + (jb1 - jb0) < t1 && jb1 < n_blocks &&
             (jb1 + 1 - jb0) * nc <= std::max<int64_t>(nc, kernel.nc))
        ++jb1;
      t += jb1 - jb0;
      int64_t m0, m;
      block_rows(ib, &m0, &m);
      for (int64_t k0 = 0; k0 < K; k0 += kc_block) {
        const int64_t kc = std::min<int64_t>(kc_block, K - k0);
        // A micro-panels for rows [m0, m0 + m), depth [k0, k0 + kc): panel stride, k stride mr.
        const float* a_panels;
        int64_t a_panel_stride;
        if (A.packed) {
          a_panels = A.packed + (m0 / mr) * K * mr + k0 * mr;
          a_panel_stride = K * mr;
        } else {
          pack_a_block(mr, m, kc, A.data + m0 * A.row_stride + k0 * A.col_stride, A.row_stride,
                       A.col_stride, a_buf, kc * mr);
          a_panels = a_buf;
          a_panel_stride = kc * mr;
        }
        UkernelParams p = base;
        p.accumulate = k0 > 0;
        p.last = k0 + kc >= K;
        for (int64_t jb = jb0; jb < jb1; ++jb) {
          const int64_t n0 = jb * nc, n = std::min<int64_t>(nc, N - n0);
          for (int64_t j = 0; j < n; j += nr) {
            const int64_t nn = std::min<int64_t>(nr, n - j);
            const int64_t panel = (n0 + j) / nr;
            const float* b_panel = nullptr;
            int64_t ldb = nr;
            switch (b_mode) {
              case BMode::Prepacked:
              case BMode::Whole: b_panel = packed_b + panel * K * nr + k0 * nr; break;
              case BMode::PerBlock:
                // Packed just before use: the panel (kc x NR) stays in L1/L2 for every row tile.
                if (group_rows) {
                  const int64_t first = n0 / nr, slot = (panel - first) % group;
                  const int64_t end = std::min<int64_t>(panel + group, ceil_div(n0 + n, nr));
                  if (B.row_packer) {  // the group's columns row-major, read in place
                    const int64_t begin = panel - slot;
                    ldb = (std::min<int64_t>(begin + group, ceil_div(n0 + n, nr)) - begin) * nr;
                    if (slot == 0) (*B.row_packer)(k0, kc, panel * nr, end * nr, b_buf, ldb);
                    b_panel = b_buf + slot * nr;
                    break;
                  }
                  if (slot == 0 && B.packer)
                    (*B.packer)(k0, kc, panel, end, b_buf);
                  else if (slot == 0)
                    pack_b_rows(nr, k0, kc, N, B.data, B.row_stride, b_buf, panel, end);
                  b_panel = b_buf + slot * kc * nr;
                  break;
                }
                if (B.packer)
                  (*B.packer)(k0, kc, panel, panel + 1, b_buf);
                else
                  pack_b_panels(nr, k0, kc, N, B.data, B.row_stride, B.col_stride, b_buf, panel,
                                panel + 1);
                b_panel = b_buf;
                break;
              case BMode::InPlace:
                if (panel < full_panels) {
                  b_panel = B.data + k0 * B.row_stride + n0 + j;
                  ldb = B.row_stride;
                } else {
                  b_panel = b_tail + k0 * nr;
                }
                break;
            }
            p.col_bias = ep.col_bias ? ep.col_bias + n0 + j : nullptr;
            for (int64_t i = 0; i < m; i += mr) {
              const int64_t mm = std::min<int64_t>(mr, m - i);
              p.row_bias = ep.row_bias ? ep.row_bias + m0 + i : nullptr;
              if (ep.transposed_c) {
                float tile[kMaxMR * kMaxNR];
                kernel.ukernel[mm - 1](kc, a_panels + (i / mr) * a_panel_stride, b_panel, ldb, tile, nr, nn, p);
                float* c = C + (n0 + j) * ldc + m0 + i;
                if (kernel.store_transposed) {
                  kernel.store_transposed(tile, nr, mm, nn, c, ldc);
                } else {
                  for (int64_t jj = 0; jj < nn; ++jj)
                    for (int64_t ii = 0; ii < mm; ++ii) c[jj * ldc + ii] = tile[ii * nr + jj];
                }
                continue;
              }
              kernel.ukernel[mm - 1](kc, a_panels + (i / mr) * a_panel_stride, b_panel, ldb,
                                     C + (m0 + i) * ldc + n0 + j, ldc, nn, p);
            }
          }
        }
      }
    }
  };
  if (pool && threads > 1 && tasks > 1)
    pool->parallel_for(tasks, 1, run_tasks);
  else
    run_tasks(0, tasks);
}

}  // namespace ember::gemm
