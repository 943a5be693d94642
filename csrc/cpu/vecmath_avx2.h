// vecmath_avx2.h -- the AVX2+FMA float32 vector math functions (one __m256 in, one out) shared by the
// -mavx2 -mfma translation units: vecmath_avx2.cpp (elementwise kernels) and gemm_avx2.cpp (the fused
// GELU epilogue), so each function and its accuracy claim live in one place (see vecmath.h for the
// algorithms and measured ulp errors). Include ONLY from files compiled with -mavx2 -mfma.
// The functions sit in an unnamed namespace on purpose: every including file gets its own internal copy,
// so the linker can never merge an AVX2 body into a translation unit built for the baseline ISA.
#pragma once
#include <immintrin.h>

#include "vecmath_consts.h"

namespace tocha::cpu::vec {
namespace {

using V = __m256;

inline V set1(float f) { return _mm256_set1_ps(f); }
inline V vabs(V x) { return _mm256_andnot_ps(set1(-0.0f), x); }

inline V exp_v(V x) {
  using namespace c;
  x = _mm256_max_ps(set1(kExpLo), x);  // operand order keeps NaN (maxps returns the 2nd operand on NaN)
  x = _mm256_min_ps(set1(kExpHi), x);
  V n = _mm256_round_ps(_mm256_mul_ps(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm256_fnmadd_ps(n, set1(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, set1(kLn2Lo), r);
  V p = set1(kExpP0);
  p = _mm256_fmadd_ps(p, r, set1(kExpP1));
  p = _mm256_fmadd_ps(p, r, set1(kExpP2));
  p = _mm256_fmadd_ps(p, r, set1(kExpP3));
  p = _mm256_fmadd_ps(p, r, set1(kExpP4));
  p = _mm256_fmadd_ps(p, r, set1(kExpP5));
  V y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, set1(1.0f)));
  // 2^n as 2^n1 * 2^n2 (n1 = n >> 1): each factor is a normal float for n in [-150, 129]
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

// log of positive, finite, normal x, plus eadj added to the exponent (denormal inputs arrive pre-scaled
// by 2^23 with eadj = -23). x = m 2^e with m in [sqrt(1/2), sqrt(2)) taken straight from the bits
// (subtracting sqrt(1/2)'s bit pattern makes the exponent field step at m = sqrt(1/2)): the same f = m - 1
// and e as Cephes' compare-and-adjust form, in 4 integer ops.
inline V log_core(V x, __m256i eadj) {
  using namespace c;
  const __m256i b = _mm256_castps_si256(x);
  const __m256i ei = _mm256_srai_epi32(_mm256_sub_epi32(b, _mm256_set1_epi32(0x3f3504f3)), 23);
  const V m = _mm256_castsi256_ps(_mm256_sub_epi32(b, _mm256_slli_epi32(ei, 23)));
  const V e = _mm256_cvtepi32_ps(_mm256_add_epi32(ei, eadj));
  const V f = _mm256_sub_ps(m, set1(1.0f));  // exact (Sterbenz)
  const V z = _mm256_mul_ps(f, f);
  V y = set1(kLogP0);
  y = _mm256_fmadd_ps(y, f, set1(kLogP1));
  y = _mm256_fmadd_ps(y, f, set1(kLogP2));
  y = _mm256_fmadd_ps(y, f, set1(kLogP3));
  y = _mm256_fmadd_ps(y, f, set1(kLogP4));
  y = _mm256_fmadd_ps(y, f, set1(kLogP5));
  y = _mm256_fmadd_ps(y, f, set1(kLogP6));
  y = _mm256_fmadd_ps(y, f, set1(kLogP7));
  y = _mm256_fmadd_ps(y, f, set1(kLogP8));
  y = _mm256_mul_ps(_mm256_mul_ps(y, f), z);
  y = _mm256_fmadd_ps(e, set1(kLn2Lo), y);
  y = _mm256_fnmadd_ps(set1(0.5f), z, y);
  const V r = _mm256_add_ps(f, y);
  return _mm256_fmadd_ps(e, set1(kLn2Hi), r);
}

// Lanes with x < FLT_MIN (denormals, 0, negatives), +inf or NaN take a rarely-run branch; every other lane
// gets the same log_core arithmetic on either path, so a result never depends on its neighbours.
inline V log_v(V x0) {
  using namespace c;
  const V ok = _mm256_and_ps(_mm256_cmp_ps(x0, set1(kFltMin), _CMP_GE_OQ),
                             _mm256_cmp_ps(x0, set1(__builtin_inff()), _CMP_LT_OQ));
  if (__builtin_expect(_mm256_movemask_ps(ok) == 0xff, 1)) return log_core(x0, _mm256_setzero_si256());
  const V small = _mm256_cmp_ps(x0, set1(kFltMin), _CMP_LT_OQ);
  const V x = _mm256_blendv_ps(x0, _mm256_mul_ps(x0, set1(8388608.0f)), small);  // denormals: scale by 2^23
  const __m256i eadj = _mm256_and_si256(_mm256_castps_si256(small), _mm256_set1_epi32(-23));
  V r = log_core(x, eadj);
  // specials: NaN or x < 0 -> NaN, 0 -> -inf, +inf -> +inf
  const V inf = set1(__builtin_inff());
  r = _mm256_blendv_ps(r, inf, _mm256_cmp_ps(x0, inf, _CMP_EQ_OQ));
  r = _mm256_blendv_ps(r, set1(-__builtin_inff()), _mm256_cmp_ps(x0, _mm256_setzero_ps(), _CMP_EQ_OQ));
  V bad = _mm256_or_ps(_mm256_cmp_ps(x0, _mm256_setzero_ps(), _CMP_LT_OQ), _mm256_cmp_ps(x0, x0, _CMP_UNORD_Q));
  return _mm256_blendv_ps(r, set1(__builtin_nanf("")), bad);
}

// tanh(|x|) for |x| >= kTanhSmall as 1 - 2 / (e^{2|x|} + 1). 2|x| is capped at 19 (tanh rounds to 1 in
// float32 from |x| = 9.01 on), so e^{2|x|} <= e^19 needs no overflow handling and a single 2^n scale
// (n <= 28): this is exp_v's reduction and polynomial without its range guards. NaN propagates.
inline V tanh_big(V ax) {
  using namespace c;
  const V magic = set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer, kept in the low bits
  const V x = _mm256_min_ps(set1(19.0f), _mm256_add_ps(ax, ax));  // min returns the NaN operand (2nd)
  const V t = _mm256_fmadd_ps(x, set1(kLog2e), magic);
  const V n = _mm256_sub_ps(t, magic);
  V r = _mm256_fnmadd_ps(n, set1(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, set1(kLn2Lo), r);
  V p = set1(kExpP0);
  p = _mm256_fmadd_ps(p, r, set1(kExpP1));
  p = _mm256_fmadd_ps(p, r, set1(kExpP2));
  p = _mm256_fmadd_ps(p, r, set1(kExpP3));
  p = _mm256_fmadd_ps(p, r, set1(kExpP4));
  p = _mm256_fmadd_ps(p, r, set1(kExpP5));
  V y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, set1(1.0f)));
  // 2^n from t's low bits (t = 1.5 * 2^23 + n): (bits + 127) << 23 keeps only n + 127 in the exponent field
  const V s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127)), 23));
  const V e = _mm256_mul_ps(y, s);
  return _mm256_sub_ps(set1(1.0f), _mm256_div_ps(set1(2.0f), _mm256_add_ps(e, set1(1.0f))));
}

