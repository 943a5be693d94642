// Fused batch norm and layer/RMS norm: run-time choice between the baseline and the AVX2+FMA
// builds of norm_impl.h (contract and algorithm in norm.h).
#define TOCHA_NORM_ISA generic
#include "norm_impl.h"
#include "gemm.h"

#include <cstdlib>
#include <cstring>

namespace tocha::cpu {

#if defined(__x86_64__) || defined(_M_X64)
#define TOCHA_NORM_HAVE_AVX2 1
namespace avx2 {   // norm_avx2.cpp
std::tuple<Array, Array, Array> batch_norm_forward(const Array& x, const std::optional<Array>& weight, const std::optional<Array>& bias, const std::optional<Array>& running_mean, const std::optional<Array>& running_var, bool training, double momentum, double eps);
std::tuple<Array, Array, Array> batch_norm_backward(const Array& grad, const Array& x, const std::optional<Array>& weight, const Array& save_mean, const Array& save_invstd, bool training);
std::tuple<Array, Array, Array> layer_norm_forward(const Array& x, const std::optional<Array>& weight, const std::optional<Array>& bias, int64_t D, double eps, bool rms);
std::tuple<Array, Array, Array> layer_norm_backward(const Array& grad, const Array& x, const std::optional<Array>& weight, const Array& mean, const Array& rstd, int64_t D, bool rms);
}  // namespace avx2
#endif

std::tuple<Array, Array, Array> batch_norm_forward(const Array& x, const std::optional<Array>& weight, const std::optional<Array>& bias, const std::optional<Array>& running_mean, const std::optional<Array>& running_var, bool training, double momentum, double eps) {
#ifdef TOCHA_NORM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps);
#endif
  return generic::batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps);
}

std::tuple<Array, Array, Array> batch_norm_backward(const Array& grad, const Array& x, const std::optional<Array>& weight, const Array& save_mean, const Array& save_invstd, bool training) {
#ifdef TOCHA_NORM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::batch_norm_backward(grad, x, weight, save_mean, save_invstd, training);
#endif
  return generic::batch_norm_backward(grad, x, weight, save_mean, save_invstd, training);
}

std::tuple<Array, Array, Array> layer_norm_forward(const Array& x, const std::optional<Array>& weight, const std::optional<Array>& bias, int64_t D, double eps, bool rms) {
#ifdef TOCHA_NORM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::layer_norm_forward(x, weight, bias, D, eps, rms);
#endif
  return generic::layer_norm_forward(x, weight, bias, D, eps, rms);
}

std::tuple<Array, Array, Array> layer_norm_backward(const Array& grad, const Array& x, const std::optional<Array>& weight, const Array& mean, const Array& rstd, int64_t D, bool rms) {
#ifdef TOCHA_NORM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::layer_norm_backward(grad, x, weight, mean, rstd, D, rms);
#endif
  return generic::layer_norm_backward(grad, x, weight, mean, rstd, D, rms);
}

}  // namespace tocha::cpu
