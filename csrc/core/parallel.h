// Thread-count control shared by all CPU kernels (OpenMP when available, serial otherwise).
#pragma once
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
}  // namespace tocha
