// conv_impl.h -- kernel bodies of the 2-d convolution family (contract in conv.h, algorithm and numbers in
// conv.cpp), compiled twice: conv.cpp (baseline, namespace generic) and conv_avx2.cpp (-mavx2 -mfma,
// namespace avx2); conv.cpp validates the inputs and dispatches at run time. Include only after defining
// TOCHA_CONV_ISA. Inputs arrive validated and contiguous, outputs allocated.
#include "conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/parallel.h"
#include "gemm.h"
#include "native_vec.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace tocha::cpu {
int conv_algo_override();      // set_conv_algo's value (conv.cpp)
int64_t conv_band_override();  // set_conv_band_bytes's value (conv.cpp), <= 0: default
void note_conv_forward_algo(int algo);  // for last_conv_forward_algo (conv.cpp)

namespace TOCHA_CONV_ISA {
void conv_forward(const Array& x, const Array& w, const Array* bias, const ConvParams& p, Array& y);
void conv_backward_input(const Array& gy, const Array& w, const ConvParams& p, Array& dx);
void conv_backward_weight(const Array& x, const Array& gy, const ConvParams& p, Array& dw);
void conv_backward_bias(const Array& gy, Array& db);
void unfold(const Array& x, int64_t kh, int64_t kw, const ConvParams& p, Array& out);
void fold(const Array& cols, int64_t kh, int64_t kw, const ConvParams& p, Array& out);

namespace {

// Work items (images, planes, slices) are handed out dynamically: on a shared machine a thread that
// gets descheduled no longer holds back a fixed share. Each item's arithmetic does not depend on the
// thread that runs it, so results stay identical for any thread count and schedule.
#ifdef _OPENMP
#define TOCHA_CONV_PARALLEL_FOR(nt, chunk) TOCHA_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, chunk))
#else
#define TOCHA_CONV_PARALLEL_FOR(nt, chunk)
#endif

// Items per dynamic chunk: about 8 chunks per thread (amortises the scheduling for many tiny items).
inline int64_t dyn_chunk(int64_t items, int nt) { return std::max<int64_t>(1, items / (8 * int64_t(nt))); }

inline int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// valid output range [lo, hi) along one axis for tap offset `off` = i*d - p: 0 <= o*s + off < in
inline void valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = in - off <= 0 ? 0 : (in - off - 1) / s + 1;
  lo = std::min(lo, out);
  hi = std::max(std::min(hi, out), lo);
}

// Image rows are short (OW is often 10-30): the row loops below are kept inline (no memcpy/memset call per
// row, which GCC would otherwise substitute and which costs as much as the copy itself).
#if defined(__GNUC__) && !defined(__clang__)
#define TOCHA_CONV_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TOCHA_CONV_NO_LIBCALLS
#endif

// col (C*kh*kw rows, row stride ld) <- patches of x (C, H, W) for the output rows [oha, ohb): column
// (oh - oha)*OW + ow of a row holds the tap's input value for output pixel (oh, ow), zero where padded.
template <typename T>
TOCHA_CONV_NO_LIBCALLS void im2col(const T* __restrict x, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                                   const ConvParams& p, int64_t oha, int64_t ohb, int64_t OW, T* __restrict col,
                                   int64_t ld) {
  // Stride 1 with OW == W ('same' padding): a tap's valid block is one shifted run of x; copy it whole,
  // then zero the few entries that wrapped around from a neighbouring row.
  const bool flat = p.sh == 1 && p.sw == 1 && OW == W;
  const int64_t L = (ohb - oha) * OW;
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t offh = i * p.dh - p.ph;
      int64_t oh0, oh1;
      valid_range(offh, p.sh, H, ohb, oh0, oh1);
      oh0 = std::max(oh0, oha);
      oh1 = std::max(oh1, oh0);
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t offw = j * p.dw - p.pw;
        int64_t ow0, ow1;
        valid_range(offw, p.sw, W, OW, ow0, ow1);
        T* row = col + ((c * kh + i) * kw + j) * ld;  // row[(oh - oha)*OW + ow]
        const int64_t q0 = (oh0 - oha) * OW, q1 = (oh1 - oha) * OW;
        for (int64_t q = 0; q < q0; ++q) row[q] = T(0);
        if (flat && oh1 > oh0 && ow1 > ow0) {
          const T* src = xc + (oh0 * p.sh + offh) * W + offw + ow0;  // x at output (oh0, ow0)
          T* dst = row + q0 + ow0;
          const int64_t n = (oh1 - oh0 - 1) * OW + ow1 - ow0;
          for (int64_t t = 0; t < n; ++t) dst[t] = src[t];
          for (int64_t q = q0; q < q1; q += OW) {
            for (int64_t ow = 0; ow < ow0; ++ow) row[q + ow] = T(0);
            for (int64_t ow = ow1; ow < OW; ++ow) row[q + ow] = T(0);
          }
        } else {
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            T* r = row + (oh - oha) * OW;
            const T* xr = xc + (oh * p.sh + offh) * W + offw + ow0 * p.sw;  // x at output (oh, ow0)
            for (int64_t ow = 0; ow < ow0; ++ow) r[ow] = T(0);
            T* rv = r + ow0;
            const int64_t n = ow1 - ow0;
            if (p.sw == 1) {
              for (int64_t t = 0; t < n; ++t) rv[t] = xr[t];
            } else {
              for (int64_t t = 0; t < n; ++t) rv[t] = xr[t * p.sw];
            }
            for (int64_t ow = ow1; ow < OW; ++ow) r[ow] = T(0);
          }
        }
        for (int64_t q = q1; q < L; ++q) row[q] = T(0);
      }
    }
  }
}

// x (C, H, W) += col2im(col) for the output rows [oha, ohb) (the adjoint of im2col). With `scratch` the
// caller gives up col: for stride 1 and OW == W its out-of-range entries are zeroed so that each tap is
// one contiguous add (adding those zeros changes no sum).
template <typename T>
TOCHA_CONV_NO_LIBCALLS void col2im(T* __restrict col, bool scratch, int64_t ld, int64_t C, int64_t H, int64_t W,
                                   int64_t kh, int64_t kw, const ConvParams& p, int64_t oha, int64_t ohb,
                                   int64_t OW, T* __restrict x) {
  const bool flat = scratch && p.sh == 1 && p.sw == 1 && OW == W;
  for (int64_t c = 0; c < C; ++c) {
    T* xc = x + c * H * W;
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t offh = i * p.dh - p.ph;
      int64_t oh0, oh1;
      valid_range(offh, p.sh, H, ohb, oh0, oh1);
      oh0 = std::max(oh0, oha);
      oh1 = std::max(oh1, oh0);
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t offw = j * p.dw - p.pw;
        int64_t ow0, ow1;
        valid_range(offw, p.sw, W, OW, ow0, ow1);
        T* row = col + ((c * kh + i) * kw + j) * ld;
        if (flat && oh1 > oh0 && ow1 > ow0) {
          const int64_t q0 = (oh0 - oha) * OW, q1 = (oh1 - oha) * OW;
          for (int64_t q = q0; q < q1; q += OW) {
            for (int64_t ow = 0; ow < ow0; ++ow) row[q + ow] = T(0);
            for (int64_t ow = ow1; ow < OW; ++ow) row[q + ow] = T(0);
          }
          T* dst = xc + (oh0 * p.sh + offh) * W + offw + ow0;
          const T* src = row + q0 + ow0;
          const int64_t n = (oh1 - oh0 - 1) * OW + ow1 - ow0;
          for (int64_t t = 0; t < n; ++t) dst[t] += src[t];
          continue;
        }
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const T* r = row + (oh - oha) * OW + ow0;
          T* xr = xc + (oh * p.sh + offh) * W + offw + ow0 * p.sw;
          const int64_t n = ow1 - ow0;
          if (p.sw == 1) {
            for (int64_t t = 0; t < n; ++t) xr[t] += r[t];
          } else {
            for (int64_t t = 0; t < n; ++t) xr[t * p.sw] += r[t];
          }
        }
      }
    }
  }
}

bool is_pointwise(int64_t kh, int64_t kw, const ConvParams& p) {
  return kh == 1 && kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
}

bool use_direct(int64_t Cg, int64_t kh, int64_t kw, const ConvParams& p) {
  if (Cg != 1 || kh * kw > 64) return false;  // direct_plane_bwd_weight keeps one accumulator row per tap
  if (conv_algo_override() >= 0) return conv_algo_override() == 1;
  return p.groups > 1;  // depthwise: measured faster (see header); 1-channel input keeps im2col
}

// ------------------------------------------------------------------ direct kernels (Cg == 1)
constexpr int kLanes = 16;  // output columns (or weight-gradient partial sums) handled per vector chunk

