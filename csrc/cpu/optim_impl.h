// Kernel bodies of the fused optimiser updates (contract in optim.h), compiled twice: optim.cpp (baseline,
// namespace generic) and optim_avx2.cpp (-mavx2 -mfma, namespace avx2: 8-wide sqrt/div for the Adam
// family); optim.cpp dispatches at run time. Include only after defining TOCHA_OPTIM_ISA.
// Each kernel: validate -> fold scalars in double on the host -> one parallel pass over the elements,
// with loop-invariant option branches hoisted into template parameters so the inner loop vectorises.
#include "optim.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>

#include "../core/parallel.h"

namespace tocha::cpu::TOCHA_OPTIM_ISA {

namespace {

// Elements per thread below which one thread is faster than waking the pool. The Adam family does a
// sqrt and two divisions per element (compute-bound: ~0.45 ns/element on one AVX2 core), so a second
// thread pays off from ~32K elements. SGD streams 20 B/element with one multiply-add chain: a single
// core already moves ~40-80 GB/s while the arrays sit in the last-level cache, and a second thread only
// adds its wake-up (and, on a shared machine, its wait for a free core); it splits from 2 x 1M elements.
constexpr int64_t kOptimGrain = 1 << 15;
constexpr int64_t kStreamGrain = 1 << 20;

// Run f(begin, end) over [0, n) in contiguous chunks (boundaries aligned to 16 elements) of at least
// `grain` elements each. Every element is updated independently: results never depend on the split.
template <typename F>
void parallel_chunks(int64_t n, F&& f, int64_t grain = kOptimGrain) {
  int nt = get_num_threads();
  if (nt <= 1 || n < 2 * grain) {
    f(int64_t(0), n);
    return;
  }
  int64_t chunks = std::min<int64_t>(nt, n / grain);
  TOCHA_OMP_PARALLEL_FOR((int)chunks)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = c == 0 ? 0 : ((n * c / chunks) & ~int64_t(15));
    int64_t e = c == chunks - 1 ? n : ((n * (c + 1) / chunks) & ~int64_t(15));
    f(b, e);
  }
}

void check_param(const char* op, const Array& p) {
  if (!is_floating(p.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point parameter, got " + dtype_name(p.dtype));
  if (p.device().type != DeviceType::CPU)
    throw ValueError(std::string("[") + op + "] expected a CPU parameter");
  if (!p.is_contiguous())
    throw ValueError(std::string("[") + op + "] parameter of shape " + shape_str(p.shape) +
                     " must be contiguous");
}

// A state buffer (or grad when `contig` is false) must match the parameter's shape and dtype.
void check_like(const char* op, const Array& p, const Array& a, const char* name, bool contig = true) {
  if (a.shape != p.shape)
    throw ValueError(std::string("[") + op + "] " + name + " has shape " + shape_str(a.shape) +
                     " but the parameter has shape " + shape_str(p.shape));
  if (a.dtype != p.dtype)
    throw TypeError(std::string("[") + op + "] " + name + " has dtype " + dtype_name(a.dtype) +
                    " but the parameter has dtype " + dtype_name(p.dtype));
  if (a.device() != p.device())
    throw ValueError(std::string("[") + op + "] " + name + " is on another device than the parameter");
  if (contig && !a.is_contiguous())
    throw ValueError(std::string("[") + op + "] state buffer " + name + " must be contiguous");
}

const Array& need(const char* op, const std::optional<Array>& a, const char* name, const Array& p) {
  if (!a.has_value())
    throw ValueError(std::string("[") + op + "] " + name + " is required by the chosen options");
  check_like(op, p, *a, name);
  return *a;
}

// Grad as a contiguous array of the parameter's shape/dtype (a copy only when it is strided).
Array grad_of(const char* op, const Array& p, const Array& g) {
  check_like(op, p, g, "grad", false);
  return g.contiguous();
}

// PyTorch's lerp: self + w·(end − self) for |w| < 0.5, else end − (end − self)·(1 − w).
template <typename T>
inline T lerp(T self, T end, T w, bool small) {
  return small ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

// Call f(std::true_type) or f(std::false_type): turns a loop-invariant flag into a compile-time one
// so the loop body has no branch and vectorises.
template <typename F>
void with_flag(bool v, F&& f) {
  if (v) f(std::true_type{});
  else f(std::false_type{});
}

void check_step(const char* op, double step) {
  if (!(step >= 1))
    throw ValueError(std::string("[") + op + "] step must be >= 1 (the count after this update), got " +
                     std::to_string(step));
}

}  // namespace

// ---------------------------------------------------------------------------------------------- SGD
void sgd_step_(const Array& param, const Array& grad, const std::optional<Array>& momentum_buffer,
               double lr, double momentum, double dampening, double weight_decay, bool nesterov,
               bool maximize, bool first_step) {
  const char* op = "sgd_step_";
  check_param(op, param);
  Array g = grad_of(op, param, grad);
  const bool use_mom = momentum != 0;
  Array buf;
  if (use_mom) buf = need(op, momentum_buffer, "momentum_buffer", param);
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* __restrict p = param.data<T>();
    const T* __restrict gp = g.data<T>();
    T* __restrict bp = use_mom ? buf.data<T>() : nullptr;
    const T sgn = maximize ? T(-1) : T(1), wd = T(weight_decay), mu = T(momentum);
    const T omd = T(1 - dampening), nlr = T(-lr);
    // the common options become template flags: the inner loop is branch-free and vectorises
    auto run = [&](auto WD, auto MOM, auto FIRST, auto NEST) {
      parallel_chunks(n, [=](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          T gi = sgn * gp[i];
          if (WD) gi = gi + wd * p[i];
          T d = gi;
          if (MOM) {
            T bi = FIRST ? gi : bp[i] * mu + omd * gi;
            bp[i] = bi;
            d = NEST ? gi + mu * bi : bi;
          }
          p[i] = p[i] + nlr * d;
        }
      }, kStreamGrain);
    };
    with_flag(weight_decay != 0, [&](auto WD) {
      with_flag(use_mom, [&](auto MOM) {
        with_flag(first_step, [&](auto FIRST) {
          with_flag(nesterov, [&](auto NEST) { run(WD, MOM, FIRST, NEST); });
        });
      });
    });
  });
  param.bump_version();
  if (use_mom) buf.bump_version();
}

