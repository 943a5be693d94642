// gemm_avx2.cpp -- AVX2+FMA micro-kernels and packers for tocha's CPU GEMM. MUST be compiled with
// `-mavx2 -mfma` (this file only); gemm.cpp calls into it only if the CPU reports avx2 and fma.
//
// float : 6x16 register tile (12 ymm accumulators; per k: 2 aligned B loads, 6 A broadcasts, 12 FMAs).
// double: 6x8 register tile (same structure, 4-wide doubles). The k loop is inline asm (see below).
// Edge tiles (m <= 4, m <= 2, or n <= one vector) run narrower k loops: no FMAs on padding rows/columns.
// Packed A panel [k][6], packed B panel [k][NR], 64-byte aligned (layouts in gemm_kernels.h); packers have
// fast paths for unit-stride rows or columns (8x8 / 4x4 register transposes) and fall back to strided loops.
// Blocking (Zen3: 32 KiB L1d, 512 KiB L2/core, 32 MiB L3): KC=256 (B micro-panel 16 KiB in L1),
// MC=144 f32 / 72 f64 (A block 144 KiB in L2), NC=3072 (B block <= 3 MiB in L3).
// Epilogue fused in the tile store: c = [C +] acc [+ bias], then ReLU or GELU (float: vec::gelu_v from
// vecmath_simd.h, the same function as the elementwise GELU, ~6 ulp; double: std::erfc(-x/sqrt2) = 1 + erf). Partial tiles run the same vector
// ops on a zero-padded row copy, so every element sees identical arithmetic wherever its tile falls.
// Measured (EPYC Zen3 ~3.0 GHz, fp32 FMA peak 97 GFLOP/s/core; `./kbench` in gemm-dev): micro-kernel alone
// 94-97 GFLOP/s (kc=256, in cache) = 97-100% of peak; full sgemm see gemm.cpp / NOTES.md.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "gemm_kernels.h"
#include "vecmath_simd.h"

