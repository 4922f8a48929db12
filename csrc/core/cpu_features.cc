#include "core/cpu_features.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define EMBER_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace ember {

namespace {

struct IsaName {
  Isa isa;
  const char* name;
};
constexpr IsaName kIsaNames[] = {
    {Isa::Reference, "reference"}, {Isa::Portable, "portable"},   {Isa::AVX2, "avx2"},
    {Isa::AVX512, "avx512"},       {Isa::AVX512_VNNI, "avx512_vnni"}, {Isa::NEON, "neon"},
    {Isa::NEON_DOT, "neon_dot"},
};

int family(Isa isa) { return static_cast<int>(isa) / 100; }  // 0 = x86 / generic, 1 = arm
int rank(Isa isa) { return static_cast<int>(isa) % 100; }

CpuFeatures detect() {
  CpuFeatures f;
#ifdef EMBER_X86
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    bool osxsave = (ecx >> 27) & 1;
    f.fma = (ecx >> 12) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
      unsigned lo, hi;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
    }
    bool avx_os = (xcr0 & 0x6) == 0x6;
    bool avx512_os = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
      f.avx2 = avx_os && ((ebx >> 5) & 1);
      f.fma = f.fma && avx_os;
      f.avx512f = avx512_os && ((ebx >> 16) & 1);
      f.avx512dq = avx512_os && ((ebx >> 17) & 1);
      f.avx512bw = avx512_os && ((ebx >> 30) & 1);
      f.avx512vl = avx512_os && ((ebx >> 31) & 1);
      f.avx512_vnni = avx512_os && ((ecx >> 11) & 1);
      f.avx512_vbmi = avx512_os && ((ecx >> 1) & 1);
    }
  }
#endif
#if defined(__aarch64__)
  f.neon = true;
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  f.neon_dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
#endif
  return f;
}

Isa detect_isa(const CpuFeatures& f) {
  if (f.neon_dot) return Isa::NEON_DOT;
  if (f.neon) return Isa::NEON;
  bool avx512 = f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx2 && f.fma;
  if (avx512 && f.avx512_vnni) return Isa::AVX512_VNNI;
  if (avx512) return Isa::AVX512;
  if (f.avx2 && f.fma) return Isa::AVX2;
  return Isa::Portable;
}

Isa initial_max_isa() {
  Isa hw = detected_isa();
  const char* env = std::getenv("EMBER_ISA");
  if (!env || !*env) return hw;
  Isa wanted = isa_from_name(env);
  return wanted;
}

std::atomic<int>& max_isa_storage() {
  static std::atomic<int> value(static_cast<int>(initial_max_isa()));
  return value;
}

}  // namespace

const char* isa_name(Isa isa) {
  for (const auto& n : kIsaNames)
    if (n.isa == isa) return n.name;
  return "unknown";
}

Isa isa_from_name(const std::string& name) {
  for (const auto& n : kIsaNames)
    if (name == n.name) return n.isa;
  std::string known;
  for (const auto& n : kIsaNames) known += std::string(known.empty() ? "" : ", ") + n.name;
  fail<InvalidArgument>("unknown instruction set '", name, "' (known: ", known, ")");
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa detected_isa() {
  static const Isa isa = detect_isa(cpu_features());
  return isa;
}

Isa max_isa() { return static_cast<Isa>(max_isa_storage().load(std::memory_order_relaxed)); }

void set_max_isa(Isa isa) { max_isa_storage().store(static_cast<int>(isa)); }

bool isa_enabled(Isa isa) {
  if (isa == Isa::Reference) return true;
  int cap = rank(max_isa());
  if (cap == 0) return false;  // EMBER_ISA=reference: the oracle everywhere
  if (isa == Isa::Portable) return true;
  Isa hw = detected_isa();
  return family(isa) == family(hw) && rank(isa) <= rank(hw) && rank(isa) <= cap;
}

std::vector<Isa> enabled_isas() {
  std::vector<Isa> out;
  for (const auto& n : kIsaNames) {
    Isa isa = n.isa;
    if (isa == Isa::Reference) {
      out.push_back(isa);
      continue;
    }
    // Hardware support only (ignores the cap), so tests can force each one in turn.
    Isa hw = detected_isa();
    if (isa == Isa::Portable || (family(isa) == family(hw) && rank(isa) <= rank(hw)))
      out.push_back(isa);
  }
  return out;
}

}  // namespace ember
