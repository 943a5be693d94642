// vecmath_avx2.cpp -- AVX2+FMA float32 kernels of vecmath.h (compiled with -mavx2 -mfma; called only when
// the CPU supports both, see vecmath.cpp). Same algorithms and coefficients as the generic path
// (vecmath_consts.h); the differences are FMA contractions (<= 1 ulp apart).
// Every kernel handles the n % 8 tail by running the same vector code on a padded copy, so an element's
// result does not depend on where a chunk boundary falls (thread-count independent).
// Speed (AMD EPYC Zen3, 1 thread, 4M float32, `python benchmarks/bench_ops.py --threads 1`): see README.
#include <immintrin.h>

#include <cstring>

#include "vecmath.h"
#include "vecmath_avx2.h"
#include "vecmath_consts.h"

namespace tocha::cpu::vec {
namespace {

template <V (*F)(V)>
void map(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    _mm256_storeu_ps(y + i, F(a));
    _mm256_storeu_ps(y + i + 8, F(b));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm256_store_ps(buf, F(_mm256_load_ps(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

// y = F(a, b) for the gradient kernels: tails through a padded vector, as map().
template <V (*F)(V, V)>
void map2(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) {
    alignas(32) float ba[8] = {1, 1, 1, 1, 1, 1, 1, 1}, bb[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    std::memcpy(ba, a + i, (n - i) * sizeof(float));
    std::memcpy(bb, b + i, (n - i) * sizeof(float));
    _mm256_store_ps(ba, F(_mm256_load_ps(ba), _mm256_load_ps(bb)));
    std::memcpy(y + i, ba, (n - i) * sizeof(float));
  }
}

inline V add_v(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub_v(V a, V b) { return _mm256_sub_ps(a, b); }
inline V mul_v(V a, V b) { return _mm256_mul_ps(a, b); }
inline V div_v(V a, V b) { return _mm256_div_ps(a, b); }
inline V max_v(V a, V b) {
  return _mm256_blendv_ps(_mm256_max_ps(a, b), _mm256_add_ps(a, b), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}
inline V min_v(V a, V b) {
  return _mm256_blendv_ps(_mm256_min_ps(a, b), _mm256_add_ps(a, b), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}

inline V maskload(const float* p, int64_t k) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_maskload_ps(p, _mm256_loadu_si256((const __m256i*)(m + 8 - k)));
}
inline void maskstore(float* p, int64_t k, V v) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  _mm256_maskstore_ps(p, _mm256_loadu_si256((const __m256i*)(m + 8 - k)), v);
}

// Binary ops are exact IEEE operations, so masked tails give the same bits as full vectors.
template <V (*F)(V, V)>
void bin(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    V r0 = F(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    V r1 = F(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    V r2 = F(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    V r3 = F(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    _mm256_storeu_ps(y + i, r0);
    _mm256_storeu_ps(y + i + 8, r1);
    _mm256_storeu_ps(y + i + 16, r2);
    _mm256_storeu_ps(y + i + 24, r3);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) maskstore(y + i, n - i, F(maskload(a + i, n - i), maskload(b + i, n - i)));
}
template <V (*F)(V, V), bool Rev>
void bin_s(const float* a, float s, float* y, int64_t n) {
  const V sv = set1(s);
  auto f = [&](V v) { return Rev ? F(sv, v) : F(v, sv); };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    V r0 = f(_mm256_loadu_ps(a + i)), r1 = f(_mm256_loadu_ps(a + i + 8));
    V r2 = f(_mm256_loadu_ps(a + i + 16)), r3 = f(_mm256_loadu_ps(a + i + 24));
    _mm256_storeu_ps(y + i, r0);
    _mm256_storeu_ps(y + i + 8, r1);
    _mm256_storeu_ps(y + i + 16, r2);
    _mm256_storeu_ps(y + i + 24, r3);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i)));
  if (i < n) maskstore(y + i, n - i, f(maskload(a + i, n - i)));
}

inline float hsum(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Pairwise sum: leaves of <= 512 values summed by 4 x 8 lanes, halves split at multiples of 32.
float sum_leaf(const float* x, int64_t n) {
  V a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  if (i < n) a1 = _mm256_add_ps(a1, maskload(x + i, n - i));
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}
float sum_a(const float* x, int64_t n) {
  if (n <= 512) return sum_leaf(x, n);
  int64_t h = (n / 2 + 31) & ~int64_t(31);
  return sum_a(x, h) + sum_a(x + h, n - h);
}

template <bool IsMax>
float extreme_a(const float* x, int64_t n) {
  V best = _mm256_set1_ps(x[0]);
  V nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V v = _mm256_loadu_ps(x + i);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    best = IsMax ? _mm256_max_ps(best, v) : _mm256_min_ps(best, v);
  }
  alignas(32) float b[8];
  _mm256_store_ps(b, best);
  float r = b[0];
  for (int k = 1; k < 8; ++k) r = IsMax ? (b[k] > r ? b[k] : r) : (b[k] < r ? b[k] : r);
  bool has_nan = _mm256_movemask_ps(nan) != 0;
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
  V acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V e0 = exp_v(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    V e1 = exp_v(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for (; i + 8 <= n; i += 8) {
    V e = exp_v(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(y + i, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  if (i < n) {
    V e = exp_v(_mm256_sub_ps(maskload(x + i, n - i), mv));
    alignas(32) static const int32_t mk[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    e = _mm256_and_ps(e, _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i*)(mk + 8 - (n - i)))));
    maskstore(y + i, n - i, e);
    acc1 = _mm256_add_ps(acc1, e);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

}  // namespace

const Kernels& avx2_kernels() {
  static const Kernels k = {
      "avx2",
      {map<exp_v>, map<log_v>, map<tanh_v>, map<sigmoid_v>, map<relu_v>, map<silu_v>, map<gelu_tanh_v>,
       map<softplus_v>, map<mish_v>, map<erf_v>, map<gelu_v>},
      {map2<gelu_grad_v>, map2<gelu_tanh_grad_v>},
      {bin<add_v>, bin<sub_v>, bin<mul_v>, bin<div_v>, bin<max_v>, bin<min_v>},
      {bin_s<add_v, false>, bin_s<sub_v, false>, bin_s<mul_v, false>, bin_s<div_v, false>,
       bin_s<max_v, false>, bin_s<min_v, false>},
      {bin_s<add_v, true>, bin_s<sub_v, true>, bin_s<mul_v, true>, bin_s<div_v, true>, bin_s<max_v, true>,
       bin_s<min_v, true>},
      sum_a,
      extreme_a<true>,
      extreme_a<false>,
      exp_shift_sum_a,
  };
  return k;
}

}  // namespace tocha::cpu::vec
