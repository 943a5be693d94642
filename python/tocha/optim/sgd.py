"""Stochastic gradient descent (with momentum, Nesterov, weight decay)."""

from .. import _C
from ..autograd import no_grad
from .optimizer import Optimizer, required


class SGD(Optimizer):
    """SGD as in PyTorch: ``v = μ v + (1 − dampening) g``; ``p −= lr · (g + μ v if nesterov else v)``.

    Full-batch GD, per-sample SGD and mini-batch GD are all this optimiser fed by a different loader.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend instead of descend.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure() when given."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad

            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._a
                if maximize:
                    g = _C.unary(0, g)  # neg
                if wd != 0:
                    g = g.clone() if g is p.grad._a else g
                    _C.axpy_(g, p._a, wd)
                if mom != 0:
                    state = self.state[id(p)]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        from .._tensor import _wrap

                        buf = _wrap(g.clone())
                        state["momentum_buffer"] = buf
                    else:
                        _C.binary_scalar_(2, buf._a, float(mom))  # mul
                        _C.axpy_(buf._a, g, 1.0 - damp)
                    if nesterov:
                        g = g.clone() if g is p.grad._a else g
                        _C.axpy_(g, buf._a, mom)
                    else:
                        g = buf._a
                _C.axpy_(p._a, g, -lr)
        return loss
