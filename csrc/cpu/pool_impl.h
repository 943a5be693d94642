// pool_impl.h -- max pooling plane kernel, compiled twice: pool.cpp (baseline, namespace generic) and
// pool_avx2.cpp (-mavx2 -mfma, namespace avx2); pool.cpp validates and dispatches at run time
// (cpu_has_avx2). Include only after defining TOCHA_POOL_ISA.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "../core/parallel.h"
#include "pool.h"

namespace tocha::cpu::TOCHA_POOL_ISA {
namespace {

// Max pooling of one plane. For each output row the window taps are visited in window order (row i, then
// column j), each tap updating every output of the row it reaches with a branch-free select -- a loop over
// ow the compiler vectorises. Every output sees the same candidates in the same order as a per-window scan
// (so the same value and index: the first maximum wins, a NaN replaces anything), but without the
// data-dependent branch that mispredicted about half the time on real data. The select mixes float and
// int64 lanes, which the baseline (SSE2) build leaves scalar and the AVX2 build vectorises: (64,64,24,24)
// 2x2, 1 thread, min of 30: 11.3 ms (old window scan) -> see pool.cpp. S: the column stride when known at
// compile time (0: p.sw).
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

}  // namespace

// x: P contiguous planes (H, W) -> y, idx: P planes (OH, OW)
template <typename T>
void max_pool_planes(const T* x, int64_t P, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW,
                     T* y, int64_t* idx, int nt) {
  TOCHA_OMP_PARALLEL_FOR(nt)
  for (int64_t pl = 0; pl < P; ++pl) {
    const T* xi = x + pl * H * W;
    T* yo = y + pl * OH * OW;
    int64_t* io = idx + pl * OH * OW;
    if (p.sw == 1) max_pool_plane<T, 1>(xi, H, W, p, OH, OW, yo, io);
    else if (p.sw == 2) max_pool_plane<T, 2>(xi, H, W, p, OH, OW, yo, io);
    else max_pool_plane<T, 0>(xi, H, W, p, OH, OW, yo, io);
  }
}
template void max_pool_planes<float>(const float*, int64_t, int64_t, int64_t, const PoolParams&, int64_t, int64_t,
                                     float*, int64_t*, int);
template void max_pool_planes<double>(const double*, int64_t, int64_t, int64_t, const PoolParams&, int64_t,
                                      int64_t, double*, int64_t*, int);

}  // namespace tocha::cpu::TOCHA_POOL_ISA
