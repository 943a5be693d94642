// vecmath.cpp -- portable (generic) float32 kernels of vecmath.h and the run-time choice between them and
// the AVX2 set. Plain C++ loops, no intrinsics and no -m flags (builds on any target); the element
// functions below are branch-free so compilers can auto-vectorise them (SSE2 on x86-64, NEON on aarch64).
// The algorithms and coefficients are the ones in vecmath_consts.h, shared with vecmath_avx2.cpp.
#include "vecmath.h"

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "gemm.h"
#include "vecmath_consts.h"

namespace tocha::cpu::vec {
namespace {

inline float as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t as_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float exp_s(float x) {
  using namespace c;
  x = x < kExpLo ? kExpLo : x;
  x = x > kExpHi ? kExpHi : x;               // NaN passes both comparisons unchanged
  float n = std::nearbyint(x * kLog2e);
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kExpP0;
  p = p * r + kExpP1; p = p * r + kExpP2; p = p * r + kExpP3; p = p * r + kExpP4; p = p * r + kExpP5;
  float y = p * (r * r) + r + 1.0f;
  if (n != n) return x;                      // NaN
  int ni = (int)n, n1 = ni >> 1, n2 = ni - n1;
  return y * as_float((uint32_t)(n1 + 127) << 23) * as_float((uint32_t)(n2 + 127) << 23);
}

inline float log_s(float x0) {
  using namespace c;
  float x = x0;
  float eadj = 0.0f;
  if (x < kFltMin) { x *= 8388608.0f; eadj = -23.0f; }   // denormals (and <= 0, fixed up below)
  uint32_t b = as_bits(x);
  float e = (float)((int)((b >> 23) & 0xff) - 126) + eadj;
  float m = as_float((b & 0x807fffffu) | 0x3f000000u);     // [0.5, 1)
  if (m < kSqrtHalf) { e -= 1.0f; m = m + m - 1.0f; } else { m = m - 1.0f; }
  float z = m * m;
  float y = kLogP0;
  y = y * m + kLogP1; y = y * m + kLogP2; y = y * m + kLogP3; y = y * m + kLogP4;
  y = y * m + kLogP5; y = y * m + kLogP6; y = y * m + kLogP7; y = y * m + kLogP8;
  y = y * m * z;
  y = y + e * kLn2Lo;
  y = y - 0.5f * z;
  float r = m + y;
  r = r + e * kLn2Hi;
  if (x0 != x0 || x0 < 0.0f) return std::numeric_limits<float>::quiet_NaN();
  if (x0 == 0.0f) return -std::numeric_limits<float>::infinity();
  if (x0 == std::numeric_limits<float>::infinity()) return x0;
  return r;
}

inline float tanh_s(float x) {
  using namespace c;
  float ax = std::fabs(x);
  if (ax < kTanhSmall) {
    float z = x * x;
    float p = kTanhP0;
    p = p * z + kTanhP1; p = p * z + kTanhP2; p = p * z + kTanhP3; p = p * z + kTanhP4;
    return std::copysign(ax + ax * z * p, x);  // tanh(-0) = -0
  }
  float e = exp_s(ax + ax);
  float r = 1.0f - 2.0f / (e + 1.0f);
  return std::copysign(r, x);
}

inline float sigmoid_s(float x) {
  float e = exp_s(-std::fabs(x));
  return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

inline float softplus_s(float x) {
  float u = exp_s(-std::fabs(x));
  float w = 1.0f + u;
  float l1p = (w == 1.0f) ? u : log_s(w) * u / (w - 1.0f);
  float r = (x > 0.0f ? x : 0.0f) + l1p;
  return x > 20.0f ? x : r;                  // PyTorch's threshold=20 (NaN falls through to r = NaN)
}

template <float (*F)(float)>
void map(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F(x[i]);
}

inline float relu_s(float x) { return x > 0.0f ? x : (x != x ? x : 0.0f); }
inline float silu_s(float x) { return x * sigmoid_s(x); }
inline float gelu_tanh_s(float x) {
  using namespace c;
  return x * sigmoid_s(2.0f * kSqrt2OverPi * (x + kGeluC * x * x * x));
}
inline float mish_s(float x) { return x * tanh_s(softplus_s(x)); }

// erf / exact GELU: the algorithm of vecmath_avx2.cpp; where that one relies on an FMA's single rounding
// (a^2 = h + l, the leading z S0 term) this portable path uses double instead.
inline float erf_small_s(float z) {
  using namespace c;
  float s = z * z;
  float q = kErfS6;
  q = q * s + kErfS5; q = q * s + kErfS4; q = q * s + kErfS3; q = q * s + kErfS2; q = q * s + kErfS1;
  return (float)((double)z * (double)kErfS0Hi + (double)(z * (s * q + kErfS0Lo)));  // one rounding, as FMA
}
inline float erfcx_s(float z) {
  using namespace c;
  float t = 1.0f / (z * 0.5f + 1.0f);
  float r = kErfcR9;
  r = r * t + kErfcR8; r = r * t + kErfcR7; r = r * t + kErfcR6; r = r * t + kErfcR5; r = r * t + kErfcR4;
  r = r * t + kErfcR3; r = r * t + kErfcR2; r = r * t + kErfcR1; r = r * t + kErfcR0;
  return r * t;
}
inline float exp_neg_sq_s(float a, float k) {
  double a2 = (double)a * (double)a;      // exact
  float h = (float)a2, l = (float)(a2 - (double)h);
  float e = exp_s(-k * h);
  return e - e * (k * l);
}
inline float fmin_keep_nan(float cap, float v) { return v < cap ? v : (v != v ? v : cap); }
inline float erf_s(float x) {
  using namespace c;
  float a = fmin_keep_nan(kErfCap, std::fabs(x));
  float big = 1.0f - exp_neg_sq_s(a, 1.0f) * erfcx_s(a > 1.0f ? a : 1.0f);
  float small = erf_small_s(a < 1.0f ? a : 1.0f);
  float r = a < 1.0f ? small : big;
  return r != r ? r : std::copysign(r, x);
}
inline float phi_s(float x, float& e) {
  using namespace c;
  float a = fmin_keep_nan(kGeluCap, std::fabs(x));
  e = exp_neg_sq_s(a, 0.5f);
  float q = (e * 0.5f) * erfcx_s(a * kSqrt1_2);
  return x < 0.0f ? q : 1.0f - q;
}
inline float gelu_s(float x) { float e; return x * phi_s(x, e); }
inline float gelu_grad_s(float g, float x) {
  float e;
  float p = phi_s(x, e);
  return g * ((x * e) * c::kInvSqrt2Pi + p);
}
inline float gelu_tanh_grad_s(float g, float x0) {
  using namespace c;
  float x = x0 > 20.0f ? 20.0f : (x0 < -20.0f ? -20.0f : x0);   // as the AVX2 path (NaN passes)
  float x2 = x * x;
  float u = 2.0f * kSqrt2OverPi * ((kGeluC * x2) * x + x);
  float du = 2.0f * kSqrt2OverPi * ((3.0f * kGeluC) * x2 + 1.0f);
  float e = exp_s(-std::fabs(u));
  float r = 1.0f / (1.0f + e);
  float s = (u >= 0.0f ? 1.0f : e) * r;
  return g * ((x0 * ((e * r) * r)) * du + s);
}

inline float add_s(float a, float b) { return a + b; }
inline float sub_s(float a, float b) { return a - b; }
inline float mul_s(float a, float b) { return a * b; }
inline float div_s(float a, float b) { return a / b; }
inline float max_s(float a, float b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
inline float min_s(float a, float b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }

template <float (*F)(float, float)>
void bin(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F(a[i], b[i]);
}
template <float (*F)(float, float)>
void bin_s(const float* a, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F(a[i], s);
}
template <float (*F)(float, float)>
void bin_rs(const float* a, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F(s, a[i]);
}

// Pairwise sum: blocks of <= 128 with 8 interleaved accumulators, halves split at multiples of 8.
float sum_g(const float* x, int64_t n) {
  if (n <= 128) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += x[i];
    return s;
  }
  int64_t h = (n / 2 + 7) & ~int64_t(7);
  return sum_g(x, h) + sum_g(x + h, n - h);
}

template <bool IsMax>
float extreme_g(const float* x, int64_t n) {
  float best = x[0];
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    nan |= (v != v);
    best = IsMax ? (v > best ? v : best) : (v < best ? v : best);
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : best;
}

float exp_shift_sum_g(const float* x, float m, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_s(x[i] - m);
  return sum_g(y, n);
}

}  // namespace

const Kernels& generic_kernels() {
  static const Kernels k = {
      "generic",
      {map<exp_s>, map<log_s>, map<tanh_s>, map<sigmoid_s>, map<relu_s>, map<silu_s>, map<gelu_tanh_s>,
       map<softplus_s>, map<mish_s>, map<erf_s>, map<gelu_s>},
      {bin<gelu_grad_s>, bin<gelu_tanh_grad_s>},
      {bin<add_s>, bin<sub_s>, bin<mul_s>, bin<div_s>, bin<max_s>, bin<min_s>},
      {bin_s<add_s>, bin_s<sub_s>, bin_s<mul_s>, bin_s<div_s>, bin_s<max_s>, bin_s<min_s>},
      {bin_rs<add_s>, bin_rs<sub_s>, bin_rs<mul_s>, bin_rs<div_s>, bin_rs<max_s>, bin_rs<min_s>},
      sum_g,
      extreme_g<true>,
      extreme_g<false>,
      exp_shift_sum_g,
  };
  return k;
}

const Kernels& kernels() {
  // One CPU-feature decision for the library: the GEMM's (honours TOCHA_CPU_ISA=generic).
  static const Kernels* k = [] {
#if defined(__x86_64__)
    if (cpu_has_avx512()) {
      // Two-input add/sub/mul/div stream two inputs and an output, memory-bound: the 256-bit build runs them
      // faster on Zen 4 (1 thread, (4096,1024) + (1024,) 1.27-1.36 -> 0.92-1.07 ms, (4000,1000) + (1000,)
      // 1.28-1.35 -> 0.84-0.97, same shape 1.18-1.25 -> 0.92-1.12; L2-sized operands equal; maximum/minimum
      // were slower in 256 bits, 1.05-1.08 -> 1.12-1.21), and exact IEEE operations give the same bits either
      // way. The sum too (its bits are the 256-bit build's then; sums always depended on the width): memory-
      // bound rows and long sums stream faster in 256 bits (1 thread, medians of 31: global average pooling
      // (64,64,24,24) 0.147 -> 0.13 ms, 0.98-1.03x -> 1.07-1.13x PyTorch; sum of 4M floats 215 -> 192-197 us;
      // (16384, 576).sum(-1) 777-798 -> 722-754 us; L2-resident (256, 576).sum(-1) 7.8 -> 8.5 us, L1 equal).
      // Everything else keeps the AVX-512 build.
      static Kernels k512 = avx512_kernels();
      const Kernels& k256 = avx2_kernels();
      for (int op : {kAdd, kSub, kMul, kDiv}) k512.binary[op] = k256.binary[op];
      k512.sum = k256.sum;
      return static_cast<const Kernels*>(&k512);
    }
    if (cpu_has_avx2()) return &avx2_kernels();
#endif
    return &generic_kernels();
  }();
  return *k;
}

}  // namespace tocha::cpu::vec