// --------------------------------------------------------------------------------------------- Adam
namespace {
template <typename T, bool AMS, bool DECOUPLED>
void adam_loop(int64_t n, T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
               T* __restrict vmax, double lr, double beta1, double beta2, double eps, double wd,
               double step, bool maximize) {
  const double bc1 = 1 - std::pow(beta1, step);
  const double bc2s = std::sqrt(1 - std::pow(beta2, step));
  const T sgn = maximize ? T(-1) : T(1);
  const T w1 = T(1 - beta1), b2 = T(beta2), omb2 = T(1 - beta2);
  const bool small = std::fabs(double(w1)) < 0.5;
  const T nstep = T(-(lr / bc1)), bc2sT = T(bc2s), epsT = T(eps);
  const T wdT = T(wd), decay = T(1 - lr * wd);
  const bool has_wd = wd != 0;
  parallel_chunks(n, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sgn * g[i];
      T pi = p[i];
      if (has_wd) {
        if (DECOUPLED) pi = pi * decay;
        else gi = gi + wdT * pi;
      }
      T mi = lerp(m[i], gi, w1, small);
      T vi = v[i] * b2 + omb2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      if (AMS) {
        vi = std::max(vmax[i], vi);
        vmax[i] = vi;
      }
      T denom = std::sqrt(vi) / bc2sT + epsT;
      p[i] = pi + nstep * (mi / denom);
    }
  });
}
}  // namespace

