// Shared CUDA helpers: error checks, the fixed-rank strided index, grid sizing, Philox-4x32-10.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "ops_cuda.h"

namespace tocha::cuda {

inline void check(cudaError_t e, const char* op) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("[") + op + "] CUDA error: " + cudaGetErrorString(e));
}
// Every launch is followed by this: a bad configuration throws here, naming the op.
#define TOCHA_CUDA_CHECK_LAUNCH(op) ::tocha::cuda::check(cudaGetLastError(), op)

inline void require_cuda(const Array& a, const char* op) {
  if (a.device().type != DeviceType::CUDA)
    throw std::runtime_error(std::string("[") + op + "] expected a CUDA tensor, got one on " + a.device().str());
}
inline void require_float(DType dt, const char* op) {
  if (!is_floating(dt))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(dt));
}
inline void set_device_of(const Array& a, const char* op) { check(cudaSetDevice(a.device().index), op); }

constexpr int kMaxDims = 8;
// Maps a linear (row-major) index over `shape` to an element offset through `strides` (0 = broadcast).
struct StridedIndex {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
  __host__ __device__ int64_t operator()(int64_t i) const {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t s = shape[d];
      off += (i % s) * strides[d];
      i /= s;
    }
    return off;
  }
};
// Index of `a` broadcast to `shape` (shape must be broadcast-compatible; checked by the caller).
inline StridedIndex make_index(const Array& a, const Shape& shape, const char* op) {
  if ((int)shape.size() > kMaxDims)
    throw std::runtime_error(std::string("[") + op + "] CUDA kernels support at most 8 dims, got " + shape_str(shape));
  StridedIndex ix;
  ix.ndim = (int)shape.size();
  const int64_t lead = (int64_t)shape.size() - a.ndim();
  for (int d = 0; d < ix.ndim; ++d) {
    ix.shape[d] = shape[d] > 0 ? shape[d] : 1;
    int64_t ad = d - lead;
    ix.strides[d] = (ad < 0 || a.shape[ad] == 1) ? 0 : a.strides[ad];
  }
  return ix;
}

constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return (unsigned)(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));  // grid-stride loops cover the rest
}

// ---- Philox-4x32-10: bit-identical to csrc/cpu/random.cpp ----
__host__ __device__ inline void philox(uint64_t ctr, uint64_t seed, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}
// 64 random bits for element i of a fill that starts at counter block `base`
__host__ __device__ inline uint64_t bits64(uint64_t base, uint64_t seed, int64_t i) {
  uint32_t w[4];
  philox(base + (uint64_t)i / 2, seed, w);
  const int j = (int)(i & 1) * 2;
  return ((uint64_t)w[j] << 32) | w[j + 1];
}

}  // namespace tocha::cuda