inline V tanh_v(V x) {
  using namespace c;
  const V ax = vabs(x);
  const V z = _mm256_mul_ps(x, x);
  V p = set1(kTanhP0);
  p = _mm256_fmadd_ps(p, z, set1(kTanhP1));
  p = _mm256_fmadd_ps(p, z, set1(kTanhP2));
  p = _mm256_fmadd_ps(p, z, set1(kTanhP3));
  p = _mm256_fmadd_ps(p, z, set1(kTanhP4));
  const V small = _mm256_fmadd_ps(_mm256_mul_ps(ax, z), p, ax);
  const V r = _mm256_blendv_ps(tanh_big(ax), small, _mm256_cmp_ps(ax, set1(kTanhSmall), _CMP_LT_OQ));
  return _mm256_or_ps(r, _mm256_and_ps(x, set1(-0.0f)));  // tanh(|x|) >= 0: copy x's sign (-0 stays -0)
}

inline V sigmoid_v(V x) {
  V e = exp_v(_mm256_sub_ps(_mm256_setzero_ps(), vabs(x)));
  V num = _mm256_blendv_ps(e, set1(1.0f), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
  return _mm256_div_ps(num, _mm256_add_ps(set1(1.0f), e));
}

inline V softplus_v(V x) {
  V u = exp_v(_mm256_sub_ps(_mm256_setzero_ps(), vabs(x)));
  V w = _mm256_add_ps(set1(1.0f), u);
  V wm1 = _mm256_sub_ps(w, set1(1.0f));
  V l1p = _mm256_div_ps(_mm256_mul_ps(log_v(w), u), wm1);
  l1p = _mm256_blendv_ps(l1p, u, _mm256_cmp_ps(wm1, _mm256_setzero_ps(), _CMP_EQ_OQ));
  V r = _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), l1p);
  r = _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, set1(20.0f), _CMP_GT_OQ));
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

