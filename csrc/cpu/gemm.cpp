// gemm.cpp -- tocha CPU GEMM driver: run-time ISA dispatch, Goto/BLIS cache blocking, packing, OpenMP,
// the portable (generic) micro-kernel, and the explicit float/double instantiations.
//
// Computes C(M x N, row stride ldc) = [C] + A*B [+ bias[j]] then ReLU/GELU (see gemm.h); A and B are read
// through arbitrary element strides by the packers, so A^T / B^T views cost no extra pass.
// Loop nest:  jc (NC cols of B/C) -> pc (KC of K) -> pack B block (kc x nc, L3)
//             -> ic (MC rows) -> pack A block (mc x kc, L2) -> tiles (jr, ir): MR x NR micro-kernel
// (the kc x NR B micro-panel stays in L1 while the ir loop streams A micro-panels from L2).
// Threads: C is cut into a grid of MR x NR-aligned blocks, one per thread, each computed by the serial loop
// nest above with the thread's own packed buffers -- no barrier inside the GEMM (see gemm_partitioned).
// K is never split and every C element sees the same k order and epilogue => results are bitwise
// identical for any thread count. Problems under ~4 MFLOP run single-threaded (no fork/join).
// Epilogue (accumulate, bias, act) is fused into the micro-kernel's tile store of the last K block.
// Pre-packed operands (gemm_pack_a / gemm_pack_b / gemm_prepacked, gemm.h): the same loop nest with the
// pack_a / pack_b calls replaced by pointers into the caller's whole-operand packing (e.g. conv weights packed
// once per call for all images).
// Tiles: AVX2 6x16 f32 / 6x8 f64 (gemm_avx2.cpp); generic 4x8 f32 / 4x4 f64 (plain C++, auto-vectorised).
// Small single-threaded problems (both operands <= 40 KiB) skip packing: gemm_sup runs the same micro-kernel
// on the operands in place (KernelSet::kernel_sup), bitwise equal to the packed path.
// Preconditions: C has unit column stride and does not alias A/B/bias; M, N, K >= 0 (K == 0 handled).
// Compile flags: none special (must NOT get -mavx2: it holds the dispatch and the generic path).
// Measured (AMD EPYC Zen3, 2 cores ~3.0 GHz, fp32 FMA peak 97 GFLOP/s/core; `python3 bench.py` in gemm-dev):
// sgemm 1T ~80-86 GFLOP/s on 256..2048 squares (0.9-1.05x NumPy/OpenBLAS), 2T ~140-155; see NOTES.md.
#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "../core/parallel.h"

#include "gemm_kernels.h"
#if defined(__linux__)
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef TOCHA_SUP_A_BYTES  // small-problem thresholds (use_sup); -D overrides for tuning runs
#define TOCHA_SUP_A_BYTES (40 * 1024)
#endif
#ifndef TOCHA_SUP_B_BYTES
#define TOCHA_SUP_B_BYTES (40 * 1024)
#endif

