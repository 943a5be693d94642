// pool_impl.h -- max and average pooling plane kernels, compiled twice: pool.cpp (baseline, namespace generic) and
// pool_avx2.cpp (-mavx2 -mfma, namespace avx2); pool.cpp validates and dispatches at run time
// (cpu_has_avx2). Include only after defining TOCHA_POOL_ISA.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#include <limits>

#include "../core/parallel.h"
#include "native_vec.h"
#include "pool.h"

namespace tocha::cpu::TOCHA_POOL_ISA {
namespace {

// Max pooling of one plane. For each output row the window taps are visited in window order (row i, then
// column j), each tap updating every output of the row it reaches with a branch-free select -- a loop over
// ow the compiler vectorises. Every output sees the same candidates in the same order as a per-window scan
// (so the same value and index: the first maximum wins, a NaN replaces anything), but without the
// data-dependent branch that mispredicted about half the time on real data. The select mixes float and
// int64 lanes, which the baseline (SSE2) build leaves scalar and the AVX2 build vectorises: (64,64,24,24)
// numbers in pool.cpp. S: the column stride when known at compile time (0: p.sw).
template <typename T, int S>
void max_pool_plane(const T* __restrict xi, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW,
                    T* __restrict yo, int64_t* __restrict io) {
  const int64_t sw = S > 0 ? S : p.sw;
  for (int64_t oh = 0; oh < OH; ++oh) {
    T* m = yo + oh * OW;
    int64_t* b = io + oh * OW;
    int64_t h0 = oh * p.sh - p.ph;
    const int64_t h1 = std::min(h0 + (p.kh - 1) * p.dh + 1, H);
    while (h0 < 0) h0 += p.dh;
    for (int64_t ow = 0; ow < OW; ++ow) {
      int64_t w0 = ow * sw - p.pw;
      while (w0 < 0) w0 += p.dw;
      m[ow] = -std::numeric_limits<T>::infinity();
      b[ow] = h0 * W + w0;
    }
    for (int64_t ih = h0; ih < h1; ih += p.dh) {
      const T* r = xi + ih * W;
      for (int64_t j = 0; j < p.kw; ++j) {
        const int64_t off = j * p.dw - p.pw;  // input column of output ow: ow * sw + off
        const int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        const int64_t hi = std::min(OW, W - off <= 0 ? int64_t(0) : (W - off - 1) / sw + 1);
        const int64_t base = ih * W + off;
        for (int64_t ow = lo; ow < hi; ++ow) {
          const T v = r[ow * sw + off];
          const bool take = v > m[ow] || v != v;  // NaN propagates (PyTorch's rule)
          m[ow] = take ? v : m[ow];
          b[ow] = take ? base + ow * sw : b[ow];
        }
      }
    }
  }
}


// The common 2x2 window, stride 2, no padding or dilation, every window inside the plane: outputs go L at
// a time (a native vector), the two input rows split into even/odd columns by shuffles. Same four candidates
// in the same order as max_pool_plane (the first one taken as is: it is also the general code's initial
// index, and -inf/NaN give the same result either way), so values and indices are identical. Rows whose
// 2*round_up(OW, L) columns would run past the plane are copied into buf, zero-padded. Planes with
// H*W >= 2^31 go the general way (indices are computed in 32 bits for float).
template <typename T>
void max_pool_2x2(const T* __restrict xi, int64_t W, int64_t OH, int64_t OW, T* __restrict yo,
                  int64_t* __restrict io, T* __restrict buf) {
  using I = typename NativeVec<T>::I;
  using V = typename NativeVec<T>::V;
  using VI = typename NativeVec<T>::IV;
  constexpr int L = NativeVec<T>::kLen;
  VI lane;
  for (int l = 0; l < L; ++l) lane[l] = l;
  const int64_t OWp = (OW + L - 1) / L * L;
  const bool pad = 2 * OWp > W;
  if (pad)
    for (int64_t t = 0; t < 4 * OWp; ++t) buf[t] = T(0);
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* a = xi + 2 * oh * W;
    const T* b = a + W;
    if (pad) {
      for (int64_t t = 0; t < 2 * OW; ++t) {
        buf[t] = a[t];
        buf[2 * OWp + t] = b[t];
      }
      a = buf;
      b = buf + 2 * OWp;
    }
    const I base0 = I(2 * oh * W), base1 = I(2 * oh * W + W);
    for (int64_t c = 0; c < OWp; c += L) {
      V a0, a1, b0, b1;
      std::memcpy(&a0, a + 2 * c, sizeof(V));
      std::memcpy(&a1, a + 2 * c + L, sizeof(V));
      std::memcpy(&b0, b + 2 * c, sizeof(V));
      std::memcpy(&b1, b + 2 * c + L, sizeof(V));
      const VI col2 = 2 * (lane + I(c));
      V m, a_od, b_ev, b_od;
      deinterleave(a0, a1, m, a_od);
      deinterleave(b0, b1, b_ev, b_od);
      VI id = base0 + col2;
      auto step = [&](V v, VI pos) {
        const VI take = (v > m) | (v != v);  // NaN propagates (PyTorch's rule)
        m = take ? v : m;
        id = take ? pos : id;
      };
      step(a_od, base0 + col2 + 1);
      step(b_ev, base1 + col2);
      step(b_od, base1 + col2 + 1);
      const int64_t n = std::min<int64_t>(L, OW - c);
      for (int64_t l = 0; l < n; ++l) {
        yo[oh * OW + c + l] = m[l];
        io[oh * OW + c + l] = int64_t(id[l]);
      }
    }
  }
}

// Average pooling of one plane, forward (x -> y) or backward (gy -> dx, a zeroed plane), row by
// row as max_pool_plane: each window tap that reaches an output row is one loop over ow (vectorised), so a
// forward output sums its cells in window order (row, then column) from 0 -- the order of a per-window loop
// -- and is then divided by its divisor dv[o] (0: a window with no cell inside the plane, output 0). In
// backward each output's gradient share gy / dv is added to every cell of its window.
template <typename T, int S, bool Backward>
void avg_pool_plane(const T* __restrict in, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW,
                    const T* __restrict dv, T* __restrict out, T* __restrict acc) {
  const int64_t sw = S > 0 ? S : p.sw;
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * p.sh - p.ph, 0), h1 = std::min(oh * p.sh - p.ph + p.kh, H);
    const T* d = dv + oh * OW;
    if (Backward) {
      const T* g = in + oh * OW;
      for (int64_t ow = 0; ow < OW; ++ow) acc[ow] = d[ow] != T(0) ? g[ow] / d[ow] : T(0);
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) acc[ow] = T(0);
    }
    for (int64_t ih = h0; ih < h1; ++ih) {
      for (int64_t j = 0; j < p.kw; ++j) {
        const int64_t off = j - p.pw;  // input column of output ow: ow * sw + off
        const int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        const int64_t hi = std::min(OW, W - off <= 0 ? int64_t(0) : (W - off - 1) / sw + 1);
        if (Backward) {
          T* r = out + ih * W + off;
          for (int64_t ow = lo; ow < hi; ++ow) r[ow * sw] += acc[ow];
        } else {
          const T* r = in + ih * W + off;
          for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += r[ow * sw];
        }
      }
    }
    if (!Backward) {
      T* y = out + oh * OW;
      for (int64_t ow = 0; ow < OW; ++ow) y[ow] = d[ow] != T(0) ? acc[ow] / d[ow] : T(0);
    }
  }
}

}  // namespace

