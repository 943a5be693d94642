// gemm_kernels.h -- internal interface between the GEMM driver (gemm.cpp) and the ISA-specific
// micro-kernel files (gemm_avx2.cpp). Not part of the public API.
//
// Packed layouts (BLIS/Goto style), for one cache block:
//   packed A (mc x kc): ceil(mc/MR) panels; panel p holds rows p*MR.. as [k][MR] (k-major), zero-padded rows.
//   packed B (kc x nc): ceil(nc/NR) panels; panel q holds cols q*NR.. as [k][NR] (k-major), zero-padded cols.
// A micro-kernel multiplies one A panel by one B panel over kc and writes the m x n (m<=MR, n<=NR) corner of
// the tile into C with the fused epilogue:  c = (accum ? C + acc : acc); if (bias) c += bias[j]; c = act(c).
// Partial tiles must use the same per-element operations as full tiles (bitwise-stable across thread counts).
// Whole-operand pre-packing (gemm_pack_a / gemm_pack_b / gemm_prepacked in gemm.h) stores, per K block, the
// concatenation of these per-block panels over all M rows / N columns; the driver (gemm_blocked) then
// points at the block's panels instead of calling pack_a / pack_b (cache blocks start at multiples of
// MR / NR, so a block's panels are a contiguous slice of the whole-operand packing).
#pragma once
#include <cstdint>
#include "gemm.h"

namespace tocha::cpu::detail {

template <typename T>
struct KernelSet {
  const char* name;
  int mr, nr;               // register tile
  int64_t mc, kc, nc;       // cache blocking: A block mc x kc (L2), B panel kc x NR (L1), B block kc x nc (L3)
  // pack_a: rows [0, mc) of A into ceil(mc/MR) consecutive panels of MR*kc; pack_b: cols [0, nc) of B into
  // ceil(nc/NR) consecutive panels of NR*kc. Padding rows/cols are zero.
  void (*pack_a)(int64_t mc, int64_t kc, const T* A, int64_t rsa, int64_t csa, T* dst);
  void (*pack_b)(int64_t kc, int64_t nc, const T* B, int64_t rsb, int64_t csb, T* dst);
  void (*kernel)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, int m, int n,
                 bool accum, const T* bias, Act act);
  // Optional (nullptr: none): the same micro-kernel reading its operands in place -- A(i, k) at
  // A[i*rsa + k*csa] (any element strides; all MR rows must be readable), B(k, j) at B[k*rsb + j] (unit column
  // stride; all NR columns readable). Same per-element FMA chain and epilogue as `kernel` => bitwise equal.
  // Used by the small-problem path (gemm.cpp, gemm_sup), where packing would cost more than it saves.
  void (*kernel_sup)(int64_t kc, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb, T* C,
                     int64_t ldc, int m, int n, bool accum, const T* bias, Act act) = nullptr;
  // Matrix-vector product for the N == 1 / M == 1 problems (gemm.cpp, gemv_driver): y[i] = sum_k A(i, k) x[k]
  // for i < m, A(i, k) at A[i*rs + k*cs], x contiguous, y contiguous (no epilogue). The k order of each y[i]
  // depends on K (and the layout) only.
  void (*gemv)(int64_t m, int64_t K, const T* A, int64_t rs, int64_t cs, const T* x, T* y) = nullptr;
};

// Portable reference packers (gemm.cpp), usable by any kernel set for uncommon strides.
template <typename T, int MR>
void pack_a_ref(int64_t mc, int64_t kc, const T* A, int64_t rsa, int64_t csa, T* dst);
template <typename T, int NR>
void pack_b_ref(int64_t kc, int64_t nc, const T* B, int64_t rsb, int64_t csb, T* dst);
// Portable matrix-vector product (KernelSet::gemv contract, any strides).
template <typename T>
void gemv_ref(int64_t m, int64_t K, const T* A, int64_t rs, int64_t cs, const T* x, T* y);

#if defined(__x86_64__)
// gemm_avx2.cpp (compiled with -mavx2 -mfma); only call after checking CPU support.
const KernelSet<float>& avx2_kernels_f32();
const KernelSet<double>& avx2_kernels_f64();
double avx2_fma_peak_gflops(double seconds);
#endif

}  // namespace tocha::cpu::detail
