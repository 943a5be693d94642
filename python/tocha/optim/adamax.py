"""Adamax (Adam with the infinity norm)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_betas, _check_lr, _check_nonneg, _to_float

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2015, §7), as ``torch.optim.Adamax``.

    ::

        m = β1·m + (1 − β1)·g
        u = max(β2·u, |g| + eps)
        p -= lr / (1 − β1^t) · m / u

    One fused C++ pass per parameter (``_C.adamax_step_``).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 2e-3).
        betas: (β1, β2) (default (0.9, 0.999)).
        eps: added to |g| (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        maximize: ascend instead of descend.

    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_lr(lr)
        _check_nonneg(eps, "epsilon")
        _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                        "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One Adamax update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            for p, state in self._params_and_state(group, "exp_avg", "exp_inf"):
                state["step"] = float(state["step"]) + 1
                _K.adamax_step_(p._a, p.grad._a, state["exp_avg"]._a, state["exp_inf"]._a, lr, beta1, beta2,
                                float(group["eps"]), float(group["weight_decay"]), state["step"],
                                bool(group["maximize"]))
        return loss