// Forward: in = x (P, H, W) -> out = y (P, OH, OW); backward: in = gy (P, OH, OW) -> out = dx (P, H, W)
// (zeroed here). dv: the OH x OW divisors (shared by all planes).
template <typename T, bool Backward>
void avg_pool_planes(const T* in, T* out, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                     const PoolParams& p, const T* dv, int nt) {
  parallel_for(nt, P, [&](int64_t pl) {
    const T* ip = in + pl * (Backward ? OH * OW : H * W);
    T* op = out + pl * (Backward ? H * W : OH * OW);
    if (Backward) std::fill(op, op + H * W, T(0));  // by the plane's thread, just before it adds into it
    thread_local std::vector<T> acc;  // one output row of sums / gradient shares, per thread
    if (acc.size() < size_t(OW)) acc.resize(size_t(OW));
    if (p.sw == 1) avg_pool_plane<T, 1, Backward>(ip, H, W, p, OH, OW, dv, op, acc.data());
    else if (p.sw == 2) avg_pool_plane<T, 2, Backward>(ip, H, W, p, OH, OW, dv, op, acc.data());
    else avg_pool_plane<T, 0, Backward>(ip, H, W, p, OH, OW, dv, op, acc.data());
  });
}
#define TOCHA_AVG_POOL_INST(T, B)                                                                         \
  template void avg_pool_planes<T, B>(const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,         \
                                      const PoolParams&, const T*, int);
TOCHA_AVG_POOL_INST(float, false)
TOCHA_AVG_POOL_INST(float, true)
TOCHA_AVG_POOL_INST(double, false)
TOCHA_AVG_POOL_INST(double, true)
#undef TOCHA_AVG_POOL_INST

// x: P contiguous planes (H, W) -> y, idx: P planes (OH, OW)
template <typename T>
void max_pool_planes(const T* x, int64_t P, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW,
                     T* y, int64_t* idx, int nt) {
  const bool two = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0 && p.dh == 1 &&
                   p.dw == 1 && 2 * OH <= H && 2 * OW <= W && H * W < (int64_t(1) << 31);
  parallel_for(nt, P, [&](int64_t pl) {
    const T* xi = x + pl * H * W;
    T* yo = y + pl * OH * OW;
    int64_t* io = idx + pl * OH * OW;
    if (two) {
      thread_local std::vector<T> buf;  // per thread, reused across planes and calls
      if (buf.size() < size_t(4 * (OW + 64))) buf.resize(size_t(4 * (OW + 64)));
      max_pool_2x2<T>(xi, W, OH, OW, yo, io, buf.data());
    } else if (p.sw == 1) max_pool_plane<T, 1>(xi, H, W, p, OH, OW, yo, io);
    else if (p.sw == 2) max_pool_plane<T, 2>(xi, H, W, p, OH, OW, yo, io);
    else max_pool_plane<T, 0>(xi, H, W, p, OH, OW, yo, io);
  });
}
template void max_pool_planes<float>(const float*, int64_t, int64_t, int64_t, const PoolParams&, int64_t, int64_t,
                                     float*, int64_t*, int);
template void max_pool_planes<double>(const double*, int64_t, int64_t, int64_t, const PoolParams&, int64_t,
                                      int64_t, double*, int64_t*, int);

}  // namespace tocha::cpu::TOCHA_POOL_ISA
