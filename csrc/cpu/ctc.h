// Connectionist Temporal Classification loss (Graves et al. 2006), forward-backward in log space.
//
// ctc_loss_forward(log_probs (T, N, C), targets (N, S) padded or (sum(target_lengths),) concatenated
//                  int64, input_lengths (N) int64, target_lengths (N) int64, blank)
//   -> (neg_log_likelihood (N), log_alpha (N, T, 2*max_target_length+1))
// ctc_loss_backward(grad_nll (N), log_probs, targets, input_lengths, target_lengths, nll, log_alpha,
//                   blank, zero_infinity) -> grad_log_probs (T, N, C)
//   Recomputes log_beta per sample and returns, like PyTorch,
//   grad[t,c] = (exp(lp[t,c]) − exp(log Σ_{s: l'_s=c} α_t(s)β_t(s) + nll − lp[t,c])) · grad_nll,
//   i.e. the gradient as seen by the logits *before* a log_softmax (log_softmax's backward leaves it
//   unchanged), which is what torch.nn.functional.ctc_loss produces.
// Samples are independent: parallel over N, so results never depend on the thread count.
// Errors: bad lengths, out-of-range targets/blank raise IndexError/ValueError naming the sample.
#pragma once
#include <utility>

#include "../core/array.h"

namespace tocha::cpu {

std::pair<Array, Array> ctc_loss_forward(const Array& log_probs, const Array& targets,
                                         const Array& input_lengths, const Array& target_lengths,
                                         int64_t blank);
Array ctc_loss_backward(const Array& grad_nll, const Array& log_probs, const Array& targets,
                        const Array& input_lengths, const Array& target_lengths, const Array& nll,
                        const Array& log_alpha, int64_t blank, bool zero_infinity);

}  // namespace tocha::cpu