inline int64_t round_lanes(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// dst (prows x ld) = zeros with the plane src (rows x cols, contiguous) placed at (top, left).
template <typename T>
TOCHA_CONV_NO_LIBCALLS void pad_plane(const T* __restrict src, int64_t rows, int64_t cols, int64_t top,
                                      int64_t left, int64_t prows, int64_t ld, T* __restrict dst) {
  for (int64_t t = 0; t < prows * ld; ++t) dst[t] = T(0);
  for (int64_t r = 0; r < rows; ++r) {
    T* d = dst + (top + r) * ld + left;
    const T* q = src + r * cols;
    for (int64_t c = 0; c < cols; ++c) d[c] = q[c];
  }
}

// y (OH x OW, row stride OW) = [y +] bias + sum_{i,j} w[i*kw + j] * src[(oh*sh + i*dh)*ld + ow*sw + j*dw].
// src is zero-padded by the caller so that every read is in range, including the columns of the last,
// partial kLanes chunk: ld >= (round_lanes(OW) - 1)*sw + (kw-1)*dw + 1. Output columns go kLanes at a time
// into a local accumulator that stays in registers over all taps (one store per output element instead of
// a load/add/store per tap); the tap order (bias, then i-major, j-minor) is fixed by the shape.
template <typename T, bool UnitStride>
TOCHA_CONV_NO_LIBCALLS void direct_plane_corr(const T* __restrict src, int64_t ld, const T* __restrict w,
                                              int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                                              int64_t dw, int64_t OH, int64_t OW, T bias, bool accumulate,
                                              T* __restrict y) {
  // GCC/Clang vector extension at the build's native width (AVX: 32 bytes, baseline SSE2: 16), NV of them
  // per kLanes chunk: the accumulators stay in registers across all taps (plain loops over a T[kLanes]
  // array were kept in memory, and one kLanes-wide vector type was split through the stack).
  using V = typename NativeVec<T>::V;
  constexpr int VL = NativeVec<T>::kLen, NV = kLanes / VL;
  for (int64_t oh = 0; oh < OH; ++oh) {
    T* yr = y + oh * OW;
    for (int64_t c0 = 0; c0 < OW; c0 += kLanes) {
      V acc[NV];
      for (int u = 0; u < NV; ++u) acc[u] = V{} + bias;
      for (int64_t i = 0; i < kh; ++i) {
        const T* row = src + (oh * sh + i * dh) * ld + c0 * sw;
        for (int64_t j = 0; j < kw; ++j) {
          const T wv = w[i * kw + j];
          const T* q = row + j * dw;
          for (int u = 0; u < NV; ++u) {
            V v;
            if constexpr (UnitStride) {
              std::memcpy(&v, q + u * VL, sizeof(v));
            } else {
              for (int l = 0; l < VL; ++l) v[l] = q[(u * VL + l) * sw];
            }
            acc[u] += wv * v;
          }
        }
      }
      T a[kLanes];
      std::memcpy(a, acc, sizeof(a));
      const int64_t m = std::min<int64_t>(kLanes, OW - c0);
      if (accumulate) {
        for (int64_t l = 0; l < m; ++l) yr[c0 + l] += a[l];
      } else {
        for (int64_t l = 0; l < m; ++l) yr[c0 + l] = a[l];
      }
    }
  }
}

template <typename T>
void direct_corr(const T* src, int64_t ld, const T* w, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                 int64_t dw, int64_t OH, int64_t OW, T bias, bool accumulate, T* y) {
  if (sw == 1)
    direct_plane_corr<T, true>(src, ld, w, kh, kw, sh, sw, dh, dw, OH, OW, bias, accumulate, y);
  else
    direct_plane_corr<T, false>(src, ld, w, kh, kw, sh, sw, dh, dw, OH, OW, bias, accumulate, y);
}

// Forward geometry: x plane padded by (ph, pw); rows read up to (OH-1)*sh + (kh-1)*dh < H + 2*ph.
inline void fwd_pad_dims(int64_t H, int64_t W, int64_t kw, const ConvParams& p, int64_t OW, int64_t& prows,
                         int64_t& ld) {
  prows = H + 2 * p.ph;
  ld = std::max(W + 2 * p.pw, (round_lanes(OW) - 1) * p.sw + (kw - 1) * p.dw + 1);
}

// Input-gradient geometry for stride 1: dx[ih][iw] = sum_{i,j} w[kh-1-i][kw-1-j] *
// gypad[ih + ph + i*dh][iw + pw + j*dw] with gy placed at ((kh-1)*dh, (kw-1)*dw) of the zero-padded gypad
// (a forward correlation with the flipped kernel).
inline void bwd_pad_dims(int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p, int64_t OH,
                         int64_t OW, int64_t& prows, int64_t& ld) {
  prows = std::max(H + p.ph + (kh - 1) * p.dh, (kh - 1) * p.dh + OH);
  ld = std::max((kw - 1) * p.dw + OW, p.pw + round_lanes(W) - 1 + (kw - 1) * p.dw + 1);
}

template <typename T>
void direct_plane_bwd_input(const T* __restrict gy, int64_t H, int64_t W, const T* w, int64_t kh, int64_t kw,
                            const ConvParams& p, int64_t OH, int64_t OW, T* __restrict dx) {
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

// dw (kh, kw) += correlation of the x plane with the gy plane, per tap a dot product over all output
// pixels. x arrives zero-padded as for the forward (xpad, row stride ld, see fwd_pad_dims) and gy as gpad
// (OH x round_lanes(OW), zeros beyond OW). Each tap sums kLanes-wide chunks into NV native vectors (fixed
// order, reduced pairwise at the end: the summation order depends only on the shape); in the last, partial
// chunk the x lanes beyond OW are cleared bitwise, so an inf/NaN that no output pixel reads never meets
// gy's zero padding. A single scalar running sum per tap (the previous code) cannot be vectorised.
// Measured (depthwise (32,64,32,32) 3x3 pad 1, tocha._C.conv2d_backward_weight, min of 30, Zen 4):
// 1 thread 6.19 ms (scalar running sums) -> 1.5 ms (this code; numbers for all three kernels in conv.cpp).
// JN (<= 4) taps of one kernel row at a time share each gy load and keep JN * NV independent accumulator
// chains (one chain per tap was FMA-latency bound).
template <typename T, int JN, bool UnitStride>
TOCHA_CONV_NO_LIBCALLS void bwd_weight_taps(const T* __restrict xpad, int64_t ld, const T* __restrict gpad,
                                            int64_t i, int64_t j0, int64_t kw, const ConvParams& p, int64_t OH,
                                            int64_t OW, T* dw) {
  using V = typename NativeVec<T>::V;
  using IV = typename NativeVec<T>::IV;
  constexpr int VL = NativeVec<T>::kLen, NV = kLanes / VL;
  const int64_t OWp = round_lanes(OW), full = OW / kLanes * kLanes, sw = p.sw;
  IV keep[NV];  // lane mask of the last chunk: all ones for columns < OW
  for (int u = 0; u < NV; ++u)
    for (int l = 0; l < VL; ++l) keep[u][l] = full + u * VL + l < OW ? -1 : 0;
  V acc[JN][NV];
#pragma GCC unroll 16
  for (int t = 0; t < JN; ++t)
#pragma GCC unroll 16
    for (int u = 0; u < NV; ++u) acc[t][u] = V{};
  auto chunk = [&](const T* g, const T* xr, int64_t c0, bool tail) __attribute__((always_inline)) {
#pragma GCC unroll 16
    for (int u = 0; u < NV; ++u) {
      V gv;
      std::memcpy(&gv, g + c0 + u * VL, sizeof(gv));
#pragma GCC unroll 16
      for (int t = 0; t < JN; ++t) {
        const T* q = xr + t * p.dw + (c0 + u * VL) * sw;
        V xv;
        if constexpr (UnitStride) {
          std::memcpy(&xv, q, sizeof(xv));
        } else {
#pragma GCC unroll 16
          for (int l = 0; l < VL; ++l) xv[l] = q[l * sw];
        }
        if (tail) xv = (V)((IV)xv & keep[u]);
        acc[t][u] += gv * xv;
      }
    }
  };
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* g = gpad + oh * OWp;
    const T* xr = xpad + (oh * p.sh + i * p.dh) * ld + j0 * p.dw;
    for (int64_t c0 = 0; c0 < full; c0 += kLanes) chunk(g, xr, c0, false);
    if (full < OWp) chunk(g, xr, full, true);
  }
  for (int t = 0; t < JN; ++t) {
    for (int u = 1; u < NV; ++u) acc[t][0] += acc[t][u];
    T a[VL];
    std::memcpy(a, &acc[t][0], sizeof(a));
    for (int w = VL / 2; w > 0; w /= 2)
      for (int l = 0; l < w; ++l) a[l] += a[l + w];
    dw[i * kw + j0 + t] += a[0];
  }
}

template <typename T>
void direct_plane_bwd_weight(const T* xpad, int64_t ld, const T* gpad, int64_t kh, int64_t kw, const ConvParams& p,
                             int64_t OH, int64_t OW, T* dw) {
  for (int64_t i = 0; i < kh; ++i)
    for (int64_t j0 = 0; j0 < kw; j0 += 4) {
      const int64_t jn = std::min<int64_t>(4, kw - j0);
      if (p.sw == 1) {
        switch (jn) {
          case 1: bwd_weight_taps<T, 1, true>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
          case 2: bwd_weight_taps<T, 2, true>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
          case 3: bwd_weight_taps<T, 3, true>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
          default: bwd_weight_taps<T, 4, true>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
        }
      } else {
        switch (jn) {
          case 1: bwd_weight_taps<T, 1, false>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
          case 2: bwd_weight_taps<T, 2, false>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
          case 3: bwd_weight_taps<T, 3, false>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
          default: bwd_weight_taps<T, 4, false>(xpad, ld, gpad, i, j0, kw, p, OH, OW, dw); break;
        }
      }
    }
}

// ------------------------------------------------------------------ im2col + GEMM
// One GEMM per image and group over the whole output plane: measured faster than both batching several
// small images into one wide GEMM and cutting images into L2-sized row bands (see conv.cpp). Only planes
// whose col matrix would exceed kColBytes are cut into bands of output rows, to bound the scratch memory;
// the GEMMs read/write the y, gy and dW bands in place through their leading dimension.
constexpr int64_t kColBytes = int64_t(8) << 20;

// Output rows per band (a function of the shape and dtype only, never of the thread count).
int64_t band_rows(int64_t CKK, int64_t OH, int64_t OW, size_t elem) {
  const int64_t budget = conv_band_override() > 0 ? conv_band_override() : kColBytes;
  const int64_t per_row = std::max<int64_t>(1, CKK * OW * int64_t(elem));
  const int64_t rows = std::max<int64_t>(1, std::min(OH, budget / per_row));
  const int64_t nbands = (OH + rows - 1) / rows;
  return (OH + nbands - 1) / nbands;  // equal bands
}

// Per-thread scratch, grown on demand and reused across calls: no allocation, page faults or zero-fill
// per call. OpenMP threads persist, so each keeps its buffer. 64-byte aligned (the GEMM's packed
// operands need it). Tag: kCol = col bands (each thread), kWeights = the packed weights (calling thread,
// read by all), kWeightsBias = [W | b] before packing, kPartials = weight-gradient slice partials,
// kStage = the column masks of im2col_flat_packed (calling thread, read by all), kStageY = a forward GEMM's
// output band before its copy into y (each thread).
enum ScratchTag { kCol = 0, kWeights = 1, kWeightsBias = 2, kPartials = 3, kStage = 4, kStageY = 5 };
template <typename T, int Tag = kCol>
T* scratch(size_t n) {
  thread_local std::vector<T> buf;
  const size_t pad = 64 / sizeof(T);
  if (buf.size() < n + pad) buf.resize(n + pad);
  const uintptr_t a = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<T*>((a + 63) & ~uintptr_t(63));
}

// W_g (Kg x CKK, or its transpose CKK x Kg with `trans`) of every group packed once per call as the GEMM's
// A operand (gemm_pack_a); group g at the returned pointer + g * (returned stride). With `bias` (forward
// only) W_g gets the group's biases as an extra last column, [W_g | b_g] (Kg x CKK+1), to multiply a col
// matrix whose extra last row is ones.
template <typename T>
std::pair<const T*, int64_t> pack_weights(const T* w, int64_t G, int64_t Kg, int64_t CKK, bool trans,
                                          const T* bias = nullptr) {
  const int64_t M = trans ? CKK : Kg, K = (trans ? Kg : CKK) + (bias ? 1 : 0);
  const int64_t sz = gemm_packed_a_size<T>(M, K);
  T* dst = scratch<T, kWeights>(size_t(G * sz));
  if (bias) {  // [W | b] (G*Kg x CKK+1), then packed like W
    T* wb = scratch<T, kWeightsBias>(size_t(G * Kg * K));
    for (int64_t k = 0; k < G * Kg; ++k) {
      std::copy(w + k * CKK, w + (k + 1) * CKK, wb + k * K);
      wb[k * K + CKK] = bias[k];
    }
    for (int64_t g = 0; g < G; ++g) gemm_pack_a<T>(M, K, wb + g * Kg * K, K, 1, dst + g * sz);
    return {dst, sz};
  }
  for (int64_t g = 0; g < G; ++g)
    gemm_pack_a<T>(M, K, w + g * Kg * CKK, trans ? 1 : CKK, trans ? CKK : 1, dst + g * sz);
  return {dst, sz};
}

template <typename T>
using MaskBits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;  // bit pattern of a T

// Stride 1 with OW == W ('same' padding along W) or a single output row (1-d convs): the col band (KB x L,
// KB = CKK [+ 1 bias row of ones])
// built straight in the GEMM's packed-B layout (gemm.h), no col matrix for the GEMM to re-pack. In this
// geometry tap (c, i, j)'s row is x_c read at a fixed shift (row q of the band <- x_c[q + shift]), zero where
// the tap falls outside the image: outside the valid output rows of tap i, or at the columns of tap j whose
// input column is outside [0, W) (colmask[j], all-ones / zero bit patterns over the band, zero past L). So
// each NR-wide panel piece is one unaligned load of x, an AND with the mask bits and an aligned store (the
// values are copied, never computed: the same bits as im2col + the GEMM's packer); pieces that touch the
// ends of the valid rows or of the channel plane go element by element. (Written as a select on a 0/1
// float mask GCC kept it scalar, slower than im2col + packing: 14x14 p1 fwd 6.18 vs 5.36 ms.)
template <typename T, int NR>
TOCHA_CONV_NO_LIBCALLS void im2col_flat_packed(const T* __restrict x, int64_t C, int64_t H, int64_t W, int64_t kh,
                                               int64_t kw, const ConvParams& p, int64_t oha, int64_t ohb,
                                               int64_t OW, bool ones_row, int64_t kc,
                                               const MaskBits<T>* __restrict colmask, T* __restrict dst) {
  const int64_t L = (ohb - oha) * OW, ext = (L + NR - 1) / NR * NR, HW = H * W;
  const int64_t CKK = C * kh * kw, KB = CKK + (ones_row ? 1 : 0);
  for (int64_t r = 0; r < KB; ++r) {
    const int64_t pc = r - r % kc, ps = NR * std::min(kc, KB - pc);
    T* d = dst + pc * ext + (r - pc) * NR;
    if (r == CKK) {  // bias row: ones over the band, zero padding columns
      for (int64_t q = 0; q < ext; q += NR, d += ps)
        for (int t = 0; t < NR; ++t) d[t] = q + t < L ? T(1) : T(0);
      continue;
    }
    const int64_t c = r / (kh * kw), i = r / kw % kh, j = r % kw;
    const int64_t offh = i * p.dh - p.ph, offw = j * p.dw - p.pw;
    int64_t oh0, oh1;
    valid_range(offh, 1, H, ohb, oh0, oh1);
    oh0 = std::max(oh0, oha);
    oh1 = std::max(oh1, oh0);
    const int64_t q0 = (oh0 - oha) * OW, q1 = (oh1 - oha) * OW;  // valid rows of the band
    const int64_t shift = (oha + offh) * W + offw;                // x index of band position q: q + shift
    const T* xc = x + c * HW;
    const MaskBits<T>* m = colmask + j * ext;
    for (int64_t q = 0; q < ext; q += NR, d += ps) {
      if (q >= q0 && q + NR <= q1 && q + shift >= 0 && q + NR + shift <= HW) {
        const T* src = xc + q + shift;
        const MaskBits<T>* mq = m + q;
        for (int t = 0; t < NR; ++t) {  // x bits AND the mask bits: vector loads, ANDs and stores
          MaskBits<T> v;
          std::memcpy(&v, src + t, sizeof(T));
          v &= mq[t];
          std::memcpy(d + t, &v, sizeof(T));
        }
      } else {
        for (int t = 0; t < NR; ++t) {
          const int64_t qq = q + t;
          d[t] = (qq >= q0 && qq < q1 && m[qq] != 0) ? xc[qq + shift] : T(0);
        }
      }
    }
  }
}

// colmask[j * ext + q] = all ones where band position q (< L) maps to an input column of tap j inside [0, W),
// else 0.
template <typename T>
void flat_colmask(int64_t W, int64_t OW, int64_t kw, const ConvParams& p, int64_t L, int64_t ext,
                  MaskBits<T>* colmask) {
  for (int64_t j = 0; j < kw; ++j) {
    const int64_t offw = j * p.dw - p.pw;
    for (int64_t q = 0, ow = 0; q < ext; ++q, ow = ow + 1 == OW ? 0 : ow + 1) {
      const int64_t iw = ow + offw;
      colmask[j * ext + q] = (q < L && iw >= 0 && iw < W) ? ~MaskBits<T>(0) : MaskBits<T>(0);
    }
  }
}

template <typename T>
void im2col_flat_packed_any(const T* x, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                            const ConvParams& p, int64_t oha, int64_t ohb, int64_t OW, bool ones_row,
                            const GemmPacking& pk, const MaskBits<T>* colmask, T* dst) {
  switch (pk.nr) {
    case 16: return im2col_flat_packed<T, 16>(x, C, H, W, kh, kw, p, oha, ohb, OW, ones_row, pk.kc, colmask, dst);
    case 8: return im2col_flat_packed<T, 8>(x, C, H, W, kh, kw, p, oha, ohb, OW, ones_row, pk.kc, colmask, dst);
    case 4: return im2col_flat_packed<T, 4>(x, C, H, W, kh, kw, p, oha, ohb, OW, ones_row, pk.kc, colmask, dst);
  }
}

// Runs body(n) for every image: threads own whole images when there are at least as many images as
// threads; otherwise serially (each GEMM then threads itself).
template <typename F>
void for_images(int64_t N, int nt, F&& body) {
  if (nt > 1 && N >= nt) {
    TOCHA_CONV_PARALLEL_FOR(nt, 1)
    for (int64_t n = 0; n < N; ++n) body(n);
  } else {
    for (int64_t n = 0; n < N; ++n) body(n);
  }
}

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }  // n up to a multiple of m

