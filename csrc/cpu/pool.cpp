// pool.cpp -- max / average / adaptive pooling and 2-d padding on CPU (float32, float64), forward + backward.
//   x (P, H, W) with P = all leading dims (N*C) -> y (P, OH, OW); indices are int64 flat positions ih*W + iw
//   inside each plane (PyTorch's convention), so max_pool2d_backward is a per-plane scatter.
// Window rules follow PyTorch exactly: pooling output size with ceil_mode (a window may not start in the
// right padding), max ignores padded cells and propagates NaN, ties keep the first maximum; avg_pool's
// divisor is divisor_override, else the padded window size (count_include_pad) or the valid cell count;
// adaptive windows are [floor(o*I/O), ceil((o+1)*I/O)).
// Threads: OpenMP over planes; each plane (forward and backward) is owned by one thread, so results do not
// depend on the thread count and backward scatters need no atomics.
// max_pool2d's plane kernel lives in pool_impl.h, built twice (baseline and AVX2, pool_avx2.cpp) and chosen
// by cpu_has_avx2(), with a dedicated 2x2 / stride 2 path (shuffles split even/odd columns). 2x2 forward,
// 1 thread, min of 30 (EPYC Zen 4), per-window scan with a data-dependent branch -> row-wise selects ->
// 2x2 path: (64,64,24,24) 11.3 -> 4.8 -> 0.83 ms; the MNIST example's (64,16,28,28) 3.8 -> 1.1 -> 0.35 ms
// and (64,32,14,14) 1.96 -> 1.10 -> 0.30 ms (7-wide rows: all tail for the generic vector loop).
// Measured speed: see benchmarks/bench_conv.py (README table).
#include "pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/parallel.h"
#include "gemm.h"  // cpu_has_avx2
#define TOCHA_POOL_ISA generic
#include "pool_impl.h"

namespace tocha::cpu {
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 {  // pool_avx2.cpp
template <typename T, bool Backward>
void avg_pool_planes(const T* in, T* out, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                     const PoolParams& p, const T* dv, int nt);
template <typename T>
void max_pool_planes(const T* x, int64_t P, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW,
                     T* y, int64_t* idx, int nt);
}  // namespace avx2
#endif

namespace {
template <typename T>
void max_pool_planes_isa(const T* x, int64_t P, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW,
                         T* y, int64_t* idx, int nt) {
#if defined(__x86_64__) || defined(_M_X64)
  if (cpu_has_avx2()) return avx2::max_pool_planes<T>(x, P, H, W, p, OH, OW, y, idx, nt);
#endif
  generic::max_pool_planes<T>(x, P, H, W, p, OH, OW, y, idx, nt);
}
}  // namespace

namespace {

std::string hw(int64_t a, int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; }

void check_planes(const Array& x, const char* op, bool any_dtype = false) {
  if (x.ndim() < 2)
    throw ValueError(std::string("[") + op + "] expected an input with at least 2 dims (.., H, W), got shape " +
                     shape_str(x.shape));
  if (!any_dtype && !is_floating(x.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(x.dtype));
}

Shape with_hw(const Shape& s, int64_t h, int64_t w) {
  Shape r(s.begin(), s.end() - 2);
  r.push_back(h);
  r.push_back(w);
  return r;
}

int64_t planes(const Shape& s) {
  int64_t p = 1;
  for (size_t i = 0; i + 2 < s.size(); ++i) p *= s[i];
  return p;
}

void check_pool_params(const PoolParams& p, const char* op, bool avg) {
  if (p.kh <= 0 || p.kw <= 0)
    throw ValueError(std::string("[") + op + "] kernel_size must be positive, got " + hw(p.kh, p.kw));
  if (p.sh <= 0 || p.sw <= 0)
    throw ValueError(std::string("[") + op + "] stride must be positive, got " + hw(p.sh, p.sw));
  if (p.dh <= 0 || p.dw <= 0)
    throw ValueError(std::string("[") + op + "] dilation must be positive, got " + hw(p.dh, p.dw));
  if (p.ph < 0 || p.pw < 0)
    throw ValueError(std::string("[") + op + "] padding must be non-negative, got " + hw(p.ph, p.pw));
  if (p.ph > p.kh / 2 || p.pw > p.kw / 2)
    throw ValueError(std::string("[") + op + "] pad should be at most half of kernel size, but got pad=" +
                     hw(p.ph, p.pw) + " and kernel_size=" + hw(p.kh, p.kw));
  (void)avg;
}

inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, const char* op) {
  int64_t o = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  if (o < 1)
    throw ValueError(std::string("[") + op + "] given input size " + std::to_string(in) + ", kernel " +
                     std::to_string(k) + ", stride " + std::to_string(s) + ", padding " + std::to_string(p) +
                     ", dilation " + std::to_string(d) + ": calculated output size " + std::to_string(o) +
                     " is too small (kernel larger than the padded input?)");
  return o;
}

std::pair<Array, Array> max_pool2d_forward(const Array& x_, const PoolParams& p) {
  const char* op = "max_pool2d";
  check_planes(x_, op);
  check_pool_params(p, op, false);
  const int64_t H = x_.shape[x_.ndim() - 2], W = x_.shape[x_.ndim() - 1];
  const int64_t OH = pool_out_size(H, p.kh, p.sh, p.ph, p.dh, p.ceil_mode, op);
  const int64_t OW = pool_out_size(W, p.kw, p.sw, p.pw, p.dw, p.ceil_mode, op);
  Array x = x_.contiguous();
  const int64_t P = planes(x.shape);
  Array y = Array::empty(with_hw(x.shape, OH, OW), x.dtype);
  Array idx = Array::empty(with_hw(x.shape, OH, OW), DType::Int64);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    int64_t* ip = idx.data<int64_t>();
    max_pool_planes_isa<T>(xp, P, H, W, p, OH, OW, yp, ip, threads_for_size(P * H * W));
  });
  return {y, idx};
}

