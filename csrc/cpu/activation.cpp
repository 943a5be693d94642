// Parametrised elementwise activations and PReLU; contract in activation.h.
// GCC's default -ftrapping-math forbids vectorising any loop with a floating-point compare-select
// ("control flow in loop"); we never read the FP exception flags, so turn it off for this file
// (clang's default already is -fno-trapping-math). Placed before every include so all functions in
// this translation unit share the same options and still inline into each other.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "activation.h"

#include <cmath>
#include <string>

#include "../core/parallel.h"
#include "fast_math.h"

namespace tocha::cpu {
namespace {

constexpr int64_t kGrain = 32768;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

void check_float_cpu(const Array& a, const char* op) {
  if (a.device().type != DeviceType::CPU)
    throw std::runtime_error(std::string("[") + op + "] expected a CPU tensor, got " + a.device().str());
  if (!is_floating(a.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(a.dtype));
}

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
  TOCHA_OMP_PARALLEL_FOR(nt)
  for (int64_t b = 0; b < nblk; ++b) block1(b * kGrain, std::min(n, (b + 1) * kGrain), y, x, f);
}

// y[i] = g[i] * f(x[i], i)
template <typename T, typename F>
void map2(int64_t n, T* y, const T* g, const T* x, F f) {
  int nt = n > kGrain ? get_num_threads() : 1;
  int64_t nblk = (n + kGrain - 1) / kGrain;
  TOCHA_OMP_PARALLEL_FOR(nt)
  for (int64_t b = 0; b < nblk; ++b) block2(b * kGrain, std::min(n, (b + 1) * kGrain), y, g, x, f);
}

// sel(c, a, b): both operands are computed before the choice. Written as `c ? a : f(x)` GCC would
// not evaluate f speculatively (-ftrapping-math) and the loop would stay scalar and branchy.
template <typename T> inline T sel(bool c, T a, T b) { return c ? a : b; }

template <typename T>
void act_fwd(Act op, int64_t n, T* y, const T* x, T p1, T p2) {
  const T zero(0), one(1), three(3), two(2);
  switch (op) {
#define F1(OP, EXPR) case Act::OP: map1(n, y, x, [=](T v, int64_t i) -> T { (void)i; return EXPR; }); break;
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
void act_bwd(Act op, int64_t n, T* gx, const T* g, const T* x, T p1, T p2) {
  const T zero(0), one(1), three(3), two(2);
  switch (op) {
#define F2(OP, EXPR) case Act::OP: map2(n, gx, g, x, [=](T v, int64_t i) -> T { (void)i; return EXPR; }); break;
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

Act check_op(int op, const char* name) {
  if (op < 0 || op >= (int)Act::Count)
    throw ValueError(std::string("[") + name + "] unknown activation code " + std::to_string(op));
  return (Act)op;
}

void check_params(Act op, double p1, const char* name) {
  if ((op == Act::Celu && p1 == 0.0))
    throw ValueError(std::string("[") + name + "] celu: alpha must not be zero");
  if (op == Act::Softplus && p1 == 0.0)
    throw ValueError(std::string("[") + name + "] softplus: beta must not be zero");
  if (op == Act::BipolarRelu && p1 < 1.0)
    throw ValueError(std::string("[") + name + "] bipolar_relu: last-dim size must be >= 1");
}

}  // namespace

Array activation_forward(int code, const Array& x_, double p1, double p2) {
  const char* name = "activation_forward";
  Act op = check_op(code, name);
  check_float_cpu(x_, name);
  check_params(op, p1, name);
  Array x = x_.contiguous();
  Array y = Array::empty(x.shape, x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, name, {
    act_fwd<T>(op, x.numel(), y.data<T>(), x.data<T>(), (T)p1, (T)p2);
  });
  return y;
}

Array activation_backward(int code, const Array& grad_, const Array& x_, double p1, double p2) {
  const char* name = "activation_backward";
  Act op = check_op(code, name);
  check_float_cpu(x_, name);
  check_float_cpu(grad_, name);
  check_params(op, p1, name);
  if (grad_.shape != x_.shape)
    throw ValueError(std::string("[") + name + "] grad shape " + shape_str(grad_.shape) +
                     " != input shape " + shape_str(x_.shape));
  Array x = x_.contiguous();
  Array g = grad_.astype(x.dtype).contiguous();
  Array gx = Array::empty(x.shape, x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, name, {
    act_bwd<T>(op, x.numel(), gx.data<T>(), g.data<T>(), x.data<T>(), (T)p1, (T)p2);
  });
  return gx;
}

namespace {
// Channel layout of PReLU: x viewed as (outer, C, inner); C = w.numel() (1 means shared).
void prelu_layout(const Array& x, const Array& w, int64_t& outer, int64_t& C, int64_t& inner) {
  check_float_cpu(x, "prelu");
  check_float_cpu(w, "prelu");
  if (w.dtype != x.dtype)
    throw TypeError(std::string("[prelu] weight dtype ") + dtype_name(w.dtype) + " != input dtype " +
                    dtype_name(x.dtype));
  if (w.ndim() > 1) throw ValueError("[prelu] weight must be 0-d or 1-d, got shape " + shape_str(w.shape));
  int64_t nw = w.numel();
  int64_t n = x.numel();
  if (nw == 1) { outer = 1; C = 1; inner = n; return; }
  if (x.ndim() < 2 || x.shape[1] != nw)
    throw ValueError("[prelu] mismatch of parameter numbers and input channel size: weight has " +
                     std::to_string(nw) + " parameters, input shape is " + shape_str(x.shape));
  C = nw;
  outer = x.shape[0];
  inner = C ? n / (outer * C > 0 ? outer * C : 1) : 0;
}
}  // namespace

Array prelu_forward(const Array& x_, const Array& w_) {
  int64_t outer, C, inner;
  prelu_layout(x_, w_, outer, C, inner);
  Array x = x_.contiguous(), w = w_.contiguous();
  Array y = Array::empty(x.shape, x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, "prelu", {
    const T* xp = x.data<T>(); const T* wp = w.data<T>(); T* yp = y.data<T>();
    int64_t rows = outer * C;
    int nt = x.numel() > kGrain ? get_num_threads() : 1;
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t r = 0; r < rows; ++r) {
      T a = wp[r % C];
      const T* xr = xp + r * inner; T* yr = yp + r * inner;
      for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] > T(0) ? xr[i] : a * xr[i];
    }
  });
  return y;
}

std::pair<Array, Array> prelu_backward(const Array& grad_, const Array& x_, const Array& w_) {
  int64_t outer, C, inner;
  prelu_layout(x_, w_, outer, C, inner);
  if (grad_.shape != x_.shape)
    throw ValueError("[prelu_backward] grad shape " + shape_str(grad_.shape) + " != input shape " +
                     shape_str(x_.shape));
  Array x = x_.contiguous(), w = w_.contiguous(), g = grad_.astype(x_.dtype).contiguous();
  Array gx = Array::empty(x.shape, x.dtype);
  Array gw = Array::empty(w.shape, w.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, "prelu_backward", {
    const T* xp = x.data<T>(); const T* wp = w.data<T>(); const T* gp = g.data<T>();
    T* gxp = gx.data<T>(); T* gwp = gw.data<T>();
    int nt = x.numel() > kGrain ? get_num_threads() : 1;
    // per channel (fixed order over outer, then inner): deterministic for any thread count
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t c = 0; c < C; ++c) {
      T a = wp[c];
      double acc = 0;
      for (int64_t o = 0; o < outer; ++o) {
        int64_t base = (o * C + c) * inner;
        for (int64_t i = 0; i < inner; ++i) {
          T v = xp[base + i], gv = gp[base + i];
          if (v > T(0)) { gxp[base + i] = gv; }
          else { gxp[base + i] = a * gv; acc += (double)(gv * v); }
        }
      }
      gwp[c] = (T)acc;
    }
  });
  return {gx, gw};
}

}  // namespace tocha::cpu
