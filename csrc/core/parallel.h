// Thread-count control shared by all CPU kernels (OpenMP when available, serial otherwise).
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#define TOCHA_PRAGMA(x) _Pragma(#x)
#define TOCHA_OMP_PARALLEL_FOR(n) TOCHA_PRAGMA(omp parallel for num_threads(n) schedule(static))
#else
#define TOCHA_OMP_PARALLEL_FOR(n)
#endif

namespace tocha {
inline int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

// Elements below which a kernel pass runs on one thread (the fork/join would cost more than it saves).
constexpr int64_t kParallelGrain = 32768;

// Threads for a pass over n elements: all of them from kParallelGrain elements on, else 1 (then
// parallel_for runs inline, without an OpenMP region).
inline int threads_for_size(int64_t n) { return n >= kParallelGrain ? get_num_threads() : 1; }

// f(i) for i in [0, n): split statically over nt threads when nt > 1 and n > 1, else a plain loop.
// Prefer this to TOCHA_OMP_PARALLEL_FOR wherever nt can be 1 (small inputs, one thread): entering an
// OpenMP region costs ~0.33 us with libgomp even with num_threads(1) (a 64-element loop: 0.33 us in
// the region vs 0.018 us plain; an if() clause does not avoid it), which dominated small ops.
// Each i runs the same code either way, so results do not depend on nt. In the body, `return` ends
// iteration i (where the loop body had `continue`).
template <typename F>
inline void parallel_for(int nt, int64_t n, F&& f) {
#ifdef _OPENMP
  if (nt > 1 && n > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#else
  (void)nt;
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
}
}  // namespace tocha