// ------------------------------------------------------------------ direct multi-channel forward
// For stride-1 columns and few taps per output (small Cg*kh*kw, where im2col's copy of the input costs as much
// as the GEMM), the forward runs without a col matrix: per group the Cg input planes are copied into a zero-padded
// buffer, and each output tile of MR channels x kDmLanes columns of one output row accumulates in registers over
// all taps t = (c, i, j), B read straight from the buffer at a fixed offset per tap (an "implicit GEMM":
// y_blk (MR x lanes) = W_blk (MR x CKK) @ patch (CKK x lanes)). Per tap: two vector loads of the input row, MR
// broadcast weights, 2*MR FMAs. Each output element is one chain over the taps in a fixed order, plus the bias
// last (as the im2col path's bias row), independent of the thread count and of the banding.
constexpr int kDmMaxMR = 6;

// acc (MR x NV vectors) = sum_t wb[t*MR + m] * src[off[t] + lane] + bias[m]; store lanes [0, n) of each row to
// y + m * ystride (n <= NV * VL).
template <typename T, int MR, int NV>
TOCHA_CONV_NO_LIBCALLS void dm_tile(const T* __restrict src, const int64_t* __restrict off, int64_t CKK,
                                    const T* __restrict wb, const T* __restrict bias, T* __restrict y,
                                    int64_t ystride, int64_t n) {
  using V = typename NativeVec<T>::V;
  constexpr int VL = NativeVec<T>::kLen;
  V acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int u = 0; u < NV; ++u) acc[m][u] = V{};
  for (int64_t t = 0; t < CKK; ++t) {
    const T* q = src + off[t];
    V b[NV];
    for (int u = 0; u < NV; ++u) b[u] = vload<V>(q + u * VL);
    const T* wt = wb + t * MR;
    for (int m = 0; m < MR; ++m)
      for (int u = 0; u < NV; ++u) acc[m][u] += wt[m] * b[u];
  }
  if (bias)
    for (int m = 0; m < MR; ++m)
      for (int u = 0; u < NV; ++u) acc[m][u] += bias[m];
  if (n == NV * VL) {
    for (int m = 0; m < MR; ++m)
      for (int u = 0; u < NV; ++u) vstore(y + m * ystride + u * VL, acc[m][u]);
  } else {
    for (int m = 0; m < MR; ++m) {
      T tmp[NV * VL];
      for (int u = 0; u < NV; ++u) vstore(tmp + u * VL, acc[m][u]);
      for (int64_t l = 0; l < n; ++l) y[m * ystride + l] = tmp[l];
    }
  }
}

template <typename T, int NV>
void dm_tile_any(int mr, const T* src, const int64_t* off, int64_t CKK, const T* wb, const T* bias, T* y,
                 int64_t ystride, int64_t n) {
  switch (mr) {
    case 6: dm_tile<T, 6, NV>(src, off, CKK, wb, bias, y, ystride, n); break;
    case 5: dm_tile<T, 5, NV>(src, off, CKK, wb, bias, y, ystride, n); break;
    case 4: dm_tile<T, 4, NV>(src, off, CKK, wb, bias, y, ystride, n); break;
    case 3: dm_tile<T, 3, NV>(src, off, CKK, wb, bias, y, ystride, n); break;
    case 2: dm_tile<T, 2, NV>(src, off, CKK, wb, bias, y, ystride, n); break;
    default: dm_tile<T, 1, NV>(src, off, CKK, wb, bias, y, ystride, n); break;
  }
}

// Vectors per tile row: 2 (16 float lanes on AVX2) with blocks of 4-6 channels (8-12 FMA chains); a group with
// 1-2 output channels gets 4 vectors per row (4-8 chains; 3 rows x 4 vectors spilled an accumulator: 12 + 4 B
// vectors + a broadcast > 16 AVX2 registers).
inline int dm_vectors(int64_t Kg) { return Kg <= 2 ? 4 : 2; }

// Channel blocks of a group (Kg >= 1): ceil(Kg / 6) blocks of as equal sizes as possible (16 -> 6, 5, 5); the
// first Kg % count blocks have one row more.
struct DmBlocks {
  int64_t count, base, extra;
  explicit DmBlocks(int64_t Kg)
      : count((Kg + kDmMaxMR - 1) / kDmMaxMR), base(Kg / count), extra(Kg % count) {}
  int rows(int64_t b) const { return int(base + (b < extra ? 1 : 0)); }
};

// Where the direct kernel runs (stride-1 columns; rule measured on 29 shapes, see conv.cpp): it wins where
// im2col's copy is large next to the GEMM, i.e. few output channels per group, and loses where a tile has few
// taps (its fixed cost per tile) or OW wastes much of the last kDmLanes-wide column tile. The im2col path is
// cheaper for stride-1 rows with OW == W or one output row (its col goes straight into the GEMM's packed B),
// so there the direct kernel needs more channels to win.
template <typename T>
bool use_direct_mc(int64_t Cg, int64_t Kg, int64_t kh, int64_t kw, int64_t OH, int64_t OW, int64_t W,
                   const ConvParams& p) {
  if (p.sw != 1 || (Cg == 1 && p.groups > 1)) return false;  // depthwise has its own direct kernel
  if (conv_algo_override() >= 0) return conv_algo_override() == 3;
  const int64_t LN = dm_vectors(Kg) * NativeVec<T>::kLen;
  const int64_t CKK = Cg * kh * kw;
  if (4 * OW < 3 * round_up(OW, LN)) return false;  // > 1/4 of the computed columns wasted
  const bool flat = p.sh == 1 && (OW == W || OH == 1);
  if (Kg <= 8) return true;
  if (CKK < 32) return false;
  if (Kg <= 16) return true;
  if (Kg <= 32) return Cg >= 16 || !flat;
  return OH == 1 && Cg >= 16;
}

