// AVX2+FMA build of the fused norm kernels (norm_impl.h); CMake compiles *_avx2.cpp files with
// -mavx2 -mfma and norm.cpp calls them only when the CPU supports both.
#define TOCHA_NORM_ISA avx2
#include "norm_impl.h"
