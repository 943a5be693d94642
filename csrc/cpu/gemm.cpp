// gemm.cpp -- tocha CPU GEMM driver: run-time ISA dispatch, Goto/BLIS cache blocking, packing, OpenMP,
// the portable (generic) micro-kernel, and the explicit float/double instantiations.
//
// Computes C(M x N, row stride ldc) = [C] + A*B [+ bias[j]] then ReLU/GELU (see gemm.h); A and B are read
// through arbitrary element strides by the packers, so A^T / B^T views cost no extra pass.
// Loop nest:  jc (NC cols of B/C) -> pc (KC of K) -> pack B block (kc x nc, L3)
//             -> ic (MC rows) -> pack A block (mc x kc, L2) -> tiles (jr, ir): MR x NR micro-kernel
// (the kc x NR B micro-panel stays in L1 while the ir loop streams A micro-panels from L2).
// Threads: one OpenMP team. Packing of each block and the (jr, ir) tile list of each (jc, pc, ic) step are
// split in contiguous static chunks; A/B blocks are double-buffered so the next step is packed right after
// the current step's tiles, one barrier per step. K is never split and every C element is produced by one
// fixed tile with a fixed k order => results are bitwise identical for any thread count.
// Problems under ~4 MFLOP run single-threaded (no fork/join); tiny ones take the same packed path.
// Epilogue (accumulate, bias, act) is fused into the micro-kernel's tile store of the last K block.
// Tiles: AVX2 6x16 f32 / 6x8 f64 (gemm_avx2.cpp); generic 4x8 f32 / 4x4 f64 (plain C++, auto-vectorised).
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

#include "gemm_kernels.h"
#if defined(__linux__)
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
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
  static const KernelSet<float> ks{"generic", 4, 8, 128, 256, 4096,
                                   pack_a_ref<float, 4>, pack_b_ref<float, 8>, kernel_ref<float, 4, 8>};
  return ks;
}
const KernelSet<double>& generic_kernels_f64() {
  static const KernelSet<double> ks{"generic", 4, 4, 96, 256, 4096,
                                    pack_a_ref<double, 4>, pack_b_ref<double, 4>, kernel_ref<double, 4, 4>};
  return ks;
}

// ---------------------------------------------------------------- run-time ISA selection (env read once)
enum class Isa { Generic, Avx2 };

Isa chosen_isa() {
  static const Isa isa = [] {
    const char* env = std::getenv("TOCHA_CPU_ISA");
    bool want_generic = env && std::strcmp(env, "generic") == 0;
#if defined(__x86_64__)
    bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!want_generic && has_avx2) return Isa::Avx2;
#endif
    (void)want_generic;
    return Isa::Generic;
  }();
  return isa;
}

