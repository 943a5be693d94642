// gemm.h -- public entry point of tocha's CPU GEMM (packed, cache-blocked, SIMD micro-kernels, OpenMP).
//   C (M x N, row stride ldc, unit column stride) = [C if accumulate] + A(M x K) * B(K x N) [+ bias[j]], then act.
//   A and B take arbitrary (possibly negative) element strides, so transposed operands cost nothing extra:
//   the packing routines read them in place. Results are bitwise identical for any OpenMP thread count
//   (K is never split across threads). Implementation notes and measured speed: gemm.cpp / gemm_avx2.cpp.
#pragma once
#include <cstdint>

namespace tocha::cpu {

enum class Act : int { None = 0, ReLU = 1, GELU = 2 };  // GELU = exact erf form, as torch's default

// C (M x N, element (i,j) at C[i*ldc + j]) =  [C if accumulate] + sum_k A(i,k) * B(k,j)  [+ bias[j]], then act.
// A(i,k) is at A[i*rsa + k*csa]; B(k,j) at B[k*rsb + j*csb]  (arbitrary strides: transposed operands are
// handled by the packing routines, never by materialising a transpose).
// bias may be nullptr. act applies after bias (and after accumulate). M, N or K may be 0
// (K==0: C = 0 / C unchanged if accumulate, then bias/act).
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K,
          const T* A, int64_t rsa, int64_t csa,
          const T* B, int64_t rsb, int64_t csb,
          T* C, int64_t ldc, bool accumulate,
          const T* bias = nullptr, Act act = Act::None);

// explicit instantiations for float and double exist in gemm.cpp
const char* gemm_isa();  // micro-kernel path chosen at run time: "avx512", "avx2", "generic"
// True when the AVX2+FMA builds of the kernels run: the CPU has both and TOCHA_CPU_ISA != "generic" (read
// once). The single ISA decision for the whole library: every *_avx2.cpp dispatch asks this.
bool cpu_has_avx2();
// True when, in addition, the AVX-512 (F, DQ) builds run: the CPU has them and TOCHA_CPU_ISA is not "avx2"
// (which forces the AVX2 builds, e.g. to test them on an AVX-512 machine) or "generic".
bool cpu_has_avx512();
// Measured single-core float32 FMA peak in GFLOP/s (tight FMA loop for ~seconds); 0 when the GEMM runs the
// generic path. For benchmarks: SGEMM efficiency = achieved / this.
double fma_peak_gflops(double seconds = 0.2);

}  // namespace tocha::cpu
