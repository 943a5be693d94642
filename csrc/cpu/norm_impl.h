// Kernel bodies of the fused norms (contract in norm.h), compiled twice: norm.cpp (baseline,
// namespace generic) and norm_avx2.cpp (-mavx2 -mfma, namespace avx2); norm.cpp dispatches at run
// time. Include only after defining TOCHA_NORM_ISA.
#include "norm.h"

#include <cmath>
#include <string>
#include <vector>

#include "../core/parallel.h"

namespace tocha::cpu::TOCHA_NORM_ISA {
namespace {

void check_x(const Array& x, const char* op) {
  if (x.device().type != DeviceType::CPU)
    throw NotImplementedError(std::string("[") + op + "] expected a CPU tensor, got " + x.device().str() +
                              " (no CUDA kernel for this op yet)");
  if (!is_floating(x.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(x.dtype));
}

// A per-channel / per-column vector: 1-d of length n, same dtype as x, made contiguous.
Array vec(const std::optional<Array>& v, int64_t n, DType dt, const char* op, const char* what) {
  const Array& a = *v;
  if (a.device().type != DeviceType::CPU)
    throw std::runtime_error(std::string("[") + op + "] " + what + " must be a CPU tensor");
  if (a.numel() != n || a.ndim() > 1)
    throw ValueError(std::string("[") + op + "] " + what + " must have shape (" + std::to_string(n) +
                     ",), got " + shape_str(a.shape));
  if (a.dtype != dt)
    throw TypeError(std::string("[") + op + "] " + what + " dtype " + dtype_name(a.dtype) +
                    " != input dtype " + dtype_name(dt));
  return a.contiguous();
}

// Σ(x−K) and Σ(x−K)² over n contiguous values into s1, s2 (added). Eight independent double lanes
// break the add-latency chain and let GCC vectorise; the combination order is fixed, so results do
// not depend on the thread count.
template <typename T>
inline void shifted_sums(const T* x, int64_t n, double K, double& s1, double& s2) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) { double d = (double)x[i + k] - K; a[k] += d; b[k] += d * d; }
  for (; i < n; ++i) { double d = (double)x[i] - K; a[0] += d; b[0] += d * d; }
  s1 += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  s2 += ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

// Σĝ and Σĝ·(x−m) with ĝ = g·w (w may be null) over n values, same lane scheme.
template <typename T>
inline void grad_sums(const T* g, const T* x, const T* w, int64_t n, T m, double& sg, double& sgx) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  if (w) {
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) {
        double gh = (double)g[i + k] * (double)w[i + k];
        a[k] += gh; b[k] += gh * (double)(x[i + k] - m);
      }
    for (; i < n; ++i) { double gh = (double)g[i] * (double)w[i]; a[0] += gh; b[0] += gh * (double)(x[i] - m); }
  } else {
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) { double gv = (double)g[i + k]; a[k] += gv; b[k] += gv * (double)(x[i + k] - m); }
    for (; i < n; ++i) { double gv = (double)g[i]; a[0] += gv; b[0] += gv * (double)(x[i] - m); }
  }
  sg += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  sgx += ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

// Column-block reduction of gw[d] = Σ_r g[r,d]·x̂[r,d], gb[d] = Σ_r g[r,d] (fixed row order).
template <typename T>
void reduce_affine_grads(int64_t R, int64_t D, const T* g, const T* x, const T* mean, const T* rstd,
                         T* gw, T* gb, bool rms) {
  constexpr int64_t kCols = 256;
  int64_t nblk = (D + kCols - 1) / kCols;
  int nt = R * D > 32768 ? get_num_threads() : 1;
  TOCHA_OMP_PARALLEL_FOR(nt)
  for (int64_t b = 0; b < nblk; ++b) {
    int64_t lo = b * kCols, hi = std::min(D, lo + kCols);
    double aw[kCols], ab[kCols];
    for (int64_t d = 0; d < hi - lo; ++d) aw[d] = ab[d] = 0;
    for (int64_t r = 0; r < R; ++r) {
      const T* gr = g + r * D; const T* xr = x + r * D;
      T m = rms ? T(0) : mean[r], s = rstd[r];
      for (int64_t d = lo; d < hi; ++d) {
        aw[d - lo] += (double)(gr[d] * ((xr[d] - m) * s));
        ab[d - lo] += (double)gr[d];
      }
    }
    for (int64_t d = lo; d < hi; ++d) {
      if (gw) gw[d] = (T)aw[d - lo];
      if (gb) gb[d] = (T)ab[d - lo];
    }
  }
}

}  // namespace