namespace tocha::cpu {
namespace detail {

// ---------------------------------------------------------------- reference packers (any strides)
template <typename T, int MR>
void pack_a_ref(int64_t mc, int64_t kc, const T* A, int64_t rsa, int64_t csa, T* dst) {
  for (int64_t p = 0; p < mc; p += MR, A += MR * rsa) {
    const int64_t m = std::min<int64_t>(MR, mc - p);
    if (m == MR) {
      for (int64_t k = 0; k < kc; ++k, dst += MR)
        for (int i = 0; i < MR; ++i) dst[i] = A[i * rsa + k * csa];
    } else {
      for (int64_t k = 0; k < kc; ++k, dst += MR)
        for (int i = 0; i < MR; ++i) dst[i] = i < m ? A[i * rsa + k * csa] : T(0);
    }
  }
}

template <typename T, int NR>
void pack_b_ref(int64_t kc, int64_t nc, const T* B, int64_t rsb, int64_t csb, T* dst) {
  for (int64_t q = 0; q < nc; q += NR, B += NR * csb) {
    const int64_t n = std::min<int64_t>(NR, nc - q);
    if (n == NR) {
      for (int64_t k = 0; k < kc; ++k, dst += NR)
        for (int j = 0; j < NR; ++j) dst[j] = B[k * rsb + j * csb];
    } else {
      for (int64_t k = 0; k < kc; ++k, dst += NR)
        for (int j = 0; j < NR; ++j) dst[j] = j < n ? B[k * rsb + j * csb] : T(0);
    }
  }
}

template void pack_a_ref<float, 6>(int64_t, int64_t, const float*, int64_t, int64_t, float*);
template void pack_a_ref<double, 6>(int64_t, int64_t, const double*, int64_t, int64_t, double*);
template void pack_b_ref<float, 16>(int64_t, int64_t, const float*, int64_t, int64_t, float*);
template void pack_b_ref<double, 8>(int64_t, int64_t, const double*, int64_t, int64_t, double*);

// Rows with unit column stride: a dot product per row, 8 partial sums (lane j takes k = j mod 8, added
// pairwise at the end); otherwise column by column (y += A(:, k) x[k]), each y[i] summed in k order.
template <typename T>
void gemv_ref(int64_t m, int64_t K, const T* A, int64_t rs, int64_t cs, const T* x, T* y) {
  if (cs == 1) {
    for (int64_t i = 0; i < m; ++i) {
      const T* a = A + i * rs;
      T p[8] = {};
      int64_t k = 0;
      for (; k + 8 <= K; k += 8)
        for (int j = 0; j < 8; ++j) p[j] += a[k + j] * x[k + j];
      for (int j = 0; k < K; ++k, ++j) p[j] += a[k] * x[k];
      y[i] = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
    }
    return;
  }
  for (int64_t i = 0; i < m; ++i) y[i] = T(0);
  for (int64_t k = 0; k < K; ++k) {
    const T* a = A + k * cs;
    const T xk = x[k];
    for (int64_t i = 0; i < m; ++i) y[i] += a[i * rs] * xk;
  }
}
template void gemv_ref<float>(int64_t, int64_t, const float*, int64_t, int64_t, const float*, float*);
template void gemv_ref<double>(int64_t, int64_t, const double*, int64_t, int64_t, const double*, double*);

namespace {

template <typename T>
inline T act_scalar(T v, Act act) {
  if (act == Act::ReLU) return v < T(0) ? T(0) : v;  // keeps NaN and -0.0, like max(0, v) in SIMD
  // exact GELU x/2 (1 + erf(x/sqrt2)) written as x/2 erfc(-x/sqrt2): no cancellation for x < 0
  if (act == Act::GELU) return v * T(0.5) * std::erfc(v * T(-0.70710678118654752440));
  return v;
}

// ---------------------------------------------------------------- generic micro-kernel (auto-vectorised)
template <typename T, int MR, int NR>
void kernel_ref(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, int m, int n, bool accum,
                const T* bias, Act act) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, Ap += MR, Bp += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += Ap[i] * Bp[j];
  for (int i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    for (int j = 0; j < n; ++j) {
      T v = accum ? c[j] + acc[i][j] : acc[i][j];
      if (bias) v += bias[j];
      c[j] = act_scalar(v, act);
    }
  }
}

const KernelSet<float>& generic_kernels_f32() {
  static const KernelSet<float> ks{"generic", 4, 8, 128, 256, 4096, pack_a_ref<float, 4>, pack_b_ref<float, 8>,
                                   kernel_ref<float, 4, 8>, nullptr, gemv_ref<float>};
  return ks;
}
const KernelSet<double>& generic_kernels_f64() {
  static const KernelSet<double> ks{"generic", 4, 4, 96, 256, 4096, pack_a_ref<double, 4>,
                                    pack_b_ref<double, 4>, kernel_ref<double, 4, 4>, nullptr, gemv_ref<double>};
  return ks;
}

// ---------------------------------------------------------------- run-time ISA selection (env read once)
// The one ISA decision of the library (TOCHA_CPU_ISA read once): Avx512 also runs the AVX2 GEMM kernels
// (cpu_has_avx2) and adds the AVX-512 builds elsewhere (cpu_has_avx512). "avx2" caps it at Avx2, "generic"
// forces the portable code.
enum class Isa { Generic, Avx2, Avx512 };

Isa chosen_isa() {
  static const Isa isa = [] {
    const char* env = std::getenv("TOCHA_CPU_ISA");
    const bool want_generic = env && std::strcmp(env, "generic") == 0;
    const bool cap_avx2 = env && std::strcmp(env, "avx2") == 0;
#if defined(__x86_64__)
    const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    if (!want_generic && has_avx2) return has_avx512 && !cap_avx2 ? Isa::Avx512 : Isa::Avx2;
#endif
    (void)want_generic;
    (void)cap_avx2;
    return Isa::Generic;
  }();
  return isa;
}

template <typename T> const KernelSet<T>& kernels();
template <> const KernelSet<float>& kernels<float>() {
#if defined(__x86_64__)
  if (chosen_isa() != Isa::Generic) return avx2_kernels_f32();
#endif
  return generic_kernels_f32();
}
template <> const KernelSet<double>& kernels<double>() {
#if defined(__x86_64__)
  if (chosen_isa() != Isa::Generic) return avx2_kernels_f64();
#endif
  return generic_kernels_f64();
}

// ---------------------------------------------------------------- packed buffers (per calling thread)
// Grown on demand, 64-byte aligned, freed at thread exit; reused across calls so large blocks are not
// re-faulted in on every call.
struct AlignedBuf {
  void* p = nullptr;
  size_t cap = 0;
  ~AlignedBuf() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      const size_t huge = size_t(2) << 20;
      if (bytes >= huge) {  // big B blocks: 2 MiB aligned + THP hint, fewer TLB misses walking the panels
        cap = (bytes + huge - 1) & ~(huge - 1);
        p = std::aligned_alloc(huge, cap);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (p) madvise(p, cap, MADV_HUGEPAGE);
#endif
      } else {
        cap = (bytes + 4095) & ~size_t(4095);
        p = std::aligned_alloc(64, cap);
      }
      if (!p) { cap = 0; throw std::bad_alloc(); }
    }
    return p;
  }
};
thread_local AlignedBuf tl_buf_a, tl_buf_b;