Array max_pool2d_backward(const Array& gy_, const Array& idx_, int64_t H, int64_t W) {
  const char* op = "max_pool2d_backward";
  check_planes(gy_, op);
  if (idx_.dtype != DType::Int64 || idx_.shape != gy_.shape)
    throw ValueError("[max_pool2d_backward] indices must be int64 with the shape of grad_output " +
                     shape_str(gy_.shape) + ", got " + shape_str(idx_.shape));
  Array gy = gy_.contiguous(), idx = idx_.contiguous();
  const int64_t OH = gy.shape[gy.ndim() - 2], OW = gy.shape[gy.ndim() - 1];
  const int64_t P = planes(gy.shape), HW = H * W;
  Array dx = Array::empty(with_hw(gy.shape, H, W), gy.dtype);  // zeroed plane by plane by its thread
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, op, {
    const T* g = gy.data<T>();
    const int64_t* ip = idx.data<int64_t>();
    T* d = dx.data<T>();
    bool bad = false;
    const int nt = threads_for_size(P * H * W);
    parallel_for(nt, P, [&](int64_t pl) {
      T* dp = d + pl * HW;
      std::fill(dp, dp + HW, T(0));
      for (int64_t o = 0; o < OH * OW; ++o) {
        const int64_t k = ip[pl * OH * OW + o];
        if (k < 0 || k >= HW) {
          bad = true;
          continue;
        }
        dp[k] += g[pl * OH * OW + o];
      }
    });
    if (bad) throw IndexError("[max_pool2d_backward] index out of range of the input plane " + hw(H, W));
  });
  return dx;
}

namespace {
// The divisor of every output window (OH x OW, shared by all planes): divisor_override, else the window
// clipped to the padded plane (count_include_pad) or the number of its cells inside the plane; 0 for a
// window with no cell inside the plane (its output is 0, as PyTorch's).
template <typename T>
std::vector<T> avg_divisors(int64_t H, int64_t W, int64_t OH, int64_t OW, const PoolParams& p, bool cip,
                            int64_t divisor) {
  std::vector<T> dv(size_t(OH * OW));
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = oh * p.sh - p.ph, h1 = std::min(h0 + p.kh, H + p.ph);
    const int64_t hv = std::min(h1, H) - std::max<int64_t>(h0, 0);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w0 = ow * p.sw - p.pw, w1 = std::min(w0 + p.kw, W + p.pw);
      const int64_t wv = std::min(w1, W) - std::max<int64_t>(w0, 0);
      const int64_t d = hv <= 0 || wv <= 0 ? 0 : divisor > 0 ? divisor : cip ? (h1 - h0) * (w1 - w0) : hv * wv;
      dv[size_t(oh * OW + ow)] = T(d);
    }
  }
  return dv;
}

