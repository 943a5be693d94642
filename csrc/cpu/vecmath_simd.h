// vecmath_simd.h -- the float32 vector math functions (one vector in, one out), written once over a thin
// ISA layer and compiled per target: AVX2+FMA (V = __m256: vecmath_avx2.cpp, and gemm_avx2.cpp for the fused
// GELU epilogue) and AVX-512 (V = __m512, with TOCHA_VEC_AVX512 defined: vecmath_avx512.cpp). Each function
// and its accuracy claim live in one place (see vecmath.h for the algorithms and measured ulp errors).
// Every lane goes through the same IEEE operations in the same order on both widths (explicit FMAs, no
// reassociation), so an element's result is bitwise the same on AVX2 and AVX-512 (tests check this).
// Include ONLY from files compiled with the matching flags. The functions sit in an unnamed namespace on
// purpose: every including file gets its own internal copy, so the linker can never merge a SIMD body into
// a translation unit built for the baseline ISA.
#pragma once
#include <immintrin.h>

#include "vecmath_consts.h"

namespace tocha::cpu::vec {
namespace {

// The ISA layer. What differs between the widths is spelled out per ISA; the operations that only change
// their intrinsic prefix (_mm512_ / _mm256_) are written once below through TOCHA_MM.
#ifdef TOCHA_VEC_AVX512
#define TOCHA_MM(op) _mm512_##op
using V = __m512;     // 16 float lanes
using VI = __m512i;
using M = __mmask16;  // lane masks live in mask registers
constexpr int kW = 16;
inline V rnd(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline VI izero() { return _mm512_setzero_si512(); }
inline V as_f(VI a) { return _mm512_castsi512_ps(a); }
inline VI as_i(V a) { return _mm512_castps_si512(a); }
template <int P> inline M cmp(V a, V b) { return _mm512_cmp_ps_mask(a, b, P); }
inline V sel(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }  // b where m, else a
inline VI iselz(M m, VI a) { return _mm512_maskz_mov_epi32(m, a); }    // a where m, else 0
inline M mand(M a, M b) { return a & b; }
inline M mor(M a, M b) { return a | b; }
inline bool all(M m) { return m == 0xffff; }
#else
#define TOCHA_MM(op) _mm256_##op
using V = __m256;     // 8 float lanes
using VI = __m256i;
using M = __m256;     // lane masks are all-ones / all-zeros vectors
constexpr int kW = 8;
inline V rnd(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline VI izero() { return _mm256_setzero_si256(); }
inline V as_f(VI a) { return _mm256_castsi256_ps(a); }
inline VI as_i(V a) { return _mm256_castps_si256(a); }
template <int P> inline M cmp(V a, V b) { return _mm256_cmp_ps(a, b, P); }
inline V sel(M m, V a, V b) { return _mm256_blendv_ps(a, b, m); }  // b where m, else a
inline VI iselz(M m, VI a) { return _mm256_and_si256(_mm256_castps_si256(m), a); }  // a where m, else 0
inline M mand(M a, M b) { return _mm256_and_ps(a, b); }
inline M mor(M a, M b) { return _mm256_or_ps(a, b); }
inline bool all(M m) { return _mm256_movemask_ps(m) == 0xff; }
#endif
inline V set1(float f) { return TOCHA_MM(set1_ps)(f); }
inline V zero() { return TOCHA_MM(setzero_ps)(); }
inline V add(V a, V b) { return TOCHA_MM(add_ps)(a, b); }
inline V sub(V a, V b) { return TOCHA_MM(sub_ps)(a, b); }
inline V mul(V a, V b) { return TOCHA_MM(mul_ps)(a, b); }
inline V div(V a, V b) { return TOCHA_MM(div_ps)(a, b); }
inline V fma(V a, V b, V c) { return TOCHA_MM(fmadd_ps)(a, b, c); }
inline V fnma(V a, V b, V c) { return TOCHA_MM(fnmadd_ps)(a, b, c); }
inline V fms(V a, V b, V c) { return TOCHA_MM(fmsub_ps)(a, b, c); }
inline V vmin(V a, V b) { return TOCHA_MM(min_ps)(a, b); }  // x86 rule: the 2nd operand when either is NaN
inline V vmax(V a, V b) { return TOCHA_MM(max_ps)(a, b); }
inline V band(V a, V b) { return TOCHA_MM(and_ps)(a, b); }
inline V bor(V a, V b) { return TOCHA_MM(or_ps)(a, b); }
inline V bandnot(V a, V b) { return TOCHA_MM(andnot_ps)(a, b); }
inline VI iset1(int v) { return TOCHA_MM(set1_epi32)(v); }
inline VI iadd(VI a, VI b) { return TOCHA_MM(add_epi32)(a, b); }
inline VI isub(VI a, VI b) { return TOCHA_MM(sub_epi32)(a, b); }
template <int K> inline VI isll_(VI a) { return TOCHA_MM(slli_epi32)(a, K); }
template <int K> inline VI isra_(VI a) { return TOCHA_MM(srai_epi32)(a, K); }
inline V cvt_i2f(VI a) { return TOCHA_MM(cvtepi32_ps)(a); }
inline VI cvt_f2i(V a) { return TOCHA_MM(cvtps_epi32)(a); }
#undef TOCHA_MM
#define isll(a, k) isll_<k>(a)
#define isra(a, k) isra_<k>(a)

inline V vabs(V x) { return bandnot(set1(-0.0f), x); }

// e^(x - n ln2) for integer-valued n with |x - n ln2| <= ln2/2: the reduction (ln2 in hi + lo parts) and
// Cephes' degree-5 polynomial, 1 + r + r^2 P(r). Shared by exp_v and tanh_big, which differ in how they
// round n and apply 2^n.
inline V exp_reduced(V x, V n) {
  using namespace c;
  V r = fnma(n, set1(kLn2Hi), x);
  r = fnma(n, set1(kLn2Lo), r);
  V p = set1(kExpP0);
  p = fma(p, r, set1(kExpP1));
  p = fma(p, r, set1(kExpP2));
  p = fma(p, r, set1(kExpP3));
  p = fma(p, r, set1(kExpP4));
  p = fma(p, r, set1(kExpP5));
  return fma(p, mul(r, r), add(r, set1(1.0f)));
}

inline V exp_v(V x) {
  using namespace c;
  x = vmax(set1(kExpLo), x);  // operand order keeps NaN (maxps returns the 2nd operand on NaN)
  x = vmin(set1(kExpHi), x);
  V n = rnd(mul(x, set1(kLog2e)));
  V y = exp_reduced(x, n);
  // 2^n as 2^n1 * 2^n2 (n1 = n >> 1): each factor is a normal float for n in [-150, 129]
  VI ni = cvt_f2i(n);
  VI n1 = isra(ni, 1);
  VI n2 = isub(ni, n1);
  const VI bias = iset1(127);
  V s1 = as_f(isll(iadd(n1, bias), 23));
  V s2 = as_f(isll(iadd(n2, bias), 23));
  y = mul(mul(y, s1), s2);
  return sel(cmp<_CMP_UNORD_Q>(x, x), y, x);  // NaN in, NaN out
}

// log of positive, finite, normal x, plus eadj added to the exponent (denormal inputs arrive pre-scaled
// by 2^23 with eadj = -23). x = m 2^e with m in [sqrt(1/2), sqrt(2)) taken straight from the bits
// (subtracting sqrt(1/2)'s bit pattern makes the exponent field step at m = sqrt(1/2)): the same f = m - 1
// and e as Cephes' compare-and-adjust form, in 4 integer ops.
inline V log_core(V x, VI eadj) {
  using namespace c;
  const VI b = as_i(x);
  const VI ei = isra(isub(b, iset1(0x3f3504f3)), 23);
  const V m = as_f(isub(b, isll(ei, 23)));
  const V e = cvt_i2f(iadd(ei, eadj));
  const V f = sub(m, set1(1.0f));  // exact (Sterbenz)
  const V z = mul(f, f);
  V y = set1(kLogP0);
  y = fma(y, f, set1(kLogP1));
  y = fma(y, f, set1(kLogP2));
  y = fma(y, f, set1(kLogP3));
  y = fma(y, f, set1(kLogP4));
  y = fma(y, f, set1(kLogP5));
  y = fma(y, f, set1(kLogP6));
  y = fma(y, f, set1(kLogP7));
  y = fma(y, f, set1(kLogP8));
  y = mul(mul(y, f), z);
  y = fma(e, set1(kLn2Lo), y);
  y = fnma(set1(0.5f), z, y);
  const V r = add(f, y);
  return fma(e, set1(kLn2Hi), r);
}

// Lanes with x < FLT_MIN (denormals, 0, negatives), +inf or NaN take a rarely-run branch; every other lane
// gets the same log_core arithmetic on either path, so a result never depends on its neighbours.
inline V log_v(V x0) {
  using namespace c;
  const M ok = mand(cmp<_CMP_GE_OQ>(x0, set1(kFltMin)),
                             cmp<_CMP_LT_OQ>(x0, set1(__builtin_inff())));
  if (__builtin_expect(all(ok), 1)) return log_core(x0, izero());
  const M small = cmp<_CMP_LT_OQ>(x0, set1(kFltMin));
  const V x = sel(small, x0, mul(x0, set1(8388608.0f)));  // denormals: scale by 2^23
  const VI eadj = iselz(small, iset1(-23));  // -23 where small, else 0
  V r = log_core(x, eadj);
  // specials: NaN or x < 0 -> NaN, 0 -> -inf, +inf -> +inf
  const V inf = set1(__builtin_inff());
  r = sel(cmp<_CMP_EQ_OQ>(x0, inf), r, inf);
  r = sel(cmp<_CMP_EQ_OQ>(x0, zero()), r, set1(-__builtin_inff()));
  M bad = mor(cmp<_CMP_LT_OQ>(x0, zero()), cmp<_CMP_UNORD_Q>(x0, x0));
  return sel(bad, r, set1(__builtin_nanf("")));
}

// tanh(|x|) for |x| >= kTanhSmall as 1 - 2 / (e^{2|x|} + 1). 2|x| is capped at 19 (tanh rounds to 1 in
// float32 from |x| = 9.01 on), so e^{2|x|} <= e^19 needs no overflow handling and a single 2^n scale
// (n <= 28): exp_reduced without exp_v's range guards. NaN propagates.
inline V tanh_big(V ax) {
  using namespace c;
  const V magic = set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer, kept in the low bits
  const V x = vmin(set1(19.0f), add(ax, ax));  // min returns the NaN operand (2nd)
  const V t = fma(x, set1(kLog2e), magic);
  const V n = sub(t, magic);
  const V y = exp_reduced(x, n);
  // 2^n from t's low bits (t = 1.5 * 2^23 + n): (bits + 127) << 23 keeps only n + 127 in the exponent field
  const V s = as_f(isll(iadd(as_i(t), iset1(127)), 23));
  const V e = mul(y, s);
  return sub(set1(1.0f), div(set1(2.0f), add(e, set1(1.0f))));
}

inline V tanh_v(V x) {
  using namespace c;
  const V ax = vabs(x);
  const V z = mul(x, x);
  V p = set1(kTanhP0);
  p = fma(p, z, set1(kTanhP1));
  p = fma(p, z, set1(kTanhP2));
  p = fma(p, z, set1(kTanhP3));
  p = fma(p, z, set1(kTanhP4));
  const V small = fma(mul(ax, z), p, ax);
  const V r = sel(cmp<_CMP_LT_OQ>(ax, set1(kTanhSmall)), tanh_big(ax), small);
  return bor(r, band(x, set1(-0.0f)));  // tanh(|x|) >= 0: copy x's sign (-0 stays -0)
}

inline V sigmoid_v(V x) {
  V e = exp_v(sub(zero(), vabs(x)));
  V num = sel(cmp<_CMP_GE_OQ>(x, zero()), e, set1(1.0f));
  return div(num, add(set1(1.0f), e));
}

inline V softplus_v(V x) {
  V u = exp_v(sub(zero(), vabs(x)));
  V w = add(set1(1.0f), u);
  V wm1 = sub(w, set1(1.0f));
  V l1p = div(mul(log_v(w), u), wm1);
  l1p = sel(cmp<_CMP_EQ_OQ>(wm1, zero()), l1p, u);
  V r = add(vmax(x, zero()), l1p);
  r = sel(cmp<_CMP_GT_OQ>(x, set1(20.0f)), r, x);
  return sel(cmp<_CMP_UNORD_Q>(x, x), r, x);
}

inline V relu_v(V x) {
  V r = vmax(x, zero());  // NaN -> 0 here, restored below; -0 -> +0
  return sel(cmp<_CMP_UNORD_Q>(x, x), r, x);
}
inline V silu_v(V x) { return mul(x, sigmoid_v(x)); }
inline V gelu_tanh_v(V x) {
  using namespace c;
  V x3 = mul(mul(x, x), x);
  V u = mul(set1(2.0f * kSqrt2OverPi), fma(set1(kGeluC), x3, x));
  return mul(x, sigmoid_v(u));
}
inline V mish_v(V x) { return mul(x, tanh_v(softplus_v(x))); }

// ---- erf and exact GELU (algorithm in vecmath.h) ----
// erf(z) for 0 <= z <= 1: z (S0 + s Q(s)); the leading term z S0hi is rounded once inside the FMA.
inline V erf_small_v(V z) {
  using namespace c;
  V s = mul(z, z);
  V q = set1(kErfS6);
  q = fma(q, s, set1(kErfS5));
  q = fma(q, s, set1(kErfS4));
  q = fma(q, s, set1(kErfS3));
  q = fma(q, s, set1(kErfS2));
  q = fma(q, s, set1(kErfS1));
  V inner = fma(s, q, set1(kErfS0Lo));
  return fma(z, set1(kErfS0Hi), mul(z, inner));
}
// erfcx(z) = erfc(z) e^{z^2} for 0 <= z <= 12: t R(t), t = 1 / (1 + z/2).
inline V erfcx_v(V z) {
  using namespace c;
  V t = div(set1(1.0f), fma(z, set1(0.5f), set1(1.0f)));
  V r = set1(kErfcR9);
  r = fma(r, t, set1(kErfcR8));
  r = fma(r, t, set1(kErfcR7));
  r = fma(r, t, set1(kErfcR6));
  r = fma(r, t, set1(kErfcR5));
  r = fma(r, t, set1(kErfcR4));
  r = fma(r, t, set1(kErfcR3));
  r = fma(r, t, set1(kErfcR2));
  r = fma(r, t, set1(kErfcR1));
  r = fma(r, t, set1(kErfcR0));
  return mul(r, t);
}
// exp(-k a^2) for k = 1 or 1/2: a^2 = h + l exactly (FMA residual), e^{-k(h+l)} = e^{-kh} (1 - kl), so the
// rounding of a^2 (relative 2^-24, i.e. up to 2^-24 a^2 in the exponent) does not reach the result.
inline V exp_neg_sq_v(V a, float k) {
  V h = mul(a, a);
  V l = fms(a, a, h);
  V e = exp_v(mul(h, set1(-k)));
  return fnma(e, mul(l, set1(k)), e);
}
inline V erf_v(V x) {
  using namespace c;
  V a = vmin(set1(kErfCap), vabs(x));  // NaN stays NaN (minps returns the 2nd operand)
  V big = fnma(exp_neg_sq_v(a, 1.0f), erfcx_v(vmax(a, set1(1.0f))), set1(1.0f));
  V small = erf_small_v(vmin(a, set1(1.0f)));
  V r = sel(cmp<_CMP_LT_OQ>(a, set1(1.0f)), big, small);
  return bor(r, band(x, set1(-0.0f)));  // erf is odd; r >= 0 (NaN keeps its bits)
}
// Phi(x) = (1 + erf(x / sqrt 2)) / 2 and e = exp(-x^2 / 2). With z = |x| / sqrt 2 and q = erfc(z) / 2 =
// e erfcx(z) / 2 <= 1/2: Phi = q (x < 0) or 1 - q >= 1/2 (x >= 0) on the whole line -- neither form cancels,
// so no small-|x| branch is needed.
inline V phi_v(V x, V& e) {
  using namespace c;
  V a = vmin(set1(kGeluCap), vabs(x));  // NaN stays NaN (minps returns the 2nd operand)
  e = exp_neg_sq_v(a, 0.5f);
  V q = mul(mul(e, set1(0.5f)), erfcx_v(mul(a, set1(kSqrt1_2))));
  return sel(cmp<_CMP_LT_OQ>(x, zero()), sub(set1(1.0f), q), q);
}
inline V gelu_v(V x) {
  V e;
  return mul(x, phi_v(x, e));
}
// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = e / sqrt(2 pi): one exp for both terms.
inline V gelu_grad_v(V g, V x) {
  V e;
  V p = phi_v(x, e);
  return mul(g, fma(mul(x, e), set1(c::kInvSqrt2Pi), p));
}
// d/dx x sigmoid(u), u = 2 sqrt(2/pi) (x + 0.044715 x^3): s + x s (1 - s) u', with s (1 - s) = e / (1 + e)^2,
// e = exp(-|u|) (equal to PyTorch's 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2), t = tanh(u / 2)).
inline V gelu_tanh_grad_v(V g, V x0) {
  using namespace c;
  // |x| <= 20 keeps x^3 finite (u' would be inf and x s (1 - s) u' = 0 * inf); e = 0 from |x| ~ 10 on.
  // The final product uses x0, so +-inf still gives NaN as PyTorch (and NaN stays NaN: 2nd operands).
  V x = vmin(set1(20.0f), vmax(set1(-20.0f), x0));
  V x2 = mul(x, x);
  V u = mul(set1(2.0f * kSqrt2OverPi), fma(mul(set1(kGeluC), x2), x, x));
  V du = mul(set1(2.0f * kSqrt2OverPi), fma(set1(3.0f * kGeluC), x2, set1(1.0f)));
  V e = exp_v(sub(zero(), vabs(u)));
  V r = div(set1(1.0f), add(set1(1.0f), e));
  V num = sel(cmp<_CMP_GE_OQ>(u, zero()), e, set1(1.0f));
  V s = mul(num, r);
  V s1s = mul(mul(e, r), r);
  return mul(g, fma(mul(x0, s1s), du, s));
}

}  // namespace
}  // namespace tocha::cpu::vec
#undef isll
#undef isra
