// vecmath_avx512.cpp -- AVX-512 (F, DQ) build of the float32 kernels of vecmath.h: the same source as the
// AVX2 build (vecmath_kernels.h, vecmath_simd.h) at 16 lanes, with mask registers for the selects. Used when
// the CPU has AVX-512F/DQ unless TOCHA_CPU_ISA is "avx2" or "generic" (vecmath.cpp). On AMD Zen 4, whose
// AVX-512 units are 256 bits wide, the gain comes from issuing half the instructions: in-cache microbench,
// per 16 floats, exp 6.2 -> 3.2 ns and log 6.6 -> 4.4 ns.
#define TOCHA_VEC_AVX512 1
#include "vecmath_kernels.h"

namespace tocha::cpu::vec {

const Kernels& avx512_kernels() {
  static const Kernels k = TOCHA_VEC_KERNEL_TABLE("avx512");
  return k;
}

}  // namespace tocha::cpu::vec