template <typename T> const KernelSet<T>& kernels();
template <> const KernelSet<float>& kernels<float>() {
#if defined(__x86_64__)
  if (chosen_isa() == Isa::Avx2) return avx2_kernels_f32();
#endif
  return generic_kernels_f32();
}
template <> const KernelSet<double>& kernels<double>() {
#if defined(__x86_64__)
  if (chosen_isa() == Isa::Avx2) return avx2_kernels_f64();
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

inline int threads_for(int64_t M, int64_t N, int64_t K) {
#ifdef _OPENMP
  int nt = omp_get_max_threads();
  if (nt <= 1 || omp_in_parallel()) return 1;
  // ~2 MFLOP per thread minimum: below that the fork/join + barriers cost more than they save.
  double flops = 2.0 * double(M) * double(N) * double(K);
  int64_t by_work = int64_t(flops / 2.0e6);
  return int(std::max<int64_t>(1, std::min<int64_t>(nt, by_work)));
#else
  (void)M; (void)N; (void)K;
  return 1;
#endif
}

template <typename T>
void gemm_blocked(const KernelSet<T>& ks, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa,
                  int64_t csa, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate,
                  const T* bias, Act act, int nthreads) {
  const int MR = ks.mr, NR = ks.nr;
#ifdef TOCHA_GEMM_TUNING  // dev builds only: override blocking from the environment
  KernelSet<T> kt = ks;
  if (const char* e = std::getenv("TOCHA_MC")) kt.mc = std::atoi(e);
  if (const char* e = std::getenv("TOCHA_KC")) kt.kc = std::atoi(e);
  if (const char* e = std::getenv("TOCHA_NC")) kt.nc = std::atoi(e);
  const KernelSet<T>& ks_ = kt;
#define ks ks_
#endif
  // Balance the K blocks (e.g. K=300 -> 2 x 150, not 256 + 44); depends on K only => thread-independent.
  const int64_t nkb = (K + ks.kc - 1) / ks.kc;
  const int64_t KC = (K + nkb - 1) / nkb;
  const int64_t NC = std::min<int64_t>(ks.nc, (N + NR - 1) / NR * NR);
  const int64_t MC = std::min<int64_t>(ks.mc, (M + MR - 1) / MR * MR);
  // Steps (jc, pc, ic) run in order; step s computes from A buffer s%2 and B buffer (s/nic)%2 while the
  // next step's blocks are packed into the other buffers, so one barrier per step suffices.
  const int64_t njc = (N + NC - 1) / NC, npc = (K + KC - 1) / KC, nic = (M + MC - 1) / MC;
  const int64_t nsteps = njc * npc * nic;
  const size_t a_sz = size_t(KC) * size_t(MC), b_sz = size_t(KC) * size_t(NC);
  const int na = nsteps > 1 ? 2 : 1, nb = njc * npc > 1 ? 2 : 1;
  T* Ap = static_cast<T*>(tl_buf_a.get(sizeof(T) * a_sz * na));
  T* Bp = static_cast<T*>(tl_buf_b.get(sizeof(T) * b_sz * nb));

  struct Step { int64_t jc, nc, pc, kc, ic, mc; bool new_b; T* a; T* b; };
  auto step = [&](int64_t s) {
    Step st;
    const int64_t icx = s % nic, pcx = (s / nic) % npc, jcx = s / (nic * npc);
    st.jc = jcx * NC; st.nc = std::min(NC, N - st.jc);
    st.pc = pcx * KC; st.kc = std::min(KC, K - st.pc);
    st.ic = icx * MC; st.mc = std::min(MC, M - st.ic);
    st.new_b = icx == 0;
    st.a = Ap + (s % na) * a_sz;
    st.b = Bp + ((s / nic) % nb) * b_sz;
    return st;
  };
  auto pack = [&](const Step& st, int tid, int nt) {
    if (st.new_b) {
      int64_t b0, b1;
      split_range((st.nc + NR - 1) / NR, tid, nt, b0, b1);
      if (b1 > b0)
        ks.pack_b(st.kc, std::min<int64_t>(b1 * NR, st.nc) - b0 * NR, B + st.pc * rsb + (st.jc + b0 * NR) * csb,
                  rsb, csb, st.b + b0 * NR * st.kc);
    }
    int64_t a0, a1;
    split_range((st.mc + MR - 1) / MR, tid, nt, a0, a1);
    if (a1 > a0)
      ks.pack_a(std::min<int64_t>(a1 * MR, st.mc) - a0 * MR, st.kc, A + (st.ic + a0 * MR) * rsa + st.pc * csa,
                rsa, csa, st.a + a0 * MR * st.kc);
  };
  auto compute = [&](const Step& st, int tid, int nt) {
    const int64_t kc = st.kc, mc = st.mc, nc = st.nc;
    const int64_t npa = (mc + MR - 1) / MR, npb = (nc + NR - 1) / NR;
    const bool acc = accumulate || st.pc > 0;
    const bool last = st.pc + kc >= K;
    const T* bias_blk = (last && bias) ? bias + st.jc : nullptr;
    const Act act_blk = last ? act : Act::None;
    int64_t t0, t1;
    split_range(npa * npb, tid, nt, t0, t1);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t jr = t / npa, ir = t % npa;  // jr-major: B micro-panel reused across ir (L1)
      ks.kernel(kc, st.a + ir * MR * kc, st.b + jr * NR * kc, C + (st.ic + ir * MR) * ldc + st.jc + jr * NR, ldc,
                int(std::min<int64_t>(MR, mc - ir * MR)), int(std::min<int64_t>(NR, nc - jr * NR)), acc,
                bias_blk ? bias_blk + jr * NR : nullptr, act_blk);
    }
  };
  auto body = [&](int tid, int nt) {
    Step cur = step(0);
    pack(cur, tid, nt);
    for (int64_t s = 0; s < nsteps; ++s) {
#ifdef _OPENMP
      if (nt > 1) {
#pragma omp barrier
      }
#endif
      compute(cur, tid, nt);
      if (s + 1 < nsteps) {
        cur = step(s + 1);
        pack(cur, tid, nt);
      }
    }
  };

  if (nthreads <= 1) {
    body(0, 1);
  } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
    body(omp_get_thread_num(), omp_get_num_threads());
#else
    body(0, 1);
#endif
  }
#ifdef TOCHA_GEMM_TUNING
#undef ks
#endif
}

}  // namespace
}  // namespace detail

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T* C, int64_t ldc, bool accumulate, const T* bias, Act act) {
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
  const auto& ks = detail::kernels<T>();
  detail::gemm_blocked(ks, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, bias, act,
                       detail::threads_for(M, N, K));
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                          int64_t, float*, int64_t, bool, const float*, Act);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                           int64_t, double*, int64_t, bool, const double*, Act);

const char* gemm_isa() { return detail::kernels<float>().name; }

}  // namespace tocha::cpu