template <typename T, int NV>
void direct_mc_forward_nv(const T* xp, const T* wp, const T* bias, int64_t N, int64_t C, int64_t H, int64_t W,
                          int64_t K, int64_t kh, int64_t kw, const ConvParams& p, int64_t OH, int64_t OW, T* yp,
                          int nt) {
  constexpr int LN = NV * NativeVec<T>::kLen;
  const int64_t G = p.groups, Cg = C / G, Kg = K / G, CKK = Cg * kh * kw, OHW = OH * OW;
  const int64_t items0 = N * G;  // (image, group) pairs
  if (items0 == 0 || Kg == 0) return;
  const DmBlocks blocks(Kg);
  // weights: per group, channel block [k0, k0 + mr) as wb[t * mr + m] = w[g*Kg + k0 + m][t], at offset k0 * CKK
  T* wpk = scratch<T, kWeights>(size_t(K * CKK));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t b = 0, k0 = 0; b < blocks.count; k0 += blocks.rows(b++)) {
      const int mr = blocks.rows(b);
      T* d = wpk + (g * Kg + k0) * CKK;
      for (int64_t t = 0; t < CKK; ++t)
        for (int m = 0; m < mr; ++m) d[t * mr + m] = wp[(g * Kg + k0 + m) * CKK + t];
    }
  // bands of output rows: whole planes when there are enough (image, group) items for the threads
  int64_t nbands = 1;
  if (nt > 1 && items0 < 4 * nt) nbands = std::min<int64_t>(OH, (4 * nt + items0 - 1) / items0);
  const int64_t R = (OH + nbands - 1) / nbands;
  nbands = (OH + R - 1) / R;
  const int64_t ld = std::max(W + 2 * p.pw, round_up(OW, LN) + (kw - 1) * p.dw);
  const int64_t prow = (R - 1) * p.sh + (kh - 1) * p.dh + 1;  // padded input rows one band reads
  // channel planes an odd number of cache lines apart: taps of several channels near 4 KiB multiples apart
  // would share L1 sets
  const int64_t cl = 64 / int64_t(sizeof(T));
  int64_t plane = round_up(prow * ld, cl);
  if ((plane / cl) % 2 == 0) plane += cl;
  int64_t* off = scratch<int64_t, kStage>(size_t(CKK));
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) off[(c * kh + i) * kw + j] = c * plane + i * p.dh * ld + j * p.dw;
  // output columns per group: the Cg*kh input row pieces they read within ~16 KiB
  const int64_t cw = LN * std::max<int64_t>(1, (int64_t(16) << 10) / (int64_t(sizeof(T)) * Cg * kh * (LN + (kw - 1) * p.dw)));
  const int64_t items = items0 * nbands;
  TOCHA_CONV_PARALLEL_FOR(nt, dyn_chunk(items, nt))
  for (int64_t it = 0; it < items; ++it) {
    const int64_t ng = it / nbands, band = it % nbands, n = ng / G, g = ng % G;
    const int64_t oh0 = band * R, oh1 = std::min(OH, oh0 + R);
    const int64_t r0 = oh0 * p.sh - p.ph;  // input row of buffer row 0
    const int64_t rows = (oh1 - oh0 - 1) * p.sh + (kh - 1) * p.dh + 1;
    const int64_t ih0 = std::max<int64_t>(r0, 0), ih1 = std::min(H, r0 + rows);  // input rows inside the image
    T* buf = scratch<T>(size_t(Cg * plane + LN));
    for (int64_t c = 0; c < Cg; ++c)
      pad_plane(xp + ((n * C + g * Cg + c) * H + ih0) * W, std::max<int64_t>(ih1 - ih0, 0), W, ih0 - r0, p.pw,
                rows, ld, buf + c * plane);
    const T* wg = wpk + g * Kg * CKK;
    const T* bg = bias ? bias + g * Kg : nullptr;
    T* yg = yp + (n * K + g * Kg) * OHW;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const T* srow = buf + (oh - oh0) * p.sh * ld;
      for (int64_t c0 = 0; c0 < OW; c0 += cw) {  // column groups whose input rows stay in L1 over all blocks
        const int64_t c1 = std::min(OW, c0 + cw);
        for (int64_t b = 0, k0 = 0; b < blocks.count; k0 += blocks.rows(b++))
          for (int64_t ow0 = c0; ow0 < c1; ow0 += LN)
            dm_tile_any<T, NV>(blocks.rows(b), srow + ow0, off, CKK, wg + k0 * CKK, bg ? bg + k0 : nullptr,
                               yg + k0 * OHW + oh * OW + ow0, OHW, std::min<int64_t>(LN, OW - ow0));
      }
    }
  }
}

template <typename T>
void direct_mc_forward(const T* xp, const T* wp, const T* bias, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t K, int64_t kh, int64_t kw, const ConvParams& p, int64_t OH, int64_t OW, T* yp, int nt) {
  if (dm_vectors(K / p.groups) == 4)
    direct_mc_forward_nv<T, 4>(xp, wp, bias, N, C, H, W, K, kh, kw, p, OH, OW, yp, nt);
  else
    direct_mc_forward_nv<T, 2>(xp, wp, bias, N, C, H, W, K, kh, kw, p, OH, OW, yp, nt);
}

// The input gradient as a forward conv (stride 1 only): gy padded by (k-1)*d - p (negative when p exceeds the
// dilated kernel's reach: then not used), same dilation, groups.
inline ConvParams transposed_params(int64_t kh, int64_t kw, const ConvParams& p) {
  ConvParams q = p;
  q.ph = (kh - 1) * p.dh - p.ph;
  q.pw = (kw - 1) * p.dw - p.pw;
  return q;
}

// Where the input gradient runs the direct kernel (a conv Kg -> Cg channels per group onto the H x W input):
// measured on 22 shapes (conv.cpp), it wins (1.17-1.57x at 1 and 2 threads) with 16-32 channels on both sides
// when the computed area is at most 1.25x gy's (the correlation of a 'valid' conv's gradient runs over a zero
// border: (64,32,12,12)->32 5x5 computes 2.3x im2col's products, 0.48x); it loses with <= 8 input channels per
// group (1-3: 0.46-0.83x) and ties with 64-128 on both sides.
template <typename T>
bool use_direct_mc_bwd(int64_t Cg, int64_t Kg, int64_t OH, int64_t OW, int64_t H, int64_t W, const ConvParams& p,
                       const ConvParams& q) {
  if (p.sh != 1 || p.sw != 1 || q.ph < 0 || q.pw < 0 || (Cg == 1 && p.groups > 1)) return false;
  if (conv_algo_override() >= 0) return conv_algo_override() == 3;
  const int64_t LN = dm_vectors(Cg) * NativeVec<T>::kLen;
  return Cg >= 16 && Cg <= 32 && Kg <= 32 && 4 * H * round_up(W, LN) <= 5 * OH * OW;
}

// ------------------------------------------------------------------ Winograd F(2x2, 3x3)
// 3x3, stride 1, dilation 1, groups 1 (padding <= 2): each 2x2 output tile is A^T [U .* V] A with
// U = G g G^T (per output/input channel pair) and V = B^T d B (d = the tile's 4x4 zero-padded input patch),
//   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// so the sum over input channels becomes 16 GEMMs, one per transform point xi:
//   M_xi (K x Tc) = U_xi (K x C) @ V_xi (C x Tc) over a chunk of Tc tiles,
// 16 instead of 36 multiply-adds per tile and channel pair (2.25x fewer than im2col + GEMM). The tiles of all
// images form one list cut into fixed chunks of Tc tiles (a function of the shape only; a chunk may span
// images, so small planes still give wide GEMMs); chunks are the parallel work items. Per chunk and input
// channel the input transform writes V_xi straight into the GEMM's packed-B layout (no B packing), U is
// packed once per call as the A operand, and the output transform adds the bias and writes y. The input
// gradient of such a conv is the same computation on gy (see conv_bwd_input_impl), the weight gradient its
// adjoint in the kernel on the same tiles (winograd_weight_grad). Each output element's
// arithmetic depends only on the shape (the GEMM never splits K), so results are identical for any thread
// count. Float32 error: the transforms add <= 4 terms with coefficients +-1 (input, output) and 1/2 (weights).

// Cin -> Kout channels with an OH x OW output (the input gradient: K -> C channels, H x W; the weight gradient
// as the forward). Measured faster than im2col + GEMM / col2im with both channel counts >= 16 (C = 8 -> K = 16
// loses: fwd 0.81x, grad input 0.86x, grad weight 0.86x) unless the 2x2 tiles waste a quarter of their outputs
// (5x5 planes: grad input 0.83x); see conv.cpp.
inline bool use_winograd(int64_t Cin, int64_t Kout, int64_t OH, int64_t OW, int64_t kh, int64_t kw,
                         const ConvParams& p) {
  if (kh != 3 || kw != 3 || p.sh != 1 || p.sw != 1 || p.dh != 1 || p.dw != 1 || p.groups != 1 || p.ph > 2 ||
      p.pw > 2)
    return false;
  if (conv_algo_override() >= 0) return conv_algo_override() == 2;
  const int64_t tiled = 4 * ((OH + 1) / 2) * ((OW + 1) / 2);
  return Cin >= 16 && Kout >= 16 && 4 * OH * OW >= 3 * tiled;
}

// U_xi (K x C) = (G g G^T)[xi] for every channel pair, packed as the GEMM's A operand once per call: U_xi at the
// returned pointer + xi * (returned stride). g(k, c) = w[k][c] (w (K, C, 3, 3)), or with `flip` the input
// gradient's kernel w[c][k] rotated by 180 degrees (w (C, K, 3, 3)).
template <typename T>
std::pair<const T*, int64_t> winograd_weights(const T* w, int64_t K, int64_t C, bool flip) {
  const int64_t KC = K * C;
  T* u = scratch<T, kWeightsBias>(size_t(16 * KC));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      T g[9];
      for (int t = 0; t < 9; ++t) g[t] = flip ? w[(c * K + k) * 9 + 8 - t] : w[(k * C + c) * 9 + t];
      T r[4][3];  // G g
      for (int j = 0; j < 3; ++j) {
        r[0][j] = g[j];
        r[1][j] = T(0.5) * (g[j] + g[3 + j] + g[6 + j]);
        r[2][j] = T(0.5) * (g[j] - g[3 + j] + g[6 + j]);
        r[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; ++i) {  // (G g) G^T
        T* ui = u + (4 * i) * KC + k * C + c;
        ui[0] = r[i][0];
        ui[KC] = T(0.5) * (r[i][0] + r[i][1] + r[i][2]);
        ui[2 * KC] = T(0.5) * (r[i][0] - r[i][1] + r[i][2]);
        ui[3 * KC] = r[i][2];
      }
    }
  const int64_t al = 64 / int64_t(sizeof(T));  // every U_xi 64-byte aligned, as packed operands must be
  const int64_t sz = round_up(gemm_packed_a_size<T>(K, C), al);
  T* dst = scratch<T, kWeights>(size_t(16 * sz));
  for (int xi = 0; xi < 16; ++xi) gemm_pack_a<T>(K, C, u + xi * KC, C, 1, dst + xi * sz);
  return {dst, sz};
}