namespace tocha::cpu::detail {
namespace {

// ---------------------------------------------------------------- register-blocked k loops (inline asm)
// The k loop is written in asm because GCC spills accumulators of the 12-register tile (measured 20% loss).
// Per k: 2 aligned B loads, 6 A broadcasts, 12 FMAs; unrolled by 4, then a remainder loop. Accumulators
// are zeroed in the asm and returned in registers.
// Edge tiles run narrower loops over the same packed panels (A stays [k][6], B [k][2 vectors]): the first
// 4 or 2 rows (m <= 4 / m <= 2) or the first vector of B (n <= one vector), leaving the other accumulators
// zero. Each C element still gets the same FMA chain in the same k order, so results are bitwise identical
// to the full loop; the saving is the FMAs on padding rows/columns (e.g. M = 64 = 10*6 + 4, M = 16 or 32,
// N = 196 = 12*16 + 4).
#define TOCHA_BLOAD(OPM, BSZ, u, v) OPM " " #BSZ "*" #u "+" #v "*32(%[b]), %[b" #v "]\n\t"
#define TOCHA_ROW2(OPB, OPF, ASZ, u, i)                                                         \
  OPB " " #ASZ "*" #u "+" #i "*" #ASZ "/6(%[a]), %[t]\n\t"                                        \
  OPF " %[b0], %[t], %[c" #i "0]\n\t" OPF " %[b1], %[t], %[c" #i "1]\n\t"
#define TOCHA_ROW1(OPB, OPF, ASZ, u, i)                                                         \
  OPB " " #ASZ "*" #u "+" #i "*" #ASZ "/6(%[a]), %[t]\n\t" OPF " %[b0], %[t], %[c" #i "0]\n\t"
// rows x vectors: 6x2 (full tile), 4x2, 2x2, 6x1
#define TOCHA_STEP62(OPM, OPB, OPF, ASZ, BSZ, u)                                                      \
  TOCHA_BLOAD(OPM, BSZ, u, 0) TOCHA_BLOAD(OPM, BSZ, u, 1)                                             \
  TOCHA_ROW2(OPB, OPF, ASZ, u, 0) TOCHA_ROW2(OPB, OPF, ASZ, u, 1) TOCHA_ROW2(OPB, OPF, ASZ, u, 2)     \
  TOCHA_ROW2(OPB, OPF, ASZ, u, 3) TOCHA_ROW2(OPB, OPF, ASZ, u, 4) TOCHA_ROW2(OPB, OPF, ASZ, u, 5)
#define TOCHA_STEP42(OPM, OPB, OPF, ASZ, BSZ, u)                                                      \
  TOCHA_BLOAD(OPM, BSZ, u, 0) TOCHA_BLOAD(OPM, BSZ, u, 1)                                             \
  TOCHA_ROW2(OPB, OPF, ASZ, u, 0) TOCHA_ROW2(OPB, OPF, ASZ, u, 1) TOCHA_ROW2(OPB, OPF, ASZ, u, 2)     \
  TOCHA_ROW2(OPB, OPF, ASZ, u, 3)
#define TOCHA_STEP22(OPM, OPB, OPF, ASZ, BSZ, u)                                                      \
  TOCHA_BLOAD(OPM, BSZ, u, 0) TOCHA_BLOAD(OPM, BSZ, u, 1)                                             \
  TOCHA_ROW2(OPB, OPF, ASZ, u, 0) TOCHA_ROW2(OPB, OPF, ASZ, u, 1)
#define TOCHA_STEP61(OPM, OPB, OPF, ASZ, BSZ, u)                                                      \
  TOCHA_BLOAD(OPM, BSZ, u, 0)                                                                         \
  TOCHA_ROW1(OPB, OPF, ASZ, u, 0) TOCHA_ROW1(OPB, OPF, ASZ, u, 1) TOCHA_ROW1(OPB, OPF, ASZ, u, 2)     \
  TOCHA_ROW1(OPB, OPF, ASZ, u, 3) TOCHA_ROW1(OPB, OPF, ASZ, u, 4) TOCHA_ROW1(OPB, OPF, ASZ, u, 5)

// The k-loop skeleton shared by the packed and the in-place loops: zero the 12 accumulators, run BODY4 (four k
// steps and their pointer updates) k4 times, then BODY1 (one k step) k1 times.
#define TOCHA_KLOOP_SKELETON(BODY4, BODY1)                                                     \
  ZERO("c00") ZERO("c01") ZERO("c10") ZERO("c11") ZERO("c20") ZERO("c21")                      \
  ZERO("c30") ZERO("c31") ZERO("c40") ZERO("c41") ZERO("c50") ZERO("c51")                      \
  "test %[k4], %[k4]\n\t"                                                                      \
  "jz 2f\n\t"                                                                                  \
  ".p2align 5\n\t"                                                                             \
  "1:\n\t"                                                                                     \
  BODY4                                                                                        \
  "dec %[k4]\n\t"                                                                              \
  "jnz 1b\n\t"                                                                                 \
  "2:\n\t"                                                                                     \
  "test %[k1], %[k1]\n\t"                                                                      \
  "jz 4f\n\t"                                                                                  \
  "3:\n\t"                                                                                     \
  BODY1                                                                                        \
  "dec %[k1]\n\t"                                                                              \
  "jnz 3b\n\t"                                                                                 \
  "4:\n\t"

// Packed panels: ASZ = bytes of A per k (6 elements), BSZ = bytes of B per k (64); steps address by
// displacement and the pointers advance once per BODY4 / BODY1.
#define TOCHA_KLOOP(STEP, OPM, OPB, OPF, ASZ, BSZ)                                             \
  TOCHA_KLOOP_SKELETON("prefetcht0 " #ASZ "*16(%[a])\n\t"                                     \
                       STEP(OPM, OPB, OPF, ASZ, BSZ, 0) STEP(OPM, OPB, OPF, ASZ, BSZ, 1)       \
                       STEP(OPM, OPB, OPF, ASZ, BSZ, 2) STEP(OPM, OPB, OPF, ASZ, BSZ, 3)       \
                       "add $" #ASZ "*4, %[a]\n\t"                                             \
                       "add $" #BSZ "*4, %[b]\n\t",                                            \
                       STEP(OPM, OPB, OPF, ASZ, BSZ, 0)                                        \
                       "add $" #ASZ ", %[a]\n\t"                                               \
                       "add $" #BSZ ", %[b]\n\t")

#define TOCHA_KLOOP_ASM(STEP, OPM, OPB, OPF, ASZ, BSZ)                                                         \
  __asm__ volatile(TOCHA_KLOOP(STEP, OPM, OPB, OPF, ASZ, BSZ)                                                  \
                   : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [k1] "+r"(k1), [b0] "=&x"(b0), [b1] "=&x"(b1), \
                     [t] "=&x"(t), [c00] "=x"(c00), [c01] "=x"(c01), [c10] "=x"(c10), [c11] "=x"(c11),         \
                     [c20] "=x"(c20), [c21] "=x"(c21), [c30] "=x"(c30), [c31] "=x"(c31), [c40] "=x"(c40),      \
                     [c41] "=x"(c41), [c50] "=x"(c50), [c51] "=x"(c51)                                         \
                   :                                                                                           \
                   : "cc", "memory")

// RV = rows * 10 + vectors: 62 (full tile), 42, 22, 61. V = __m256 (float, 6x16 tile) or __m256d (double,
// 6x8 tile); ASZ = 6 * sizeof(T).
template <typename T, int RV, typename V>
__attribute__((always_inline)) inline void packed_loop(int64_t kc, const T* a, const T* b, V& c00, V& c01, V& c10,
                                                       V& c11, V& c20, V& c21, V& c30, V& c31, V& c40, V& c41,
                                                       V& c50, V& c51) {
  int64_t k4 = kc >> 2, k1 = kc & 3;
  V b0, b1, t;
  if constexpr (sizeof(T) == 4) {
#define ZERO(c) "vxorps %[" c "], %[" c "], %[" c "]\n\t"
    if constexpr (RV == 62) TOCHA_KLOOP_ASM(TOCHA_STEP62, "vmovaps", "vbroadcastss", "vfmadd231ps", 24, 64);
    else if constexpr (RV == 42) TOCHA_KLOOP_ASM(TOCHA_STEP42, "vmovaps", "vbroadcastss", "vfmadd231ps", 24, 64);
    else if constexpr (RV == 22) TOCHA_KLOOP_ASM(TOCHA_STEP22, "vmovaps", "vbroadcastss", "vfmadd231ps", 24, 64);
    else TOCHA_KLOOP_ASM(TOCHA_STEP61, "vmovaps", "vbroadcastss", "vfmadd231ps", 24, 64);
#undef ZERO
  } else {
#define ZERO(c) "vxorpd %[" c "], %[" c "], %[" c "]\n\t"
    if constexpr (RV == 62) TOCHA_KLOOP_ASM(TOCHA_STEP62, "vmovapd", "vbroadcastsd", "vfmadd231pd", 48, 64);
    else if constexpr (RV == 42) TOCHA_KLOOP_ASM(TOCHA_STEP42, "vmovapd", "vbroadcastsd", "vfmadd231pd", 48, 64);
    else if constexpr (RV == 22) TOCHA_KLOOP_ASM(TOCHA_STEP22, "vmovapd", "vbroadcastsd", "vfmadd231pd", 48, 64);
    else TOCHA_KLOOP_ASM(TOCHA_STEP61, "vmovapd", "vbroadcastsd", "vfmadd231pd", 48, 64);
#undef ZERO
  }
}

// ---- Unpacked ("sup", small-unpacked) k loops: the same per-k FMAs as above, reading A and B in place.
// A(i, k) at a0 + i*r (rows 0-2) / a3 + (i-3)*r (rows 3-5, a3 = a0 + 3r), both advanced by ca per k; B row k
// at b, advanced by rb per k (unit column stride, 2 vectors). Any strides: r / ca / rb are byte strides, so
// row-major, column-major (A^T views) and a packed panel ([k][6]: r = 1 element, ca = 6) all run here.
// Same k order and FMA operand roles as the packed loop => bitwise identical accumulators.
#define TOCHA_SA_0 "(%[a0])"
#define TOCHA_SA_1 "(%[a0],%[r],1)"
#define TOCHA_SA_2 "(%[a0],%[r],2)"
#define TOCHA_SA_3 "(%[a3])"
#define TOCHA_SA_4 "(%[a3],%[r],1)"
#define TOCHA_SA_5 "(%[a3],%[r],2)"
#define TOCHA_SROW2(OPB, OPF, i)                                                                  \
  OPB " " TOCHA_SA_##i ", %[t]\n\t" OPF " %[b0], %[t], %[c" #i "0]\n\t" OPF " %[b1], %[t], %[c" #i "1]\n\t"
#define TOCHA_SROW1(OPB, OPF, i) OPB " " TOCHA_SA_##i ", %[t]\n\t" OPF " %[b0], %[t], %[c" #i "0]\n\t"
#define TOCHA_SB2(OPM) OPM " (%[b]), %[b0]\n\t" OPM " 32(%[b]), %[b1]\n\t" "add %[rb], %[b]\n\t"
#define TOCHA_SB1(OPM) OPM " (%[b]), %[b0]\n\t" "add %[rb], %[b]\n\t"
#define TOCHA_SADV "add %[ca], %[a0]\n\t" "add %[ca], %[a3]\n\t"
#define TOCHA_SSTEP62(OPM, OPB, OPF)                                                                       \
  TOCHA_SB2(OPM) TOCHA_SROW2(OPB, OPF, 0) TOCHA_SROW2(OPB, OPF, 1) TOCHA_SROW2(OPB, OPF, 2)               \
  TOCHA_SROW2(OPB, OPF, 3) TOCHA_SROW2(OPB, OPF, 4) TOCHA_SROW2(OPB, OPF, 5) TOCHA_SADV
#define TOCHA_SSTEP42(OPM, OPB, OPF)                                                                       \
  TOCHA_SB2(OPM) TOCHA_SROW2(OPB, OPF, 0) TOCHA_SROW2(OPB, OPF, 1) TOCHA_SROW2(OPB, OPF, 2)               \
  TOCHA_SROW2(OPB, OPF, 3) TOCHA_SADV
#define TOCHA_SSTEP22(OPM, OPB, OPF) TOCHA_SB2(OPM) TOCHA_SROW2(OPB, OPF, 0) TOCHA_SROW2(OPB, OPF, 1) TOCHA_SADV
#define TOCHA_SSTEP61(OPM, OPB, OPF)                                                                       \
  TOCHA_SB1(OPM) TOCHA_SROW1(OPB, OPF, 0) TOCHA_SROW1(OPB, OPF, 1) TOCHA_SROW1(OPB, OPF, 2)               \
  TOCHA_SROW1(OPB, OPF, 3) TOCHA_SROW1(OPB, OPF, 4) TOCHA_SROW1(OPB, OPF, 5) TOCHA_SADV
#define TOCHA_SKLOOP(STEP, OPM, OPB, OPF)                                                      \
  TOCHA_KLOOP_SKELETON(STEP(OPM, OPB, OPF) STEP(OPM, OPB, OPF) STEP(OPM, OPB, OPF) STEP(OPM, OPB, OPF), \
                       STEP(OPM, OPB, OPF))
#define TOCHA_SKLOOP_ASM(STEP, OPM, OPB, OPF)                                                                  \
  __asm__ volatile(TOCHA_SKLOOP(STEP, OPM, OPB, OPF)                                                           \
                   : [a0] "+r"(a0), [a3] "+r"(a3), [b] "+r"(b), [k4] "+r"(k4), [k1] "+r"(k1), [b0] "=&x"(b0),  \
                     [b1] "=&x"(b1), [t] "=&x"(t), [c00] "=x"(c00), [c01] "=x"(c01), [c10] "=x"(c10),          \
                     [c11] "=x"(c11), [c20] "=x"(c20), [c21] "=x"(c21), [c30] "=x"(c30), [c31] "=x"(c31),      \
                     [c40] "=x"(c40), [c41] "=x"(c41), [c50] "=x"(c50), [c51] "=x"(c51)                        \
                   : [r] "r"(r), [ca] "r"(ca), [rb] "r"(rb)                                                    \
                   : "cc", "memory")

// RV as above; rsa / csa / rsb in elements. Rows >= the RV's row count and, for RV 61, the second B vector
// are never read.
template <typename T, int RV, typename V>
__attribute__((always_inline)) inline void sup_loop(int64_t kc, const T* a, int64_t rsa, int64_t csa, const T* bp, int64_t rsb, V& c00, V& c01,
                     V& c10, V& c11, V& c20, V& c21, V& c30, V& c31, V& c40, V& c41, V& c50, V& c51) {
  int64_t k4 = kc >> 2, k1 = kc & 3;
  const int64_t r = rsa * int64_t(sizeof(T)), ca = csa * int64_t(sizeof(T)), rb = rsb * int64_t(sizeof(T));
  const char* a0 = reinterpret_cast<const char*>(a);
  const char* a3 = a0 + 3 * r;  // address arithmetic only: rows 3-5 are dereferenced by RV 62 / 61 (42: row 3)
  const char* b = reinterpret_cast<const char*>(bp);
  V b0, b1, t;
  if constexpr (sizeof(T) == 4) {
#define ZERO(c) "vxorps %[" c "], %[" c "], %[" c "]\n\t"
    if constexpr (RV == 62) TOCHA_SKLOOP_ASM(TOCHA_SSTEP62, "vmovups", "vbroadcastss", "vfmadd231ps");
    else if constexpr (RV == 42) TOCHA_SKLOOP_ASM(TOCHA_SSTEP42, "vmovups", "vbroadcastss", "vfmadd231ps");
    else if constexpr (RV == 22) TOCHA_SKLOOP_ASM(TOCHA_SSTEP22, "vmovups", "vbroadcastss", "vfmadd231ps");
    else TOCHA_SKLOOP_ASM(TOCHA_SSTEP61, "vmovups", "vbroadcastss", "vfmadd231ps");
#undef ZERO
  } else {
#define ZERO(c) "vxorpd %[" c "], %[" c "], %[" c "]\n\t"
    if constexpr (RV == 62) TOCHA_SKLOOP_ASM(TOCHA_SSTEP62, "vmovupd", "vbroadcastsd", "vfmadd231pd");
    else if constexpr (RV == 42) TOCHA_SKLOOP_ASM(TOCHA_SSTEP42, "vmovupd", "vbroadcastsd", "vfmadd231pd");
    else if constexpr (RV == 22) TOCHA_SKLOOP_ASM(TOCHA_SSTEP22, "vmovupd", "vbroadcastsd", "vfmadd231pd");
    else TOCHA_SKLOOP_ASM(TOCHA_SSTEP61, "vmovupd", "vbroadcastsd", "vfmadd231pd");
#undef ZERO
  }
}
#undef TOCHA_SKLOOP_ASM
#undef TOCHA_SKLOOP
#undef TOCHA_KLOOP_SKELETON
#undef TOCHA_SSTEP62
#undef TOCHA_SSTEP42
#undef TOCHA_SSTEP22
#undef TOCHA_SSTEP61
#undef TOCHA_SADV
#undef TOCHA_SB1
#undef TOCHA_SB2
#undef TOCHA_SROW1
#undef TOCHA_SROW2
#undef TOCHA_SA_0
#undef TOCHA_SA_1
#undef TOCHA_SA_2
#undef TOCHA_SA_3
#undef TOCHA_SA_4
#undef TOCHA_SA_5
#undef TOCHA_KLOOP_ASM
#undef TOCHA_KLOOP
#undef TOCHA_STEP62
#undef TOCHA_STEP42
#undef TOCHA_STEP22
#undef TOCHA_STEP61
#undef TOCHA_ROW1
#undef TOCHA_ROW2
#undef TOCHA_BLOAD

// ---------------------------------------------------------------- 6 x (2 vectors) micro-kernels
// One kernel body for both element types; Tile<T> supplies the vector type, lane count L (tile width 2L:
// 6x16 float, 6x8 double), the vector ops (also used by gemv below) and the activation applied at the store
// (the k loops are packed_loop / sup_loop).
template <typename T> struct Tile;

template <> struct Tile<float> {
  using V = __m256;
  static constexpr int L = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static float hsum(V v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
  template <Act ACT>
  static void store_act(float* c, V v) {
    if constexpr (ACT == Act::ReLU) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    else if constexpr (ACT == Act::GELU) v = vec::gelu_v(v);  // shared with the elementwise GELU
    _mm256_storeu_ps(c, v);
  }
};

template <> struct Tile<double> {
  using V = __m256d;
  static constexpr int L = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double v) { return _mm256_set1_pd(v); }
  static double hsum(V v) {
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  }
  template <Act ACT>
  static void store_act(double* c, V v) {
    if constexpr (ACT == Act::ReLU) v = _mm256_max_pd(_mm256_setzero_pd(), v);
    _mm256_storeu_pd(c, v);
    if constexpr (ACT == Act::GELU)  // x/2 * erfc(-x/sqrt2) == x/2 * (1 + erf(x/sqrt2)), exact in double
      for (int j = 0; j < L; ++j) c[j] = c[j] * 0.5 * std::erfc(c[j] * -0.70710678118654752440);
  }
};

// Full-row store with the activation fixed at compile time (keeps the accumulators in registers).
template <typename T, Act ACT, typename V = typename Tile<T>::V>
inline void store_row_t(T* c, V v0, V v1, bool accum, V b0, V b1, bool has_bias) {
  using S = Tile<T>;
  if (accum) {
    v0 = S::add(S::load(c), v0);
    v1 = S::add(S::load(c + S::L), v1);
  }
  if (has_bias) {
    v0 = S::add(v0, b0);
    v1 = S::add(v1, b1);
  }
  S::template store_act<ACT>(c, v0);
  S::template store_act<ACT>(c + S::L, v1);
}

// The tile's k loop (LOOP fills the 12 accumulators: packed panels or unpacked operands) and its store.
// always_inline (and the loop lambdas below): one flat function per (T, ACT, RV) and operand form, as if
// written out by hand. Out of line, the lambda closure (references to every argument) and the extra call
// cost 64^3 6.12 -> 5.70 us and 288x64x576 (a conv input gradient) 201 -> 196 us when removed (1 thread).
template <typename T, Act ACT, typename LOOP>
__attribute__((always_inline)) inline void tile_t(LOOP&& loop, T* C, int64_t ldc, int m, int n, bool accum,
                                                  const T* bias) {
  using S = Tile<T>;
  using V = typename S::V;
  constexpr int NR = 2 * S::L;
  V c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;  // zeroed by the asm loop
  {  // C rows are touched only at the end: start fetching them now (prefetch never faults)
    const char* p = reinterpret_cast<const char*>(C);
    const int64_t ld = ldc * int64_t(sizeof(T));
    for (int i = 0; i < 6; ++i, p += ld) {
      _mm_prefetch(p, _MM_HINT_T0);
      _mm_prefetch(p + 60, _MM_HINT_T0);
    }
  }
  loop(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);

  if (m == 6 && n == NR) {
    V b0 = S::zero(), b1 = S::zero();
    if (bias) { b0 = S::load(bias); b1 = S::load(bias + S::L); }
    const bool hb = bias != nullptr;
    store_row_t<T, ACT>(C + 0 * ldc, c00, c01, accum, b0, b1, hb);
    store_row_t<T, ACT>(C + 1 * ldc, c10, c11, accum, b0, b1, hb);
    store_row_t<T, ACT>(C + 2 * ldc, c20, c21, accum, b0, b1, hb);
    store_row_t<T, ACT>(C + 3 * ldc, c30, c31, accum, b0, b1, hb);
    store_row_t<T, ACT>(C + 4 * ldc, c40, c41, accum, b0, b1, hb);
    store_row_t<T, ACT>(C + 5 * ldc, c50, c51, accum, b0, b1, hb);
    return;
  }
  const V acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  if (n == NR) {  // fewer rows, full width (M not a multiple of 6): the full-row store, row by row
    V b0 = S::zero(), b1 = S::zero();
    if (bias) { b0 = S::load(bias); b1 = S::load(bias + S::L); }
    for (int i = 0; i < m; ++i)
      store_row_t<T, ACT>(C + i * ldc, acc[2 * i], acc[2 * i + 1], accum, b0, b1, bias != nullptr);
    return;
  }
  // partial width: same vector ops on a zero-padded copy of each row, then copy the valid part back
  alignas(32) T bbuf[NR] = {}, row[NR];
  if (bias) std::memcpy(bbuf, bias, sizeof(T) * n);
  const V b0 = S::load(bbuf), b1 = S::load(bbuf + S::L);
  for (int i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    std::memset(row, 0, sizeof(row));
    if (accum) std::memcpy(row, c, sizeof(T) * n);
    store_row_t<T, ACT>(row, acc[2 * i], acc[2 * i + 1], accum, b0, b1, bias != nullptr);
    std::memcpy(c, row, sizeof(T) * n);
  }
}

// Packed panels (gemm_kernels.h layout).
template <typename T, Act ACT, int RV>
void kernel_t(int64_t kc, const T* A, const T* B, T* C, int64_t ldc, int m, int n, bool accum, const T* bias) {
  using V = typename Tile<T>::V;
  tile_t<T, ACT>([&](V& c00, V& c01, V& c10, V& c11, V& c20, V& c21, V& c30, V& c31, V& c40, V& c41, V& c50,
                     V& c51) __attribute__((always_inline)) { packed_loop<T, RV>(kc, A, B, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51); },
                 C, ldc, m, n, accum, bias);
}

// Unpacked operands (KernelSet::kernel_sup): A(i, k) at A[i*rsa + k*csa] for the RV's rows, B(k, j) at
// B[k*rsb + j] for the RV's vectors.
template <typename T, Act ACT, int RV>
void kernel_sup_t(int64_t kc, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb, T* C, int64_t ldc,
                  int m, int n, bool accum, const T* bias) {
  using V = typename Tile<T>::V;
  tile_t<T, ACT>([&](V& c00, V& c01, V& c10, V& c11, V& c20, V& c21, V& c30, V& c31, V& c40, V& c41, V& c50,
                     V& c51) __attribute__((always_inline)) { sup_loop<T, RV>(kc, A, rsa, csa, B, rsb, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51); },
                 C, ldc, m, n, accum, bias);
}

// Edge tiles: a separate instantiation per loop shape (one asm block each, as the full tile's); F is
// kernel_t or kernel_sup_t's dispatch, called with the loop shape's RV.
template <typename T, typename F>
inline void by_shape(int m, int n, F&& f) {
  if (m == 6 && n == 2 * Tile<T>::L) return f(std::integral_constant<int, 62>());
  if (m <= 2) return f(std::integral_constant<int, 22>());
  if (n <= Tile<T>::L) return f(std::integral_constant<int, 61>());
  if (m <= 4) return f(std::integral_constant<int, 42>());
  return f(std::integral_constant<int, 62>());
}

template <typename T, typename F>
inline void by_act(Act act, F&& f) {
  switch (act) {
    case Act::ReLU: return f(std::integral_constant<Act, Act::ReLU>());
    case Act::GELU: return f(std::integral_constant<Act, Act::GELU>());
    default: return f(std::integral_constant<Act, Act::None>());
  }
}

template <typename T>
void kernel(int64_t kc, const T* A, const T* B, T* C, int64_t ldc, int m, int n, bool accum, const T* bias,
            Act act) {
  by_act<T>(act, [&](auto a) {
    by_shape<T>(m, n, [&](auto rv) { kernel_t<T, decltype(a)::value, decltype(rv)::value>(kc, A, B, C, ldc, m, n, accum, bias); });
  });
}

template <typename T>
void kernel_sup(int64_t kc, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb, T* C, int64_t ldc,
                int m, int n, bool accum, const T* bias, Act act) {
  by_act<T>(act, [&](auto a) {
    by_shape<T>(m, n, [&](auto rv) {
      kernel_sup_t<T, decltype(a)::value, decltype(rv)::value>(kc, A, rsa, csa, B, rsb, C, ldc, m, n, accum, bias);
    });
  });
}

// ---------------------------------------------------------------- packers (float fast paths)
inline void transpose8_ps(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                          __m256& r7) {
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20); r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20); r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31); r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31); r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

