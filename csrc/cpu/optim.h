// Fused optimiser updates: each optimiser's whole per-parameter update is ONE pass over memory.
//
// Every function updates `param` and its state buffers in place, element by element:
//   param, grad, state...: same shape, same floating dtype (float32 or float64); param and state
//   buffers contiguous (grad is made contiguous if it is not). Optional buffers (std::optional) are
//   only touched when the matching option is on and must then be present.
// Scalars (lr, betas, bias corrections) are folded on the host in double, then cast to the element
// type, so float32 runs in float32 like PyTorch's CPU kernels. The arithmetic follows PyTorch's
// `_single_tensor_*` functions operation by operation (lerp_ for first moments, mul_+addcmul_ for
// second moments, addcdiv_ for the update), so float64 trajectories match PyTorch to ~1e-15.
// Threads: OpenMP over contiguous chunks of at least 32K elements per thread for the Adam family
// (compute-bound: sqrt + two divisions per element) and 1M for SGD (streams 20 B/element; a second
// thread only pays off beyond the last-level cache); each element is updated independently, so the
// result does not depend on the thread count.
// Builds: baseline (optim.cpp) and AVX2+FMA (optim_avx2.cpp, 8-wide sqrt/div), chosen at run time.
// Speed (python benchmarks/bench_optim.py --threads 1, float32, shared 2-core VM, indicative):
//   Adam 1M 0.55 ms (torch default 3.0 ms, torch fused 0.70 ms); Adam 10M 13.0 ms (fused 14-18 ms:
//   DRAM-bound, 28 B/element); SGD-momentum 1M 0.35 ms (torch fused 0.31-0.64 ms, noisy).
#pragma once
#include <optional>

#include "../core/array.h"

namespace tocha::cpu {

// SGD: g = ±grad + wd·p; buf = g (first step) or μ·buf + (1−dampening)·g;
// d = g + μ·buf (nesterov) or buf (momentum) or g; p −= lr·d.
void sgd_step_(const Array& param, const Array& grad, const std::optional<Array>& momentum_buffer,
               double lr, double momentum, double dampening, double weight_decay, bool nesterov,
               bool maximize, bool first_step);

// Adam / AdamW (decoupled=true: p *= 1 − lr·wd instead of g += wd·p). `step` is the count after
// this update (1 on the first call). max_exp_avg_sq is required when amsgrad.
void adam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                const std::optional<Array>& max_exp_avg_sq, double lr, double beta1, double beta2,
                double eps, double weight_decay, double step, bool amsgrad, bool maximize,
                bool decoupled);

// Adamax: exp_inf = max(β2·exp_inf, |g| + eps); p −= lr/(1 − β1^step) · m / exp_inf.
void adamax_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_inf,
                  double lr, double beta1, double beta2, double eps, double weight_decay, double step,
                  bool maximize);

// RMSprop (grad_avg required when centered, momentum_buffer when momentum > 0).
void rmsprop_step_(const Array& param, const Array& grad, const Array& square_avg,
                   const std::optional<Array>& grad_avg, const std::optional<Array>& momentum_buffer,
                   double lr, double alpha, double eps, double weight_decay, double momentum,
                   bool centered, bool maximize);

// Adagrad: clr = lr / (1 + (step − 1)·lr_decay); sum += g²; p −= clr · g / (√sum + eps).
void adagrad_step_(const Array& param, const Array& grad, const Array& state_sum, double lr,
                   double lr_decay, double weight_decay, double eps, double step, bool maximize);

// Adadelta: sq = ρ·sq + (1−ρ)g²; δ = √(acc+eps)/√(sq+eps)·g; acc = ρ·acc + (1−ρ)δ²; p −= lr·δ.
void adadelta_step_(const Array& param, const Array& grad, const Array& square_avg,
                    const Array& acc_delta, double lr, double rho, double eps, double weight_decay,
                    bool maximize);

// NAdam: mu, mu_next and the already-updated mu_product (μ_1⋯μ_t) come from the host, which keeps
// the momentum-decay schedule.
void nadam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                 double lr, double beta1, double beta2, double eps, double weight_decay, double step,
                 double mu, double mu_next, double mu_product, bool decoupled, bool maximize);

// RAdam: rectified Adam; falls back to bias-corrected momentum SGD while ρ_t ≤ 5.
void radam_step_(const Array& param, const Array& grad, const Array& exp_avg, const Array& exp_avg_sq,
                 double lr, double beta1, double beta2, double eps, double weight_decay, double step,
                 bool decoupled, bool maximize);

}  // namespace tocha::cpu