void adam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                const std::optional<Array>& max_exp_avg_sq, double lr, double beta1, double beta2,
                double eps, double weight_decay, double step, bool amsgrad, bool maximize,
                bool decoupled) {
  const char* op = "adam_step_";
  check_param(op, param);
  check_step(op, step);
  Array g = grad_of(op, param, grad);
  check_like(op, param, exp_avg, "exp_avg");
  check_like(op, param, exp_avg_sq, "exp_avg_sq");
  Array vmax;
  if (amsgrad) vmax = need(op, max_exp_avg_sq, "max_exp_avg_sq", param);
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* vm = amsgrad ? vmax.data<T>() : nullptr;
    auto args = std::make_tuple(n, param.data<T>(), (const T*)g.data<T>(), exp_avg.data<T>(),
                                exp_avg_sq.data<T>(), vm, lr, beta1, beta2, eps, weight_decay, step,
                                maximize);
    if (amsgrad && decoupled) std::apply(adam_loop<T, true, true>, args);
    else if (amsgrad) std::apply(adam_loop<T, true, false>, args);
    else if (decoupled) std::apply(adam_loop<T, false, true>, args);
    else std::apply(adam_loop<T, false, false>, args);
  });
  param.bump_version();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
  if (amsgrad) vmax.bump_version();
}

// ------------------------------------------------------------------------------------------- Adamax
void adamax_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_inf,
                  double lr, double beta1, double beta2, double eps, double weight_decay, double step,
                  bool maximize) {
  const char* op = "adamax_step_";
  check_param(op, param);
  check_step(op, step);
  Array g = grad_of(op, param, grad);
  check_like(op, param, exp_avg, "exp_avg");
  check_like(op, param, exp_inf, "exp_inf");
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* __restrict p = param.data<T>();
    const T* __restrict gp = g.data<T>();
    T* __restrict m = exp_avg.data<T>();
    T* __restrict u = exp_inf.data<T>();
    const T sgn = maximize ? T(-1) : T(1), wd = T(weight_decay), w1 = T(1 - beta1), b2 = T(beta2);
    const T epsT = T(eps), nclr = T(-(lr / (1 - std::pow(beta1, step))));
    const bool small = std::fabs(double(w1)) < 0.5, has_wd = weight_decay != 0;
    parallel_chunks(n, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        T gi = sgn * gp[i];
        if (has_wd) gi = gi + wd * p[i];
        T mi = lerp(m[i], gi, w1, small);
        T ui = std::max(u[i] * b2, std::fabs(gi) + epsT);
        m[i] = mi;
        u[i] = ui;
        p[i] = p[i] + nclr * (mi / ui);
      }
    });
  });
  param.bump_version();
  exp_avg.bump_version();
  exp_inf.bump_version();
}

// ------------------------------------------------------------------------------------------ RMSprop
namespace {
template <typename T, bool CENTERED, bool MOM>
void rmsprop_loop(int64_t n, T* __restrict p, const T* __restrict g, T* __restrict sq, T* __restrict ga,
                  T* __restrict buf, double lr, double alpha, double eps, double wd, double momentum,
                  bool maximize) {
  const T sgn = maximize ? T(-1) : T(1), wdT = T(wd), a = T(alpha), oma = T(1 - alpha);
  const T epsT = T(eps), mu = T(momentum), nlr = T(-lr);
  const bool small = std::fabs(double(oma)) < 0.5, has_wd = wd != 0;
  parallel_chunks(n, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T gi = sgn * g[i];
      if (has_wd) gi = gi + wdT * p[i];
      T si = sq[i] * a + oma * gi * gi;
      sq[i] = si;
      T avg;
      if (CENTERED) {
        T gai = lerp(ga[i], gi, oma, small);
        ga[i] = gai;
        avg = std::sqrt(si + T(-1) * gai * gai);
      } else {
        avg = std::sqrt(si);
      }
      avg = avg + epsT;
      if (MOM) {
        T bi = buf[i] * mu + gi / avg;
        buf[i] = bi;
        p[i] = p[i] + nlr * bi;
      } else {
        p[i] = p[i] + nlr * (gi / avg);
      }
    }
  });
}
}  // namespace

