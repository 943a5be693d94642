// Kernel bodies of the fused norms (contract in norm.h), compiled twice: norm.cpp (baseline,
// namespace generic) and norm_avx2.cpp (-mavx2 -mfma, namespace avx2); norm.cpp dispatches at run
// time. Include only after defining TOCHA_NORM_ISA.
#include "norm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

// ---- layer / RMS norm row kernels ----
// Row sums run in T on two 32-byte vectors (GCC vector extensions: 2 x 8 float lanes on AVX2, SSE pairs in
// the baseline build) in blocks of kBlock elements whose totals are added in double: float32 rows go
// at load speed, long rows keep O(kBlock / lanes) ulp error. Fixed order: identical for any thread count.
constexpr int64_t kBlock = 2048;
// Batch norm on (N, C): row slices, a function of N only (<= 16, >= 64 rows each), so the summation order
// -- and the bits -- never depend on the thread count. Each slice streams whole rows (the hardware prefetcher
// follows them) into per-channel partial sums. Measured (2000 x 512 fwd+bwd, alone / right after a torch
// step evicted the caches, 1 thread): per-channel column walks 11.6 ms forward alone; 64-channel blocks
// 1.13-1.19 / 1.88-2.05 ms; 16-32-channel blocks sized for L2 with software prefetch 2.19 / 2.83; one
// channel block per thread 0.91 / 1.40-1.57 (torch 1.45-1.48); row slices 0.92 / 1.59-1.81 -- and at 2 threads
// 0.49 / 0.85-0.95 ms against one channel block per thread's 0.66 / 1.10-1.36 (torch 0.82-0.96).
inline int64_t row_slices(int64_t N) { return std::max<int64_t>(1, std::min<int64_t>(16, N / 64)); }
// (internal inline helpers: the baseline build's note that 32-byte vectors change the ABI is moot)
#pragma GCC diagnostic ignored "-Wpsabi"
template <typename T> struct VecOf;   // (an attribute on an alias template would be dropped)
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(32))); };
template <typename T>
using VecT = typename VecOf<T>::type;
template <typename T>
inline VecT<T> vload(const T* p) { VecT<T> v; std::memcpy(&v, p, 32); return v; }
template <typename T>
inline T vtotal(VecT<T> a, VecT<T> b) {
  constexpr int W = 32 / sizeof(T);
  VecT<T> c = a + b;
  T h[W];
  std::memcpy(h, &c, 32);
  T t = T(0);
  for (int k = 0; k < W; ++k) t += h[k];
  return t;
}

// Σx over n values (double total of T block sums).
template <typename T>
inline double row_sum(const T* x, int64_t n) {
  constexpr int W = 32 / sizeof(T);
  double tot = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t e = std::min(n, b0 + kBlock);
    VecT<T> a0 = {}, a1 = {};
    int64_t i = b0;
    for (; i + 2 * W <= e; i += 2 * W) { a0 += vload(x + i); a1 += vload(x + i + W); }
    T t = vtotal<T>(a0, a1);
    for (; i < e; ++i) t += x[i];
    tot += (double)t;
  }
  return tot;
}

// Σ(x−c) and Σ(x−c)² (c = 0 for RMS norm).
template <typename T>
inline void row_shifted_sums(const T* x, int64_t n, T c, double& s1, double& s2) {
  constexpr int W = 32 / sizeof(T);
  s1 = s2 = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t e = std::min(n, b0 + kBlock);
    VecT<T> a0 = {}, a1 = {}, q0 = {}, q1 = {};
    int64_t i = b0;
    for (; i + 2 * W <= e; i += 2 * W) {
      VecT<T> d0 = vload(x + i) - c, d1 = vload(x + i + W) - c;
      a0 += d0; a1 += d1; q0 += d0 * d0; q1 += d1 * d1;
    }
    T ta = vtotal<T>(a0, a1), tq = vtotal<T>(q0, q1);
    for (; i < e; ++i) { T d = x[i] - c; ta += d; tq += d * d; }
    s1 += (double)ta; s2 += (double)tq;
  }
}

