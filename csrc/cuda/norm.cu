// CUDA layer norm / RMS norm forward and backward, mirroring cpu::layer_norm_forward/backward
// (csrc/cpu/norm_impl.h): x viewed as (R, D) rows, weight/bias (D), outputs y, mean (R), rstd (R);
// backward -> (gx, gweight (D), gbias (D)).
// Algorithm: one block per row; row statistics are shifted sums (shift K = x[r,0], as the CPU) in
// double through a fixed shared-memory tree, so results are deterministic (no float atomics). The
// weight/bias gradients are column reductions over rows in a fixed row order (one thread per column,
// double accumulators), also deterministic. float32 and float64.
// NOT run yet: compiled only (no GPU was available when it was written); GPU parity test in
// tests/test_cuda.py (test_layer_norm_matches_cpu).
#include <cmath>

#include "common.cuh"

namespace tocha::cuda {
namespace {

constexpr int kNormThreads = 256;

// Sum of two doubles across the block (fixed tree: deterministic); every thread gets the result.
__device__ void block_sum2(double& a, double& b, double* sa, double* sb) {
  const int t = threadIdx.x;
  sa[t] = a;
  sb[t] = b;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) {
      sa[t] += sa[t + s];
      sb[t] += sb[t + s];
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
  __syncthreads();
}

template <typename T>
__global__ void ln_forward_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t D, double eps,
                                  bool rms) {
  __shared__ double sa[kNormThreads], sb[kNormThreads];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * D;
  T* yr = y + r * D;
  const double K = rms ? 0.0 : (double)xr[0];
  double s1 = 0, s2 = 0;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const double v = (double)xr[d] - K;
    s1 += v;
    s2 += v * v;
  }
  block_sum2(s1, s2, sa, sb);
  double m = 0, var;
  if (rms) {
    var = s2 / (double)D;
  } else {
    const double dm = s1 / (double)D;
    m = K + dm;
    var = fmax(s2 / (double)D - dm * dm, 0.0);
  }
  const T mt = (T)m, mlo = (T)(m - (double)mt), st = (T)(1.0 / sqrt(var + eps));
  if (threadIdx.x == 0) {
    mean[r] = mt;
    rstd[r] = st;
  }
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    T h = ((xr[d] - mt) - mlo) * st;  // hi/lo mean split, as the CPU
    if (w) h *= w[d];
    if (b) h += b[d];
    yr[d] = h;
  }
}

template <typename T>
__global__ void ln_backward_rows_kernel(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* gx,
                                        int64_t D, bool rms) {
  __shared__ double sa[kNormThreads], sb[kNormThreads];
  const int64_t r = blockIdx.x;
  const T* gr = g + r * D;
  const T* xr = x + r * D;
  T* o = gx + r * D;
  const T m = rms ? T(0) : mean[r], s = rstd[r];
  double a = 0, bs = 0;  // Σ ĝ, Σ ĝ·(x−m) with ĝ = g·w
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const double gh = w ? (double)gr[d] * (double)w[d] : (double)gr[d];
    a += gh;
    bs += gh * (double)(xr[d] - m);
  }
  block_sum2(a, bs, sa, sb);
  bs *= (double)s;
  const T ma = rms ? T(0) : (T)(a / (double)D), mb = (T)(bs / (double)D);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const T gh = w ? gr[d] * w[d] : gr[d];
    o[d] = s * (gh - ma - (xr[d] - m) * s * mb);
  }
}

template <typename T>
__global__ void ln_backward_affine_kernel(const T* g, const T* x, const T* mean, const T* rstd, T* gw, T* gb,
                                          int64_t R, int64_t D, bool rms) {
  const int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (d >= D) return;
  double aw = 0, ab = 0;
  for (int64_t r = 0; r < R; ++r) {  // fixed row order: deterministic; coalesced across threads
    const T m = rms ? T(0) : mean[r], s = rstd[r];
    const T gv = g[r * D + d];
    aw += (double)(gv * ((x[r * D + d] - m) * s));
    ab += (double)gv;
  }
  gw[d] = (T)aw;
  gb[d] = (T)ab;
}