// Tiles per chunk: V and M of a chunk take 16 (C + K) Tc elements, ~1.5 MiB (measured: 26x26 fwd 9.5-9.7 ms for
// Tc = 128..384 tiles, 10.5 ms for 64: fewer, wider GEMMs matter more than keeping V and M in L2); a multiple of
// the GEMM's register-tile width (no padded B columns except in the last chunk).
template <typename T>
int64_t winograd_chunk(int64_t C, int64_t K, int nr) {
  const int64_t budget = (int64_t(3) << 19) / int64_t(sizeof(T));
  const int64_t tc = budget / (16 * (C + K)) / nr * nr;
  return std::clamp<int64_t>(tc, 4 * int64_t(nr), 32 * int64_t(nr));
}

// yr[2 i], yr[2 i + 1] = e0[i], e1[i] for i < n, W tiles per vector step (the last step overlaps the one before:
// it rewrites some values with the same bits); n >= W.
template <typename T, int W>
inline void store_pairs(const T* e0, const T* e1, int64_t n, T* yr) {
  typedef T VW __attribute__((vector_size(W * sizeof(T))));
  for (int64_t i = 0;; i += W) {
    i = std::min(i, n - W);
    VW a, b, lo, hi;
    std::memcpy(&a, e0 + i, sizeof(a));
    std::memcpy(&b, e1 + i, sizeof(b));
    interleave(a, b, lo, hi);
    std::memcpy(yr + 2 * i, &lo, sizeof(lo));
    std::memcpy(yr + 2 * i + W, &hi, sizeof(hi));
    if (i == n - W) break;
  }
}

// The 2x2 output tiles of all N images (OH x OW planes, in rows of TW tiles) as one list cut into chunks of Tc,
// and the zero-padded input rows their 4x4 patches read (x (N, C, H, W) padded by (ph, pw) on the top/left and
// as far as the tiles reach on the bottom/right): rows are read wrs columns at a time in place at a shift of -pw,
// colmask clearing the columns outside x's row. colmask is the calling thread's scratch, read by all threads.
template <typename T>
struct WinogradTiles {
  const T* x;
  const T* xend;
  int64_t C, H, W, ph, pw, OH, OW, TW, TI, NT, Tc, nchunks, wrs, hs;
  const MaskBits<T>* colmask;
};

template <typename T>
WinogradTiles<T> winograd_tiles(const T* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                                int64_t OH, int64_t OW, int64_t Tc, int64_t nr) {
  constexpr int VL = NativeVec<T>::kLen;
  WinogradTiles<T> g{x, x + N * C * H * W, C, H, W, ph, pw, OH, OW, (OW + 1) / 2, 0, 0, Tc, 0, 0, 0, nullptr};
  g.TI = (OH + 1) / 2 * g.TW;
  g.NT = N * g.TI;
  g.nchunks = (g.NT + Tc - 1) / Tc;
  const int64_t al = 64 / int64_t(sizeof(T));
  g.wrs = round_up(2 * round_up(g.TW, VL) + 2 + VL, al);  // padded columns read per row
  // one array of column combinations: the row pairs of an image segment's tile rows + 1, and nr slack on both
  // sides (a panel's lanes outside the segment read, and discard, neighbouring values)
  g.hs = round_up((Tc / g.TW + 3) * g.TW + 2 * nr, al);
  MaskBits<T>* m = scratch<MaskBits<T>, kStage>(size_t(g.wrs));
  for (int64_t s = 0; s < g.wrs; ++s) m[s] = s >= pw && s - pw < W ? ~MaskBits<T>(0) : MaskBits<T>(0);
  g.colmask = m;
  return g;
}

// A chunk's tiles split into runs within one tile row (image n, tile row ty, tiles tx0 .. tx0 + len - 1 at
// chunk positions u ..): listed once per chunk, so the per-channel loops do no divisions.
struct TileRun {
  int64_t n, ty, tx0, len, u;
};

// Fills runs (room for tn entries) with the runs of the tiles [t0, t0 + tn); returns their number.
template <typename T>
int64_t winograd_runs(const WinogradTiles<T>& g, int64_t t0, int64_t tn, TileRun* runs) {
  int64_t nrun = 0;
  for (int64_t t = t0; t < t0 + tn;) {
    const int64_t l = t % g.TI, tx0 = l % g.TW, len = std::min(t0 + tn - t, g.TW - tx0);
    runs[nrun++] = TileRun{t / g.TI, l / g.TW, tx0, len, t - t0};
    t += len;
  }
  return nrun;
}

// Elements of the per-thread buffers winograd_input needs beside V (Hb, rowbuf, pstage below).
template <typename T>
int64_t winograd_input_scratch(const WinogradTiles<T>& g, int64_t nr) {
  return 8 * g.hs + g.wrs + 16 * nr;
}

// V_xi (C x tn) = (B^T d B)[xi] for the tiles [t0, t0 + tn) of the list, at Vp + xi * vsz: with `packed` in the
// GEMM's packed-B layout for (kc, nr) = gemm_packing(C) (gemm.h; element (c, u) at pc * ext + (u - u % nr) * kcb +
// (c - pc) * nr + u % nr, K blocks [pc, pc + kcb) of C, padding columns zeroed), else a plain matrix with row
// stride ldv (nr then only blocks the loops). buf: winograd_input_scratch(g, nr) elements.
template <typename T>
TOCHA_CONV_NO_LIBCALLS void winograd_input(const WinogradTiles<T>& g, int64_t t0, int64_t tn, int64_t nr,
                                           int64_t kc, bool packed, int64_t ldv, T* Vp, int64_t vsz, T* buf) {
  using V = typename NativeVec<T>::V;
  using IV = typename NativeVec<T>::IV;
  using LI = typename NativeVec<T>::I;
  constexpr int VL = NativeVec<T>::kLen;
  const int64_t C = g.C, H = g.H, W = g.W, TW = g.TW, TI = g.TI, hs = g.hs, wrs = g.wrs;
  const int64_t ext = (tn + nr - 1) / nr * nr;
  T* Hb = buf + nr;  // column combinations (d B) of the padded rows: [parity][j][row pair][tx]
  T* rowbuf = buf + 8 * hs;  // a zero-padded input row
  T* pstage = rowbuf + wrs;  // a panel's 16 x nr values when the panel is shared with another image
  for (int64_t c = 0; c < C; ++c) {
    const int64_t pc = packed ? c / kc * kc : 0, kcb = packed ? std::min<int64_t>(kc, C - pc) : 1;
    T* Vc = packed ? Vp + pc * ext + (c - pc) * nr : Vp + c * ldv;  // + panel start * kcb + lane
    for (int64_t t = t0; t < t0 + tn;) {  // segments of the chunk within one image
      const int64_t n = t / TI, l = t % TI, len = std::min(t0 + tn - t, TI - l), u0 = t - t0;
      const int64_t tya = l / TW, tyb = (l + len - 1) / TW;
      const T* xc = g.x + (n * C + c) * H * W;
      // d B of the padded rows of the segment's tile rows, VL tiles at a time (two de-interleaved loads per
      // column offset). Row r's padded columns [0, wrs) are read in place from x at a shift of -pw, with the
      // columns outside [pw, pw + W) cleared bitwise by colmask (values of the neighbouring rows, never used);
      // a row whose reads would leave x (first / last rows of the tensor) is copied zero-padded first. The lanes
      // past TW spill into the next row pair of the same parity, written later, or into the slack.
      for (int64_t r = 2 * tya; r < 2 * tyb + 4; ++r) {
        const int64_t ih = r - g.ph;
        T* h = Hb + (r & 1) * 4 * hs + (r / 2 - tya) * TW;
        if (ih < 0 || ih >= H) {
          for (int64_t tx = 0; tx < TW; tx += VL)
            for (int j = 0; j < 4; ++j) vstore(h + j * hs + tx, V{});
          continue;
        }
        const T* q = xc + ih * W - g.pw;
        if (q < g.x || q + wrs > g.xend) {
          for (int64_t s = 0; s < wrs; ++s) rowbuf[s] = s >= g.pw && s - g.pw < W ? q[s] : T(0);
          q = rowbuf;
        }
        auto ld = [&](int64_t s) __attribute__((always_inline)) {
          IV m;
          std::memcpy(&m, g.colmask + s, sizeof(m));
          return (V)((IV)vload<V>(q + s) & m);
        };
        for (int64_t tx = 0; tx < TW; tx += VL) {
          V ev, od, ev1, od1;
          deinterleave(ld(2 * tx), ld(2 * tx + VL), ev, od);
          deinterleave(ld(2 * tx + 2), ld(2 * tx + 2 + VL), ev1, od1);
          vstore(h + tx, ev - ev1);
          vstore(h + hs + tx, od + ev1);
          vstore(h + 2 * hs + tx, ev1 - od);
          vstore(h + 3 * hs + tx, od - od1);
        }
      }
      // row combinations B^T (d B), a panel (nr tiles) at a time: rows 2ty, 2ty + 1 of a tile are H row
      // pair ty (even, odd parity), rows 2ty + 2, 2ty + 3 pair ty + 1 (TW further on), so consecutive tiles
      // of the image are consecutive in H. Panels shared with another image are computed whole into pstage
      // and only this image's lanes blended in.
      const int64_t dh = l - tya * TW - u0;  // H index of tile u: u + dh
      for (int64_t pu = u0 - u0 % nr; pu < u0 + len; pu += nr) {
        const int64_t a = std::max(pu, u0), b = std::min(pu + nr, u0 + len);
        const bool whole = a == pu && b == pu + nr;
        T* dst = whole ? Vc + pu * kcb : pstage;
        const int64_t ds = whole ? vsz : nr;
        for (int64_t s = 0; s < nr; s += VL)
          for (int j = 0; j < 4; ++j) {
            const T* e = Hb + j * hs + pu + dh + s;
            const T* o = e + 4 * hs;
            const V d0 = vload<V>(e), d1 = vload<V>(o), d2 = vload<V>(e + TW), d3 = vload<V>(o + TW);
            vstore(dst + j * ds + s, d0 - d2);
            vstore(dst + (4 + j) * ds + s, d1 + d2);
            vstore(dst + (8 + j) * ds + s, d2 - d1);
            vstore(dst + (12 + j) * ds + s, d1 - d3);
          }
        if (!whole)  // lanes [a, b) of the panel: vector blends under a lane mask
          for (int64_t s = 0; s < nr; s += VL) {
            IV lane, m;
            for (int i = 0; i < VL; ++i) lane[i] = LI(s + i);
            m = (lane >= IV{} + LI(a - pu)) & (lane < IV{} + LI(b - pu));
            for (int xi = 0; xi < 16; ++xi) {
              T* d = Vc + xi * vsz + pu * kcb + s;
              vstore(d, (V)(((IV)vload<V>(pstage + xi * nr + s) & m) | ((IV)vload<V>(d) & ~m)));
            }
          }
      }
      t += len;
    }
    if (packed && ext > tn)  // padding columns of the last panel
      for (int xi = 0; xi < 16; ++xi) {
        T* v = Vc + xi * vsz + (tn - tn % nr) * kcb;
        for (int64_t s = tn % nr; s < nr; ++s) v[s] = T(0);
      }
  }
}