template <typename T, bool Backward>
void avg_pool_impl(const T* in, T* out, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                   const PoolParams& p, bool cip, int64_t divisor) {
  const std::vector<T> dv = avg_divisors<T>(H, W, OH, OW, p, cip, divisor);
  const int nt = threads_for_size(P * H * W);
#if defined(__x86_64__) || defined(_M_X64)
  if (cpu_has_avx2()) return avx2::avg_pool_planes<T, Backward>(in, out, P, H, W, OH, OW, p, dv.data(), nt);
#endif
  generic::avg_pool_planes<T, Backward>(in, out, P, H, W, OH, OW, p, dv.data(), nt);
}

inline int64_t ad_start(int64_t o, int64_t out, int64_t in) { return (o * in) / out; }
inline int64_t ad_end(int64_t o, int64_t out, int64_t in) { return ((o + 1) * in + out - 1) / out; }

void check_adaptive(const Array& x, int64_t OH, int64_t OW, const char* op) {
  check_planes(x, op);
  if (OH < 0 || OW < 0)
    throw ValueError(std::string("[") + op + "] output_size must be non-negative, got " + hw(OH, OW));
  const int64_t H = x.shape[x.ndim() - 2], W = x.shape[x.ndim() - 1];
  if ((H == 0 || W == 0) && OH * OW > 0)
    throw ValueError(std::string("[") + op + "] expected non-empty spatial dims, got input shape " +
                     shape_str(x.shape));
}
}  // namespace

Array avg_pool2d_forward(const Array& x_, const PoolParams& p, bool cip, int64_t divisor) {
  const char* op = "avg_pool2d";
  check_planes(x_, op);
  check_pool_params(p, op, true);
  const int64_t H = x_.shape[x_.ndim() - 2], W = x_.shape[x_.ndim() - 1];
  const int64_t OH = pool_out_size(H, p.kh, p.sh, p.ph, 1, p.ceil_mode, op);
  const int64_t OW = pool_out_size(W, p.kw, p.sw, p.pw, 1, p.ceil_mode, op);
  Array x = x_.contiguous();
  Array y = Array::empty(with_hw(x.shape, OH, OW), x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    avg_pool_impl<T, false>(x.data<T>(), y.data<T>(), planes(x.shape), H, W, OH, OW, p, cip, divisor);
  });
  return y;
}

Array avg_pool2d_backward(const Array& gy_, int64_t H, int64_t W, const PoolParams& p, bool cip, int64_t divisor) {
  const char* op = "avg_pool2d_backward";
  check_planes(gy_, op);
  Array gy = gy_.contiguous();
  const int64_t OH = gy.shape[gy.ndim() - 2], OW = gy.shape[gy.ndim() - 1];
  Array dx = Array::empty(with_hw(gy.shape, H, W), gy.dtype);  // avg_pool_planes zeroes each plane
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, op, {
    avg_pool_impl<T, true>(gy.data<T>(), dx.data<T>(), planes(gy.shape), H, W, OH, OW, p, cip, divisor);
  });
  return dx;
}

Array adaptive_avg_pool2d_forward(const Array& x_, int64_t OH, int64_t OW) {
  const char* op = "adaptive_avg_pool2d";
  check_adaptive(x_, OH, OW, op);
  Array x = x_.contiguous();
  const int64_t H = x.shape[x.ndim() - 2], W = x.shape[x.ndim() - 1], P = planes(x.shape);
  Array y = Array::empty(with_hw(x.shape, OH, OW), x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int nt = threads_for_size(P * H * W);
    parallel_for(nt, P, [&](int64_t pl) {
      const T* xi = xp + pl * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t a0 = ad_start(oh, OH, H), a1 = ad_end(oh, OH, H);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t b0 = ad_start(ow, OW, W), b1 = ad_end(ow, OW, W);
          T s = 0;
          for (int64_t ih = a0; ih < a1; ++ih)
            for (int64_t iw = b0; iw < b1; ++iw) s += xi[ih * W + iw];
          yp[(pl * OH + oh) * OW + ow] = s / T((a1 - a0) * (b1 - b0));
        }
      }
    });
  });
  return y;
}