inline void store6(float* d, __m256 v) {  // first 6 lanes of v
  _mm_storeu_ps(d, _mm256_castps256_ps128(v));
  _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(v, 1));
}

void pack_a_f32(int64_t mc, int64_t kc, const float* A, int64_t rsa, int64_t csa, float* dst) {
  const int64_t full = mc / 6 * 6;
  if (csa == 1) {  // row-major A: per panel, 6 rows contiguous in k -> 8x8 transposes (2 dummy rows)
    for (int64_t p = 0; p < full; p += 6, A += 6 * rsa) {
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8, dst += 48) {
        __m256 r0 = _mm256_loadu_ps(A + 0 * rsa + k), r1 = _mm256_loadu_ps(A + 1 * rsa + k),
               r2 = _mm256_loadu_ps(A + 2 * rsa + k), r3 = _mm256_loadu_ps(A + 3 * rsa + k),
               r4 = _mm256_loadu_ps(A + 4 * rsa + k), r5 = _mm256_loadu_ps(A + 5 * rsa + k),
               r6 = _mm256_setzero_ps(), r7 = _mm256_setzero_ps();
        transpose8_ps(r0, r1, r2, r3, r4, r5, r6, r7);
        store6(dst + 0, r0); store6(dst + 6, r1); store6(dst + 12, r2); store6(dst + 18, r3);
        store6(dst + 24, r4); store6(dst + 30, r5); store6(dst + 36, r6); store6(dst + 42, r7);
      }
      for (; k < kc; ++k, dst += 6)
        for (int i = 0; i < 6; ++i) dst[i] = A[i * rsa + k];
    }
  } else if (rsa == 1) {  // column-major A (A^T view): k-outer so each source column is read contiguously
    for (int64_t k = 0; k < kc; ++k) {
      const float* s = A + k * csa;
      float* d = dst + k * 6;
      for (int64_t p = 0; p < full; p += 6, s += 6, d += 6 * kc) {
        _mm_storeu_ps(d, _mm_loadu_ps(s));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(s + 4))));
      }
    }
    A += full * rsa;
    dst += full * kc;
  } else {
    pack_a_ref<float, 6>(full, kc, A, rsa, csa, dst);
    A += full * rsa;
    dst += full * kc;
  }
  if (mc > full) pack_a_ref<float, 6>(mc - full, kc, A, rsa, csa, dst);
}

