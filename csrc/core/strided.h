// Strided n-ary loop: the one iteration engine behind elementwise kernels, copies and casts.
// Operands share one iteration shape (inputs already broadcast: stride 0 on broadcast dims). Dims
// that are contiguous for every operand are merged, then the innermost dim is handed to `inner` as
// (n, ptrs, byte_strides) so kernels can take a vectorised path when all strides equal the item size.
// Work is split over OpenMP threads above kParallelGrain elements; each element is written by exactly
// one thread, so results do not depend on the thread count.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace tocha {

template <int N>
struct StridedIter {
  std::vector<int64_t> shape;                   // merged shape, innermost last
  std::vector<std::array<int64_t, N>> strides;  // byte strides per dim per operand

  StridedIter(const std::vector<int64_t>& shp, const std::array<const int64_t*, N>& elem_strides,
              const std::array<int64_t, N>& itemsizes) {
    // drop size-1 dims, then merge neighbours that are contiguous for every operand
    for (size_t d = 0; d < shp.size(); ++d) {
      if (shp[d] == 1) continue;
      std::array<int64_t, N> st;
      for (int k = 0; k < N; ++k) st[k] = elem_strides[k][d] * itemsizes[k];
      if (!shape.empty()) {
        bool merge = true;
        for (int k = 0; k < N; ++k)
          if (strides.back()[k] != st[k] * shp[d]) { merge = false; break; }
        if (merge) { shape.back() *= shp[d]; strides.back() = st; continue; }
      }
      shape.push_back(shp[d]);
      strides.push_back(st);
    }
    if (shape.empty()) {  // scalar or all-ones shape
      shape.push_back(1);
      std::array<int64_t, N> st{};
      strides.push_back(st);
    }
  }

  int64_t numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }

  // inner(n, std::array<char*,N> ptrs, const std::array<int64_t,N>& byte_strides)
  template <typename F>
  void run(std::array<char*, N> base, F&& inner, int64_t grain = kParallelGrain) const {
    const int nd = (int)shape.size();
    const int64_t L = shape[nd - 1];
    const auto& ist = strides[nd - 1];
    int64_t total = numel();
    if (total == 0) return;
    int64_t rows = total / L;
    auto row_ptrs = [&](int64_t r, std::array<char*, N>& p) {
      p = base;
      for (int d = nd - 2; d >= 0 && r > 0; --d) {
        int64_t i = r % shape[d];
        r /= shape[d];
        for (int k = 0; k < N; ++k) p[k] += i * strides[d][k];
      }
    };
    int nthreads = (total >= grain) ? get_num_threads() : 1;
    if (nthreads <= 1) {
      std::array<char*, N> p;
      for (int64_t r = 0; r < rows; ++r) { row_ptrs(r, p); inner(L, p, ist); }
      return;
    }
    if (rows >= nthreads) {
      TOCHA_OMP_PARALLEL_FOR(nthreads)
      for (int64_t r = 0; r < rows; ++r) {
        std::array<char*, N> p;
        row_ptrs(r, p);
        inner(L, p, ist);
      }
    } else {
      // few long rows: split each row into chunks
      const int64_t chunk = (L + nthreads - 1) / nthreads;
      for (int64_t r = 0; r < rows; ++r) {
        std::array<char*, N> p0;
        row_ptrs(r, p0);
        TOCHA_OMP_PARALLEL_FOR(nthreads)
        for (int64_t c = 0; c < nthreads; ++c) {
          int64_t s = c * chunk, e = s + chunk < L ? s + chunk : L;
          if (s >= e) continue;
          std::array<char*, N> p;
          for (int k = 0; k < N; ++k) p[k] = p0[k] + s * ist[k];
          inner(e - s, p, ist);
        }
      }
    }
  }
};

}  // namespace tocha