inline void split_range(int64_t n, int tid, int nt, int64_t& b, int64_t& e) {
  int64_t q = n / nt, r = n % nt;
  b = tid * q + std::min<int64_t>(tid, r);
  e = b + q + (tid < r ? 1 : 0);
}

// Threads a GEMM may use: the OpenMP setting, 1 inside a parallel region (e.g. one item of a batched matmul).
inline int available_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

inline int threads_for_max(int64_t M, int64_t N, int64_t K, int nt) {
  if (nt <= 1) return 1;
  // ~2 MFLOP per thread minimum: below that the fork/join costs more than it saves.
  double flops = 2.0 * double(M) * double(N) * double(K);
  int64_t by_work = int64_t(flops / 2.0e6);
  return int(std::max<int64_t>(1, std::min<int64_t>(nt, by_work)));
}

inline int threads_for(int64_t M, int64_t N, int64_t K) { return threads_for_max(M, N, K, available_threads()); }

// The kernel set with its cache blocking; dev builds with TOCHA_GEMM_TUNING take the blocking from the
// environment (TOCHA_MC / TOCHA_KC / TOCHA_NC), for the driver and the pre-packing entries alike.
template <typename T>
KernelSet<T> blocking(const KernelSet<T>& ks) {
  KernelSet<T> kt = ks;
#ifdef TOCHA_GEMM_TUNING
  if (const char* e = std::getenv("TOCHA_MC")) kt.mc = std::atoi(e);
  if (const char* e = std::getenv("TOCHA_KC")) kt.kc = std::atoi(e);
  if (const char* e = std::getenv("TOCHA_NC")) kt.nc = std::atoi(e);
#endif
  return kt;
}

