// Parametrised elementwise activations and PReLU; contract in activation.h.
// GCC's default -ftrapping-math forbids vectorising any loop with a floating-point compare-select
// ("control flow in loop"); we never read the FP exception flags, so turn it off for this file
// (clang's default already is -fno-trapping-math). Placed before every include so all functions in
// this translation unit share the same options and still inline into each other.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#define TOCHA_ACT_ISA generic
#include "activation_impl.h"
#include "gemm.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace tocha::cpu {
namespace avx2 {   // activation_avx2.cpp (x86-64 builds only)
void act_fwd(ActOp op, int64_t n, float* y, const float* x, float p1, float p2);
void act_fwd(ActOp op, int64_t n, double* y, const double* x, double p1, double p2);
void act_bwd(ActOp op, int64_t n, float* gx, const float* g, const float* x, float p1, float p2);
void act_bwd(ActOp op, int64_t n, double* gx, const double* g, const double* x, double p1, double p2);
}  // namespace avx2

namespace {

constexpr int64_t kGrain = 32768;

#if defined(__x86_64__) || defined(_M_X64)
#define TOCHA_ACT_HAVE_AVX2 1
#endif

template <typename T>
void act_fwd(ActOp op, int64_t n, T* y, const T* x, T p1, T p2) {
#ifdef TOCHA_ACT_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::act_fwd(op, n, y, x, p1, p2);
#endif
  generic::act_fwd(op, n, y, x, p1, p2);
}

template <typename T>
void act_bwd(ActOp op, int64_t n, T* gx, const T* g, const T* x, T p1, T p2) {
#ifdef TOCHA_ACT_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::act_bwd(op, n, gx, g, x, p1, p2);
#endif
  generic::act_bwd(op, n, gx, g, x, p1, p2);
}

void check_float_cpu(const Array& a, const char* op) {
  if (a.device().type != DeviceType::CPU)
    throw NotImplementedError(std::string("[") + op + "] expected a CPU tensor, got " + a.device().str() +
                              " (no CUDA kernel for this op yet)");
  if (!is_floating(a.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(a.dtype));
}

ActOp check_op(int op, const char* name) {
  if (op < 0 || op >= (int)ActOp::Count)
    throw ValueError(std::string("[") + name + "] unknown activation code " + std::to_string(op));
  return (ActOp)op;
}

void check_params(ActOp op, double p1, const char* name) {
  if ((op == ActOp::Celu && p1 == 0.0))
    throw ValueError(std::string("[") + name + "] celu: alpha must not be zero");
  if (op == ActOp::Softplus && p1 == 0.0)
    throw ValueError(std::string("[") + name + "] softplus: beta must not be zero");
  if (op == ActOp::BipolarRelu && p1 < 1.0)
    throw ValueError(std::string("[") + name + "] bipolar_relu: last-dim size must be >= 1");
}

}  // namespace

Array activation_forward(int code, const Array& x_, double p1, double p2) {
  const char* name = "activation_forward";
  ActOp op = check_op(code, name);
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
  ActOp op = check_op(code, name);
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
    parallel_for(nt, rows, [&](int64_t r) {
      T a = wp[r % C];
      const T* xr = xp + r * inner; T* yr = yp + r * inner;
      for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] > T(0) ? xr[i] : a * xr[i];
    });
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
    parallel_for(nt, C, [&](int64_t c) {
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
    });
  });
  return {gx, gw};
}

}  // namespace tocha::cpu
