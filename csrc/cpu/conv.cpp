// conv.cpp -- 2-d convolution forward/backward and unfold/fold on CPU (float32, float64).
//   x (N, C, H, W), w (K, Cg = C/groups, kh, kw), y (N, K, OH, OW); see conv.h for the shape formulas.
// Algorithms:
//   * im2col + GEMM (general case). Per image and group: col (Cg*kh*kw, OH*OW) built by im2col, then
//     y_g (Kg, OH*OW) = W_g (Kg, Cg*kh*kw) @ col (tocha::cpu::gemm, bias pre-filled and accumulated).
//     1x1 / stride 1 / no padding skips im2col (the input itself is the col matrix).
//     grad input: colgrad = W_g^T @ gy_g (W^T read through strides, never materialised), col2im into dx.
//     grad weight: the batch is cut into min(N, 16) slices (a function of N only); each slice accumulates
//     dW^T = sum_n col_n @ gy_n^T into its own partial, partials are summed in slice order.
//   * direct kernel when every output channel reads a single input channel (Cg == 1: depthwise, or a
//     1-channel input): per output plane, one vectorisable row-AXPY per filter tap.
// Threads: the forward and input-gradient loops run over images (each thread its own col buffer, GEMM
// then single-threaded); with fewer images than threads the loop is serial and the GEMM threads itself.
// The weight gradient threads over batch slices (each its own col buffer and partial).
// The GEMM never splits K and every output element is owned by one thread, so results are bitwise
// identical for any thread count.
// Choice direct vs im2col, measured (1 thread, min of 5, loaded 2-core Zen3; tocha._C.set_conv_algo(0|1)
// forces a path; script: fwd and x.sum().backward() timed alternately per path):
//   depthwise (32,64,32,32) 3x3 groups=64 pad 1: im2col fwd 86.9 ms, fwd+bwd 599 ms | direct 50.9 / 208 ms
//     -> Cg == 1 with groups > 1 uses the direct kernel (Kg = 1 GEMMs are tiny and memory-bound);
//   1-channel input (64,1,28,28)->32 3x3: im2col fwd 1.3 ms, fwd+bwd 73 ms | direct 36.7 / 133 ms
//     -> groups == 1 keeps im2col + GEMM (all 32 filters share one col buffer; the AVX2 GEMM wins).
// End-to-end numbers vs PyTorch: benchmarks/bench_conv.py (README table).
#include "conv.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../core/parallel.h"
#include "gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace tocha::cpu {
namespace {

int g_conv_algo = -1;

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

std::string params_str(const ConvParams& p) {
  return "stride=(" + std::to_string(p.sh) + ", " + std::to_string(p.sw) + "), padding=(" +
         std::to_string(p.ph) + ", " + std::to_string(p.pw) + "), dilation=(" + std::to_string(p.dh) + ", " +
         std::to_string(p.dw) + ")";
}

void check_params(const ConvParams& p, const char* op) {
  if (p.sh <= 0 || p.sw <= 0)
    throw ValueError(std::string("[") + op + "] stride must be positive, got " + params_str(p));
  if (p.dh <= 0 || p.dw <= 0)
    throw ValueError(std::string("[") + op + "] dilation must be positive, got " + params_str(p));
  if (p.ph < 0 || p.pw < 0)
    throw ValueError(std::string("[") + op + "] padding must be non-negative, got " + params_str(p));
  if (p.groups <= 0)
    throw ValueError(std::string("[") + op + "] groups must be positive, got " + std::to_string(p.groups));
}

// Output spatial size; throws when the (dilated) kernel is larger than the padded input.
std::pair<int64_t, int64_t> out_hw(int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p,
                                   const char* op) {
  const int64_t eh = p.dh * (kh - 1) + 1, ew = p.dw * (kw - 1) + 1;
  if (kh <= 0 || kw <= 0)
    throw ValueError(std::string("[") + op + "] kernel size must be positive, got (" + std::to_string(kh) +
                     ", " + std::to_string(kw) + ")");
  if (H + 2 * p.ph < eh || W + 2 * p.pw < ew)
    throw ValueError(std::string("[") + op + "] kernel size (" + std::to_string(eh) + ", " + std::to_string(ew) +
                     ") (dilated) can't be greater than the padded input size (" + std::to_string(H + 2 * p.ph) +
                     ", " + std::to_string(W + 2 * p.pw) + ")");
  return {out_size(H, kh, p.sh, p.ph, p.dh), out_size(W, kw, p.sw, p.pw, p.dw)};
}

// valid output range [lo, hi) along one axis for tap offset `off` = i*d - p: 0 <= o*s + off < in
inline void valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = in - off <= 0 ? 0 : (in - off - 1) / s + 1;
  lo = std::min(lo, out);
  hi = std::max(std::min(hi, out), lo);
}