// Balance the K blocks (e.g. K=300 -> 2 x 150, not 256 + 44); depends on K only => the k order of every
// C element is the same whichever block of C (i.e. whichever thread) computes it, and pre-packed operands
// (gemm_pack_a / gemm_pack_b) share the driver's K blocks.
inline int64_t k_block(int64_t kc_max, int64_t K) {
  const int64_t nkb = (K + kc_max - 1) / kc_max;
  return (K + nkb - 1) / nkb;
}

// Operands already in the packed layout (gemm.h): block [pc, pc + kc) of K starts at pc * ext (ext = M or N
// rounded up to the register tile) and holds the panels of all rows / columns, the one of row (col) r at
// + r * kc. off = first row (col) of this sub-GEMM in the packed operand. a / b == nullptr: pack here.
template <typename T>
struct Prepacked {
  const T* a = nullptr;
  int64_t a_ext = 0, a_off = 0;
  const T* b = nullptr;
  int64_t b_ext = 0, b_off = 0;
};

// Serial Goto/BLIS loop nest over one C block (the multi-threaded driver below calls it once per thread).
// With pre-packed operands the same micro-kernel calls run on the same panel data (only the pack_a /
// pack_b calls are skipped), so the results are bitwise identical to packing here.
template <typename T>
void gemm_blocked(const KernelSet<T>& ks0, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa,
                  int64_t csa, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate,
                  const T* bias, Act act, const Prepacked<T>& pk = {}) {
  const KernelSet<T> ks = blocking(ks0);
  const int MR = ks.mr, NR = ks.nr;
  const int64_t KC = k_block(ks.kc, K);
  const int64_t NC = std::min<int64_t>(ks.nc, (N + NR - 1) / NR * NR);
  const int64_t MC = std::min<int64_t>(ks.mc, (M + MR - 1) / MR * MR);
  T* Ap = pk.a ? nullptr : static_cast<T*>(tl_buf_a.get(sizeof(T) * size_t(KC) * size_t(MC)));
  T* Bp = pk.b ? nullptr : static_cast<T*>(tl_buf_b.get(sizeof(T) * size_t(KC) * size_t(NC)));
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc), npb = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool acc = accumulate || pc > 0, last = pc + kc >= K;
      const T* bias_blk = (last && bias) ? bias + jc : nullptr;  // epilogue only on the last K block
      const Act act_blk = last ? act : Act::None;
      const T* Bb = Bp;
      if (pk.b)
        Bb = pk.b + pc * pk.b_ext + (pk.b_off + jc) * kc;
      else
        ks.pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, Bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic), npa = (mc + MR - 1) / MR;
        const T* Ab = Ap;
        if (pk.a)
          Ab = pk.a + pc * pk.a_ext + (pk.a_off + ic) * kc;
        else
          ks.pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, Ap);
        for (int64_t jr = 0; jr < npb; ++jr)    // jr outer: the kc x NR B micro-panel stays in L1
          for (int64_t ir = 0; ir < npa; ++ir)  // while the A micro-panels stream from L2
            ks.kernel(kc, Ab + ir * MR * kc, Bb + jr * NR * kc, C + (ic + ir * MR) * ldc + jc + jr * NR, ldc,
                      int(std::min<int64_t>(MR, mc - ir * MR)), int(std::min<int64_t>(NR, nc - jr * NR)), acc,
                      bias_blk ? bias_blk + jr * NR : nullptr, act_blk);
      }
    }
  }
}