std::tuple<Array, Array, Array> batch_norm_forward(const Array& x_, const std::optional<Array>& weight,
                                                   const std::optional<Array>& bias,
                                                   const std::optional<Array>& running_mean,
                                                   const std::optional<Array>& running_var,
                                                   bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_x(x_, op);
  if (x_.ndim() < 2)
    throw ValueError("[batch_norm] expected input of at least 2 dims (N, C, *), got " + shape_str(x_.shape));
  const int64_t N = x_.shape[0], C = x_.shape[1];
  const int64_t S = C && N ? x_.numel() / (N * C) : 0;
  const int64_t M = N * S;
  DType dt = x_.dtype;
  Array x = x_.contiguous();
  Array y = Array::empty(x.shape, dt);
  Array smean = Array::empty({C}, dt), sinv = Array::empty({C}, dt);
  std::optional<Array> w, b, rm, rv;
  if (weight) w = vec(weight, C, dt, op, "weight");
  if (bias) b = vec(bias, C, dt, op, "bias");
  if (running_mean) rm = vec(running_mean, C, dt, op, "running_mean");
  if (running_var) rv = vec(running_var, C, dt, op, "running_var");
  if (!training && (!rm || !rv))
    throw ValueError("[batch_norm] running_mean and running_var are required in eval mode");
  if (training && M < 1) throw ValueError("[batch_norm] empty batch in training mode");
  // the running buffers must be updated where they live (not in a copy)
  if (training && ((rm && rm->data_ptr() != running_mean->data_ptr()) ||
                   (rv && rv->data_ptr() != running_var->data_ptr())))
    throw ValueError("[batch_norm] running_mean/running_var must be contiguous");
  TOCHA_DISPATCH_FLOAT(dt, T, op, {
    const T* xp = x.data<T>(); T* yp = y.data<T>();
    T* mp = smean.data<T>(); T* ip = sinv.data<T>();
    const T* wp = w ? w->data<T>() : nullptr; const T* bp = b ? b->data<T>() : nullptr;
    T* rmp = rm ? rm->data<T>() : nullptr; T* rvp = rv ? rv->data<T>() : nullptr;
    int nt = x.numel() > 32768 ? get_num_threads() : 1;
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t c = 0; c < C; ++c) {
      double mean, var;
      if (training) {
        // one pass of shifted sums: Σ(x−K), Σ(x−K)² with K the channel's first element
        double K = (double)xp[c * S], s1 = 0, s2 = 0;
        for (int64_t n = 0; n < N; ++n) shifted_sums(xp + (n * C + c) * S, S, K, s1, s2);
        double dm = s1 / (double)M;
        mean = K + dm;
        var = std::max(s2 / (double)M - dm * dm, 0.0);
        if (rmp) rmp[c] = (T)((1 - momentum) * (double)rmp[c] + momentum * mean);
        if (rvp) rvp[c] = (T)((1 - momentum) * (double)rvp[c] +
                              momentum * (M > 1 ? var * (double)M / (double)(M - 1) : var));
      } else {
        mean = (double)rmp[c];
        var = (double)rvp[c];
      }
      double inv = 1.0 / std::sqrt(var + eps);
      mp[c] = (T)mean; ip[c] = (T)inv;
      // ((x − mean_hi) − mean_lo)·scale + b, not x·scale + shift: the latter cancels
      // catastrophically when |mean| >> std in float32; the hi/lo split keeps the mean's low bits
      const T sc = (T)((wp ? (double)wp[c] : 1.0) * inv), sh = bp ? bp[c] : T(0);
      const T mhi = (T)mean, mlo = (T)(mean - (double)mhi);
      for (int64_t n = 0; n < N; ++n) {
        const T* xr = xp + (n * C + c) * S; T* yr = yp + (n * C + c) * S;
        for (int64_t i = 0; i < S; ++i) yr[i] = ((xr[i] - mhi) - mlo) * sc + sh;
      }
    }
  });
  if (training) {
    if (rm) running_mean->bump_version();
    if (rv) running_var->bump_version();
  }
  return {y, smean, sinv};
}