// col (C*kh*kw rows, row stride ld) <- patches of x (C, H, W)
template <typename T>
void im2col(const T* x, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p,
            int64_t OH, int64_t OW, T* col, int64_t ld) {
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t offh = i * p.dh - p.ph;
      int64_t oh0, oh1;
      valid_range(offh, p.sh, H, OH, oh0, oh1);
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t offw = j * p.dw - p.pw;
        int64_t ow0, ow1;
        valid_range(offw, p.sw, W, OW, ow0, ow1);
        T* row = col + ((c * kh + i) * kw + j) * ld;
        std::fill(row, row + oh0 * OW, T(0));
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* r = row + oh * OW;
          const T* xr = xc + (oh * p.sh + offh) * W + offw;
          std::fill(r, r + ow0, T(0));
          if (p.sw == 1) {
            std::memcpy(r + ow0, xr + ow0, sizeof(T) * (ow1 - ow0));
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) r[ow] = xr[ow * p.sw];
          }
          std::fill(r + ow1, r + OW, T(0));
        }
        std::fill(row + oh1 * OW, row + OH * OW, T(0));
      }
    }
  }
}

// x (C, H, W) += col2im(col)  (the adjoint of im2col)
template <typename T>
void col2im(const T* col, int64_t ld, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
            const ConvParams& p, int64_t OH, int64_t OW, T* x) {
  for (int64_t c = 0; c < C; ++c) {
    T* xc = x + c * H * W;
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t offh = i * p.dh - p.ph;
      int64_t oh0, oh1;
      valid_range(offh, p.sh, H, OH, oh0, oh1);
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t offw = j * p.dw - p.pw;
        int64_t ow0, ow1;
        valid_range(offw, p.sw, W, OW, ow0, ow1);
        const T* row = col + ((c * kh + i) * kw + j) * ld;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const T* r = row + oh * OW;
          T* xr = xc + (oh * p.sh + offh) * W + offw;
          if (p.sw == 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow] += r[ow];
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * p.sw] += r[ow];
          }
        }
      }
    }
  }
}

bool is_pointwise(int64_t kh, int64_t kw, const ConvParams& p) {
  return kh == 1 && kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
}

bool use_direct(int64_t Cg, const ConvParams& p) {
  if (Cg != 1) return false;
  if (g_conv_algo >= 0) return g_conv_algo == 1;
  return p.groups > 1;  // depthwise: measured faster (see header); 1-channel input keeps im2col
}

void check_4d(const Array& a, const char* op, const char* what) {
  if (a.ndim() != 4)
    throw ValueError(std::string("[") + op + "] expected a 4-d " + what + " (N, C, H, W), got shape " +
                     shape_str(a.shape));
}

// ------------------------------------------------------------------ direct kernels (Cg == 1)
// y plane (OH, OW) += sum over taps of w[i,j] * x plane shifted
template <typename T>
void direct_plane_fwd(const T* x, int64_t H, int64_t W, const T* w, int64_t kh, int64_t kw,
                      const ConvParams& p, int64_t OH, int64_t OW, T* y) {
  for (int64_t i = 0; i < kh; ++i) {
    const int64_t offh = i * p.dh - p.ph;
    int64_t oh0, oh1;
    valid_range(offh, p.sh, H, OH, oh0, oh1);
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t offw = j * p.dw - p.pw;
      int64_t ow0, ow1;
      valid_range(offw, p.sw, W, OW, ow0, ow1);
      const T wv = w[i * kw + j];
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        T* yr = y + oh * OW;
        const T* xr = x + (oh * p.sh + offh) * W + offw;
        if (p.sw == 1) {
          for (int64_t ow = ow0; ow < ow1; ++ow) yr[ow] += wv * xr[ow];
        } else {
          for (int64_t ow = ow0; ow < ow1; ++ow) yr[ow] += wv * xr[ow * p.sw];
        }
      }
    }
  }
}