void pack_b_f32(int64_t kc, int64_t nc, const float* B, int64_t rsb, int64_t csb, float* dst) {
  const int64_t full = nc / 16 * 16;
  if (csb == 1) {  // row-major B: groups of 8 panels, k-outer -> 512 contiguous bytes read per row
    for (int64_t q0 = 0; q0 < full; q0 += 128) {
      const int64_t q1 = std::min<int64_t>(q0 + 128, full);
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = B + k * rsb + q0;
        float* d = dst + q0 * kc + k * 16;
        for (int64_t q = q0; q < q1; q += 16, s += 16, d += 16 * kc) {
          _mm256_store_ps(d, _mm256_loadu_ps(s));
          _mm256_store_ps(d + 8, _mm256_loadu_ps(s + 8));
        }
      }
    }
  } else if (rsb == 1) {  // B^T view: each column contiguous in k -> 8x8 transposes
    float* d0 = dst;
    for (int64_t q = 0; q < full; q += 16) {
      const float* src = B + q * csb;
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8, d0 += 128) {
        for (int h = 0; h < 2; ++h) {
          const float* s = src + (8 * h) * csb + k;
          __m256 r0 = _mm256_loadu_ps(s + 0 * csb), r1 = _mm256_loadu_ps(s + 1 * csb),
                 r2 = _mm256_loadu_ps(s + 2 * csb), r3 = _mm256_loadu_ps(s + 3 * csb),
                 r4 = _mm256_loadu_ps(s + 4 * csb), r5 = _mm256_loadu_ps(s + 5 * csb),
                 r6 = _mm256_loadu_ps(s + 6 * csb), r7 = _mm256_loadu_ps(s + 7 * csb);
          transpose8_ps(r0, r1, r2, r3, r4, r5, r6, r7);
          float* d = d0 + 8 * h;
          _mm256_store_ps(d + 0 * 16, r0); _mm256_store_ps(d + 1 * 16, r1);
          _mm256_store_ps(d + 2 * 16, r2); _mm256_store_ps(d + 3 * 16, r3);
          _mm256_store_ps(d + 4 * 16, r4); _mm256_store_ps(d + 5 * 16, r5);
          _mm256_store_ps(d + 6 * 16, r6); _mm256_store_ps(d + 7 * 16, r7);
        }
      }
      for (; k < kc; ++k, d0 += 16)
        for (int j = 0; j < 16; ++j) d0[j] = src[j * csb + k];
    }
  } else {
    pack_b_ref<float, 16>(kc, full, B, rsb, csb, dst);
  }
  if (nc > full) pack_b_ref<float, 16>(kc, nc - full, B + full * csb, rsb, csb, dst + full * kc);
}