Array adaptive_avg_pool2d_backward(const Array& gy_, int64_t H, int64_t W) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_planes(gy_, op);
  Array gy = gy_.contiguous();
  const int64_t OH = gy.shape[gy.ndim() - 2], OW = gy.shape[gy.ndim() - 1], P = planes(gy.shape);
  Array dx = Array::empty(with_hw(gy.shape, H, W), gy.dtype);  // zeroed plane by plane by its thread
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, op, {
    const T* g = gy.data<T>();
    T* d = dx.data<T>();
    const int nt = threads_for_size(P * H * W);
    parallel_for(nt, P, [&](int64_t pl) {
      T* di = d + pl * H * W;
      std::fill(di, di + H * W, T(0));
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t a0 = ad_start(oh, OH, H), a1 = ad_end(oh, OH, H);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t b0 = ad_start(ow, OW, W), b1 = ad_end(ow, OW, W);
          const T v = g[(pl * OH + oh) * OW + ow] / T((a1 - a0) * (b1 - b0));
          for (int64_t ih = a0; ih < a1; ++ih)
            for (int64_t iw = b0; iw < b1; ++iw) di[ih * W + iw] += v;
        }
      }
    });
  });
  return dx;
}

std::pair<Array, Array> adaptive_max_pool2d_forward(const Array& x_, int64_t OH, int64_t OW) {
  const char* op = "adaptive_max_pool2d";
  check_adaptive(x_, OH, OW, op);
  Array x = x_.contiguous();
  const int64_t H = x.shape[x.ndim() - 2], W = x.shape[x.ndim() - 1], P = planes(x.shape);
  Array y = Array::empty(with_hw(x.shape, OH, OW), x.dtype);
  Array idx = Array::empty(with_hw(x.shape, OH, OW), DType::Int64);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    int64_t* ip = idx.data<int64_t>();
    const int nt = threads_for_size(P * H * W);
    parallel_for(nt, P, [&](int64_t pl) {
      const T* xi = xp + pl * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t a0 = ad_start(oh, OH, H), a1 = ad_end(oh, OH, H);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t b0 = ad_start(ow, OW, W), b1 = ad_end(ow, OW, W);
          T m = -std::numeric_limits<T>::infinity();
          int64_t best = a0 * W + b0;
          for (int64_t ih = a0; ih < a1; ++ih)
            for (int64_t iw = b0; iw < b1; ++iw) {
              const T v = xi[ih * W + iw];
              if (v > m || std::isnan(v)) {
                m = v;
                best = ih * W + iw;
              }
            }
          yp[(pl * OH + oh) * OW + ow] = m;
          ip[(pl * OH + oh) * OW + ow] = best;
        }
      }
    });
  });
  return {y, idx};
}