template <typename T>
void direct_plane_bwd_input(const T* gy, int64_t H, int64_t W, const T* w, int64_t kh, int64_t kw,
                            const ConvParams& p, int64_t OH, int64_t OW, T* dx) {
  for (int64_t i = 0; i < kh; ++i) {
    const int64_t offh = i * p.dh - p.ph;
    int64_t oh0, oh1;
    valid_range(offh, p.sh, H, OH, oh0, oh1);
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t offw = j * p.dw - p.pw;
      int64_t ow0, ow1;
      valid_range(offw, p.sw, W, OW, ow0, ow1);
      const T wv = w[i * kw + j];
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const T* gr = gy + oh * OW;
        T* xr = dx + (oh * p.sh + offh) * W + offw;
        if (p.sw == 1) {
          for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow] += wv * gr[ow];
        } else {
          for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * p.sw] += wv * gr[ow];
        }
      }
    }
  }
}

// dw (kh, kw) += correlation of x plane with gy plane
template <typename T>
void direct_plane_bwd_weight(const T* x, int64_t H, int64_t W, const T* gy, int64_t kh, int64_t kw,
                             const ConvParams& p, int64_t OH, int64_t OW, T* dw) {
  for (int64_t i = 0; i < kh; ++i) {
    const int64_t offh = i * p.dh - p.ph;
    int64_t oh0, oh1;
    valid_range(offh, p.sh, H, OH, oh0, oh1);
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t offw = j * p.dw - p.pw;
      int64_t ow0, ow1;
      valid_range(offw, p.sw, W, OW, ow0, ow1);
      T acc = 0;
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const T* gr = gy + oh * OW;
        const T* xr = x + (oh * p.sh + offh) * W + offw;
        T s = 0;
        if (p.sw == 1) {
          for (int64_t ow = ow0; ow < ow1; ++ow) s += gr[ow] * xr[ow];
        } else {
          for (int64_t ow = ow0; ow < ow1; ++ow) s += gr[ow] * xr[ow * p.sw];
        }
        acc += s;
      }
      dw[i * kw + j] += acc;
    }
  }
}

// ------------------------------------------------------------------ typed implementations
template <typename T>
void conv_fwd_impl(const Array& x, const Array& w, const T* bias, const ConvParams& p, Array& y) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t K = w.shape[0], Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3];
  const int64_t OH = y.shape[2], OW = y.shape[3], OHW = OH * OW, HW = H * W;
  const int64_t G = p.groups, Kg = K / G, CKK = Cg * kh * kw;
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  T* yp = y.data<T>();
  const int nt = get_num_threads();
  if (use_direct(Cg, p)) {
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t nk = 0; nk < N * K; ++nk) {
      const int64_t n = nk / K, k = nk % K, c = k / Kg;
      T* yo = yp + nk * OHW;
      std::fill(yo, yo + OHW, bias ? bias[k] : T(0));
      direct_plane_fwd(xp + (n * C + c) * HW, H, W, wp + k * kh * kw, kh, kw, p, OH, OW, yo);
    }
    return;
  }
  const bool pointwise = is_pointwise(kh, kw, p);
  const bool outer = N >= nt && nt > 1;
  const int nbuf = outer ? nt : 1;
  std::vector<std::vector<T>> bufs(pointwise ? 0 : nbuf);
  auto one = [&](int64_t n) {
    T* col = pointwise ? nullptr : bufs[outer ? thread_id() : 0].data();
    for (int64_t g = 0; g < G; ++g) {
      const T* xg = xp + (n * C + g * Cg) * HW;
      T* yg = yp + (n * K + g * Kg) * OHW;
      const T* B = xg;
      if (!pointwise) {
        im2col(xg, Cg, H, W, kh, kw, p, OH, OW, col, OHW);
        B = col;
      }
      if (bias)
        for (int64_t k = 0; k < Kg; ++k) std::fill(yg + k * OHW, yg + (k + 1) * OHW, bias[g * Kg + k]);
      gemm<T>(Kg, OHW, CKK, wp + g * Kg * CKK, CKK, 1, B, OHW, 1, yg, OHW, bias != nullptr);
    }
  };
  for (auto& b : bufs) b.resize(CKK * OHW);
  if (outer) {
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t n = 0; n < N; ++n) one(n);
  } else {
    for (int64_t n = 0; n < N; ++n) one(n);
  }
}