std::tuple<Array, Array, Array> batch_norm_backward(const Array& grad_, const Array& x_,
                                                    const std::optional<Array>& weight,
                                                    const Array& save_mean, const Array& save_invstd,
                                                    bool training) {
  const char* op = "batch_norm_backward";
  check_x(x_, op);
  if (x_.ndim() < 2 || grad_.shape != x_.shape)
    throw ValueError("[batch_norm_backward] grad shape " + shape_str(grad_.shape) + " != input shape " +
                     shape_str(x_.shape));
  const int64_t N = x_.shape[0], C = x_.shape[1];
  const int64_t S = C && N ? x_.numel() / (N * C) : 0;
  const int64_t M = N * S;
  DType dt = x_.dtype;
  Array x = x_.contiguous(), g = grad_.astype(dt).contiguous();
  Array mean = vec(save_mean, C, dt, op, "save_mean"), inv = vec(save_invstd, C, dt, op, "save_invstd");
  std::optional<Array> w;
  if (weight) w = vec(weight, C, dt, op, "weight");
  Array gx = Array::empty(x.shape, dt), gw = Array::empty({C}, dt), gb = Array::empty({C}, dt);
  TOCHA_DISPATCH_FLOAT(dt, T, op, {
    const T* xp = x.data<T>(); const T* gp = g.data<T>();
    const T* mp = mean.data<T>(); const T* ip = inv.data<T>();
    const T* wp = w ? w->data<T>() : nullptr;
    T* gxp = gx.data<T>(); T* gwp = gw.data<T>(); T* gbp = gb.data<T>();
    int nt = x.numel() > 32768 ? get_num_threads() : 1;
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t c = 0; c < C; ++c) {
      const T m = mp[c];
      double sg = 0, sgx = 0;   // Σg, Σg·(x−mean)
      for (int64_t n = 0; n < N; ++n)
        grad_sums<T>(gp + (n * C + c) * S, xp + (n * C + c) * S, nullptr, S, m, sg, sgx);
      const double invc = (double)ip[c];
      const double wc = wp ? (double)wp[c] : 1.0;
      gwp[c] = (T)(sgx * invc);
      gbp[c] = (T)sg;
      const T k = (T)(wc * invc);
      if (training && M > 0) {
        // gx = k·(g − Σg/M − (x−mean)·invstd²·Σg(x−mean)/M)
        const T a = (T)(sg / (double)M), b = (T)(sgx * invc * invc / (double)M);
        for (int64_t n = 0; n < N; ++n) {
          const T* xr = xp + (n * C + c) * S; const T* gr = gp + (n * C + c) * S;
          T* o = gxp + (n * C + c) * S;
          for (int64_t i = 0; i < S; ++i) o[i] = k * (gr[i] - a - (xr[i] - m) * b);
        }
      } else {
        for (int64_t n = 0; n < N; ++n) {
          const T* gr = gp + (n * C + c) * S; T* o = gxp + (n * C + c) * S;
          for (int64_t i = 0; i < S; ++i) o[i] = k * gr[i];
        }
      }
    }
  });
  return {gx, gw, gb};
}

