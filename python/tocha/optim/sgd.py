"""Stochastic gradient descent (momentum, dampening, Nesterov, weight decay, maximize)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_lr, _check_nonneg, _to_float

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    With ``g = ∇ + weight_decay·p`` (negated when ``maximize``)::

        buf = g                                  (first step)
        buf = momentum·buf + (1 − dampening)·g   (later steps)
        d   = g + momentum·buf if nesterov else buf      (d = g when momentum = 0)
        p  -= lr·d

    Full-batch gradient descent, per-sample SGD and mini-batch GD are all this optimiser; only the
    loader that produces the gradient differs (see ``examples/gradient_descent_variants.py``).
    The whole update of one parameter is one fused C++ kernel (``_C.sgd_step_``).

    Args:
        params: parameters or parameter groups (dicts).
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend the objective instead of descending.
        foreach, differentiable, fused: accepted for PyTorch compatibility; the fused CPU kernel is
            always used.

    State (``optimizer.state[p]``): ``momentum_buffer`` when momentum ≠ 0.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        _check_nonneg(weight_decay, "weight_decay")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                        "nesterov": nesterov, "maximize": maximize, "foreach": foreach, "differentiable": differentiable,
                        "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            mom, damp = float(group["momentum"]), float(group["dampening"])
            wd = _to_float(group["weight_decay"], "weight_decay")
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf, first = None, False
                if mom != 0:
                    state = self.state[p]
                    t = state.get("momentum_buffer")
                    if t is None:
                        t = state["momentum_buffer"] = self._zeros_like(p)
                        first = True
                    buf = t._a
                _K.sgd_step_(p._a, p.grad._a, buf, lr, mom, damp, wd, bool(group["nesterov"]),
                             bool(group["maximize"]), first)
        return loss
