// vecmath.h -- vectorised float32 kernels over contiguous arrays (elementwise math, binary arithmetic,
// reductions), chosen once at run time by CPU features.
//
// Layout: every kernel reads/writes `n` consecutive floats; `y` may alias `x` (in-place) exactly, never
// partially. Results of one element never depend on its position in the array or on `n` (SIMD tails are
// evaluated through a padded vector, never with a different scalar formula), so splitting work into any
// chunks -- e.g. over threads -- gives bitwise-identical output.
// Algorithms (Cephes-style range reduction + minimax polynomials; shared by the AVX2 and generic paths):
//   exp:  x = n ln2 + r (Cody-Waite two-part ln2), e^r = 1 + r + r^2 P5(r); 2^n applied in two steps so
//         results that are denormal round once and overflow gives +inf.  Max error 1.22 ulp (generic 0.97).
//   log:  x = m 2^e, m in [sqrt(1/2), sqrt(2)), log(1+f) = f - f^2/2 + f^3 P8(f); denormal inputs are
//         pre-scaled by 2^23.  Max error 0.83 ulp.  log(0) = -inf, log(<0) = NaN, log(inf) = inf.
//         AVX2: m and e come from the bits (subtract sqrt(1/2)'s pattern, shift); a vector with any
//         lane outside [FLT_MIN, inf) takes a branch that fixes those lanes up, the other lanes get the
//         same arithmetic on both paths (tests/test_vecmath.py checks results never depend on neighbours).
//   tanh: |x| < 0.625: x + x^3 P4(x^2); else sign(x) (1 - 2 / (e^{2|x|} + 1)).  Max error 1.35 ulp.
//   sigmoid: e = e^{-|x|}; (x >= 0 ? 1 : e) / (1 + e) (no cancellation, no overflow).  Max error 2.34 ulp.
//   silu = x sigmoid(x); gelu_tanh = x sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) (same function as
//   0.5 x (1 + tanh(.)) without the cancellation); softplus (beta 1, threshold 20) = max(x, 0) +
//   log1p(e^{-|x|}) with log1p(u) = log(1+u) u / ((1+u) - 1) (Goldberg's correction).
//   silu 3.1, softplus 3.3, mish 4.1 ulp; gelu_tanh 5.7 ulp after dividing by the formula's condition
//   number max(1, |u|) (float32 rounding of u is amplified by |2u|, as in any float32 evaluation).
//   Errors are measured by tests/test_vecmath.py against float64 NumPy over random bit patterns of the
//   whole float32 range plus 0, +-inf, NaN, denormals and the overflow edges, on both paths (AVX2 and
//   TOCHA_CPU_ISA=generic): `pytest tests/test_vecmath.py -q`.
//   erf:  |x| < 1: x P6(x^2) (leading term rounded once, by an FMA); else 1 - e^{-x^2} erfcx(|x|) with
//         erfcx(z) = t R9(t), t = 1/(1 + z/2) (fitted on [0, 12], relative 2.9e-8) and e^{-x^2} from
//         exp(-h) (1 - l), x^2 = h + l split exactly by an FMA.  Max error 1.35 ulp.
//   gelu (exact) = x Phi(x), Phi(x) = (1 + erf(x/sqrt2)) / 2 evaluated as q = erfc(|x|/sqrt2)/2 =
//         e erfcx(|x|/sqrt2)/2 for x < 0 and 1 - q for x >= 0 (q <= 1/2: neither cancels, so there is
//         no 1 + erf cancellation in the negative tail, where PyTorch's float32 1 + erf loses every
//         digit below x ~ -5.5); e = exp(-x^2/2) with the FMA residual as above.  Max error ~6 ulp
//         (exp's 1.2 ulp + erfcx's ~2.5 ulp in float32 + three roundings).
//   gelu_backward = g (Phi(x) + x e / sqrt(2 pi)) sharing e (one exp per element): 5.3 ulp of the larger
//         of the two terms (f' has a zero at x = -0.75 where they cancel; no float32 sum does better).
//   gelu_tanh_backward = g (s + x u' e/(1+e)^2) with s = sigmoid(u), e = exp(-|u|) (one exp, no tanh):
//         5.8 ulp of the larger term after dividing by max(1, |u|/2), the rounding of u as for gelu_tanh.
// Reductions: sum is blocked pairwise (error O(log n) ulp, deterministic for a given n); max/min
//   propagate NaN like torch.
// Dispatch: `kernels()` picks AVX-512 (F, DQ) when the CPU has it (cpu_has_avx512), else AVX2+FMA
// (cpu_has_avx2; the decisions live in gemm.cpp: one detection for the whole library), else the portable
// generic set (plain loops that the compiler may auto-vectorise; compiles on any target, aarch64 included).
// TOCHA_CPU_ISA=avx2 / generic force the lower builds. The AVX2 and AVX-512 builds are one source
// (vecmath_simd.h, vecmath_kernels.h) and give bitwise-identical elementwise results; tocha._C.vec_isa()
// names the build in use.
#pragma once
#include <cstdint>

namespace tocha::cpu::vec {

using UnaryFn = void (*)(const float* x, float* y, int64_t n);
using BinaryFn = void (*)(const float* a, const float* b, float* y, int64_t n);
using ScalarFn = void (*)(const float* a, float s, float* y, int64_t n);  // y = a op s  (or s op a)
using ReduceFn = float (*)(const float* x, int64_t n);

enum VUnary : int {
  kExp, kLog, kTanh, kSigmoid, kRelu, kSilu, kGeluTanh, kSoftplus, kMish, kErf, kGelu, kNumUnary
};
enum VGrad : int { kGeluGrad, kGeluTanhGrad, kNumGrad };  // y = g * f'(x)
enum VBinary : int { kAdd, kSub, kMul, kDiv, kMax, kMin, kNumBinary };

struct Kernels {
  const char* name;                 // "avx512", "avx2" or "generic"
  UnaryFn unary[kNumUnary];
  BinaryFn grad[kNumGrad];          // y = a * f'(b): a = incoming gradient, b = the op's input
  BinaryFn binary[kNumBinary];      // y = a op b
  ScalarFn scalar[kNumBinary];      // y = a op s
  ScalarFn rscalar[kNumBinary];     // y = s op a
  ReduceFn sum;                     // blocked pairwise sum
  ReduceFn max, min;                // NaN if any element is NaN; n >= 1
  // y = exp(x - m); returns sum(y) (softmax / logsumexp rows).
  float (*exp_shift_sum)(const float* x, float m, float* y, int64_t n);
};

const Kernels& kernels();          // the run-time choice (cached)
const Kernels& generic_kernels();  // portable path (vecmath.cpp)
#if defined(__x86_64__)
const Kernels& avx2_kernels();     // vecmath_avx2.cpp; only call after checking CPU support
const Kernels& avx512_kernels();   // vecmath_avx512.cpp; likewise (AVX-512F and DQ)
#endif

}  // namespace tocha::cpu::vec