void pack_a_f64(int64_t mc, int64_t kc, const double* A, int64_t rsa, int64_t csa, double* dst) {
  const int64_t full = mc / 6 * 6;
  if (csa == 1) {  // row-major A: per panel, rows 0-3 via a 4x4 transpose, rows 4-5 via unpack
    for (int64_t p = 0; p < full; p += 6, A += 6 * rsa) {
      int64_t k = 0;
      for (; k + 4 <= kc; k += 4, dst += 24) {
        const __m256d r0 = _mm256_loadu_pd(A + 0 * rsa + k), r1 = _mm256_loadu_pd(A + 1 * rsa + k),
                      r2 = _mm256_loadu_pd(A + 2 * rsa + k), r3 = _mm256_loadu_pd(A + 3 * rsa + k),
                      r4 = _mm256_loadu_pd(A + 4 * rsa + k), r5 = _mm256_loadu_pd(A + 5 * rsa + k);
        const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
        const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
        const __m256d u0 = _mm256_unpacklo_pd(r4, r5), u1 = _mm256_unpackhi_pd(r4, r5);  // (k0,k2) / (k1,k3)
        _mm256_storeu_pd(dst + 0, _mm256_permute2f128_pd(t0, t2, 0x20));
        _mm_storeu_pd(dst + 4, _mm256_castpd256_pd128(u0));
        _mm256_storeu_pd(dst + 6, _mm256_permute2f128_pd(t1, t3, 0x20));
        _mm_storeu_pd(dst + 10, _mm256_castpd256_pd128(u1));
        _mm256_storeu_pd(dst + 12, _mm256_permute2f128_pd(t0, t2, 0x31));
        _mm_storeu_pd(dst + 16, _mm256_extractf128_pd(u0, 1));
        _mm256_storeu_pd(dst + 18, _mm256_permute2f128_pd(t1, t3, 0x31));
        _mm_storeu_pd(dst + 22, _mm256_extractf128_pd(u1, 1));
      }
      for (; k < kc; ++k, dst += 6)
        for (int i = 0; i < 6; ++i) dst[i] = A[i * rsa + k];
    }
    A -= full * rsa;
    dst -= full * kc;
  } else if (rsa == 1) {  // column-major A: k-outer, contiguous reads
    for (int64_t k = 0; k < kc; ++k) {
      const double* s = A + k * csa;
      double* d = dst + k * 6;
      for (int64_t p = 0; p < full; p += 6, s += 6, d += 6 * kc) {
        _mm256_storeu_pd(d, _mm256_loadu_pd(s));
        _mm_storeu_pd(d + 4, _mm_loadu_pd(s + 4));
      }
    }
  } else {
    pack_a_ref<double, 6>(full, kc, A, rsa, csa, dst);
  }
  if (mc > full) pack_a_ref<double, 6>(mc - full, kc, A + full * rsa, rsa, csa, dst + full * kc);
}

