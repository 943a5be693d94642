// conv.h -- 2-d convolution (cross-correlation, as PyTorch), its gradients, and unfold/fold (im2col/col2im).
// 1-d convolution and conv_transpose are expressed with these kernels by the Python layer:
//   conv1d = conv2d with H = 1; conv_transpose forward = conv2d_backward_input, its input gradient =
//   conv2d_forward, its weight gradient = conv2d_backward_weight with the roles of input/grad swapped.
// Layouts (any strides accepted; non-contiguous inputs are copied once):
//   x (N, C, H, W), w (K, C/groups, kh, kw), bias (K) or none  ->  y (N, K, OH, OW),
//   OH = (H + 2*ph - dh*(kh-1) - 1) / sh + 1  (same for W).
// Algorithm and measured speed: see conv.cpp.
#pragma once
#include <cstdint>
#include <optional>

#include "../core/array.h"

namespace tocha::cpu {

struct ConvParams {
  int64_t sh = 1, sw = 1;   // stride
  int64_t ph = 0, pw = 0;   // zero padding (both sides)
  int64_t dh = 1, dw = 1;   // dilation
  int64_t groups = 1;
};

// y = conv2d(x, w) + bias
Array conv2d_forward(const Array& x, const Array& w, const std::optional<Array>& bias, const ConvParams& p);
// dL/dx (N, C, H, W) from gy (N, K, OH, OW) and w (K, C/groups, kh, kw); H, W = input spatial size.
Array conv2d_backward_input(const Array& gy, const Array& w, int64_t H, int64_t W, const ConvParams& p);
// dL/dw (K, C/groups, kh, kw) from x (N, C, H, W) and gy (N, K, OH, OW).
Array conv2d_backward_weight(const Array& x, const Array& gy, int64_t kh, int64_t kw, const ConvParams& p);
// dL/dbias (K) = sum of gy over N, OH, OW.
Array conv2d_backward_bias(const Array& gy);

// unfold: x (N, C, H, W) -> (N, C*kh*kw, L), L = OH*OW;  fold: the adjoint, (N, C*kh*kw, L) -> (N, C, H, W).
Array unfold_forward(const Array& x, int64_t kh, int64_t kw, const ConvParams& p);
Array fold_forward(const Array& cols, int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p);

// 0: im2col + GEMM everywhere, 1: direct kernel where eligible (C/groups == 1), 2: Winograd F(2x2, 3x3) where
// eligible (3x3, stride 1, dilation 1, groups 1, padding <= 2; forward and both gradients), 3: direct
// multi-channel forward where eligible (column stride 1, not depthwise), -1: automatic (default).
void set_conv_algo(int algo);
// Testing: the algorithm (numbered as above) of the calling thread's last conv2d forward.
int last_conv_forward_algo();
// Testing knob: col-matrix budget in bytes above which an image is processed in bands of output rows
// (<= 0: the default, 8 MiB).
void set_conv_band_bytes(int64_t bytes);

}  // namespace tocha::cpu