std::tuple<Array, Array, Array> layer_norm_forward(const Array& x_, const std::optional<Array>& weight,
                                                   const std::optional<Array>& bias, int64_t D,
                                                   double eps, bool rms) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  check_x(x_, op);
  if (D < 1 || x_.numel() % D != 0)
    throw ValueError(std::string("[") + op + "] normalized size " + std::to_string(D) +
                     " does not divide input shape " + shape_str(x_.shape));
  const int64_t R = x_.numel() / D;
  DType dt = x_.dtype;
  Array x = x_.contiguous();
  Array y = Array::empty(x.shape, dt), mean = Array::empty({R}, dt), rstd = Array::empty({R}, dt);
  std::optional<Array> w, b;
  if (weight) w = vec(weight, D, dt, op, "weight");
  if (bias) b = vec(bias, D, dt, op, "bias");
  TOCHA_DISPATCH_FLOAT(dt, T, op, {
    const T* xp = x.data<T>(); T* yp = y.data<T>(); T* mp = mean.data<T>(); T* rp = rstd.data<T>();
    const T* wp = w ? w->data<T>() : nullptr; const T* bp = b ? b->data<T>() : nullptr;
    int nt = x.numel() > 32768 ? get_num_threads() : 1;
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = xp + r * D; T* yr = yp + r * D;
      double m = 0, v;
      if (rms) {
        double s1 = 0, s2 = 0;
        shifted_sums(xr, D, 0.0, s1, s2);
        v = s2 / (double)D;
      } else {
        double K = (double)xr[0], s1 = 0, s2 = 0;
        shifted_sums(xr, D, K, s1, s2);
        double dm = s1 / (double)D;
        m = K + dm;
        v = std::max(s2 / (double)D - dm * dm, 0.0);
      }
      T mt = (T)m, mlo = (T)(m - (double)mt), st = (T)(1.0 / std::sqrt(v + eps));
      mp[r] = mt; rp[r] = st;
      for (int64_t d = 0; d < D; ++d) {
        T h = ((xr[d] - mt) - mlo) * st;   // hi/lo mean split: accurate when |mean| >> std
        if (wp) h *= wp[d];
        if (bp) h += bp[d];
        yr[d] = h;
      }
    }
  });
  return {y, mean, rstd};
}

std::tuple<Array, Array, Array> layer_norm_backward(const Array& grad_, const Array& x_,
                                                    const std::optional<Array>& weight,
                                                    const Array& mean_, const Array& rstd_, int64_t D,
                                                    bool rms) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  check_x(x_, op);
  if (grad_.shape != x_.shape)
    throw ValueError(std::string("[") + op + "] grad shape " + shape_str(grad_.shape) +
                     " != input shape " + shape_str(x_.shape));
  if (D < 1 || x_.numel() % D != 0)
    throw ValueError(std::string("[") + op + "] bad normalized size " + std::to_string(D));
  const int64_t R = x_.numel() / D;
  DType dt = x_.dtype;
  Array x = x_.contiguous(), g = grad_.astype(dt).contiguous();
  Array mean = vec(mean_, R, dt, op, "mean"), rstd = vec(rstd_, R, dt, op, "rstd");
  std::optional<Array> w;
  if (weight) w = vec(weight, D, dt, op, "weight");
  Array gx = Array::empty(x.shape, dt), gw = Array::empty({D}, dt), gb = Array::empty({D}, dt);
  TOCHA_DISPATCH_FLOAT(dt, T, op, {
    const T* xp = x.data<T>(); const T* gp = g.data<T>();
    const T* mp = mean.data<T>(); const T* rp = rstd.data<T>();
    const T* wp = w ? w->data<T>() : nullptr;
    T* gxp = gx.data<T>();
    int nt = x.numel() > 32768 ? get_num_threads() : 1;
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = xp + r * D; const T* gr = gp + r * D; T* o = gxp + r * D;
      const T m = rms ? T(0) : mp[r], s = rp[r];
      double a = 0, bsum = 0;   // Σ ĝ, Σ ĝ·x̂ with ĝ = g·w
      grad_sums<T>(gr, xr, wp, D, m, a, bsum);
      bsum *= (double)s;
      const T ma = rms ? T(0) : (T)(a / (double)D), mb = (T)(bsum / (double)D);
      for (int64_t d = 0; d < D; ++d) {
        T gh = wp ? gr[d] * wp[d] : gr[d];
        o[d] = s * (gh - ma - (xr[d] - m) * s * mb);
      }
    }
    reduce_affine_grads<T>(R, D, gp, xp, mp, rp, gw.data<T>(), gb.data<T>(), rms);
  });
  return {gx, gw, gb};
}

}  // namespace tocha::cpu::TOCHA_NORM_ISA