// Σĝ and Σĝ·(x−m), ĝ = g·w (w may be null).
template <typename T>
inline void row_grad_sums(const T* g, const T* x, const T* w, int64_t n, T m, double& sg, double& sgx) {
  constexpr int W = 32 / sizeof(T);
  sg = sgx = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t e = std::min(n, b0 + kBlock);
    VecT<T> a0 = {}, a1 = {}, q0 = {}, q1 = {};
    int64_t i = b0;
    for (; i + 2 * W <= e; i += 2 * W) {
      VecT<T> g0 = vload(g + i), g1 = vload(g + i + W);
      if (w) { g0 *= vload(w + i); g1 *= vload(w + i + W); }
      a0 += g0; a1 += g1;
      q0 += g0 * (vload(x + i) - m); q1 += g1 * (vload(x + i + W) - m);
    }
    T ta = vtotal<T>(a0, a1), tq = vtotal<T>(q0, q1);
    for (; i < e; ++i) { T gh = w ? g[i] * w[i] : g[i]; ta += gh; tq += gh * (x[i] - m); }
    sg += (double)ta; sgx += (double)tq;
  }
}

// One row of the layer-norm backward: o = s·(g·w − ma − (x−m)·mb) and the affine partials
// pw += g·(x−m)·s, pb += g (restrict pointers: the loop vectorises).
template <typename T>
inline void affine_row(const T* __restrict g, const T* __restrict x, const T* __restrict w, T* __restrict o,
                       T* __restrict pw, T* __restrict pb, int64_t n, T m, T s, T ma, T mb) {
  if (w) {
    for (int64_t d = 0; d < n; ++d) {
      const T xc = x[d] - m, gv = g[d];
      o[d] = s * (gv * w[d] - ma - xc * mb);
      pw[d] += gv * (xc * s);
      pb[d] += gv;
    }
  } else {
    for (int64_t d = 0; d < n; ++d) {
      const T xc = x[d] - m, gv = g[d];
      o[d] = s * (gv - ma - xc * mb);
      pw[d] += gv * (xc * s);
      pb[d] += gv;
    }
  }
}