// Small problems ("sup", after BLIS's small/unpacked path): the micro-kernel reads A and B in place
// (kernel_sup), so no pack pass runs over operands that already sit in L1/L2. Only what the in-place kernel
// cannot read is packed into the usual zero-padded panels: the last M % MR rows of A, and the last N % NR
// columns of B (all of B when its columns are not unit-stride, e.g. an A B^T view). K blocks, tile loop and
// per-tile kernel calls mirror gemm_blocked, so the result is bitwise identical to the packed path.
template <typename T>
void gemm_sup(const KernelSet<T>& ks0, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa,
              const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act) {
  const KernelSet<T> ks = blocking(ks0);
  const int MR = ks.mr, NR = ks.nr;
  const int64_t KC = k_block(ks.kc, K);
  const int64_t Mf = M / MR * MR, Nf = csb == 1 ? N / NR * NR : 0;  // rows / cols read in place
  const int64_t npb = (N - Nf + NR - 1) / NR;                          // packed B panels
  T* Ap = M > Mf ? static_cast<T*>(tl_buf_a.get(sizeof(T) * size_t(KC) * MR)) : nullptr;
  T* Bp = npb ? static_cast<T*>(tl_buf_b.get(sizeof(T) * size_t(KC) * size_t(npb * NR))) : nullptr;
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    const bool acc = accumulate || pc > 0, last = pc + kc >= K;
    const Act act_blk = last ? act : Act::None;
    if (npb) ks.pack_b(kc, N - Nf, B + pc * rsb + Nf * csb, rsb, csb, Bp);
    if (Ap) ks.pack_a(M - Mf, kc, A + Mf * rsa + pc * csa, rsa, csa, Ap);
    for (int64_t j0 = 0; j0 < N; j0 += NR) {
      const int n = int(std::min<int64_t>(NR, N - j0));
      const bool in_place = j0 < Nf;
      const T* Bq = in_place ? B + pc * rsb + j0 : Bp + (j0 - Nf) * kc;
      const int64_t rb = in_place ? rsb : NR;
      const T* bias_q = (last && bias) ? bias + j0 : nullptr;
      for (int64_t i0 = 0; i0 < M; i0 += MR) {
        const int m = int(std::min<int64_t>(MR, M - i0));
        T* Ct = C + i0 * ldc + j0;
        if (i0 < Mf)
          ks.kernel_sup(kc, A + i0 * rsa + pc * csa, rsa, csa, Bq, rb, Ct, ldc, m, n, acc, bias_q, act_blk);
        else
          ks.kernel_sup(kc, Ap, 1, MR, Bq, rb, Ct, ldc, m, n, acc, bias_q, act_blk);
      }
    }
  }
}

// Whether gemm_sup beats packing: single-threaded problems whose operands stay in cache while the tile
// loop re-reads them (A, M x K, once per NR columns; B's K x NR panel once per MR rows). Measured on Zen 4
// (1 thread, _C.matmul, min of 3 medians, packed time / sup time, AB / AtB / ABt): 32^3 1.05/1.04/1.01,
// 64^3 1.08/1.05/1.02, 96^3 1.05/1.03/1.01, 32x512x32 1.20/1.08/1.10 -- but 128^3 (64 KiB operands)
// 0.97/0.93/1.01, 64x64x512 0.94/0.81/0.95, 784x64x128 0.92/0.91/0.98: larger operands re-read in place
// (the A^T view most) lose to packing once per call, hence both operands <= 40 KiB.
template <typename T>
inline bool use_sup(const KernelSet<T>& ks, int64_t M, int64_t N, int64_t K) {
  if (!ks.kernel_sup) return false;
  const int64_t a_bytes = M * K * int64_t(sizeof(T)), b_bytes = K * N * int64_t(sizeof(T));
  int64_t a_max = TOCHA_SUP_A_BYTES, b_max = TOCHA_SUP_B_BYTES;
#ifdef TOCHA_GEMM_TUNING
  if (const char* e = std::getenv("TOCHA_SUP_A")) a_max = std::atoll(e);
  if (const char* e = std::getenv("TOCHA_SUP_B")) b_max = std::atoll(e);
#endif
  return a_bytes <= a_max && b_bytes <= b_max;
}

