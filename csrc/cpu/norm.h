// Fused normalisation kernels: batch norm (per channel) and layer/RMS norm (per row).
//
// batch_norm_forward(x (N, C, *), weight (C)?, bias (C)?, running_mean (C)?, running_var (C)?,
//                    training, momentum, eps) -> (y (N, C, *), save_mean (C), save_invstd (C))
//   training: statistics of the batch in ONE pass per channel (shifted sums in double: robust to a
//   large mean), running stats updated in place (unbiased variance) when given;
//   eval: the running statistics normalise. y = (x − mean_c)·scale_c + bias_c (one pass).
// batch_norm_backward(grad, x, weight?, save_mean, save_invstd, training) -> (gx, gweight, gbias)
//   one reduction pass per channel (Σg, Σg·x̂) and one write pass:
//   training: gx = w·invstd·(g − Σg/M − x̂·Σg·x̂/M);  eval: gx = w·invstd·g.
// layer_norm_forward(x (R, D) viewed from (*, D), weight (D)?, bias (D)?, D, eps, rms)
//   -> (y, mean (R), rstd (R)); rms=true is RMSNorm (no centring, no bias). Per row (threads over rows):
//   mean, then Σ(x−m)² with the rounding of m corrected (two passes over the cache-resident row, no
//   cancellation when |mean| >> std), then one write pass.
// layer_norm_backward(grad, x, weight?, mean, rstd, D, rms) -> (gx, gweight (D), gbias (D)).
//   Per row: one pass for Σĝ, Σĝ·(x−m) (ĝ = g·w), one pass writing gx that also accumulates the
//   weight/bias partials of the row's block; blocks of max(16, ⌈R/64⌉) rows (fixed by R, not by the
//   thread count) run in parallel and their partials are summed in block order: every result is
//   bitwise identical for any thread count.
//   Row sums: T arithmetic on two 32-byte vectors (GCC vector extensions) in blocks of 2048 elements
//   added in double -- float32 runs at float32 SIMD speed without losing accuracy on long rows.
// Builds: baseline (norm.cpp) and AVX2+FMA (norm_avx2.cpp), chosen at run time.
// Speed (`python benchmarks/bench_nn_layers.py --threads 1`, 2 shared cores, noisy): BatchNorm2d
//   (64,32,28,28) fwd+bwd 8.9 ms vs PyTorch 15.8 ms (1.8x); LayerNorm (4096,512) fwd+bwd: kernels
//   1.0 ms fwd + 1.5 ms bwd (PyTorch 1.0 + 1.9 ms), see the [nn] report for the module-level table.
#pragma once
#include <optional>
#include <tuple>

#include "../core/array.h"

namespace tocha::cpu {

std::tuple<Array, Array, Array> batch_norm_forward(const Array& x, const std::optional<Array>& weight,
                                                   const std::optional<Array>& bias,
                                                   const std::optional<Array>& running_mean,
                                                   const std::optional<Array>& running_var,
                                                   bool training, double momentum, double eps);
std::tuple<Array, Array, Array> batch_norm_backward(const Array& grad, const Array& x,
                                                    const std::optional<Array>& weight,
                                                    const Array& save_mean, const Array& save_invstd,
                                                    bool training);
std::tuple<Array, Array, Array> layer_norm_forward(const Array& x, const std::optional<Array>& weight,
                                                   const std::optional<Array>& bias, int64_t D,
                                                   double eps, bool rms);
std::tuple<Array, Array, Array> layer_norm_backward(const Array& grad, const Array& x,
                                                    const std::optional<Array>& weight,
                                                    const Array& mean, const Array& rstd, int64_t D,
                                                    bool rms);

}  // namespace tocha::cpu
