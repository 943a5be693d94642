// AVX2+FMA build of the fused optimiser updates (optim_impl.h); CMake compiles *_avx2.cpp files with
// -mavx2 -mfma and optim.cpp calls them only when the CPU supports both.
#define TOCHA_OPTIM_ISA avx2
#include "optim_impl.h"