void pack_b_f64(int64_t kc, int64_t nc, const double* B, int64_t rsb, int64_t csb, double* dst) {
  const int64_t full = nc / 8 * 8;
  if (csb == 1) {  // row-major B: groups of 8 panels, k-outer
    for (int64_t q0 = 0; q0 < full; q0 += 64) {
      const int64_t q1 = std::min<int64_t>(q0 + 64, full);
      for (int64_t k = 0; k < kc; ++k) {
        const double* s = B + k * rsb + q0;
        double* d = dst + q0 * kc + k * 8;
        for (int64_t q = q0; q < q1; q += 8, s += 8, d += 8 * kc) {
          _mm256_store_pd(d, _mm256_loadu_pd(s));
          _mm256_store_pd(d + 4, _mm256_loadu_pd(s + 4));
        }
      }
    }
  } else {
    pack_b_ref<double, 8>(kc, full, B, rsb, csb, dst);
  }
  if (nc > full) pack_b_ref<double, 8>(kc, nc - full, B + full * csb, rsb, csb, dst + full * kc);
}

// ---------------------------------------------------------------- matrix-vector (KernelSet::gemv)
// Rows with unit column stride: R rows at a time, each a dot product over k in two vector accumulators
// (k = j mod 2L goes to lane j), a scalar tail, then one horizontal sum. Columns with unit row stride
// (an A^T view): blocks of 4L outputs kept in registers while k runs. Other strides: gemv_ref.
template <typename T, int R>
__attribute__((always_inline)) inline void gemv_dot_rows(int64_t K, const T* a, int64_t rs, const T* x, T* y) {
  using G = Tile<T>;
  using V = typename G::V;
  constexpr int L = G::L;
  V s0[R], s1[R];
  for (int r = 0; r < R; ++r) s0[r] = s1[r] = G::zero();
  int64_t k = 0;
  for (; k + 2 * L <= K; k += 2 * L) {
    const V x0 = G::load(x + k), x1 = G::load(x + k + L);
    for (int r = 0; r < R; ++r) {
      s0[r] = G::fma(G::load(a + r * rs + k), x0, s0[r]);
      s1[r] = G::fma(G::load(a + r * rs + k + L), x1, s1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    T t = G::hsum(G::add(s0[r], s1[r]));
    for (int64_t kk = k; kk < K; ++kk) t += a[r * rs + kk] * x[kk];
    y[r] = t;
  }
}

template <typename T>
void gemv(int64_t m, int64_t K, const T* A, int64_t rs, int64_t cs, const T* x, T* y) {
  using G = Tile<T>;
  using V = typename G::V;
  constexpr int L = G::L;
  if (cs == 1) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) gemv_dot_rows<T, 4>(K, A + i * rs, rs, x, y + i);
    for (; i < m; ++i) gemv_dot_rows<T, 1>(K, A + i * rs, rs, x, y + i);
    return;
  }
  if (rs != 1) return gemv_ref<T>(m, K, A, rs, cs, x, y);
  // columns: y (in L1) += four columns at a time, each y[i] an FMA chain in k order
  const int64_t mv = m / L * L;
  for (int64_t i = 0; i < m; ++i) y[i] = T(0);
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const T* a0 = A + k * cs;
    const T* a1 = a0 + cs;
    const T* a2 = a1 + cs;
    const T* a3 = a2 + cs;
    const V x0 = G::set1(x[k]), x1 = G::set1(x[k + 1]), x2 = G::set1(x[k + 2]), x3 = G::set1(x[k + 3]);
    for (int64_t i = 0; i < mv; i += L) {
      V v = G::load(y + i);
      v = G::fma(G::load(a0 + i), x0, v);
      v = G::fma(G::load(a1 + i), x1, v);
      v = G::fma(G::load(a2 + i), x2, v);
      v = G::fma(G::load(a3 + i), x3, v);
      G::store(y + i, v);
    }
    for (int64_t i = mv; i < m; ++i)
      y[i] = std::fma(a3[i], x[k + 3], std::fma(a2[i], x[k + 2], std::fma(a1[i], x[k + 1], std::fma(a0[i], x[k], y[i]))));
  }
  for (; k < K; ++k) {
    const T* a0 = A + k * cs;
    const V x0 = G::set1(x[k]);
    for (int64_t i = 0; i < mv; i += L) G::store(y + i, G::fma(G::load(a0 + i), x0, G::load(y + i)));
    for (int64_t i = mv; i < m; ++i) y[i] = std::fma(a0[i], x[k], y[i]);
  }
}

}  // namespace