void rmsprop_step_(const Array& param, const Array& grad, const Array& square_avg,
                   const std::optional<Array>& grad_avg, const std::optional<Array>& momentum_buffer,
                   double lr, double alpha, double eps, double weight_decay, double momentum,
                   bool centered, bool maximize) {
  const char* op = "rmsprop_step_";
  check_param(op, param);
  Array g = grad_of(op, param, grad);
  check_like(op, param, square_avg, "square_avg");
  const bool use_mom = momentum > 0;
  Array ga, buf;
  if (centered) ga = need(op, grad_avg, "grad_avg", param);
  if (use_mom) buf = need(op, momentum_buffer, "momentum_buffer", param);
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    auto args = std::make_tuple(n, param.data<T>(), (const T*)g.data<T>(), square_avg.data<T>(),
                                centered ? ga.data<T>() : (T*)nullptr, use_mom ? buf.data<T>() : (T*)nullptr,
                                lr, alpha, eps, weight_decay, momentum, maximize);
    if (centered && use_mom) std::apply(rmsprop_loop<T, true, true>, args);
    else if (centered) std::apply(rmsprop_loop<T, true, false>, args);
    else if (use_mom) std::apply(rmsprop_loop<T, false, true>, args);
    else std::apply(rmsprop_loop<T, false, false>, args);
  });
  param.bump_version();
  square_avg.bump_version();
  if (centered) ga.bump_version();
  if (use_mom) buf.bump_version();
}

// ------------------------------------------------------------------------------------------ Adagrad
void adagrad_step_(const Array& param, const Array& grad, const Array& state_sum, double lr,
                   double lr_decay, double weight_decay, double eps, double step, bool maximize) {
  const char* op = "adagrad_step_";
  check_param(op, param);
  check_step(op, step);
  Array g = grad_of(op, param, grad);
  check_like(op, param, state_sum, "sum");
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* __restrict p = param.data<T>();
    const T* __restrict gp = g.data<T>();
    T* __restrict s = state_sum.data<T>();
    const T sgn = maximize ? T(-1) : T(1), wd = T(weight_decay), epsT = T(eps);
    const T nclr = T(-(lr / (1 + (step - 1) * lr_decay)));
    const bool has_wd = weight_decay != 0;
    parallel_chunks(n, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        T gi = sgn * gp[i];
        if (has_wd) gi = gi + wd * p[i];
        T si = s[i] + gi * gi;
        s[i] = si;
        p[i] = p[i] + nclr * (gi / (std::sqrt(si) + epsT));
      }
    });
  });
  param.bump_version();
  state_sum.bump_version();
}

// ----------------------------------------------------------------------------------------- Adadelta
void adadelta_step_(const Array& param, const Array& grad, const Array& square_avg,
                    const Array& acc_delta, double lr, double rho, double eps, double weight_decay,
                    bool maximize) {
  const char* op = "adadelta_step_";
  check_param(op, param);
  Array g = grad_of(op, param, grad);
  check_like(op, param, square_avg, "square_avg");
  check_like(op, param, acc_delta, "acc_delta");
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* __restrict p = param.data<T>();
    const T* __restrict gp = g.data<T>();
    T* __restrict sq = square_avg.data<T>();
    T* __restrict acc = acc_delta.data<T>();
    const T sgn = maximize ? T(-1) : T(1), wd = T(weight_decay), epsT = T(eps);
    const T r = T(rho), omr = T(1 - rho), nlr = T(-lr);
    const bool has_wd = weight_decay != 0;
    parallel_chunks(n, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        T gi = sgn * gp[i];
        if (has_wd) gi = gi + wd * p[i];
        T si = sq[i] * r + omr * gi * gi;
        sq[i] = si;
        T delta = std::sqrt(acc[i] + epsT) / std::sqrt(si + epsT) * gi;
        acc[i] = acc[i] * r + omr * delta * delta;
        p[i] = p[i] + nlr * delta;
      }
    });
  });
  param.bump_version();
  square_avg.bump_version();
  acc_delta.bump_version();
}

