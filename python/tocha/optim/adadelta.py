"""Adadelta (learning-rate-free adaptive steps)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_lr, _check_nonneg, _to_float

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    ::

        v   = ρ·v + (1 − ρ)·g²
        δ   = √(u + eps) / √(v + eps) · g
        u   = ρ·u + (1 − ρ)·δ²
        p  -= lr·δ

    One fused C++ pass per parameter (``_C.adadelta_step_``).

    Args:
        params: parameters or parameter groups.
        lr: coefficient that scales δ (default 1.0).
        rho: decay of the running averages (default 0.9).
        eps: added inside the square roots (default 1e-6).
        weight_decay: L2 penalty added to the gradient (default 0).
        maximize: ascend instead of descend.

    State: ``step``, ``square_avg`` (v), ``acc_delta`` (u).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_nonneg(eps, "epsilon")
        _check_nonneg(weight_decay, "weight_decay")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                        "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One Adadelta update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            for p, state in self._params_and_state(group, "square_avg", "acc_delta"):
                state["step"] = float(state["step"]) + 1
                _K.adadelta_step_(p._a, p.grad._a, state["square_avg"]._a, state["acc_delta"]._a, lr,
                                  float(group["rho"]), float(group["eps"]), float(group["weight_decay"]),
                                  bool(group["maximize"]))
        return loss
