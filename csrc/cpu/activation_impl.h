// Kernel bodies of the parametrised activations, compiled twice: activation.cpp (baseline SSE2,
// namespace generic) and activation_avx2.cpp (-mavx2 -mfma, namespace avx2); activation.cpp picks
// one at run time from the CPU's features. Include only after defining TOCHA_ACT_ISA, and after the
// no-trapping-math pragma (see activation.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../core/parallel.h"
#include "activation.h"
#include "fast_math.h"

namespace tocha::cpu::TOCHA_ACT_ISA {
namespace {

constexpr int64_t kGrain = 32768;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// The inner loops live in their own functions taking the functor by value and restrict pointers:
// inside an OpenMP region the captured constants would otherwise be read through a shared pointer
// that may alias the output, which blocks vectorisation (measured 5-10x slower).
template <typename T, typename F>
void block1(int64_t lo, int64_t hi, T* __restrict y, const T* __restrict x, F f) {
  for (int64_t i = lo; i < hi; ++i) y[i] = f(x[i], i);
}

template <typename T, typename F>
void block2(int64_t lo, int64_t hi, T* __restrict y, const T* __restrict g, const T* __restrict x, F f) {
  for (int64_t i = lo; i < hi; ++i) y[i] = g[i] * f(x[i], i);
}

// y[i] = f(x[i], i) over n contiguous elements, threaded above kGrain.
template <typename T, typename F>
void map1(int64_t n, T* y, const T* x, F f) {
  int nt = n > kGrain ? get_num_threads() : 1;
  int64_t nblk = (n + kGrain - 1) / kGrain;
  parallel_for(nt, nblk, [&](int64_t b) { block1(b * kGrain, std::min(n, (b + 1) * kGrain), y, x, f); });
}

// y[i] = g[i] * f(x[i], i)
template <typename T, typename F>
void map2(int64_t n, T* y, const T* g, const T* x, F f) {
  int nt = n > kGrain ? get_num_threads() : 1;
  int64_t nblk = (n + kGrain - 1) / kGrain;
  parallel_for(nt, nblk, [&](int64_t b) { block2(b * kGrain, std::min(n, (b + 1) * kGrain), y, g, x, f); });
}

// sel(c, a, b): both operands are computed before the choice. Written as `c ? a : f(x)` GCC would
// not evaluate f speculatively (-ftrapping-math) and the loop would stay scalar and branchy.
template <typename T> inline T sel(bool c, T a, T b) { return c ? a : b; }

template <typename T>
void act_fwd(ActOp op, int64_t n, T* y, const T* x, T p1, T p2) {
  const T zero(0), one(1), three(3), two(2);
  switch (op) {
#define F1(OP, EXPR) case ActOp::OP: map1(n, y, x, [=](T v, int64_t i) -> T { (void)i; return EXPR; }); break;
    F1(LeakyRelu, sel(v > zero, v, v * p1))
    F1(Elu, sel(v > zero, v, p1 * fm::expm1(v)))
    F1(Selu, sel(v > zero, T(kSeluScale) * v, T(kSeluScale * kSeluAlpha) * fm::expm1(v)))
    F1(Celu, sel(v > zero, v, p1 * fm::expm1(v / p1)))
    F1(Softplus, v * p1 > p2 ? v : std::log1p(std::exp(v * p1)) / p1)   // libm log1p: stays scalar
    F1(Hardtanh, sel(v < p1, p1, sel(v > p2, p2, v)))
    F1(Hardsigmoid, sel(v <= -three, zero, sel(v >= three, one, v / T(6) + T(0.5))))
    F1(Hardswish, sel(v <= -three, zero, sel(v >= three, v, v * (v + three) / T(6))))
    F1(LogSigmoid, std::min(v, zero) - std::log1p(std::exp(-std::abs(v))))
    F1(Softsign, v / (one + std::abs(v)))
    F1(Isru, v / std::sqrt(one + p1 * v * v))
    F1(Isrlu, sel(v >= zero, v, v / std::sqrt(one + p1 * v * v)))
    F1(Sqnl, sel(v > two, one, sel(v >= zero, v - v * v / T(4), sel(v >= -two, v + v * v / T(4), -one))))
    F1(BinaryStep, sel(v >= zero, one, zero))
    // even positions along the last dim: relu(x); odd: -relu(-x)
    F1(BipolarRelu, sel(((i % (int64_t)p1) & 1) != 0, std::min(v, zero), std::max(v, zero)))
#undef F1
    default: throw ValueError("[activation_forward] unknown activation code");
  }
}

template <typename T>
void act_bwd(ActOp op, int64_t n, T* gx, const T* g, const T* x, T p1, T p2) {
  const T zero(0), one(1), three(3), two(2);
  switch (op) {
#define F2(OP, EXPR) case ActOp::OP: map2(n, gx, g, x, [=](T v, int64_t i) -> T { (void)i; return EXPR; }); break;
    F2(LeakyRelu, sel(v > zero, one, p1))
    F2(Elu, sel(v > zero, one, p1 * fm::exp(v)))
    F2(Selu, sel(v > zero, T(kSeluScale), T(kSeluScale * kSeluAlpha) * fm::exp(v)))
    F2(Celu, sel(v > zero, one, fm::exp(v / p1)))
    F2(Softplus, sel(v * p1 > p2, one, fm::sigmoid(v * p1)))
    F2(Hardtanh, sel(v <= p1 || v >= p2, zero, one))
    F2(Hardsigmoid, sel(v > -three && v < three, one / T(6), zero))
    F2(Hardswish, sel(v < -three, zero, sel(v <= three, v / three + T(0.5), one)))
    F2(LogSigmoid, fm::sigmoid(-v))
    F2(Softsign, one / ((one + std::abs(v)) * (one + std::abs(v))))
    F2(Isru, [&] { T r = one / std::sqrt(one + p1 * v * v); return r * r * r; }())
    F2(Isrlu, sel(v >= zero, one, [&] { T r = one / std::sqrt(one + p1 * v * v); return r * r * r; }()))
    F2(Sqnl, sel(v > two || v < -two, zero, one - std::abs(v) / two))
    F2(BinaryStep, zero)   // a step function: derivative 0 everywhere it exists
    F2(BipolarRelu, sel(((i % (int64_t)p1) & 1) != 0, sel(v < zero, one, zero), sel(v > zero, one, zero)))
#undef F2
    default: throw ValueError("[activation_backward] unknown activation code");
  }
}

}  // namespace

void act_fwd(ActOp op, int64_t n, float* y, const float* x, float p1, float p2) { act_fwd<float>(op, n, y, x, p1, p2); }
void act_fwd(ActOp op, int64_t n, double* y, const double* x, double p1, double p2) {
  act_fwd<double>(op, n, y, x, p1, p2);
}
void act_bwd(ActOp op, int64_t n, float* gx, const float* g, const float* x, float p1, float p2) {
  act_bwd<float>(op, n, gx, g, x, p1, p2);
}
void act_bwd(ActOp op, int64_t n, double* gx, const double* g, const double* x, double p1, double p2) {
  act_bwd<double>(op, n, gx, g, x, p1, p2);
}

}  // namespace tocha::cpu::TOCHA_ACT_ISA