template <typename T>
void conv_bwd_input_impl(const Array& gy, const Array& w, const ConvParams& p, Array& dx) {
  const int64_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3];
  const int64_t K = w.shape[0], Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3];
  const int64_t OH = gy.shape[2], OW = gy.shape[3], OHW = OH * OW, HW = H * W;
  const int64_t G = p.groups, Kg = K / G, CKK = Cg * kh * kw;
  const T* gp = gy.data<T>();
  const T* wp = w.data<T>();
  T* xp = dx.data<T>();
  const int nt = get_num_threads();
  if (use_direct(Cg, p)) {
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const int64_t n = nc / C, c = nc % C;  // Cg == 1: group c, output channels c*Kg .. c*Kg+Kg-1
      T* xo = xp + nc * HW;
      std::fill(xo, xo + HW, T(0));
      for (int64_t m = 0; m < Kg; ++m) {
        const int64_t k = c * Kg + m;
        direct_plane_bwd_input(gp + (n * K + k) * OHW, H, W, wp + k * kh * kw, kh, kw, p, OH, OW, xo);
      }
    }
    return;
  }
  const bool pointwise = is_pointwise(kh, kw, p);
  const bool outer = N >= nt && nt > 1;
  std::vector<std::vector<T>> bufs(pointwise ? 0 : (outer ? nt : 1));
  for (auto& b : bufs) b.resize(CKK * OHW);
  auto one = [&](int64_t n) {
    T* col = pointwise ? nullptr : bufs[outer ? thread_id() : 0].data();
    for (int64_t g = 0; g < G; ++g) {
      T* xg = xp + (n * C + g * Cg) * HW;
      const T* gg = gp + (n * K + g * Kg) * OHW;
      const T* Wg = wp + g * Kg * CKK;
      if (pointwise) {  // dx_g (Cg, HW) = W_g^T @ gy_g
        gemm<T>(CKK, OHW, Kg, Wg, 1, CKK, gg, OHW, 1, xg, OHW, false);
      } else {
        gemm<T>(CKK, OHW, Kg, Wg, 1, CKK, gg, OHW, 1, col, OHW, false);
        std::fill(xg, xg + Cg * HW, T(0));
        col2im(col, OHW, Cg, H, W, kh, kw, p, OH, OW, xg);
      }
    }
  };
  if (outer) {
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t n = 0; n < N; ++n) one(n);
  } else {
    for (int64_t n = 0; n < N; ++n) one(n);
  }
}

