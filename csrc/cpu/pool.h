// pool.h -- 2-d max / average / adaptive pooling and padding (constant, reflect, replicate, circular), with
// backward kernels. 1-d variants are the 2-d kernels with H = 1 (done by the Python layer).
// Layouts: x (P, H, W) where P = every leading dim flattened (N*C); any strides accepted (copied once).
// Algorithm, threading and measured speed: see pool.cpp.
#pragma once
#include <cstdint>
#include <utility>

#include "../core/array.h"

namespace tocha::cpu {

struct PoolParams {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool ceil_mode = false;
};

// y (.., OH, OW) and int64 indices (flat ih*W + iw inside each input plane, as PyTorch)
std::pair<Array, Array> max_pool2d_forward(const Array& x, const PoolParams& p);
// dx (.., H, W): gy scattered through indices (also the backward of adaptive_max_pool2d)
Array max_pool2d_backward(const Array& gy, const Array& indices, int64_t H, int64_t W);
// divisor_override <= 0 means none
Array avg_pool2d_forward(const Array& x, const PoolParams& p, bool count_include_pad, int64_t divisor_override);
Array avg_pool2d_backward(const Array& gy, int64_t H, int64_t W, const PoolParams& p, bool count_include_pad,
                          int64_t divisor_override);
Array adaptive_avg_pool2d_forward(const Array& x, int64_t OH, int64_t OW);
Array adaptive_avg_pool2d_backward(const Array& gy, int64_t H, int64_t W);
std::pair<Array, Array> adaptive_max_pool2d_forward(const Array& x, int64_t OH, int64_t OW);

// pad the last two dims (top, bottom, left, right); mode 0 constant, 1 reflect, 2 replicate, 3 circular.
// Constant pads may be negative (crop), as in PyTorch.
Array pad2d_forward(const Array& x, int64_t top, int64_t bottom, int64_t left, int64_t right, int mode,
                    double value);
Array pad2d_backward(const Array& gy, int64_t top, int64_t bottom, int64_t left, int64_t right, int mode);

// output size of a pooling window along one axis (PyTorch's rule incl. ceil_mode); throws when < 1
int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, const char* op);

}  // namespace tocha::cpu