Array vec_of(const std::optional<Array>& v, int64_t n, const Array& x, const char* op, const char* what) {
  const Array& a = *v;
  if (a.device() != x.device())
    throw std::runtime_error(std::string("[") + op + "] " + what + " is on " + a.device().str() + " but the input is on " +
                             x.device().str());
  if (a.numel() != n || a.ndim() > 1)
    throw ValueError(std::string("[") + op + "] " + what + " must have shape (" + std::to_string(n) + ",), got " +
                     shape_str(a.shape));
  if (a.dtype != x.dtype)
    throw TypeError(std::string("[") + op + "] " + what + " dtype " + dtype_name(a.dtype) + " != input dtype " +
                    dtype_name(x.dtype));
  return contiguous(a);
}

void check_rows(const Array& x, int64_t D, const char* op) {
  require_cuda(x, op);
  require_float(x.dtype, op);
  if (D < 1 || x.numel() % D != 0)
    throw ValueError(std::string("[") + op + "] normalized size " + std::to_string(D) + " does not divide input shape " +
                     shape_str(x.shape));
  if (x.numel() / D > 2147483647LL)
    throw std::runtime_error(std::string("[") + op + "] more than 2^31-1 rows is not supported on CUDA");
}

}  // namespace

std::tuple<Array, Array, Array> layer_norm_forward(const Array& x_, const std::optional<Array>& weight,
                                                   const std::optional<Array>& bias, int64_t D, double eps, bool rms) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  check_rows(x_, D, op);
  const int64_t R = x_.numel() / D;
  const Array x = contiguous(x_);
  Array y = Array::empty(x.shape, x.dtype, x.device()), mean = Array::empty({R}, x.dtype, x.device()),
        rstd = Array::empty({R}, x.dtype, x.device());
  std::optional<Array> w, b;
  if (weight) w = vec_of(weight, D, x, op, "weight");
  if (bias) b = vec_of(bias, D, x, op, "bias");
  if (R == 0) return {y, mean, rstd};
  set_device_of(x, op);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    ln_forward_kernel<T><<<(unsigned)R, kNormThreads>>>(x.raw<T>(), w ? w->raw<T>() : nullptr,
                                                        b ? b->raw<T>() : nullptr, y.raw<T>(), mean.raw<T>(),
                                                        rstd.raw<T>(), D, eps, rms);
  });
  TOCHA_CUDA_CHECK_LAUNCH(op);
  return {y, mean, rstd};
}

std::tuple<Array, Array, Array> layer_norm_backward(const Array& grad_, const Array& x_,
                                                    const std::optional<Array>& weight, const Array& mean_,
                                                    const Array& rstd_, int64_t D, bool rms) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  check_rows(x_, D, op);
  require_cuda(grad_, op);
  if (grad_.shape != x_.shape)
    throw ValueError(std::string("[") + op + "] grad shape " + shape_str(grad_.shape) + " != input shape " +
                     shape_str(x_.shape));
  const int64_t R = x_.numel() / D;
  const Array x = contiguous(x_), g = contiguous(astype(grad_, x_.dtype));
  const Array mean = vec_of(mean_, R, x, op, "mean"), rstd = vec_of(rstd_, R, x, op, "rstd");
  std::optional<Array> w;
  if (weight) w = vec_of(weight, D, x, op, "weight");
  Array gx = Array::empty(x.shape, x.dtype, x.device()), gw = Array::empty({D}, x.dtype, x.device()),
        gb = Array::empty({D}, x.dtype, x.device());
  set_device_of(x, op);
  if (R == 0) {
    fill_(gw, 0.0);
    fill_(gb, 0.0);
    return {gx, gw, gb};
  }
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    ln_backward_rows_kernel<T><<<(unsigned)R, kNormThreads>>>(g.raw<T>(), x.raw<T>(), w ? w->raw<T>() : nullptr,
                                                              mean.raw<T>(), rstd.raw<T>(), gx.raw<T>(), D, rms);
    TOCHA_CUDA_CHECK_LAUNCH(op);
    ln_backward_affine_kernel<T><<<(unsigned)((D + kThreads - 1) / kThreads), kThreads>>>(
        g.raw<T>(), x.raw<T>(), mean.raw<T>(), rstd.raw<T>(), gw.raw<T>(), gb.raw<T>(), R, D, rms);
  });
  TOCHA_CUDA_CHECK_LAUNCH(op);
  return {gx, gw, gb};
}

}  // namespace tocha::cuda