template <typename T>
void conv_bwd_weight_impl(const Array& x, const Array& gy, const ConvParams& p, Array& dw) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t K = dw.shape[0], Cg = dw.shape[1], kh = dw.shape[2], kw = dw.shape[3];
  const int64_t OH = gy.shape[2], OW = gy.shape[3], OHW = OH * OW, HW = H * W;
  const int64_t G = p.groups, Kg = K / G, CKK = Cg * kh * kw;
  const T* xp = x.data<T>();
  const T* gp = gy.data<T>();
  T* dwp = dw.data<T>();
  const int nt = get_num_threads();
  if (use_direct(Cg, p)) {
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = k / Kg;
      T* d = dwp + k * kh * kw;
      std::fill(d, d + kh * kw, T(0));
      for (int64_t n = 0; n < N; ++n)
        direct_plane_bwd_weight(xp + (n * C + c) * HW, H, W, gp + (n * K + k) * OHW, kh, kw, p, OH, OW, d);
    }
    return;
  }
  if (OHW == 0 || N == 0) {
    std::fill(dwp, dwp + dw.numel(), T(0));
    return;
  }
  // The batch is cut into S slices (S depends on N only, never on the thread count); each slice sums its
  // images into its own dW^T partial (CKK x Kg per group: col (CKK, OHW) @ gy_n^T (OHW, Kg), gy read
  // through strides), then the partials are added in slice order -> deterministic for any thread count.
  // Threads own whole slices, so the GEMMs run without inner barriers (robust on a loaded machine).
  const int64_t S = std::min<int64_t>(N, 16);
  const bool outer = N >= nt && nt > 1;
  std::vector<T> part(S * G * CKK * Kg);
  std::vector<std::vector<T>> bufs(outer ? nt : 1, std::vector<T>(CKK * OHW));
  auto slice = [&](int64_t s) {
    T* col = bufs[outer ? thread_id() : 0].data();
    T* ps = part.data() + s * G * CKK * Kg;
    const int64_t n0 = s * N / S, n1 = (s + 1) * N / S;
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g = 0; g < G; ++g) {
        im2col(xp + (n * C + g * Cg) * HW, Cg, H, W, kh, kw, p, OH, OW, col, OHW);
        gemm<T>(CKK, Kg, OHW, col, OHW, 1, gp + (n * K + g * Kg) * OHW, 1, OHW, ps + g * CKK * Kg, Kg, n > n0);
      }
  };
  if (outer) {
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t s = 0; s < S; ++s) slice(s);
  } else {
    for (int64_t s = 0; s < S; ++s) slice(s);
  }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t r = 0; r < CKK; ++r) {
        T acc = 0;
        for (int64_t s = 0; s < S; ++s) acc += part[((s * G + g) * CKK + r) * Kg + k];
        dwp[(g * Kg + k) * CKK + r] = acc;
      }
}

template <typename T>
void unfold_impl(const Array& x, int64_t kh, int64_t kw, const ConvParams& p, Array& out) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OH = out_size(H, kh, p.sh, p.ph, p.dh), OW = out_size(W, kw, p.sw, p.pw, p.dw);
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const int nt = get_num_threads();
  TOCHA_OMP_PARALLEL_FOR(nt)
  for (int64_t n = 0; n < N; ++n)
    im2col(xp + n * C * H * W, C, H, W, kh, kw, p, OH, OW, op + n * C * kh * kw * OH * OW, OH * OW);
}

template <typename T>
void fold_impl(const Array& cols, int64_t kh, int64_t kw, const ConvParams& p, Array& out) {
  const int64_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3];
  const int64_t OH = out_size(H, kh, p.sh, p.ph, p.dh), OW = out_size(W, kw, p.sw, p.pw, p.dw);
  const T* cp = cols.data<T>();
  T* op = out.data<T>();
  const int nt = get_num_threads();
  TOCHA_OMP_PARALLEL_FOR(nt)
  for (int64_t n = 0; n < N; ++n) {
    T* o = op + n * C * H * W;
    std::fill(o, o + C * H * W, T(0));
    col2im(cp + n * C * kh * kw * OH * OW, OH * OW, C, H, W, kh, kw, p, OH, OW, o);
  }
}