// Multi-threaded GEMM as independent sub-GEMMs: C is cut into a pm x pn grid of blocks aligned to the
// MR x NR register tile, one block per thread, and each thread runs the serial blocked algorithm on its
// block with its own packed buffers. No barriers between K blocks: the earlier shared-packing team scheme
// paid one per (jc, pc, ic) step, which dominated DL-sized problems like 64x784x128 at 2 threads and
// collapsed when a team member was descheduled (A/B at 2 threads, same process, interleaved rounds, best of
// 31: 64x784x128 127 vs 108 GFLOP/s, 784x64x128 141-151 vs 98-104; medians on a loaded machine 3-12x); the
// price is that each thread packs the A rows / B columns of its own block, i.e. the shared operand is
// packed pn (resp. pm) times -- K*(M+N) extra element copies against 2*M*N*K flops.
// Every C element is still produced by one micro-kernel call sequence with the same K blocking (KC depends
// on K only) and the same per-element epilogue, so results are bitwise identical for any thread count.
template <typename T>
void gemm_partitioned(const KernelSet<T>& ks, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa,
                      int64_t csa, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate,
                      const T* bias, Act act, int nt, const Prepacked<T>& pk = {}) {
  const int64_t mt = (M + ks.mr - 1) / ks.mr, ntl = (N + ks.nr - 1) / ks.nr;  // register tiles per dim
  // Grid pm x pn (pm * pn <= nt threads) minimising the per-thread tile count plus a packing-volume term; a
  // grid with more row blocks must be > 1 % cheaper to win (near-ties: cutting the columns measured faster,
  // 128^3 at 2 threads 139-142 -> 158-160 GFLOP/s as 1 x 2 instead of 2 x 1; other bench shapes unchanged).
  int pm = 1, pn = 1;
  double best = 1e300;
  for (int m = 1; m <= nt && m <= mt; ++m) {
    const int n = int(std::min<int64_t>(nt / m, ntl));
    const int64_t bm = (mt + m - 1) / m, bn = (ntl + n - 1) / n;
    const double cost = double(bm * ks.mr) * double(bn * ks.nr) + 4.0 * double(bm * ks.mr + bn * ks.nr);
    if (cost < 0.99 * best) { best = cost; pm = m; pn = n; }
  }
  const int used = pm * pn;
  if (used <= 1) {
    gemm_blocked(ks, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act, pk);
    return;
  }
  auto block = [&](int tid) {
    int64_t r0, r1, c0, c1;
    split_range(mt, tid / pn, pm, r0, r1);
    split_range(ntl, tid % pn, pn, c0, c1);
    const int64_t i0 = r0 * ks.mr, i1 = std::min(M, r1 * ks.mr);
    const int64_t j0 = c0 * ks.nr, j1 = std::min(N, c1 * ks.nr);
    Prepacked<T> sub = pk;  // the block's rows / columns inside the pre-packed operands
    sub.a_off += i0;
    sub.b_off += j0;
    if (i1 > i0 && j1 > j0)
      gemm_blocked(ks, i1 - i0, j1 - j0, K, pk.a ? A : A + i0 * rsa, rsa, csa, pk.b ? B : B + j0 * csb, rsb,
                   csb, C + i0 * ldc + j0, ldc, accumulate, bias ? bias + j0 : nullptr, act, sub);
  };
#ifdef _OPENMP
#pragma omp parallel num_threads(used)
  block(omp_get_thread_num());
#else
  for (int tid = 0; tid < used; ++tid) block(tid);
#endif
}

