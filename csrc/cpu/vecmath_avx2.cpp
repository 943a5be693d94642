// vecmath_avx2.cpp -- AVX2+FMA build of the float32 kernels of vecmath.h (compiled with -mavx2 -mfma; used
// only when the CPU supports both, see vecmath.cpp). Kernel bodies: vecmath_kernels.h; math: vecmath_simd.h.
// Speed (1 thread, 4M float32, `python benchmarks/bench_ops.py --threads 1`): see README.
#include "vecmath_kernels.h"

namespace tocha::cpu::vec {

const Kernels& avx2_kernels() {
  static const Kernels k = TOCHA_VEC_KERNEL_TABLE("avx2");
  return k;
}

}  // namespace tocha::cpu::vec
