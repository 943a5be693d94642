// AVX2+FMA build of the convolution kernels (conv_impl.h); CMake compiles *_avx2.cpp files with
// -mavx2 -mfma and conv.cpp calls them only when the CPU supports both.
#define TOCHA_CONV_ISA avx2
#include "conv_impl.h"
