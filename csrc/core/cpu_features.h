// CPU feature detection and the instruction-set levels kernels are keyed by.
// Dispatch is decided here, once; kernels never probe the CPU themselves.
#pragma once
#include <string>
#include <vector>

namespace ember {

// Instruction-set level of a kernel. Within one architecture family a higher rank implies the
// lower ones. `Reference` is the scalar oracle; `Portable` is optimized plain C++.
enum class Isa : int {
  Reference = 0,
  Portable = 1,
  AVX2 = 10,        // AVX2 + FMA (x86-64)
  AVX512 = 20,      // AVX-512 F/BW/DQ/VL
  AVX512_VNNI = 30, // AVX-512 VNNI (vpdpbusd)
  NEON = 110,       // aarch64 Advanced SIMD
  NEON_DOT = 120,   // aarch64 dot-product extension (sdot/udot)
};

const char* isa_name(Isa isa);
// Throws InvalidArgument for an unknown name.
Isa isa_from_name(const std::string& name);

struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512dq = false,
       avx512vl = false, avx512_vnni = false, neon = false, neon_dot = false;
  // Not an Isa level (Cascade Lake has VNNI without it): kernels that need byte permutes
  // (vpermb) check it when they are created and leave the case to others otherwise.
  bool avx512_vbmi = false;
};
// What the hardware (and OS) supports, detected once.
const CpuFeatures& cpu_features();
// Highest level the hardware supports.
Isa detected_isa();
// Highest level kernels may use: detected_isa() capped by the EMBER_ISA environment variable
// (read once) or by set_max_isa().
Isa max_isa();
void set_max_isa(Isa isa);
// True if a kernel of level `isa` may run here (hardware has it and it is within max_isa()).
bool isa_enabled(Isa isa);
// Every level enabled on this machine, lowest first (for tests that force each path).
std::vector<Isa> enabled_isas();

}  // namespace ember