// y (N, K, OH, OW) = Winograd correlation of x (N, C, H, W), zero-padded by (ph, pw) on the top/left (and as far
// as the tiles reach on the bottom/right), with the kernels packed in U (winograd_weights) [+ bias].
template <typename T>
TOCHA_CONV_NO_LIBCALLS void winograd_conv(const T* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t ph,
                                          int64_t pw, const T* U, int64_t usz, const T* bias, int64_t K,
                                          int64_t OH, int64_t OW, T* y, int nt) {
  using V = typename NativeVec<T>::V;
  constexpr int VL = NativeVec<T>::kLen;
  const GemmPacking pk = gemm_packing<T>(C);
  const int64_t nr = pk.nr, Tc = winograd_chunk<T>(C, K, pk.nr);
  const WinogradTiles<T> g = winograd_tiles(x, N, C, H, W, ph, pw, OH, OW, Tc, nr);
  const int64_t NT = g.NT;
  const int64_t al = 64 / int64_t(sizeof(T));  // 64-byte alignment of the sub-buffers, in elements
  // V_xi / M_xi one cache line apart beyond their size: the 16 streams of the transforms do not share L1 sets
  const int64_t vsz = round_up(gemm_packed_b_size<T>(C, Tc), al) + al, msz = round_up(K * Tc, al) + al;
  const int64_t need = 16 * vsz + 16 * msz + 4 * Tc + winograd_input_scratch(g, nr);
  auto chunk = [&](int64_t ci) {
    const int64_t t0 = ci * Tc, tn = std::min(Tc, NT - t0), ext = (tn + nr - 1) / nr * nr;
    T* Vp = scratch<T>(size_t(need));
    T* M = Vp + 16 * vsz;
    T* ost = M + 16 * msz;  // output tiles y00, y01, y10, y11 over the chunk
    // ---- input transform: V_xi (C x tn) in the GEMM's packed-B layout
    winograd_input(g, t0, tn, nr, pk.kc, true, 0, Vp, vsz, ost + 4 * Tc);
    TileRun* runs = scratch<TileRun>(size_t(Tc));
    const int64_t nrun = winograd_runs(g, t0, tn, runs);
    // ---- 16 GEMMs: M_xi (K x tn, row stride Tc) = U_xi @ V_xi
    for (int xi = 0; xi < 16; ++xi)
      gemm_prepacked<T>(K, tn, C, U + xi * usz, nullptr, 0, 0, Vp + xi * vsz, nullptr, 0, 0, M + xi * msz, Tc,
                        false);
    // ---- output transform A^T M A (+ bias), per output channel over all tiles of the chunk (columns tn .. ext
    // of M hold no tile: computed, never stored), then into y
    for (int64_t k = 0; k < K; ++k) {
      const V bv = V{} + (bias ? bias[k] : T(0));
      const T* m = M + k * Tc;
      for (int64_t u = 0; u < ext; u += VL) {
        V s0[4], s1[4];  // A^T M
        for (int j = 0; j < 4; ++j) {
          const V m0 = vload<V>(m + j * msz + u), m1 = vload<V>(m + (4 + j) * msz + u),
                  m2 = vload<V>(m + (8 + j) * msz + u), m3 = vload<V>(m + (12 + j) * msz + u);
          s0[j] = m0 + m1 + m2;
          s1[j] = m1 - m2 - m3;
        }
        vstore(ost + u, s0[0] + s0[1] + s0[2] + bv);
        vstore(ost + Tc + u, s0[1] - s0[2] - s0[3] + bv);
        vstore(ost + 2 * Tc + u, s1[0] + s1[1] + s1[2] + bv);
        vstore(ost + 3 * Tc + u, s1[1] - s1[2] - s1[3] + bv);
      }
      for (int64_t ri = 0; ri < nrun; ++ri) {
        const int64_t n = runs[ri].n, tx0 = runs[ri].tx0, len = runs[ri].len, u = runs[ri].u;
        const int64_t oh = 2 * runs[ri].ty, txf = std::min(tx0 + len, OW / 2);  // tiles [tx0, txf): 2 columns
        for (int a = 0; a < 2 && oh + a < OH; ++a) {
          T* __restrict yr = y + ((n * K + k) * OH + oh + a) * OW;
          const T* __restrict e0 = ost + 2 * a * Tc + u - tx0;
          const T* __restrict e1 = e0 + Tc;
          const int64_t np = txf - tx0;  // tiles with both columns, interleaved into y's row
          if (np >= VL) {
            store_pairs<T, VL>(e0 + tx0, e1 + tx0, np, yr + 2 * tx0);
          } else if (VL >= 4 && np >= VL / 2) {
            store_pairs<T, (VL >= 4 ? VL / 2 : VL)>(e0 + tx0, e1 + tx0, np, yr + 2 * tx0);
          } else {
            for (int64_t tx = tx0; tx < txf; ++tx) {
              yr[2 * tx] = e0[tx];
              yr[2 * tx + 1] = e1[tx];
            }
          }
          if (txf < tx0 + len) yr[2 * txf] = e0[txf];  // odd OW: the last tile's left column
        }
      }
    }
  };
  if (nt > 1 && g.nchunks >= nt) {
    TOCHA_CONV_PARALLEL_FOR(nt, 1)
    for (int64_t ci = 0; ci < g.nchunks; ++ci) chunk(ci);
  } else {
    for (int64_t ci = 0; ci < g.nchunks; ++ci) chunk(ci);
  }
}

