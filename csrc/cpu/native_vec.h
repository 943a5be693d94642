// native_vec.h -- the widest vector register of the build a file is compiled for, as a GCC/Clang vector
// type: 32 bytes when the file gets AVX (the *_avx2.cpp builds), else 16 (baseline SSE2 / other targets).
// Used by kernels written once and compiled per ISA (conv_impl.h, pool_impl.h). The unnamed namespace gives
// every translation unit its own copy, so builds with different flags never share a definition.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace tocha::cpu {
namespace {

#ifdef __AVX__
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename T>
struct NativeVec {
  typedef T V __attribute__((vector_size(kVecBytes)));
  typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> I;  // lane-sized integer (indices, masks)
  typedef I IV __attribute__((vector_size(kVecBytes)));
  static constexpr int kLen = kVecBytes / int(sizeof(T));
};

// Unaligned load / store of a GCC vector type V at an element pointer (memcpy: no alignment or aliasing
// assumption; compiles to one vector move).
template <typename V, typename T>
inline __attribute__((always_inline)) V vload(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename V, typename T>
inline __attribute__((always_inline)) void vstore(T* p, V v) {
  std::memcpy(p, &v, sizeof(v));
}

// Lane shuffles of any GCC vector type V (L lanes), with the masks built at compile time:
// deinterleave: (ev, od) = the even / odd lanes of the 2L values (a, b); interleave, its inverse:
// (lo, hi) = a0 b0 a1 b1 ... (max_pool_2x2 in pool_impl.h; the Winograd transforms in conv_impl.h).
template <typename V, int... k>
inline void deinterleave_seq(V a, V b, V& ev, V& od, std::integer_sequence<int, k...>) {
  using I = decltype(a < a);
  ev = __builtin_shuffle(a, b, I{(2 * k)...});
  od = __builtin_shuffle(a, b, I{(2 * k + 1)...});
}
template <typename V>
inline void deinterleave(V a, V b, V& ev, V& od) {
  deinterleave_seq(a, b, ev, od, std::make_integer_sequence<int, int(sizeof(V) / sizeof(a[0]))>());
}
template <typename V, int... k>
inline void interleave_seq(V a, V b, V& lo, V& hi, std::integer_sequence<int, k...>) {
  using I = decltype(a < a);
  constexpr int L = int(sizeof...(k));
  lo = __builtin_shuffle(a, b, I{(k / 2 + (k % 2) * L)...});
  hi = __builtin_shuffle(a, b, I{(L / 2 + k / 2 + (k % 2) * L)...});
}
template <typename V>
inline void interleave(V a, V b, V& lo, V& hi) {
  interleave_seq(a, b, lo, hi, std::make_integer_sequence<int, int(sizeof(V) / sizeof(a[0]))>());
}

}  // namespace
}  // namespace tocha::cpu
