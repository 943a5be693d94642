// native_vec.h -- the widest vector register of the build a file is compiled for, as a GCC/Clang vector
// type: 32 bytes when the file gets AVX (the *_avx2.cpp builds), else 16 (baseline SSE2 / other targets).
// Used by kernels written once and compiled per ISA (conv_impl.h, pool_impl.h). The unnamed namespace gives
// every translation unit its own copy, so builds with different flags never share a definition.
#pragma once
#include <cstdint>
#include <type_traits>

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

}  // namespace
}  // namespace tocha::cpu
