// AVX2+FMA build of the activation kernels (activation_impl.h); CMake compiles *_avx2.cpp files with
// -mavx2 -mfma and activation.cpp calls them only when the CPU supports both.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#define TOCHA_ACT_ISA avx2
#include "activation_impl.h"