// Rows per block of the weight/bias-gradient reduction: depends on R only (never on the thread count),
// so the per-block partial sums and their in-order total are the same for any number of threads.
inline int64_t affine_block_rows(int64_t R) { return std::max<int64_t>(16, (R + 63) / 64); }
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
    int nt = threads_for_size(x.numel());
    // Per channel: statistics from the shifted sums s1 = Σ(x−K), s2 = Σ(x−K)² (K = the channel's first
    // element), running buffers, and the affine constants applied by `normalize`.
    struct Affine { T sc, sh, mhi, mlo; };
    auto finish = [&](int64_t c, double K, double s1, double s2) -> Affine {
      double mean, var;
      if (training) {
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
      const T mhi = (T)mean;
      return {(T)((wp ? (double)wp[c] : 1.0) * inv), bp ? bp[c] : T(0), mhi, (T)(mean - (double)mhi)};
    };
    if (S == 1) {
      // (N, C) input (BatchNorm1d on features): each channel is a column. Fixed row slices (a function of N
      // only) each stream whole rows into per-channel partial sums; the partials are added in slice order,
      // then the rows are normalised slice by slice. Same bits for any thread count.
      const int64_t ns = row_slices(N);
      std::vector<double> Kc(C, 0.0), part(size_t(ns) * 2 * C, 0.0);
      std::vector<T> coef(4 * C);
      T *sc = coef.data(), *sh = sc + C, *mhi = sh + C, *mlo = mhi + C;
      if (training) {
        for (int64_t c = 0; c < C; ++c) Kc[c] = (double)xp[c];
        parallel_for(nt, ns, [&](int64_t sl) {
          double* __restrict s1 = part.data() + sl * 2 * C;
          double* __restrict s2 = s1 + C;
          const double* __restrict K = Kc.data();
          for (int64_t n = N * sl / ns; n < N * (sl + 1) / ns; ++n) {
            const T* __restrict xr = xp + n * C;
            for (int64_t c = 0; c < C; ++c) { double d = (double)xr[c] - K[c]; s1[c] += d; s2[c] += d * d; }
          }
        });
      }
      for (int64_t c = 0; c < C; ++c) {
        double s1 = 0, s2 = 0;
        for (int64_t sl = 0; sl < ns; ++sl) { s1 += part[sl * 2 * C + c]; s2 += part[sl * 2 * C + C + c]; }
        const Affine af = finish(c, Kc[c], s1, s2);
        sc[c] = af.sc; sh[c] = af.sh; mhi[c] = af.mhi; mlo[c] = af.mlo;
      }
      parallel_for(nt, ns, [&](int64_t sl) {
        for (int64_t n = N * sl / ns; n < N * (sl + 1) / ns; ++n) {
          const T* __restrict xr = xp + n * C;
          T* __restrict yr = yp + n * C;
          for (int64_t c = 0; c < C; ++c) yr[c] = ((xr[c] - mhi[c]) - mlo[c]) * sc[c] + sh[c];
        }
      });
    } else {
      parallel_for(nt, C, [&](int64_t c) {
        double K = 0, s1 = 0, s2 = 0;
        if (training) {  // one pass of shifted sums
          K = (double)xp[c * S];
          for (int64_t n = 0; n < N; ++n) shifted_sums(xp + (n * C + c) * S, S, K, s1, s2);
        }
        const Affine af = finish(c, K, s1, s2);
        for (int64_t n = 0; n < N; ++n) {
          const T* xr = xp + (n * C + c) * S; T* yr = yp + (n * C + c) * S;
          for (int64_t i = 0; i < S; ++i) yr[i] = ((xr[i] - af.mhi) - af.mlo) * af.sc + af.sh;
        }
      });
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
    int nt = threads_for_size(x.numel());
    // Per channel, from sg = Σg and sgx = Σg·(x−mean): the weight/bias gradients and gx's coefficients
    // gx = k·(g − a − (x−m)·b) (training) or k·g (eval).
    struct Coef { T k, a, b; };
    auto finish = [&](int64_t c, double sg, double sgx) -> Coef {
      const double invc = (double)ip[c];
      const double wc = wp ? (double)wp[c] : 1.0;
      gwp[c] = (T)(sgx * invc);
      gbp[c] = (T)sg;
      const T k = (T)(wc * invc);
      if (training && M > 0) return {k, (T)(sg / (double)M), (T)(sgx * invc * invc / (double)M)};
      return {k, T(0), T(0)};
    };
    const bool full = training && M > 0;
    if (S == 1) {  // (N, C): per-slice partial sums over whole rows, added in slice order, as in the forward
      const int64_t ns = row_slices(N);
      std::vector<double> part(size_t(ns) * 2 * C, 0.0);
      std::vector<T> coef(4 * C);
      T *m = coef.data(), *k = m + C, *a = k + C, *b = a + C;
      for (int64_t c = 0; c < C; ++c) m[c] = mp[c];
      parallel_for(nt, ns, [&](int64_t sl) {
        double* __restrict sg = part.data() + sl * 2 * C;
        double* __restrict sgx = sg + C;
        for (int64_t n = N * sl / ns; n < N * (sl + 1) / ns; ++n) {
          const T* __restrict gr = gp + n * C;
          const T* __restrict xr = xp + n * C;
          for (int64_t c = 0; c < C; ++c) { double gv = (double)gr[c]; sg[c] += gv; sgx[c] += gv * (double)(xr[c] - m[c]); }
        }
      });
      for (int64_t c = 0; c < C; ++c) {
        double sg = 0, sgx = 0;
        for (int64_t sl = 0; sl < ns; ++sl) { sg += part[sl * 2 * C + c]; sgx += part[sl * 2 * C + C + c]; }
        const Coef cf = finish(c, sg, sgx);
        k[c] = cf.k; a[c] = cf.a; b[c] = cf.b;
      }
      parallel_for(nt, ns, [&](int64_t sl) {
        for (int64_t n = N * sl / ns; n < N * (sl + 1) / ns; ++n) {
          const T* __restrict gr = gp + n * C;
          const T* __restrict xr = xp + n * C;
          T* __restrict o = gxp + n * C;
          if (full)
            for (int64_t c = 0; c < C; ++c) o[c] = k[c] * (gr[c] - a[c] - (xr[c] - m[c]) * b[c]);
          else
            for (int64_t c = 0; c < C; ++c) o[c] = k[c] * gr[c];
        }
      });
    } else {
      parallel_for(nt, C, [&](int64_t c) {
        const T m = mp[c];
        double sg = 0, sgx = 0;   // Σg, Σg·(x−mean)
        for (int64_t n = 0; n < N; ++n)
          grad_sums<T>(gp + (n * C + c) * S, xp + (n * C + c) * S, nullptr, S, m, sg, sgx);
        const Coef cf = finish(c, sg, sgx);
        for (int64_t n = 0; n < N; ++n) {
          const T* xr = xp + (n * C + c) * S; const T* gr = gp + (n * C + c) * S;
          T* o = gxp + (n * C + c) * S;
          if (full)
            for (int64_t i = 0; i < S; ++i) o[i] = cf.k * (gr[i] - cf.a - (xr[i] - m) * cf.b);
          else
            for (int64_t i = 0; i < S; ++i) o[i] = cf.k * gr[i];
        }
      });
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
    int nt = threads_for_size(x.numel());
    parallel_for(nt, R, [&](int64_t r) {
      const T* xr = xp + r * D; T* yr = yp + r * D;
      // two passes over the (cache-resident) row: the mean, then Σ(x−m)² with the rounding of m
      // corrected (Σ(x−m) term): no cancellation when |mean| >> std
      double m = rms ? 0.0 : row_sum(xr, D) / (double)D;
      double s1, s2;
      row_shifted_sums(xr, D, (T)m, s1, s2);
      double v;
      if (rms) {
        v = s2 / (double)D;
      } else {
        double dm = s1 / (double)D;
        m = (double)(T)m + dm;
        v = std::max(s2 / (double)D - dm * dm, 0.0);
      }
      const T mt = (T)m, mlo = (T)(m - (double)mt), st = (T)(1.0 / std::sqrt(v + eps));
      mp[r] = mt; rp[r] = st;
      // ((x − m_hi) − m_lo)·s: the hi/lo mean split keeps the mean's low bits when |mean| >> std
      if (wp && bp) {
        for (int64_t d = 0; d < D; ++d) yr[d] = ((xr[d] - mt) - mlo) * st * wp[d] + bp[d];
      } else if (wp) {
        for (int64_t d = 0; d < D; ++d) yr[d] = ((xr[d] - mt) - mlo) * st * wp[d];
      } else if (bp) {
        for (int64_t d = 0; d < D; ++d) yr[d] = ((xr[d] - mt) - mlo) * st + bp[d];
      } else {
        for (int64_t d = 0; d < D; ++d) yr[d] = ((xr[d] - mt) - mlo) * st;
      }
    });
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
  const int64_t RB = affine_block_rows(R), nblk = (R + RB - 1) / RB;
  TOCHA_DISPATCH_FLOAT(dt, T, op, {
    const T* xp = x.data<T>(); const T* gp = g.data<T>();
    const T* mp = mean.data<T>(); const T* rp = rstd.data<T>();
    const T* wp = w ? w->data<T>() : nullptr;
    T* gxp = gx.data<T>();
    // per row block: partial Σ_r g·x̂ and Σ_r g (2·D values), summed over blocks in order below
    std::vector<T> part((size_t)(nblk * 2 * D));
    T* pp = part.data();
    int nt = threads_for_size(x.numel());
    parallel_for(nt, nblk, [&](int64_t blk) {
      T* pw = pp + blk * 2 * D; T* pb = pw + D;
      for (int64_t d = 0; d < 2 * D; ++d) pw[d] = T(0);
      const int64_t r1 = std::min(R, (blk + 1) * RB);
      for (int64_t r = blk * RB; r < r1; ++r) {
        const T* xr = xp + r * D; const T* gr = gp + r * D; T* o = gxp + r * D;
        const T m = rms ? T(0) : mp[r], s = rp[r];
        double a, bsum;   // Σ ĝ, Σ ĝ·(x−m) with ĝ = g·w
        row_grad_sums<T>(gr, xr, wp, D, m, a, bsum);
        const T ma = rms ? T(0) : (T)(a / (double)D), mb = (T)(bsum * (double)s * (double)s / (double)D);
        // gx = s·(ĝ − mean(ĝ) − (x−m)·s²·mean(ĝ·(x−m))); the affine partials ride on the same pass
        affine_row<T>(gr, xr, wp, o, pw, pb, D, m, s, ma, mb);
      }
    });
    T* gwp = gw.data<T>(); T* gbp = gb.data<T>();
    const int ntr = nblk * D > 65536 ? get_num_threads() : 1;
    parallel_for(ntr, D, [&](int64_t d) {
      double sw = 0, sb = 0;
      for (int64_t blk = 0; blk < nblk; ++blk) { sw += (double)pp[blk * 2 * D + d]; sb += (double)pp[blk * 2 * D + D + d]; }
      gwp[d] = (T)sw; gbp[d] = (T)sb;
    });
  });
  return {gx, gw, gb};
}

}  // namespace tocha::cpu::TOCHA_NORM_ISA
