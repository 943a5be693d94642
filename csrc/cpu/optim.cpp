// Fused optimiser updates: run-time choice between the baseline and the AVX2+FMA builds of optim_impl.h
// (contract in optim.h). Same CPU-feature decision as the GEMM / vecmath (TOCHA_CPU_ISA=generic honoured).
#define TOCHA_OPTIM_ISA generic
#include "optim_impl.h"

#include <cstring>

#include "gemm.h"

namespace tocha::cpu {

#if defined(__x86_64__)
#define TOCHA_OPTIM_HAVE_AVX2 1
namespace avx2 {   // optim_avx2.cpp
void sgd_step_(const Array& param, const Array& grad, const std::optional<Array>& momentum_buffer, double lr, double momentum, double dampening, double weight_decay, bool nesterov, bool maximize, bool first_step);
void adam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq, const std::optional<Array>& max_exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay, double step, bool amsgrad, bool maximize, bool decoupled);
void adamax_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_inf, double lr, double beta1, double beta2, double eps, double weight_decay, double step, bool maximize);
void rmsprop_step_(const Array& param, const Array& grad, const Array& square_avg, const std::optional<Array>& grad_avg, const std::optional<Array>& momentum_buffer, double lr, double alpha, double eps, double weight_decay, double momentum, bool centered, bool maximize);
void adagrad_step_(const Array& param, const Array& grad, const Array& state_sum, double lr, double lr_decay, double weight_decay, double eps, double step, bool maximize);
void adadelta_step_(const Array& param, const Array& grad, const Array& square_avg, const Array& acc_delta, double lr, double rho, double eps, double weight_decay, bool maximize);
void nadam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay, double step, double mu, double mu_next, double mu_product, bool decoupled, bool maximize);
void radam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay, double step, bool decoupled, bool maximize);
}  // namespace avx2
#endif


void sgd_step_(const Array& param, const Array& grad, const std::optional<Array>& momentum_buffer, double lr, double momentum, double dampening, double weight_decay, bool nesterov, bool maximize, bool first_step) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::sgd_step_(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step);
#endif
  generic::sgd_step_(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step);
}

void adam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq, const std::optional<Array>& max_exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay, double step, bool amsgrad, bool maximize, bool decoupled) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::adam_step_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step, amsgrad, maximize, decoupled);
#endif
  generic::adam_step_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step, amsgrad, maximize, decoupled);
}

void adamax_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_inf, double lr, double beta1, double beta2, double eps, double weight_decay, double step, bool maximize) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::adamax_step_(param, grad, exp_avg, exp_inf, lr, beta1, beta2, eps, weight_decay, step, maximize);
#endif
  generic::adamax_step_(param, grad, exp_avg, exp_inf, lr, beta1, beta2, eps, weight_decay, step, maximize);
}

void rmsprop_step_(const Array& param, const Array& grad, const Array& square_avg, const std::optional<Array>& grad_avg, const std::optional<Array>& momentum_buffer, double lr, double alpha, double eps, double weight_decay, double momentum, bool centered, bool maximize) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::rmsprop_step_(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum, centered, maximize);
#endif
  generic::rmsprop_step_(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum, centered, maximize);
}

void adagrad_step_(const Array& param, const Array& grad, const Array& state_sum, double lr, double lr_decay, double weight_decay, double eps, double step, bool maximize) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::adagrad_step_(param, grad, state_sum, lr, lr_decay, weight_decay, eps, step, maximize);
#endif
  generic::adagrad_step_(param, grad, state_sum, lr, lr_decay, weight_decay, eps, step, maximize);
}

void adadelta_step_(const Array& param, const Array& grad, const Array& square_avg, const Array& acc_delta, double lr, double rho, double eps, double weight_decay, bool maximize) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::adadelta_step_(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize);
#endif
  generic::adadelta_step_(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize);
}

void nadam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay, double step, double mu, double mu_next, double mu_product, bool decoupled, bool maximize) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::nadam_step_(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step, mu, mu_next, mu_product, decoupled, maximize);
#endif
  generic::nadam_step_(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step, mu, mu_next, mu_product, decoupled, maximize);
}

void radam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq, double lr, double beta1, double beta2, double eps, double weight_decay, double step, bool decoupled, bool maximize) {
#ifdef TOCHA_OPTIM_HAVE_AVX2
  if (cpu_has_avx2()) return avx2::radam_step_(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step, decoupled, maximize);
#endif
  generic::radam_step_(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step, decoupled, maximize);
}

}  // namespace tocha::cpu