// dw (K, C, 3, 3) = the weight gradient of the Winograd conv above (x (N, C, H, W) padded by (ph, pw), gy
// (N, K, OH, OW)): its adjoint in g, dw[k][c] = G^T (sum over tiles of (A dy A^T) .* (B^T d B)) G, with dy the
// tile's 2x2 block of gy (zeros past OH / OW) -- F(3x3, 2x2), 16 instead of 36 multiply-adds per tile and
// channel pair. Per chunk of tiles, V_xi (C x tn, plain) and Y_xi (K x tn) = (A dy A^T)[xi], then 16 GEMMs
// M_xi (K x C) += Y_xi @ V_xi^T with the tiles as the reduction. The chunks are cut into S <= 16 slices (a
// function of the shape only; fewer when the 16 K x C partials would pass 64 MiB), each summing into its own
// partial; partials are added in slice order, so the result is the same for any thread count.
template <typename T>
TOCHA_CONV_NO_LIBCALLS void winograd_weight_grad(const T* x, const T* gy, int64_t N, int64_t C, int64_t H,
                                                 int64_t W, int64_t ph, int64_t pw, int64_t K, int64_t OH,
                                                 int64_t OW, T* dw, int nt) {
  using V = typename NativeVec<T>::V;
  using IV = typename NativeVec<T>::IV;
  constexpr int VL = NativeVec<T>::kLen;
  const int64_t nr = 2 * VL;  // tiles per step of the row combinations (V is a plain matrix here)
  const int64_t Tc = winograd_chunk<T>(C, K, int(nr));
  const WinogradTiles<T> g = winograd_tiles(x, N, C, H, W, ph, pw, OH, OW, Tc, nr);
  const int64_t TW = g.TW, NT = g.NT, nchunks = g.nchunks, OHW = OH * OW;
  const int64_t al = 64 / int64_t(sizeof(T));
  const int64_t ld = round_up(Tc + nr, al);  // row stride of V_xi and Y_xi (vector stores spill up to nr past a row)
  const int64_t vsz = C * ld + al, ysz = K * ld + al;  // one cache line off: the 16 streams do not share L1 sets
  const int64_t gws = round_up(2 * round_up(TW, VL) + 2 * VL, al);  // gy columns read per tile row
  const int64_t need = 16 * vsz + 16 * ysz + 2 * gws + winograd_input_scratch(g, nr);
  MaskBits<T>* gmask = scratch<MaskBits<T>, kWeightsBias>(size_t(gws));  // gy columns < OW
  for (int64_t s = 0; s < gws; ++s) gmask[s] = s < OW ? ~MaskBits<T>(0) : MaskBits<T>(0);
  const T* gyend = gy + N * K * OHW;
  const int64_t KC = K * C;
  if (nchunks == 0 || KC == 0) {  // no tiles (N == 0): a zero gradient
    std::fill(dw, dw + KC * 9, T(0));
    return;
  }
  const int64_t S = std::clamp<int64_t>((int64_t(64) << 20) / int64_t(sizeof(T)) / (16 * KC), 1,
                                        std::min<int64_t>(nchunks, 16));
  T* part = scratch<T, kPartials>(size_t(S * 16 * KC));
  auto slice = [&](int64_t sl) {
    T* Vp = scratch<T>(size_t(need));
    T* Y = Vp + 16 * vsz;
    T* grow = Y + 16 * ysz;  // a zero-padded gy row pair
    T* ibuf = grow + 2 * gws;
    T* Ms = part + sl * 16 * KC;
    TileRun* runs = scratch<TileRun>(size_t(Tc));
    const int64_t c0 = sl * nchunks / S, c1 = (sl + 1) * nchunks / S;
    for (int64_t ci = c0; ci < c1; ++ci) {
      const int64_t t0 = ci * Tc, tn = std::min(Tc, NT - t0);
      winograd_input(g, t0, tn, nr, C, false, ld, Vp, vsz, ibuf);
      const int64_t nrun = winograd_runs(g, t0, tn, runs);
      // Y_xi[k][u] = (A dy A^T)[xi], A = [1 0; 1 1; 1 -1; 0 -1]: per tile row segment, VL tiles at a time from
      // de-interleaved loads of gy's two rows (columns >= OW and a row >= OH read as zeros); lanes past the
      // segment spill into the next segment, written later, or into the row slack
      for (int64_t k = 0; k < K; ++k)
        for (int64_t ri = 0; ri < nrun; ++ri) {
          const int64_t n = runs[ri].n, ty = runs[ri].ty, tx0 = runs[ri].tx0, len = runs[ri].len, u = runs[ri].u;
          const int64_t span = 2 * ((len + VL - 1) / VL * VL);  // columns read from 2 tx0
          const T* q[2];
          for (int a = 0; a < 2; ++a) {
            const int64_t oh = 2 * ty + a;
            const T* r = gy + ((n * K + k) * OH + oh) * OW;
            if (oh >= OH || r + 2 * tx0 + span > gyend) {  // zeros / a copy of the row's columns
              T* b = grow + a * gws;
              for (int64_t s = 0; s < gws; ++s) b[s] = oh < OH && s < OW ? r[s] : T(0);
              r = b;
            }
            q[a] = r;
          }
          T* yk = Y + k * ld + u - tx0;
          for (int64_t tx = tx0; tx < tx0 + len; tx += VL) {
            V e[2], o[2];
            for (int a = 0; a < 2; ++a) {
              IV m0, m1;
              std::memcpy(&m0, gmask + 2 * tx, sizeof(m0));
              std::memcpy(&m1, gmask + 2 * tx + VL, sizeof(m1));
              deinterleave((V)((IV)vload<V>(q[a] + 2 * tx) & m0), (V)((IV)vload<V>(q[a] + 2 * tx + VL) & m1), e[a],
                           o[a]);
            }
            const V ra[4] = {e[0], e[0] + e[1], e[0] - e[1], -e[1]};  // A dy: rows, left column
            const V rb[4] = {o[0], o[0] + o[1], o[0] - o[1], -o[1]};  // right column
            for (int i = 0; i < 4; ++i) {  // (A dy) A^T
              vstore(yk + (4 * i) * ysz + tx, ra[i]);
              vstore(yk + (4 * i + 1) * ysz + tx, ra[i] + rb[i]);
              vstore(yk + (4 * i + 2) * ysz + tx, ra[i] - rb[i]);
              vstore(yk + (4 * i + 3) * ysz + tx, -rb[i]);
            }
          }
        }
      for (int xi = 0; xi < 16; ++xi)  // M_xi (K x C) [+]= Y_xi (K x tn) @ V_xi^T (tn x C)
        gemm<T>(K, C, tn, Y + xi * ysz, ld, 1, Vp + xi * vsz, 1, ld, Ms + xi * KC, C, ci > c0);
    }
  };
  if (nt > 1 && S >= nt) {
    TOCHA_CONV_PARALLEL_FOR(nt, 1)
    for (int64_t sl = 0; sl < S; ++sl) slice(sl);
  } else {
    for (int64_t sl = 0; sl < S; ++sl) slice(sl);
  }
  for (int64_t sl = 1; sl < S; ++sl)
    for (int64_t i = 0; i < 16 * KC; ++i) part[i] += part[sl * 16 * KC + i];
  // dw[k][c] = G^T M G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]
  for (int64_t kc = 0; kc < KC; ++kc) {
    T m[16], r[3][4];
    for (int xi = 0; xi < 16; ++xi) m[xi] = part[xi * KC + kc];
    for (int j = 0; j < 4; ++j) {
      r[0][j] = m[j] + T(0.5) * (m[4 + j] + m[8 + j]);
      r[1][j] = T(0.5) * (m[4 + j] - m[8 + j]);
      r[2][j] = T(0.5) * (m[4 + j] + m[8 + j]) + m[12 + j];
    }
    T* d = dw + kc * 9;
    for (int i = 0; i < 3; ++i) {
      d[3 * i] = r[i][0] + T(0.5) * (r[i][1] + r[i][2]);
      d[3 * i + 1] = T(0.5) * (r[i][1] - r[i][2]);
      d[3 * i + 2] = T(0.5) * (r[i][1] + r[i][2]) + r[i][3];
    }
  }
}

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
  if (use_winograd(C, K, OH, OW, kh, kw, p)) {
    note_conv_forward_algo(2);
    const auto u = winograd_weights(wp, K, C, false);
    winograd_conv(xp, N, C, H, W, p.ph, p.pw, u.first, u.second, bias, K, OH, OW, yp, nt);
    return;
  }
  if (use_direct_mc<T>(Cg, Kg, kh, kw, OH, OW, W, p)) {
    note_conv_forward_algo(3);
    direct_mc_forward(xp, wp, bias, N, C, H, W, K, kh, kw, p, OH, OW, yp, nt);
    return;
  }
  if (use_direct(Cg, kh, kw, p)) {
    note_conv_forward_algo(1);
    int64_t prows, ld;
    fwd_pad_dims(H, W, kw, p, OW, prows, ld);
    TOCHA_CONV_PARALLEL_FOR(nt, dyn_chunk(N * K, nt))
    for (int64_t nk = 0; nk < N * K; ++nk) {
      const int64_t n = nk / K, k = nk % K, c = k / Kg;
      T* xpad = scratch<T>(size_t(prows * ld));
      pad_plane(xp + (n * C + c) * HW, H, W, p.ph, p.pw, prows, ld, xpad);
      direct_corr(xpad, ld, wp + k * kh * kw, kh, kw, p.sh, p.sw, p.dh, p.dw, OH, OW, bias ? bias[k] : T(0), false,
                  yp + nk * OHW);
    }
    return;
  }
  note_conv_forward_algo(0);
  const bool pointwise = is_pointwise(kh, kw, p);  // x itself is the col matrix
  const int64_t R = pointwise ? OH : band_rows(CKK, OH, OW, sizeof(T));
  // The bias rides in the GEMM as an extra K row: [W_g | b_g] @ [col; 1...1], so y is written once (no bias
  // pre-fill of y and accumulating load). Pointwise (x itself is B) pre-fills y and accumulates instead.
  const bool bias_row = bias && !pointwise;
  const int64_t KB = CKK + (bias_row ? 1 : 0);
  const auto wpack = pack_weights(wp, G, Kg, CKK, false, bias_row ? bias : nullptr);  // once per call
  const T* wpk = wpack.first;
  const int64_t wsz = wpack.second;
  // stride 1 and OW == W or OH == 1: the col band goes straight into the GEMM's packed-B layout (im2col_flat_packed;
  // same packed values as im2col + the GEMM's packer, so the same bits)
  const GemmPacking pk = gemm_packing<T>(KB);
  const bool flat_pack = !pointwise && p.sh == 1 && p.sw == 1 && (OW == W || OH == 1) &&
                         (pk.nr == 4 || pk.nr == 8 || pk.nr == 16);
  // column masks, once per call for the (at most two) band lengths, shared by all threads
  const int64_t Lf = R * OW, Ll = (OH - (OH - 1) / R * R) * OW;  // full and last band
  const int64_t extf = (Lf + pk.nr - 1) / pk.nr * pk.nr, extl = (Ll + pk.nr - 1) / pk.nr * pk.nr;
  MaskBits<T>* colmask = flat_pack ? scratch<MaskBits<T>, kStage>(size_t(kw * (extf + extl))) : nullptr;
  if (flat_pack) {
    flat_colmask<T>(W, OW, kw, p, Lf, extf, colmask);
    flat_colmask<T>(W, OW, kw, p, Ll, extl, colmask + kw * extf);
  }
  // With images in parallel (several threads, one image each), each GEMM writes a per-thread stage that is then
  // copied into y row by row, instead of its register tiles going straight into the shared y: measured at 2
  // threads (EPYC Zen 4, (64,3,32,32)->24 3x3 p1, 9 thread-count phases in each of 3 processes) 0.63-0.74 ms
  // in every phase against 0.72-0.77 ms or, in about a third of the phases, 2.0-2.3 ms with both threads
  // busy the whole time (see conv.cpp: that slow mode may be the VM's). One thread keeps the direct write
  // (the copy costs 15% there: 1.07 -> 1.24 ms). Same values either way.
  const bool stage_y = nt > 1 && N >= nt;
  for_images(N, nt, [&](int64_t n) {
    T* col = pointwise ? nullptr
                       : scratch<T>(size_t(flat_pack ? gemm_packed_b_size<T>(KB, R * OW) : KB * R * OW));
    T* ys = stage_y ? scratch<T, kStageY>(size_t(Kg * R * OW)) : nullptr;
    for (int64_t g = 0; g < G; ++g) {
      const T* xg = xp + (n * C + g * Cg) * HW;
      T* yg = yp + (n * K + g * Kg) * OHW;
      for (int64_t oha = 0; oha < OH; oha += R) {
        const int64_t ohb = std::min(OH, oha + R), L = (ohb - oha) * OW;
        T* yb = yg + oha * OW;
        T* yc = stage_y ? ys : yb;  // the GEMM's C: the stage (row stride L) or y's band (row stride OH*OW)
        const int64_t ldc = stage_y ? L : OHW;
        const T* B = xg + oha * OW;
        int64_t ldb = OHW;
        if (flat_pack) {
          const MaskBits<T>* cm = L == Lf ? colmask : colmask + kw * extf;
          im2col_flat_packed_any(xg, Cg, H, W, kh, kw, p, oha, ohb, OW, bias_row, pk, cm, col);
          gemm_prepacked<T>(Kg, L, KB, wpk + g * wsz, nullptr, 0, 0, col, nullptr, 0, 0, yc, ldc, false);
        } else {
          if (!pointwise) {
            im2col(xg, Cg, H, W, kh, kw, p, oha, ohb, OW, col, L);
            if (bias_row) std::fill(col + CKK * L, col + KB * L, T(1));
            B = col;
            ldb = L;
          } else if (bias) {
            for (int64_t k = 0; k < Kg; ++k) std::fill(yc + k * ldc, yc + k * ldc + L, bias[g * Kg + k]);
          }
          // y band (Kg, L) [+]= W_g (Kg, KB, pre-packed) @ col band (KB, L)
          gemm_prepacked<T>(Kg, L, KB, wpk + g * wsz, nullptr, 0, 0, nullptr, B, ldb, 1, yc, ldc,
                            pointwise && bias);
        }
        if (stage_y)
          for (int64_t k = 0; k < Kg; ++k) std::memcpy(yb + k * OHW, ys + k * L, sizeof(T) * size_t(L));
      }
    }
  });
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
  // Stride 1: dx is the forward correlation of gy, zero-padded by (k-1)*d - p, with the 180-degree-rotated,
  // group-transposed kernel (Winograd: 3x3, padded by 2 - p; the direct multi-channel kernel below).
  const ConvParams q = transposed_params(kh, kw, p);
  if (use_winograd(K, C, H, W, kh, kw, p)) {
    const auto u = winograd_weights(wp, C, K, true);
    winograd_conv(gp, N, K, OH, OW, q.ph, q.pw, u.first, u.second, static_cast<const T*>(nullptr), C, H,
                  W, xp, nt);
    return;
  }
  if (use_direct(Cg, kh, kw, p)) {
    if (p.sh == 1 && p.sw == 1) {  // a forward correlation of the padded gy with the flipped kernel
      int64_t prows, ld;
      bwd_pad_dims(H, W, kh, kw, p, OH, OW, prows, ld);
      TOCHA_CONV_PARALLEL_FOR(nt, dyn_chunk(N * C, nt))
      for (int64_t nc = 0; nc < N * C; ++nc) {
        const int64_t n = nc / C, c = nc % C;  // Cg == 1: group c, output channels c*Kg .. c*Kg+Kg-1
        T* gpad = scratch<T>(size_t(prows * ld));
        for (int64_t m = 0; m < Kg; ++m) {
          const int64_t k = c * Kg + m;
          T wf[64];  // use_direct guarantees kh * kw <= 64
          for (int64_t t = 0; t < kh * kw; ++t) wf[t] = wp[k * kh * kw + kh * kw - 1 - t];
          pad_plane(gp + (n * K + k) * OHW, OH, OW, (kh - 1) * p.dh, (kw - 1) * p.dw, prows, ld, gpad);
          direct_corr(gpad + p.ph * ld + p.pw, ld, wf, kh, kw, int64_t(1), int64_t(1), p.dh, p.dw, H, W, T(0),
                      m > 0, xp + nc * HW);
        }
      }
      return;
    }
    TOCHA_CONV_PARALLEL_FOR(nt, dyn_chunk(N * C, nt))
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const int64_t n = nc / C, c = nc % C;
      T* xo = xp + nc * HW;
      std::fill(xo, xo + HW, T(0));
      for (int64_t m = 0; m < Kg; ++m) {
        const int64_t k = c * Kg + m;
        direct_plane_bwd_input(gp + (n * K + k) * OHW, H, W, wp + k * kh * kw, kh, kw, p, OH, OW, xo);
      }
    }
    return;
  }
  // the direct multi-channel kernel with wf (C, Kg, kh, kw) where it wins (use_direct_mc_bwd)
  if (use_direct_mc_bwd<T>(Cg, Kg, OH, OW, H, W, p, q)) {
    T* wf = scratch<T, kWeightsBias>(size_t(K * CKK));
    const int64_t KK = kh * kw;
    for (int64_t g = 0; g < G; ++g)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t m = 0; m < Kg; ++m)
          for (int64_t t = 0; t < KK; ++t)
            wf[((g * Cg + c) * Kg + m) * KK + t] = wp[((g * Kg + m) * Cg + c) * KK + KK - 1 - t];
    direct_mc_forward(gp, wf, static_cast<const T*>(nullptr), N, K, OH, OW, C, kh, kw, q, H, W, xp, nt);
    return;
  }
  const bool pointwise = is_pointwise(kh, kw, p);
  const int64_t R = band_rows(CKK, OH, OW, sizeof(T));
  const auto wpack = pack_weights(wp, G, Kg, CKK, true);  // W_g^T packed once per call
  const T* wtpk = wpack.first;
  const int64_t wsz = wpack.second;
  for_images(N, nt, [&](int64_t n) {
    for (int64_t g = 0; g < G; ++g) {
      T* xg = xp + (n * C + g * Cg) * HW;
      const T* Wt = wtpk + g * wsz;
      const T* gg = gp + (n * K + g * Kg) * OHW;
      if (pointwise) {  // dx_g (Cg, HW) = W_g^T @ gy_g
        gemm_prepacked<T>(CKK, OHW, Kg, Wt, nullptr, 0, 0, nullptr, gg, OHW, 1, xg, OHW, false);
        continue;
      }
      T* col = scratch<T>(size_t(CKK * R * OW));
      std::fill(xg, xg + Cg * HW, T(0));
      for (int64_t oha = 0; oha < OH; oha += R) {
        const int64_t ohb = std::min(OH, oha + R), L = (ohb - oha) * OW;
        // colgrad band (CKK, L) = W_g^T (pre-packed) @ gy band (read in place), then col2im
        gemm_prepacked<T>(CKK, L, Kg, Wt, nullptr, 0, 0, nullptr, gg + oha * OW, OHW, 1, col, L, false);
        col2im(col, true, L, Cg, H, W, kh, kw, p, oha, ohb, OW, xg);
      }
    }
  });
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
  if (use_winograd(C, K, OH, OW, kh, kw, p)) {
    winograd_weight_grad(xp, gp, N, C, H, W, p.ph, p.pw, K, OH, OW, dwp, nt);
    return;
  }
  if (use_direct(Cg, kh, kw, p)) {
    int64_t prows, ld;
    fwd_pad_dims(H, W, kw, p, OW, prows, ld);
    const int64_t OWp = round_lanes(OW);
    TOCHA_CONV_PARALLEL_FOR(nt, 1)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = k / Kg;
      T* d = dwp + k * kh * kw;
      std::fill(d, d + kh * kw, T(0));
      T* xpad = scratch<T>(size_t(prows * ld + OH * OWp));
      T* gpad = xpad + prows * ld;
      for (int64_t n = 0; n < N; ++n) {
        pad_plane(xp + (n * C + c) * HW, H, W, p.ph, p.pw, prows, ld, xpad);
        pad_plane(gp + (n * K + k) * OHW, OH, OW, 0, 0, OH, OWp, gpad);
        direct_plane_bwd_weight(xpad, ld, gpad, kh, kw, p, OH, OW, d);
      }
    }
    return;
  }
  if (OHW == 0 || N == 0) {
    std::fill(dwp, dwp + dw.numel(), T(0));
    return;
  }
  // The batch is cut into S slices (S depends on N only, never on the thread count); each slice sums its
  // images band by band into its own dW partial with one GEMM per image, group and band,
  //   dW_g (Kg, CKK) += gy band (Kg, L) @ col band^T (L, CKK)   or, when that wastes less of the 6x16
  //   register tiles (e.g. CKK = 9, Kg = 32), dW_g^T (CKK, Kg) += col band (CKK, L) @ gy band^T (L, Kg),
  // (gy read in place, transposes through strides), then the partials are added in slice order ->
  // deterministic for any thread count. Threads own whole slices: no barriers inside the GEMMs.
  const int64_t S = std::min<int64_t>(N, 16);
  const int64_t R = band_rows(CKK, OH, OW, sizeof(T));
  auto tiles = [](int64_t m, int64_t n) { return ((m + 5) / 6) * ((n + 15) / 16); };
  const bool trans = tiles(CKK, Kg) < tiles(Kg, CKK);
  // per-slice partials, calling thread's scratch (no zero fill: each slice's first GEMM overwrites its part)
  T* part = scratch<T, kPartials>(size_t(S * K * CKK));
  auto slice = [&](int64_t s) {
    T* col = scratch<T>(size_t(CKK * R * OW));
    T* ps = part + s * K * CKK;
    const int64_t n0 = s * N / S, n1 = (s + 1) * N / S;
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g = 0; g < G; ++g)
        for (int64_t oha = 0; oha < OH; oha += R) {
          const int64_t ohb = std::min(OH, oha + R), L = (ohb - oha) * OW;
          im2col(xp + (n * C + g * Cg) * HW, Cg, H, W, kh, kw, p, oha, ohb, OW, col, L);
          const T* gb = gp + (n * K + g * Kg) * OHW + oha * OW;
          const bool acc = n > n0 || oha > 0;
          if (trans)
            gemm<T>(CKK, Kg, L, col, L, 1, gb, 1, OHW, ps + g * Kg * CKK, Kg, acc);
          else
            gemm<T>(Kg, CKK, L, gb, OHW, 1, col, 1, L, ps + g * Kg * CKK, CKK, acc);
        }
  };
  if (N >= nt && nt > 1) {
    TOCHA_CONV_PARALLEL_FOR(nt, 1)
    for (int64_t s = 0; s < S; ++s) slice(s);
  } else {
    for (int64_t s = 0; s < S; ++s) slice(s);
  }
  const int64_t total = K * CKK;
  for (int64_t s = 1; s < S; ++s)
    for (int64_t i = 0; i < total; ++i) part[i] += part[s * total + i];
  if (!trans) {
    std::copy(part, part + total, dwp);
  } else {  // partial of group g is (CKK, Kg)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t r = 0; r < CKK; ++r) dwp[(g * Kg + k) * CKK + r] = part[(g * Kg * CKK) + r * Kg + k];
  }
}