void check_float_same(const Array& a, const Array& b, const char* op) {
  if (!is_floating(a.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(a.dtype));
  if (a.dtype != b.dtype)
    throw TypeError(std::string("[") + op + "] expected input and weight to have the same dtype, got " +
                    dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
}

// validates x/w shapes against groups and returns (OH, OW)
std::pair<int64_t, int64_t> check_conv(const Array& x, const Array& w, const ConvParams& p, const char* op) {
  check_params(p, op);
  check_4d(x, op, "input");
  if (w.ndim() != 4)
    throw ValueError(std::string("[") + op + "] expected a 4-d weight (out_channels, in_channels/groups, kh, kw), "
                     "got shape " + shape_str(w.shape));
  const int64_t C = x.shape[1], K = w.shape[0];
  if (K % p.groups != 0)
    throw ValueError(std::string("[") + op + "] out_channels (" + std::to_string(K) +
                     ") must be divisible by groups (" + std::to_string(p.groups) + "), weight shape " +
                     shape_str(w.shape));
  if (w.shape[1] * p.groups != C)
    throw ValueError(std::string("[") + op + "] input " + shape_str(x.shape) + " has " + std::to_string(C) +
                     " channels but weight " + shape_str(w.shape) + " with groups=" + std::to_string(p.groups) +
                     " expects " + std::to_string(w.shape[1] * p.groups));
  return out_hw(x.shape[2], x.shape[3], w.shape[2], w.shape[3], p, op);
}

}  // namespace

void set_conv_algo(int algo) { g_conv_algo = algo; }

Array conv2d_forward(const Array& x_, const Array& w_, const std::optional<Array>& bias_, const ConvParams& p) {
  const char* op = "conv2d";
  check_float_same(x_, w_, op);
  auto [OH, OW] = check_conv(x_, w_, p, op);
  Array x = x_.contiguous(), w = w_.contiguous();
  Array b;
  if (bias_) {
    if (bias_->ndim() != 1 || bias_->shape[0] != w.shape[0])
      throw ValueError(std::string("[conv2d] expected bias of shape (") + std::to_string(w.shape[0]) +
                       ",), got " + shape_str(bias_->shape));
    if (bias_->dtype != x.dtype) throw TypeError("[conv2d] bias dtype must match input dtype");
    b = bias_->contiguous();
  }
  Array y = Array::empty({x.shape[0], w.shape[0], OH, OW}, x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, {
    conv_fwd_impl<T>(x, w, bias_ ? b.data<T>() : nullptr, p, y);
  });
  return y;
}

Array conv2d_backward_input(const Array& gy_, const Array& w_, int64_t H, int64_t W, const ConvParams& p) {
  const char* op = "conv2d_backward_input";
  check_float_same(gy_, w_, op);
  check_params(p, op);
  check_4d(gy_, op, "grad_output");
  if (w_.ndim() != 4) throw ValueError("[conv2d_backward_input] expected a 4-d weight, got " + shape_str(w_.shape));
  const int64_t K = w_.shape[0];
  if (gy_.shape[1] != K || K % p.groups != 0)
    throw ValueError("[conv2d_backward_input] grad_output " + shape_str(gy_.shape) + " does not match weight " +
                     shape_str(w_.shape) + " with groups=" + std::to_string(p.groups));
  if (H < 0 || W < 0) throw ValueError("[conv2d_backward_input] negative input size");
  auto [OH, OW] = out_hw(H, W, w_.shape[2], w_.shape[3], p, op);
  if (OH != gy_.shape[2] || OW != gy_.shape[3])
    throw ValueError("[conv2d_backward_input] grad_output " + shape_str(gy_.shape) + " does not match input size (" +
                     std::to_string(H) + ", " + std::to_string(W) + ") with " + params_str(p));
  Array gy = gy_.contiguous(), w = w_.contiguous();
  Array dx = Array::empty({gy.shape[0], w.shape[1] * p.groups, H, W}, gy.dtype);
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, op, { conv_bwd_input_impl<T>(gy, w, p, dx); });
  return dx;
}

