// vecmath_kernels.h -- the float32 array kernels of vecmath.h (maps, binary ops, reductions, softmax's
// exp-and-sum) over the vector math of vecmath_simd.h, written once for both SIMD widths: vecmath_avx2.cpp
// (AVX2+FMA, 8 lanes) and vecmath_avx512.cpp (AVX-512, 16 lanes; defines TOCHA_VEC_AVX512). Each file then
// builds its Kernels table with TOCHA_VEC_KERNEL_TABLE. Same algorithms and coefficients as the generic path
// (vecmath_consts.h); the differences are FMA contractions (<= 1 ulp apart).
// Every elementwise kernel runs its n % kW tail through the same vector code on a padded copy (or exact
// masked loads for the IEEE binary ops), so an element's result does not depend on where a chunk boundary
// falls (thread-count independent); maps give the same bits on both widths. Sums and softmax's row sum add
// kW-lane partial sums, so their rounding differs between the widths (deterministic on a given machine).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "vecmath.h"
#include "vecmath_consts.h"
#include "vecmath_simd.h"

namespace tocha::cpu::vec {
namespace {

#ifdef TOCHA_VEC_AVX512
inline V loadu(const float* p) { return _mm512_loadu_ps(p); }
inline void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
inline __mmask16 first(int64_t k) { return __mmask16((1u << k) - 1u); }
inline V load_n(const float* p, int64_t k) { return _mm512_maskz_loadu_ps(first(k), p); }  // zeros beyond k
inline void store_n(float* p, int64_t k, V v) { _mm512_mask_storeu_ps(p, first(k), v); }
inline V keep_n(V v, int64_t k) { return _mm512_maskz_mov_ps(first(k), v); }  // lanes >= k set to 0
inline float hsum(V v) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline bool any(M m) { return m != 0; }
inline M mnone() { return 0; }
#else
alignas(32) constexpr int32_t kTailMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
inline __m256i first(int64_t k) { return _mm256_loadu_si256((const __m256i*)(kTailMask + 8 - k)); }
inline V loadu(const float* p) { return _mm256_loadu_ps(p); }
inline void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V load_n(const float* p, int64_t k) { return _mm256_maskload_ps(p, first(k)); }
inline void store_n(float* p, int64_t k, V v) { _mm256_maskstore_ps(p, first(k), v); }
inline V keep_n(V v, int64_t k) { return _mm256_and_ps(v, _mm256_castsi256_ps(first(k))); }
inline float hsum(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline bool any(M m) { return _mm256_movemask_ps(m) != 0; }
inline M mnone() { return _mm256_setzero_ps(); }
#endif

template <V (*F)(V)>
void map(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    V a = loadu(x + i), b = loadu(x + i + kW);
    storeu(y + i, F(a));
    storeu(y + i + kW, F(b));
  }
  for (; i + kW <= n; i += kW) storeu(y + i, F(loadu(x + i)));
  if (i < n) {  // tail: the same vector code on a copy padded with 1s (a harmless input everywhere)
    alignas(64) float buf[kW];
    for (int k = 0; k < kW; ++k) buf[k] = 1.0f;
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    storeu(buf, F(loadu(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

// y = F(a, b) for the gradient kernels: tails through a padded vector, as map().
template <V (*F)(V, V)>
void map2(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) storeu(y + i, F(loadu(a + i), loadu(b + i)));
  if (i < n) {
    alignas(64) float ba[kW], bb[kW];
    for (int k = 0; k < kW; ++k) ba[k] = bb[k] = 1.0f;
    std::memcpy(ba, a + i, (n - i) * sizeof(float));
    std::memcpy(bb, b + i, (n - i) * sizeof(float));
    storeu(ba, F(loadu(ba), loadu(bb)));
    std::memcpy(y + i, ba, (n - i) * sizeof(float));
  }
}

inline V add_v(V a, V b) { return add(a, b); }
inline V sub_v(V a, V b) { return sub(a, b); }
inline V mul_v(V a, V b) { return mul(a, b); }
inline V div_v(V a, V b) { return div(a, b); }
inline V max_v(V a, V b) { return sel(cmp<_CMP_UNORD_Q>(a, b), vmax(a, b), add(a, b)); }  // NaN propagates
inline V min_v(V a, V b) { return sel(cmp<_CMP_UNORD_Q>(a, b), vmin(a, b), add(a, b)); }

// Binary ops are exact IEEE operations, so masked tails give the same bits as full vectors.
template <V (*F)(V, V)>
void bin(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW) {
    V r0 = F(loadu(a + i), loadu(b + i));
    V r1 = F(loadu(a + i + kW), loadu(b + i + kW));
    V r2 = F(loadu(a + i + 2 * kW), loadu(b + i + 2 * kW));
    V r3 = F(loadu(a + i + 3 * kW), loadu(b + i + 3 * kW));
    storeu(y + i, r0);
    storeu(y + i + kW, r1);
    storeu(y + i + 2 * kW, r2);
    storeu(y + i + 3 * kW, r3);
  }
  for (; i + kW <= n; i += kW) storeu(y + i, F(loadu(a + i), loadu(b + i)));
  if (i < n) store_n(y + i, n - i, F(load_n(a + i, n - i), load_n(b + i, n - i)));
}
template <V (*F)(V, V), bool Rev>
void bin_s(const float* a, float s, float* y, int64_t n) {
  const V sv = set1(s);
  auto f = [&](V v) { return Rev ? F(sv, v) : F(v, sv); };
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW) {
    V r0 = f(loadu(a + i)), r1 = f(loadu(a + i + kW));
    V r2 = f(loadu(a + i + 2 * kW)), r3 = f(loadu(a + i + 3 * kW));
    storeu(y + i, r0);
    storeu(y + i + kW, r1);
    storeu(y + i + 2 * kW, r2);
    storeu(y + i + 3 * kW, r3);
  }
  for (; i + kW <= n; i += kW) storeu(y + i, f(loadu(a + i)));
  if (i < n) store_n(y + i, n - i, f(load_n(a + i, n - i)));
}

// Pairwise sum: leaves of <= 64 kW values (512 AVX2, 1024 AVX-512: each lane adds <= 16 values in a row)
// summed by 4 x kW lanes, halves split at multiples of 4 kW. The leaf's horizontal sum is a good part of a
// short row's cost (global average pooling: 4096 rows of 576), hence leaves scale with the width.
float sum_leaf(const float* x, int64_t n) {
  V a0 = zero(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW) {
    a0 = add(a0, loadu(x + i));
    a1 = add(a1, loadu(x + i + kW));
    a2 = add(a2, loadu(x + i + 2 * kW));
    a3 = add(a3, loadu(x + i + 3 * kW));
  }
  for (; i + kW <= n; i += kW) a0 = add(a0, loadu(x + i));
  if (i < n) a1 = add(a1, load_n(x + i, n - i));
  return hsum(add(add(a0, a1), add(a2, a3)));
}
float sum_a(const float* x, int64_t n) {
  if (n <= 64 * kW) return sum_leaf(x, n);
  int64_t h = (n / 2 + 4 * kW - 1) & ~int64_t(4 * kW - 1);
  return sum_a(x, h) + sum_a(x + h, n - h);
}

template <bool IsMax>
float extreme_a(const float* x, int64_t n) {
  V best = set1(x[0]);
  M nan = mnone();
  int64_t i = 0;
  for (; i + kW <= n; i += kW) {
    V v = loadu(x + i);
    nan = mor(nan, cmp<_CMP_UNORD_Q>(v, v));
    best = IsMax ? vmax(best, v) : vmin(best, v);
  }
  alignas(64) float b[kW];
  storeu(b, best);
  float r = b[0];
  for (int k = 1; k < kW; ++k) r = IsMax ? (b[k] > r ? b[k] : r) : (b[k] < r ? b[k] : r);
  bool has_nan = any(nan);
  for (; i < n; ++i) {
    has_nan |= x[i] != x[i];
    r = IsMax ? (x[i] > r ? x[i] : r) : (x[i] < r ? x[i] : r);
  }
  return has_nan ? __builtin_nanf("") : r;
}

float exp_shift_sum_a(const float* x, float m, float* y, int64_t n) {
  if (n > 4096) {  // long rows: pairwise sum keeps the error O(log n)
    for (int64_t i = 0; i < n; i += 4096) {
      int64_t e = n - i < 4096 ? n - i : 4096;
      exp_shift_sum_a(x + i, m, y + i, e);
    }
    return sum_a(y, n);
  }
  const V mv = set1(m);
  V acc0 = zero(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    V e0 = exp_v(sub(loadu(x + i), mv));
    V e1 = exp_v(sub(loadu(x + i + kW), mv));
    storeu(y + i, e0);
    storeu(y + i + kW, e1);
    acc0 = add(acc0, e0);
    acc1 = add(acc1, e1);
  }
  for (; i + kW <= n; i += kW) {
    V e = exp_v(sub(loadu(x + i), mv));
    storeu(y + i, e);
    acc0 = add(acc0, e);
  }
  if (i < n) {
    V e = keep_n(exp_v(sub(load_n(x + i, n - i), mv)), n - i);
    store_n(y + i, n - i, e);
    acc1 = add(acc1, e);
  }
  return hsum(add(acc0, acc1));
}

}  // namespace
}  // namespace tocha::cpu::vec

// The Kernels table of this width (vecmath.h), named NAME.
#define TOCHA_VEC_KERNEL_TABLE(NAME)                                                                        \
  {                                                                                                           \
    NAME,                                                                                                     \
        {map<exp_v>, map<log_v>, map<tanh_v>, map<sigmoid_v>, map<relu_v>, map<silu_v>, map<gelu_tanh_v>,    \
         map<softplus_v>, map<mish_v>, map<erf_v>, map<gelu_v>},                                              \
        {map2<gelu_grad_v>, map2<gelu_tanh_grad_v>},                                                          \
        {bin<add_v>, bin<sub_v>, bin<mul_v>, bin<div_v>, bin<max_v>, bin<min_v>},                             \
        {bin_s<add_v, false>, bin_s<sub_v, false>, bin_s<mul_v, false>, bin_s<div_v, false>,                  \
         bin_s<max_v, false>, bin_s<min_v, false>},                                                           \
        {bin_s<add_v, true>, bin_s<sub_v, true>, bin_s<mul_v, true>, bin_s<div_v, true>,                      \
         bin_s<max_v, true>, bin_s<min_v, true>},                                                             \
        sum_a, extreme_a<true>, extreme_a<false>, exp_shift_sum_a,                                            \
  }