template <typename T>
void unfold_impl(const Array& x, int64_t kh, int64_t kw, const ConvParams& p, Array& out) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OH = out_size(H, kh, p.sh, p.ph, p.dh), OW = out_size(W, kw, p.sw, p.pw, p.dw);
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const int nt = get_num_threads();
  TOCHA_CONV_PARALLEL_FOR(nt, 1)
  for (int64_t n = 0; n < N; ++n)
    im2col(xp + n * C * H * W, C, H, W, kh, kw, p, 0, OH, OW, op + n * C * kh * kw * OH * OW, OH * OW);
}

template <typename T>
void fold_impl(const Array& cols, int64_t kh, int64_t kw, const ConvParams& p, Array& out) {
  const int64_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3];
  const int64_t OH = out_size(H, kh, p.sh, p.ph, p.dh), OW = out_size(W, kw, p.sw, p.pw, p.dw);
  const T* cp = cols.data<T>();
  T* op = out.data<T>();
  const int nt = get_num_threads();
  TOCHA_CONV_PARALLEL_FOR(nt, 1)
  for (int64_t n = 0; n < N; ++n) {
    T* o = op + n * C * H * W;
    std::fill(o, o + C * H * W, T(0));
    col2im(const_cast<T*>(cp) + n * C * kh * kw * OH * OW, false, OH * OW, C, H, W, kh, kw, p, 0, OH, OW, o);
  }
}

// Sum of a row with 16 independent partial sums (vectorisable, fixed order), combined pairwise.
template <typename T>
T row_sum(const T* r, int64_t L) {
  constexpr int V = 16;
  T lane[V] = {};
  int64_t i = 0;
  for (; i + V <= L; i += V)
    for (int j = 0; j < V; ++j) lane[j] += r[i + j];
  for (int j = 0; i < L; ++i, ++j) lane[j] += r[i];
  for (int w = V / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] += lane[j + w];
  return lane[0];
}

}  // namespace

void conv_forward(const Array& x, const Array& w, const Array* bias, const ConvParams& p, Array& y) {
  TOCHA_DISPATCH_FLOAT(x.dtype, T, "conv2d", {
    conv_fwd_impl<T>(x, w, bias ? bias->data<T>() : nullptr, p, y);
  });
}

void conv_backward_input(const Array& gy, const Array& w, const ConvParams& p, Array& dx) {
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, "conv2d_backward_input", { conv_bwd_input_impl<T>(gy, w, p, dx); });
}

void conv_backward_weight(const Array& x, const Array& gy, const ConvParams& p, Array& dw) {
  TOCHA_DISPATCH_FLOAT(x.dtype, T, "conv2d_backward_weight", { conv_bwd_weight_impl<T>(x, gy, p, dw); });
}

void conv_backward_bias(const Array& gy, Array& db) {
  const int64_t N = gy.shape[0], K = gy.shape[1], L = gy.shape[2] * gy.shape[3];
  TOCHA_DISPATCH_FLOAT(gy.dtype, T, "conv2d_backward_bias", {
    const T* g = gy.data<T>();
    T* d = db.data<T>();
    // Each thread owns a range of channels and walks the images in memory order (image-major: per image its
    // channels' planes are one contiguous run; the channel-major order jumped N times per channel through gy,
    // (64,32,26,26) 0.245 -> 0.1 ms at 1 thread). Per channel the same sum: image planes added in order into a
    // double (N*OH*OW terms), so the result does not depend on the thread count.
    const int nt = get_num_threads();
    const int64_t nb = std::max<int64_t>(1, std::min<int64_t>(K, nt));
    TOCHA_CONV_PARALLEL_FOR(nt, 1)
    for (int64_t bk = 0; bk < nb; ++bk) {
      const int64_t k0 = bk * K / nb, k1 = (bk + 1) * K / nb;
      std::vector<double> acc(size_t(k1 - k0), 0.0);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = k0; k < k1; ++k) acc[size_t(k - k0)] += row_sum(g + (n * K + k) * L, L);
      for (int64_t k = k0; k < k1; ++k) d[k] = T(acc[size_t(k - k0)]);
    }
  });
}

void unfold(const Array& x, int64_t kh, int64_t kw, const ConvParams& p, Array& out) {
  TOCHA_DISPATCH_FLOAT(x.dtype, T, "unfold", { unfold_impl<T>(x, kh, kw, p, out); });
}

void fold(const Array& cols, int64_t kh, int64_t kw, const ConvParams& p, Array& out) {
  TOCHA_DISPATCH_FLOAT(cols.dtype, T, "fold", { fold_impl<T>(cols, kh, kw, p, out); });
}

}  // namespace TOCHA_CONV_ISA
}  // namespace tocha::cpu