// Matrix-vector products: C = A b (N == 1) or C = a B (M == 1, as C^T = B^T a^T). The register-tiled GEMM
// would waste 15/16 (N == 1) or 5/6 (M == 1) of its tile on them: 4096x784 @ (784,) took 1.27 ms vs
// NumPy's 0.18. Here y (m values, m = M or N) = Mat (m x K) v, one contiguous range of outputs per thread,
// then the GEMM's epilogue per element. Each y[i] is summed over k in an order that depends on K and the
// layout only (KernelSet::gemv), so the split does not change any result.
template <typename T>
void gemv_driver(const KernelSet<T>& ks, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa,
                 int64_t csa, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate,
                 const T* bias, Act act) {
  // the matrix (m x K) and vector of y = Mat v, and y's stride in C / bias's stride per output
  const bool col = N == 1;
  const int64_t m = col ? M : N;
  const T* mat = col ? A : B;
  const int64_t rs = col ? rsa : csb, cs = col ? csa : rsb;
  const T* v = col ? B : A;
  const int64_t vs = col ? rsb : csa, ys = col ? ldc : 1, bs = col ? 0 : 1;
  std::vector<T> vbuf;  // v gathered to unit stride when it is strided
  if (vs != 1) {
    vbuf.resize(size_t(K));
    for (int64_t k = 0; k < K; ++k) vbuf[size_t(k)] = v[k * vs];
    v = vbuf.data();
  }
  // memory-bound: a second thread pays off from a ~1 MiB matrix (more bandwidth), far below the tiled GEMMs
  // 2 MFLOP per thread (1x1024x1024 at 2 threads: 0.53-0.67x NumPy on one thread)
  const int nt = int(std::min<int64_t>(m * K >= 8 * kParallelGrain ? available_threads() : 1, (m + 63) / 64));
  const int64_t per = (m + nt - 1) / nt;
  parallel_for(nt, nt, [&](int64_t t) {
    const int64_t i0 = t * per, n = std::min(per, m - i0);
    if (n <= 0) return;
    thread_local std::vector<T> ybuf;
    if (ybuf.size() < size_t(n)) ybuf.resize(size_t(n));
    T* y = ybuf.data();
    ks.gemv(n, K, mat + i0 * rs, rs, cs, v, y);
    for (int64_t i = 0; i < n; ++i) {
      T* c_el = C + (i0 + i) * ys;
      T r = accumulate ? *c_el + y[i] : y[i];
      if (bias) r += bias[(i0 + i) * bs];
      *c_el = act_scalar(r, act);
    }
  });
}

// gemm() and gemm_prepacked(): one driver, so a pre-packed call runs exactly the plain call's kernels.
template <typename T>
void gemm_driver(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B,
                 int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act,
                 const Prepacked<T>& pk) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // no products: C = [C] (+ bias), then act
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        T v = accumulate ? C[i * ldc + j] : T(0);
        if (bias) v += bias[j];
        C[i * ldc + j] = detail::act_scalar(v, act);
      }
    return;
  }
  const auto& ks = kernels<T>();
  if ((M == 1 || N == 1) && !pk.a && !pk.b && ks.gemv)
    return gemv_driver(ks, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act);
  const int nt = threads_for(M, N, K);
  if (nt <= 1 && !pk.a && !pk.b && use_sup(ks, M, N, K))
    gemm_sup(ks, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act);
  else if (nt <= 1)
    gemm_blocked(ks, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act, pk);
  else
    gemm_partitioned(ks, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act, nt, pk);
}

}  // namespace
}  // namespace detail

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act) {
  detail::gemm_driver<T>(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act, {});
}

template <typename T>
GemmPacking gemm_packing(int64_t K) {
  const auto ks = detail::blocking(detail::kernels<T>());
  return GemmPacking{ks.mr, ks.nr, K > 0 ? detail::k_block(ks.kc, K) : 1};
}

