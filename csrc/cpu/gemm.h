// gemm.h -- public entry point of tocha's CPU GEMM (packed, cache-blocked, SIMD micro-kernels, OpenMP).
//   C (M x N, row stride ldc, unit column stride) = [C if accumulate] + A(M x K) * B(K x N) [+ bias[j]], then act.
//   A and B take arbitrary (possibly negative) element strides, so transposed operands cost nothing extra:
//   the packing routines read them in place. Results are bitwise identical for any OpenMP thread count
//   (K is never split across threads). Implementation notes and measured speed: gemm.cpp / gemm_avx2.cpp.
//   M == 1 or N == 1 (matrix-vector) runs a dedicated kernel: the same for any thread count too, but its sums
//   are not bitwise those of the same row/column inside a larger (register-tiled) product.
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

// ---- Pre-packed operands (for callers that multiply by the same matrix many times, e.g. the convolution's
// weights for every image, or that can build an operand straight in the packed layout, e.g. im2col).
// Layout, with (mr, nr, kc) = gemm_packing<T>(K) (register tile of the run-time kernel set; kc = the
// driver's balanced K block length, a function of K only) and K cut into blocks [pc, pc + kc') with
// pc = 0, kc, 2kc, ... and kc' = min(kc, K - pc):
//   packed A (M x K): block pc starts at pc * roundup(M, mr); in it, the rows i0 .. i0+mr-1 (i0 % mr == 0)
//     form a panel at + i0 * kc' laid out [k][mr] (element (i0+i, pc+k) at + k*mr + i), rows >= M zero.
//   packed B (K x N): block pc starts at pc * roundup(N, nr); the columns j0 .. j0+nr-1 form a panel at
//     + j0 * kc' laid out [k][nr] (element (pc+k, j0+j) at + k*nr + j), columns >= N zero.
// Packed buffers must be 64-byte aligned (the SIMD kernels use aligned loads); sizes in elements are
// gemm_packed_a_size / gemm_packed_b_size. The layout depends on the kernel set chosen at run time
// (TOCHA_CPU_ISA), so build packed operands with these functions' parameters, never with constants.
struct GemmPacking {
  int mr, nr;
  int64_t kc;
};
template <typename T> GemmPacking gemm_packing(int64_t K);
template <typename T> int64_t gemm_packed_a_size(int64_t M, int64_t K);
template <typename T> int64_t gemm_packed_b_size(int64_t K, int64_t N);
template <typename T> void gemm_pack_a(int64_t M, int64_t K, const T* A, int64_t rsa, int64_t csa, T* dst);
template <typename T> void gemm_pack_b(int64_t K, int64_t N, const T* B, int64_t rsb, int64_t csb, T* dst);
// gemm() with A and/or B given pre-packed: Ap != nullptr replaces (A, rsa, csa), Bp != nullptr replaces
// (B, rsb, csb) (those are then ignored). Same driver, K blocks, threading and micro-kernel calls as gemm()
// => bitwise identical to gemm() on the unpacked operands, for any thread count.
template <typename T>
void gemm_prepacked(int64_t M, int64_t N, int64_t K, const T* Ap, const T* A, int64_t rsa, int64_t csa,
                    const T* Bp, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate,
                    const T* bias = nullptr, Act act = Act::None);

// Threads gemm() would use for an M x N x K product outside any parallel region (its work threshold: about
// 2 MFLOP per thread); callers with many independent small products run those in parallel instead.
int gemm_threads(int64_t M, int64_t N, int64_t K);

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