Array conv2d_backward_weight(const Array& x_, const Array& gy_, int64_t kh, int64_t kw, const ConvParams& p) {
  const char* op = "conv2d_backward_weight";
  check_float_same(x_, gy_, op);
  check_params(p, op);
  check_4d(x_, op, "input");
  check_4d(gy_, op, "grad_output");
  const int64_t C = x_.shape[1], K = gy_.shape[1];
  if (C % p.groups != 0 || K % p.groups != 0 || gy_.shape[0] != x_.shape[0])
    throw ValueError("[conv2d_backward_weight] input " + shape_str(x_.shape) + " and grad_output " +
                     shape_str(gy_.shape) + " are inconsistent with groups=" + std::to_string(p.groups));
  auto [OH, OW] = out_hw(x_.shape[2], x_.shape[3], kh, kw, p, op);
  if (OH != gy_.shape[2] || OW != gy_.shape[3])
    throw ValueError("[conv2d_backward_weight] grad_output " + shape_str(gy_.shape) + " does not match input " +
                     shape_str(x_.shape) + " with " + params_str(p));
  Array x = x_.contiguous(), gy = gy_.contiguous();
  Array dw = Array::empty({K, C / p.groups, kh, kw}, x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, { conv_bwd_weight_impl<T>(x, gy, p, dw); });
  return dw;
}

Array conv2d_backward_bias(const Array& gy_) {
  check_4d(gy_, "conv2d_backward_bias", "grad_output");
  Array gy = gy_.contiguous();
  const int64_t N = gy.shape[0], K = gy.shape[1], L = gy.shape[2] * gy.shape[3];
  Array db = Array::empty({K}, gy.dtype);
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, "conv2d_backward_bias", {
    const T* g = gy.data<T>();
    T* d = db.data<T>();
    const int nt = get_num_threads();
    TOCHA_OMP_PARALLEL_FOR(nt)
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0;  // double accumulator: sums over N*OH*OW terms
      for (int64_t n = 0; n < N; ++n) {
        const T* r = g + (n * K + k) * L;
        T s = 0;
        for (int64_t i = 0; i < L; ++i) s += r[i];
        acc += s;
      }
      d[k] = T(acc);
    }
  });
  return db;
}

Array unfold_forward(const Array& x_, int64_t kh, int64_t kw, const ConvParams& p) {
  const char* op = "unfold";
  check_params(p, op);
  check_4d(x_, op, "input");
  if (!is_floating(x_.dtype)) throw TypeError("[unfold] expected a floating-point tensor");
  auto [OH, OW] = out_hw(x_.shape[2], x_.shape[3], kh, kw, p, op);
  Array x = x_.contiguous();
  Array out = Array::empty({x.shape[0], x.shape[1] * kh * kw, OH * OW}, x.dtype);
  TOCHA_DISPATCH_FLOAT(x.dtype, T, op, { unfold_impl<T>(x, kh, kw, p, out); });
  return out;
}

Array fold_forward(const Array& cols_, int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p) {
  const char* op = "fold";
  check_params(p, op);
  if (cols_.ndim() != 3)
    throw ValueError("[fold] expected a 3-d input (N, C*kh*kw, L), got shape " + shape_str(cols_.shape));
  if (!is_floating(cols_.dtype)) throw TypeError("[fold] expected a floating-point tensor");
  if (kh <= 0 || kw <= 0 || cols_.shape[1] % (kh * kw) != 0)
    throw ValueError("[fold] expected size of input's dimension 1 " + shape_str(cols_.shape) +
                     " to be divisible by the product of kernel_size (" + std::to_string(kh) + ", " +
                     std::to_string(kw) + ")");
  auto [OH, OW] = out_hw(H, W, kh, kw, p, op);
  if (OH * OW != cols_.shape[2])
    throw ValueError("[fold] given output_size=(" + std::to_string(H) + ", " + std::to_string(W) +
                     "), kernel_size=(" + std::to_string(kh) + ", " + std::to_string(kw) + "), " + params_str(p) +
                     ", expected size of input's dimension 2 to match the number of sliding blocks " +
                     std::to_string(OH) + " * " + std::to_string(OW) + " = " + std::to_string(OH * OW) +
                     ", but got input shape " + shape_str(cols_.shape));
  Array cols = cols_.contiguous();
  Array out = Array::empty({cols.shape[0], cols.shape[1] / (kh * kw), H, W}, cols.dtype);
  TOCHA_DISPATCH_FLOAT(cols.dtype, T, op, { fold_impl<T>(cols, kh, kw, p, out); });
  return out;
}

}  // namespace tocha::cpu
