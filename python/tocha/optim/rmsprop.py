"""RMSprop (plain, centred, with momentum)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_lr, _check_nonneg, _to_float

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), as ``torch.optim.RMSprop``.

    ::

        v = α·v + (1 − α)·g²
        centred:  ḡ = α·ḡ + (1 − α)·g,   s = √(v − ḡ²) + eps;   else  s = √v + eps
        momentum: b = μ·b + g/s,  p -= lr·b;                     else  p -= lr·g/s

    One fused C++ pass per parameter (``_C.rmsprop_step_``).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant (default 0.99).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by the estimated variance instead of the raw second moment.
        maximize: ascend instead of descend.

    State: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_lr(lr)
        _check_nonneg(eps, "epsilon")
        _check_nonneg(momentum, "momentum")
        _check_nonneg(weight_decay, "weight_decay")
        _check_nonneg(alpha, "alpha")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                        "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach, "maximize": maximize,
                        "differentiable": differentiable}
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One RMSprop update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            mom, centered = float(group["momentum"]), bool(group["centered"])
            for p, state in self._params_and_state(group, "square_avg"):
                if mom > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._zeros_like(p)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = self._zeros_like(p)
                state["step"] = float(state["step"]) + 1
                _K.rmsprop_step_(p._a, p.grad._a, state["square_avg"]._a,
                                 state["grad_avg"]._a if centered else None,
                                 state["momentum_buffer"]._a if mom > 0 else None, lr, float(group["alpha"]),
                                 float(group["eps"]), float(group["weight_decay"]), mom, centered,
                                 bool(group["maximize"]))
        return loss
