"""NAdam (Adam with Nesterov momentum and a momentum-decay schedule)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_betas, _check_lr, _check_nonneg, _scalar_mul, _to_float

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016), as ``torch.optim.NAdam``.

    ::

        μ_t = β1·(1 − ½·0.96^(t·ψ))          (ψ = momentum_decay)
        m = β1·m + (1 − β1)·g,   v = β2·v + (1 − β2)·g²,   d = √(v / (1 − β2^t)) + eps
        p -= lr·(1 − μ_t)/(1 − Π_{i≤t} μ_i) · g/d  +  lr·μ_{t+1}/(1 − Π_{i≤t+1} μ_i) · m/d

    The μ schedule is kept on the host; the update is one fused C++ pass (``_C.nadam_step_``).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 2e-3).
        betas: (β1, β2) (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: weight decay (default 0).
        momentum_decay: ψ (default 4e-3).
        decoupled_weight_decay: NAdamW-style decay ``p *= 1 − lr·weight_decay``.
        maximize: ascend instead of descend.

    State: ``step``, ``mu_product`` (float, rounded like PyTorch's float32 scalar tensor),
    ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_lr(lr)
        _check_nonneg(eps, "epsilon")
        _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay")
        _check_nonneg(momentum_decay, "momentum_decay")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "momentum_decay": momentum_decay,
                        "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize, "foreach": foreach,
                        "capturable": capturable, "differentiable": differentiable}
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One NAdam update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            psi = float(group["momentum_decay"])
            for p, state in self._params_and_state(group, "exp_avg", "exp_avg_sq", mu_product=1.0):
                step = state["step"] = float(state["step"]) + 1
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
                state["mu_product"] = _scalar_mul(state["mu_product"], mu)
                _K.nadam_step_(p._a, p.grad._a, state["exp_avg"]._a, state["exp_avg_sq"]._a, lr, beta1, beta2,
                               float(group["eps"]), float(group["weight_decay"]), step, mu, mu_next,
                               float(state["mu_product"]), bool(group["decoupled_weight_decay"]),
                               bool(group["maximize"]))
        return loss