// Single-thread float32 FMA throughput: 12 independent vfmadd231ps chains (enough to cover FMA latency on
// Zen3/Intel) for ~`seconds`; returns GFLOP/s. Used by benchmarks/bench_matmul.py to report % of peak.
double avx2_fma_peak_gflops(double seconds) {
  __m256 c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm256_set1_ps(float(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  const int64_t inner = 1 << 16;
  int64_t iters = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double dt = 0;
  do {
    for (int64_t k = 0; k < inner; ++k) {
#define TOCHA_F(i) c[i] = _mm256_fmadd_ps(c[i], a, b);
      TOCHA_F(0) TOCHA_F(1) TOCHA_F(2) TOCHA_F(3) TOCHA_F(4) TOCHA_F(5)
      TOCHA_F(6) TOCHA_F(7) TOCHA_F(8) TOCHA_F(9) TOCHA_F(10) TOCHA_F(11)
#undef TOCHA_F
    }
    iters += inner;
    dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (dt < seconds);
  __m256 s = c[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, c[i]);
  volatile float sink = _mm256_cvtss_f32(s);  // keep the chains alive
  (void)sink;
  return double(iters) * 12 * 8 * 2 / dt / 1e9;
}

const KernelSet<float>& avx2_kernels_f32() {
  static const KernelSet<float> ks{"avx2", 6, 16, 144, 256, 3072, pack_a_f32, pack_b_f32, kernel<float>,
                                   kernel_sup<float>, gemv<float>};
  return ks;
}
const KernelSet<double>& avx2_kernels_f64() {
  static const KernelSet<double> ks{"avx2", 6, 8, 72, 256, 3072, pack_a_f64, pack_b_f64, kernel<double>,
                                    kernel_sup<double>, gemv<double>};
  return ks;
}

}  // namespace tocha::cpu::detail
