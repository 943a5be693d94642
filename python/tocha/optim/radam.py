"""RAdam (Adam with a rectified, warm-up-free adaptive learning rate)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_betas, _check_lr, _check_nonneg, _to_float

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (Liu et al., 2020), as ``torch.optim.RAdam``.

    ::

        m, v as in Adam;  ρ∞ = 2/(1 − β2) − 1;  ρ_t = ρ∞ − 2t·β2^t/(1 − β2^t)
        ρ_t > 5:  r = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t));  p -= lr·m̂·r·√(1−β2^t)/(√v + eps)
        else:     p -= lr·m̂                          (m̂ = m / (1 − β1^t))

    One fused C++ pass per parameter (``_C.radam_step_``).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3).
        betas: (β1, β2) (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: weight decay (default 0).
        decoupled_weight_decay: AdamW-style decay ``p *= 1 − lr·weight_decay``.
        maximize: ascend instead of descend.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check_lr(lr)
        _check_nonneg(eps, "epsilon")
        _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize, "foreach": foreach,
                        "capturable": capturable, "decoupled_weight_decay": decoupled_weight_decay,
                        "differentiable": differentiable}
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One RAdam update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            for p, state in self._params_and_state(group, "exp_avg", "exp_avg_sq"):
                state["step"] = float(state["step"]) + 1
                _K.radam_step_(p._a, p.grad._a, state["exp_avg"]._a, state["exp_avg_sq"]._a, lr, beta1, beta2,
                               float(group["eps"]), float(group["weight_decay"]), state["step"],
                               bool(group["decoupled_weight_decay"]), bool(group["maximize"]))
        return loss