// ------------------------------------------------------------------ padding
namespace {
// source index along one axis for output position o (-1: constant fill)
inline int64_t pad_src(int64_t o, int64_t before, int64_t n, int mode) {
  int64_t s = o - before;
  switch (mode) {
    case 0: return (s >= 0 && s < n) ? s : -1;
    case 1:  // reflect (edge not repeated)
      if (n == 1) return 0;
      if (s < 0) s = -s;
      if (s >= n) s = 2 * (n - 1) - s;
      return s;
    case 2: return std::min(std::max<int64_t>(s, 0), n - 1);
    default: return ((s % n) + n) % n;
  }
}

void check_pad(const Array& x, int64_t t, int64_t b, int64_t l, int64_t r, int mode, const char* op) {
  check_planes(x, op, /*any_dtype=*/true);
  const int64_t H = x.shape[x.ndim() - 2], W = x.shape[x.ndim() - 1];
  if (mode < 0 || mode > 3) throw ValueError(std::string("[") + op + "] unknown padding mode");
  if (H + t + b < 0 || W + l + r < 0)
    throw ValueError(std::string("[") + op + "] padding (" + std::to_string(l) + ", " + std::to_string(r) + ", " +
                     std::to_string(t) + ", " + std::to_string(b) + ") gives a negative output size for input " +
                     shape_str(x.shape));
  if (mode == 0) return;
  static const char* names[] = {"constant", "reflect", "replicate", "circular"};
  if (t < 0 || b < 0 || l < 0 || r < 0)
    throw ValueError(std::string("[") + op + "] " + names[mode] + " padding must be non-negative");
  if ((H == 0 && (t || b)) || (W == 0 && (l || r)))
    throw ValueError(std::string("[") + op + "] " + names[mode] + " padding needs a non-empty dim, input " +
                     shape_str(x.shape));
  const bool ok = mode == 1 ? (t < H || !t) && (b < H || !b) && (l < W || !l) && (r < W || !r)
                : mode == 3 ? t <= H && b <= H && l <= W && r <= W : true;
  if (!ok)
    throw ValueError(std::string("[") + op + "] padding (" + std::to_string(l) + ", " + std::to_string(r) + ", " +
                     std::to_string(t) + ", " + std::to_string(b) + ") is too large for " + names[mode] +
                     " mode with input " + shape_str(x.shape) +
                     (mode == 1 ? " (must be < the dim size)" : " (must be <= the dim size)"));
}
}  // namespace

Array pad2d_forward(const Array& x_, int64_t t, int64_t b, int64_t l, int64_t r, int mode, double value) {
  const char* op = "pad";
  check_pad(x_, t, b, l, r, mode, op);
  Array x = x_.contiguous();
  const int64_t H = x.shape[x.ndim() - 2], W = x.shape[x.ndim() - 1], P = planes(x.shape);
  const int64_t OH = H + t + b, OW = W + l + r;
  Array y = Array::empty(with_hw(x.shape, OH, OW), x.dtype);
  TOCHA_DISPATCH_ALL(x.dtype, T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const T fill = T(value);
    std::vector<int64_t> cw(OW);
    for (int64_t o = 0; o < OW; ++o) cw[o] = pad_src(o, l, W, mode);
    const int nt = threads_for_size(P * H * W);
    parallel_for(nt, P, [&](int64_t pl) {
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t sh = pad_src(oh, t, H, mode);
        T* yr = yp + (pl * OH + oh) * OW;
        if (sh < 0) {
          std::fill(yr, yr + OW, fill);
          continue;
        }
        const T* xr = xp + (pl * H + sh) * W;
        for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = cw[ow] < 0 ? fill : xr[cw[ow]];
      }
    });
  });
  return y;
}

Array pad2d_backward(const Array& gy_, int64_t t, int64_t b, int64_t l, int64_t r, int mode) {
  const char* op = "pad_backward";
  check_planes(gy_, op);
  Array gy = gy_.contiguous();
  const int64_t OH = gy.shape[gy.ndim() - 2], OW = gy.shape[gy.ndim() - 1], P = planes(gy.shape);
  const int64_t H = OH - t - b, W = OW - l - r;
  if (H < 0 || W < 0) throw ValueError("[pad_backward] padding larger than grad_output " + shape_str(gy.shape));
  Array dx = Array::empty(with_hw(gy.shape, H, W), gy.dtype);  // zeroed plane by plane by its thread
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, op, {
    const T* g = gy.data<T>();
    T* d = dx.data<T>();
    std::vector<int64_t> cw(OW);
    for (int64_t o = 0; o < OW; ++o) cw[o] = pad_src(o, l, W, mode);
    const int nt = threads_for_size(P * H * W);
    parallel_for(nt, P, [&](int64_t pl) {
      std::fill(d + pl * H * W, d + (pl + 1) * H * W, T(0));
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t sh = pad_src(oh, t, H, mode);
        if (sh < 0) continue;
        const T* gr = g + (pl * OH + oh) * OW;
        T* dr = d + (pl * H + sh) * W;
        for (int64_t ow = 0; ow < OW; ++ow)
          if (cw[ow] >= 0) dr[cw[ow]] += gr[ow];
      }
    });
  });
  return dx;
}

}  // namespace tocha::cpu
