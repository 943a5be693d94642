// vecmath_consts.h -- coefficients shared by the generic (vecmath.cpp) and AVX2 (vecmath_avx2.cpp)
// float32 math kernels, so both paths evaluate the same approximations (Cephes single precision).
#pragma once

namespace tocha::cpu::vec::c {

// exp: inputs clamped to [kExpLo, kExpHi]: below, the result rounds to 0; above, to +inf.
constexpr float kExpLo = -104.0f;
constexpr float kExpHi = 89.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;       // Cody-Waite split of ln 2: kLn2Hi is exact in 9 bits
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500e-4f;
constexpr float kExpP1 = 1.3981999507e-3f;
constexpr float kExpP2 = 8.3334519073e-3f;
constexpr float kExpP3 = 4.1665795894e-2f;
constexpr float kExpP4 = 1.6666665459e-1f;
constexpr float kExpP5 = 5.0000001201e-1f;

// log
constexpr float kFltMin = 1.17549435e-38f;
constexpr float kSqrtHalf = 0.707106781186547524f;
constexpr float kLogP0 = 7.0376836292e-2f;
constexpr float kLogP1 = -1.1514610310e-1f;
constexpr float kLogP2 = 1.1676998740e-1f;
constexpr float kLogP3 = -1.2420140846e-1f;
constexpr float kLogP4 = 1.4249322787e-1f;
constexpr float kLogP5 = -1.6668057665e-1f;
constexpr float kLogP6 = 2.0000714765e-1f;
constexpr float kLogP7 = -2.4999993993e-1f;
constexpr float kLogP8 = 3.3333331174e-1f;

// tanh: odd polynomial below kTanhSmall, exp-based formula above
constexpr float kTanhSmall = 0.625f;
constexpr float kTanhP0 = -5.70498872745e-3f;
constexpr float kTanhP1 = 2.06390887954e-2f;
constexpr float kTanhP2 = -5.37397155531e-2f;
constexpr float kTanhP3 = 1.33314422036e-1f;
constexpr float kTanhP4 = -3.33332819422e-1f;

// GELU (tanh approximation)
constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kGeluC = 0.044715f;

// erf / exact GELU (coefficients fitted by weighted least squares towards minimax relative error in
// float64, then rounded to float32; fit error 1.3e-9 (small) and 2.9e-8 (erfcx)).
// small |z| <= 1: erf(z) = z (S0 + s S1 + ... + s^6 S6), s = z^2, S0 = kErfS0Hi + kErfS0Lo.
constexpr float kErfS0Hi = 1.128379107e+00f;
constexpr float kErfS0Lo = 5.921118174e-08f;
constexpr float kErfS1 = -3.761262596e-01f;
constexpr float kErfS2 = 1.128358543e-01f;
constexpr float kErfS3 = -2.685383894e-02f;
constexpr float kErfS4 = 5.188381299e-03f;
constexpr float kErfS5 = -8.010694874e-04f;
constexpr float kErfS6 = 7.855611329e-05f;
// 0 <= z <= 12: erfcx(z) = erfc(z) e^{z^2} = t R(t), t = 1 / (1 + z/2), R of degree 9.
constexpr float kErfcR0 = 2.820751667e-01f;
constexpr float kErfcR1 = 2.826264501e-01f;
constexpr float kErfcR2 = 2.407459915e-01f;
constexpr float kErfcR3 = 2.149253339e-01f;
constexpr float kErfcR4 = -6.544145942e-02f;
constexpr float kErfcR5 = 3.563486636e-01f;
constexpr float kErfcR6 = -5.879663229e-01f;
constexpr float kErfcR7 = 3.647085428e-01f;
constexpr float kErfcR8 = -9.492053837e-02f;
constexpr float kErfcR9 = 6.898141000e-03f;
constexpr float kSqrt1_2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;
constexpr float kErfCap = 10.0f;    // erf(|x| >= 10) = +-1 after rounding (erfc(10) = 2e-45)
constexpr float kGeluCap = 16.0f;   // Phi(-16) = 6e-58 rounds to 0 in float32

}  // namespace tocha::cpu::vec::c