template <typename T>
int64_t gemm_packed_a_size(int64_t M, int64_t K) {
  const int mr = detail::kernels<T>().mr;
  return (M + mr - 1) / mr * mr * K;
}

template <typename T>
int64_t gemm_packed_b_size(int64_t K, int64_t N) {
  const int nr = detail::kernels<T>().nr;
  return (N + nr - 1) / nr * nr * K;
}

template <typename T>
void gemm_pack_a(int64_t M, int64_t K, const T* A, int64_t rsa, int64_t csa, T* dst) {
  if (M <= 0 || K <= 0) return;
  const auto ks = detail::blocking(detail::kernels<T>());
  const int64_t KC = detail::k_block(ks.kc, K), ext = (M + ks.mr - 1) / ks.mr * ks.mr;
  for (int64_t pc = 0; pc < K; pc += KC)  // panels are packed independently: one pack_a over all rows
    ks.pack_a(M, std::min(KC, K - pc), A + pc * csa, rsa, csa, dst + pc * ext);
}

template <typename T>
void gemm_pack_b(int64_t K, int64_t N, const T* B, int64_t rsb, int64_t csb, T* dst) {
  if (N <= 0 || K <= 0) return;
  const auto ks = detail::blocking(detail::kernels<T>());
  const int64_t KC = detail::k_block(ks.kc, K), ext = (N + ks.nr - 1) / ks.nr * ks.nr;
  for (int64_t pc = 0; pc < K; pc += KC)
    ks.pack_b(std::min(KC, K - pc), N, B + pc * rsb, rsb, csb, dst + pc * ext);
}

template <typename T>
void gemm_prepacked(int64_t M, int64_t N, int64_t K, const T* Ap, const T* A, int64_t rsa, int64_t csa,
                    const T* Bp, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate,
                    const T* bias, Act act) {
  const auto& ks = detail::kernels<T>();
  detail::Prepacked<T> pk;
  pk.a = Ap;
  pk.a_ext = (M + ks.mr - 1) / ks.mr * ks.mr;
  pk.b = Bp;
  pk.b_ext = (N + ks.nr - 1) / ks.nr * ks.nr;
  detail::gemm_driver<T>(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act, pk);
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                          int64_t, float*, int64_t, bool, const float*, Act);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                           int64_t, double*, int64_t, bool, const double*, Act);
#define TOCHA_GEMM_PACKED_INST(T)                                                                          \
  template GemmPacking gemm_packing<T>(int64_t);                                                           \
  template int64_t gemm_packed_a_size<T>(int64_t, int64_t);                                                \
  template int64_t gemm_packed_b_size<T>(int64_t, int64_t);                                                \
  template void gemm_pack_a<T>(int64_t, int64_t, const T*, int64_t, int64_t, T*);                          \
  template void gemm_pack_b<T>(int64_t, int64_t, const T*, int64_t, int64_t, T*);                          \
  template void gemm_prepacked<T>(int64_t, int64_t, int64_t, const T*, const T*, int64_t, int64_t, const T*, \
                                  const T*, int64_t, int64_t, T*, int64_t, bool, const T*, Act);
TOCHA_GEMM_PACKED_INST(float)
TOCHA_GEMM_PACKED_INST(double)
#undef TOCHA_GEMM_PACKED_INST

int gemm_threads(int64_t M, int64_t N, int64_t K) { return detail::threads_for_max(M, N, K, get_num_threads()); }

const char* gemm_isa() { return detail::kernels<float>().name; }

bool cpu_has_avx2() { return detail::chosen_isa() != detail::Isa::Generic; }

bool cpu_has_avx512() { return detail::chosen_isa() == detail::Isa::Avx512; }

double fma_peak_gflops(double seconds) {
#if defined(__x86_64__)
  if (cpu_has_avx2()) return detail::avx2_fma_peak_gflops(seconds);
#endif
  (void)seconds;
  return 0.0;
}

}  // namespace tocha::cpu