inline V relu_v(V x) {
  V r = _mm256_max_ps(x, _mm256_setzero_ps());  // NaN -> 0 here, restored below; -0 -> +0
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
inline V silu_v(V x) { return _mm256_mul_ps(x, sigmoid_v(x)); }
inline V gelu_tanh_v(V x) {
  using namespace c;
  V x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  V u = _mm256_mul_ps(set1(2.0f * kSqrt2OverPi), _mm256_fmadd_ps(set1(kGeluC), x3, x));
  return _mm256_mul_ps(x, sigmoid_v(u));
}
inline V mish_v(V x) { return _mm256_mul_ps(x, tanh_v(softplus_v(x))); }

// ---- erf and exact GELU (algorithm in vecmath.h) ----
// erf(z) for 0 <= z <= 1: z (S0 + s Q(s)); the leading term z S0hi is rounded once inside the FMA.
inline V erf_small_v(V z) {
  using namespace c;
  V s = _mm256_mul_ps(z, z);
  V q = set1(kErfS6);
  q = _mm256_fmadd_ps(q, s, set1(kErfS5));
  q = _mm256_fmadd_ps(q, s, set1(kErfS4));
  q = _mm256_fmadd_ps(q, s, set1(kErfS3));
  q = _mm256_fmadd_ps(q, s, set1(kErfS2));
  q = _mm256_fmadd_ps(q, s, set1(kErfS1));
  V inner = _mm256_fmadd_ps(s, q, set1(kErfS0Lo));
  return _mm256_fmadd_ps(z, set1(kErfS0Hi), _mm256_mul_ps(z, inner));
}
// erfcx(z) = erfc(z) e^{z^2} for 0 <= z <= 12: t R(t), t = 1 / (1 + z/2).
inline V erfcx_v(V z) {
  using namespace c;
  V t = _mm256_div_ps(set1(1.0f), _mm256_fmadd_ps(z, set1(0.5f), set1(1.0f)));
  V r = set1(kErfcR9);
  r = _mm256_fmadd_ps(r, t, set1(kErfcR8));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR7));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR6));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR5));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR4));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR3));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR2));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR1));
  r = _mm256_fmadd_ps(r, t, set1(kErfcR0));
  return _mm256_mul_ps(r, t);
}
// exp(-k a^2) for k = 1 or 1/2: a^2 = h + l exactly (FMA residual), e^{-k(h+l)} = e^{-kh} (1 - kl), so the
// rounding of a^2 (relative 2^-24, i.e. up to 2^-24 a^2 in the exponent) does not reach the result.
inline V exp_neg_sq_v(V a, float k) {
  V h = _mm256_mul_ps(a, a);
  V l = _mm256_fmsub_ps(a, a, h);
  V e = exp_v(_mm256_mul_ps(h, set1(-k)));
  return _mm256_fnmadd_ps(e, _mm256_mul_ps(l, set1(k)), e);
}
inline V erf_v(V x) {
  using namespace c;
  V a = _mm256_min_ps(set1(kErfCap), vabs(x));  // NaN stays NaN (minps returns the 2nd operand)
  V big = _mm256_fnmadd_ps(exp_neg_sq_v(a, 1.0f), erfcx_v(_mm256_max_ps(a, set1(1.0f))), set1(1.0f));
  V small = erf_small_v(_mm256_min_ps(a, set1(1.0f)));
  V r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, set1(1.0f), _CMP_LT_OQ));
  return _mm256_or_ps(r, _mm256_and_ps(x, set1(-0.0f)));  // erf is odd; r >= 0 (NaN keeps its bits)
}
// Phi(x) = (1 + erf(x / sqrt 2)) / 2 and e = exp(-x^2 / 2). With z = |x| / sqrt 2 and q = erfc(z) / 2 =
// e erfcx(z) / 2 <= 1/2: Phi = q (x < 0) or 1 - q >= 1/2 (x >= 0) on the whole line -- neither form cancels,
// so no small-|x| branch is needed.
inline V phi_v(V x, V& e) {
  using namespace c;
  V a = _mm256_min_ps(set1(kGeluCap), vabs(x));  // NaN stays NaN (minps returns the 2nd operand)
  e = exp_neg_sq_v(a, 0.5f);
  V q = _mm256_mul_ps(_mm256_mul_ps(e, set1(0.5f)), erfcx_v(_mm256_mul_ps(a, set1(kSqrt1_2))));
  return _mm256_blendv_ps(_mm256_sub_ps(set1(1.0f), q), q, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}
inline V gelu_v(V x) {
  V e;
  return _mm256_mul_ps(x, phi_v(x, e));
}
// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = e / sqrt(2 pi): one exp for both terms.
inline V gelu_grad_v(V g, V x) {
  V e;
  V p = phi_v(x, e);
  return _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(x, e), set1(c::kInvSqrt2Pi), p));
}
// d/dx x sigmoid(u), u = 2 sqrt(2/pi) (x + 0.044715 x^3): s + x s (1 - s) u', with s (1 - s) = e / (1 + e)^2,
// e = exp(-|u|) (equal to PyTorch's 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2), t = tanh(u / 2)).
inline V gelu_tanh_grad_v(V g, V x0) {
  using namespace c;
  // |x| <= 20 keeps x^3 finite (u' would be inf and x s (1 - s) u' = 0 * inf); e = 0 from |x| ~ 10 on.
  // The final product uses x0, so +-inf still gives NaN as PyTorch (and NaN stays NaN: 2nd operands).
  V x = _mm256_min_ps(set1(20.0f), _mm256_max_ps(set1(-20.0f), x0));
  V x2 = _mm256_mul_ps(x, x);
  V u = _mm256_mul_ps(set1(2.0f * kSqrt2OverPi), _mm256_fmadd_ps(_mm256_mul_ps(set1(kGeluC), x2), x, x));
  V du = _mm256_mul_ps(set1(2.0f * kSqrt2OverPi), _mm256_fmadd_ps(set1(3.0f * kGeluC), x2, set1(1.0f)));
  V e = exp_v(_mm256_sub_ps(_mm256_setzero_ps(), vabs(u)));
  V r = _mm256_div_ps(set1(1.0f), _mm256_add_ps(set1(1.0f), e));
  V num = _mm256_blendv_ps(e, set1(1.0f), _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_GE_OQ));
  V s = _mm256_mul_ps(num, r);
  V s1s = _mm256_mul_ps(_mm256_mul_ps(e, r), r);
  return _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(x0, s1s), du, s));
}

}  // namespace
}  // namespace tocha::cpu::vec
