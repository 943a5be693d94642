// CUDA optimiser updates mirroring csrc/cpu/optim.cpp: SGD (momentum, dampening, nesterov, weight
// decay, maximize) and Adam/AdamW (amsgrad, decoupled weight decay), one fused elementwise pass per
// parameter, the same arithmetic per element as the CPU loop (PyTorch's: lerp for exp_avg,
// sqrt(v)/sqrt(1-β2^t) + eps). Parameter and state must be contiguous, same dtype and device; the
// gradient may be strided (made contiguous on the device first).
// NOT run yet: compiled only (no GPU was available when it was written); GPU parity tests in
// tests/test_cuda.py (test_optim_step_matches_cpu).
#include <cmath>

#include "common.cuh"

namespace tocha::cuda {
namespace {

void check_like(const char* op, const Array& p, const Array& a, const char* name, bool contiguous = true) {
  require_cuda(a, op);
  if (a.device() != p.device())
    throw std::runtime_error(std::string("[") + op + "] " + name + " is on " + a.device().str() +
                             " but the parameter is on " + p.device().str());
  if (a.shape != p.shape)
    throw ValueError(std::string("[") + op + "] " + name + " of shape " + shape_str(a.shape) +
                     " does not match the parameter's shape " + shape_str(p.shape));
  if (a.dtype != p.dtype)
    throw TypeError(std::string("[") + op + "] " + name + " has dtype " + dtype_name(a.dtype) +
                    " but the parameter has " + dtype_name(p.dtype));
  if (contiguous && !a.is_contiguous())
    throw ValueError(std::string("[") + op + "] " + name + " must be contiguous");
}

void check_param(const char* op, const Array& p) {
  require_cuda(p, op);
  require_float(p.dtype, op);
  if (!p.is_contiguous()) throw ValueError(std::string("[") + op + "] the parameter must be contiguous");
}

template <typename T>
__global__ void sgd_kernel(T* p, const T* g, T* buf, int64_t n, T sgn, T wd, T mu, T omd, T nlr, bool has_wd,
                           bool use_mom, bool nesterov, bool first) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    T gi = sgn * g[i];
    if (has_wd) gi = gi + wd * p[i];
    T d = gi;
    if (use_mom) {
      T bi = first ? gi : buf[i] * mu + omd * gi;
      buf[i] = bi;
      d = nesterov ? gi + mu * bi : bi;
    }
    p[i] = p[i] + nlr * d;
  }
}

template <typename T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, T sgn, T w1, bool small, T b2, T omb2,
                            T nstep, T bc2s, T eps, T wd, T decay, bool has_wd, bool decoupled) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    T gi = sgn * g[i];
    T pi = p[i];
    if (has_wd) {
      if (decoupled) pi = pi * decay;
      else gi = gi + wd * pi;
    }
    const T mo = m[i];
    T mi = small ? mo + w1 * (gi - mo) : gi - (gi - mo) * (T(1) - w1);  // PyTorch's lerp
    T vi = v[i] * b2 + omb2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if (vmax) {
      vi = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vi;
    }
    T denom = sqrt(vi) / bc2s + eps;
    p[i] = pi + nstep * (mi / denom);
  }
}

}  // namespace

void sgd_step_(const Array& param, const Array& grad, const std::optional<Array>& momentum_buffer, double lr,
               double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
               bool first_step) {
  const char* op = "sgd_step_";
  check_param(op, param);
  check_like(op, param, grad, "grad", false);
  const Array g = contiguous(grad);
  const bool use_mom = momentum != 0;
  Array buf;
  if (use_mom) {
    if (!momentum_buffer) throw ValueError("[sgd_step_] momentum_buffer is required by the chosen options");
    buf = *momentum_buffer;
    check_like(op, param, buf, "momentum_buffer");
  }
  const int64_t n = param.numel();
  if (n == 0) return;
  set_device_of(param, op);
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    sgd_kernel<T><<<grid_for(n), kThreads>>>(param.raw<T>(), g.raw<T>(), use_mom ? buf.raw<T>() : nullptr, n,
                                             maximize ? T(-1) : T(1), T(weight_decay), T(momentum),
                                             T(1 - dampening), T(-lr), weight_decay != 0, use_mom, nesterov,
                                             first_step);
  });
  TOCHA_CUDA_CHECK_LAUNCH(op);
  param.bump_version();
  if (use_mom) buf.bump_version();
}

void adam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                const std::optional<Array>& max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, double step, bool amsgrad, bool maximize, bool decoupled) {
  const char* op = "adam_step_";
  check_param(op, param);
  if (!(step >= 1))
    throw ValueError("[adam_step_] step must be >= 1 (the count after this update), got " + std::to_string(step));
  check_like(op, param, grad, "grad", false);
  const Array g = contiguous(grad);
  check_like(op, param, exp_avg, "exp_avg");
  check_like(op, param, exp_avg_sq, "exp_avg_sq");
  Array vmax;
  if (amsgrad) {
    if (!max_exp_avg_sq) throw ValueError("[adam_step_] max_exp_avg_sq is required by the chosen options");
    vmax = *max_exp_avg_sq;
    check_like(op, param, vmax, "max_exp_avg_sq");
  }
  const int64_t n = param.numel();
  if (n == 0) return;
  set_device_of(param, op);
  // scalars exactly as the CPU loop computes them (double on the host, then cast to T)
  const double bc1 = 1 - std::pow(beta1, step), bc2s = std::sqrt(1 - std::pow(beta2, step));
  TOCHA_DISPATCH_FLOAT(param.dtype, T, op, {
    const T w1 = T(1 - beta1);
    adam_kernel<T><<<grid_for(n), kThreads>>>(
        param.raw<T>(), g.raw<T>(), exp_avg.raw<T>(), exp_avg_sq.raw<T>(), amsgrad ? vmax.raw<T>() : nullptr, n,
        maximize ? T(-1) : T(1), w1, std::fabs(double(w1)) < 0.5, T(beta2), T(1 - beta2), T(-(lr / bc1)), T(bc2s),
        T(eps), T(weight_decay), T(1 - lr * weight_decay), weight_decay != 0, decoupled);
  });
  TOCHA_CUDA_CHECK_LAUNCH(op);
  param.bump_version();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
  if (amsgrad) vmax.bump_version();
}

}  // namespace tocha::cuda