// -------------------------------------------------------------------------------------------- NAdam
void nadam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                 double lr, double beta1, double beta2, double eps, double weight_decay, double step,
                 double mu, double mu_next, double mu_product, bool decoupled, bool maximize) {
  const char* op = "nadam_step_";
  check_param(op, param);
  check_step(op, step);
  Array g = grad_of(op, param, grad);
  check_like(op, param, exp_avg, "exp_avg");
  check_like(op, param, exp_avg_sq, "exp_avg_sq");
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* __restrict p = param.data<T>();
    const T* __restrict gp = g.data<T>();
    T* __restrict m = exp_avg.data<T>();
    T* __restrict v = exp_avg_sq.data<T>();
    const T sgn = maximize ? T(-1) : T(1), wd = T(weight_decay), epsT = T(eps);
    const T w1 = T(1 - beta1), b2 = T(beta2), omb2 = T(1 - beta2);
    const T bc2 = T(1 - std::pow(beta2, step)), decay = T(1 - lr * weight_decay);
    const T cg = T(-lr * (1.0 - mu) / (1.0 - mu_product));
    const T cm = T(-lr * mu_next / (1.0 - mu_product * mu_next));
    const bool small = std::fabs(double(w1)) < 0.5, has_wd = weight_decay != 0;
    with_flag(has_wd && decoupled, [&](auto dec) {
      with_flag(has_wd && !decoupled, [&](auto coupled) {
        parallel_chunks(n, [=](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            T gi = sgn * gp[i];
            T pi = p[i];
            if constexpr (decltype(dec)::value) pi = pi * decay;
            if constexpr (decltype(coupled)::value) gi = gi + wd * pi;
            T mi = lerp(m[i], gi, w1, small);
            T vi = v[i] * b2 + omb2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            T denom = std::sqrt(vi / bc2) + epsT;
            pi = pi + cg * (gi / denom);
            p[i] = pi + cm * (mi / denom);
          }
        });
      });
    });
  });
  param.bump_version();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
}

// -------------------------------------------------------------------------------------------- RAdam
void radam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                 double lr, double beta1, double beta2, double eps, double weight_decay, double step,
                 bool decoupled, bool maximize) {
  const char* op = "radam_step_";
  check_param(op, param);
  check_step(op, step);
  Array g = grad_of(op, param, grad);
  check_like(op, param, exp_avg, "exp_avg");
  check_like(op, param, exp_avg_sq, "exp_avg_sq");
  const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
  const double rho_inf = 2 / (1 - beta2) - 1;
  const double rho_t = rho_inf - 2 * step * std::pow(beta2, step) / bc2;
  const bool rectify = rho_t > 5.0;
  const double rect =
      rectify ? std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : 0.0;
  const int64_t n = param.numel();
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    T* __restrict p = param.data<T>();
    const T* __restrict gp = g.data<T>();
    T* __restrict m = exp_avg.data<T>();
    T* __restrict v = exp_avg_sq.data<T>();
    const T sgn = maximize ? T(-1) : T(1), wd = T(weight_decay), epsT = T(eps);
    const T w1 = T(1 - beta1), b2 = T(beta2), omb2 = T(1 - beta2), decay = T(1 - lr * weight_decay);
    const T bc1T = T(bc1), lrT = T(lr), bc2s = T(std::sqrt(bc2)), rectT = T(rect);
    const bool small = std::fabs(double(w1)) < 0.5, has_wd = weight_decay != 0;
    with_flag(has_wd && decoupled, [&](auto dec) {
      with_flag(has_wd && !decoupled, [&](auto coupled) {
        with_flag(rectify, [&](auto rect_on) {
          parallel_chunks(n, [=](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
              T gi = sgn * gp[i];
              T pi = p[i];
              if constexpr (decltype(dec)::value) pi = pi * decay;
              if constexpr (decltype(coupled)::value) gi = gi + wd * pi;
              T mi = lerp(m[i], gi, w1, small);
              T vi = v[i] * b2 + omb2 * gi * gi;
              m[i] = mi;
              v[i] = vi;
              T upd = mi / bc1T * lrT;
              if constexpr (decltype(rect_on)::value) upd = upd * (bc2s / (std::sqrt(vi) + epsT)) * rectT;
              p[i] = pi - upd;
            }
          });
        });
      });
    });
  });
  param.bump_version();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
}

}  // namespace tocha::cpu::TOCHA_OPTIM_ISA
