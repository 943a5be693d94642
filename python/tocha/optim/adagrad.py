"""Adagrad (per-coordinate learning rates from the accumulated squared gradient)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_lr, _check_nonneg, _to_float

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    ::

        clr = lr / (1 + (t − 1)·lr_decay)
        sum += g²
        p  -= clr · g / (√sum + eps)

    One fused C++ pass per parameter (``_C.adagrad_step_``). As in PyTorch the state is created in
    the constructor, with ``sum`` filled with ``initial_accumulator_value``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        initial_accumulator_value: starting value of ``sum`` (default 0).
        eps: added to the denominator (default 1e-10).
        maximize: ascend instead of descend.

    State: ``step``, ``sum``.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_lr(lr)
        _check_nonneg(lr_decay, "lr_decay")
        _check_nonneg(weight_decay, "weight_decay")
        _check_nonneg(initial_accumulator_value, "initial_accumulator_value")
        _check_nonneg(eps, "epsilon")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                        "initial_accumulator_value": initial_accumulator_value, "foreach": foreach, "maximize": maximize,
                        "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p):
        state = self.state[p]
        state["step"] = 0.0
        state["sum"] = self._zeros_like(p).fill_(float(self.defaults["initial_accumulator_value"]))

    @no_grad()
    def step(self, closure=None):
        """One Adagrad update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "sum" not in state:  # parameter added later with add_param_group
                    self._init_state(p)
                state["step"] = float(state["step"]) + 1
                _K.adagrad_step_(p._a, p.grad._a, state["sum"]._a, lr, float(group["lr_decay"]),
                                 float(group["weight_decay"]), float(group["eps"]), state["step"],
                                 bool(group["maximize"]))
        return loss
