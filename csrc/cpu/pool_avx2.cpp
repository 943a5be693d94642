// pool_avx2.cpp -- AVX2 build of the max pooling plane kernel (pool_impl.h); compiled with -mavx2 -mfma.
#define TOCHA_POOL_ISA avx2
#include "pool_impl.h"
