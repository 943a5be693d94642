"""Adam and AdamW (bias-corrected adaptive moments; AMSGrad; coupled or decoupled weight decay)."""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from ..autograd import no_grad
from .optimizer import Optimizer, _check_betas, _check_lr, _check_nonneg, _to_float

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    Adam combines momentum and RMSprop (slides 004). With ``g`` the gradient (+ ``weight_decay·p``
    unless decoupled) and ``t`` the step count::

        m = β1·m + (1 − β1)·g            v = β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t)               v̂ = v / (1 − β2^t)       (bias correction)
        p -= lr · m̂ / (√v̂ + eps)         (AMSGrad: v replaced by its running maximum)

    The bias corrections are folded into two scalars so the update is one fused C++ pass
    (``_C.adam_step_``) over parameter, gradient and state, exactly PyTorch's arithmetic.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3).
        betas: (β1, β2) decay rates of the first and second moments (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: L2 penalty (default 0), added to the gradient unless ``decoupled_weight_decay``.
        amsgrad: use the running maximum of ``v`` (Reddi et al., 2018).
        maximize: ascend instead of descend.
        decoupled_weight_decay: AdamW-style decay ``p *= 1 − lr·weight_decay``.
        foreach, capturable, differentiable, fused: accepted for compatibility (always fused on CPU).

    State: ``step`` (float), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_lr(lr)
        _check_nonneg(eps, "epsilon")
        _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay")
        if not all(isinstance(b, float) for b in betas) and not all(hasattr(b, "numel") for b in betas):
            raise ValueError("betas must be either both floats or both Tensors")
        betas = tuple(_to_float(b, f"betas[{i}]") for i, b in enumerate(betas))
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                        "maximize": maximize, "foreach": foreach, "capturable": capturable,
                        "differentiable": differentiable, "fused": fused, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One Adam update of every parameter that has a gradient; returns ``closure()`` when given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = _to_float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            amsgrad = bool(group["amsgrad"])
            buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")
            for p, state in self._params_and_state(group, *buffers):
                if amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on after the first step
                    state["max_exp_avg_sq"] = self._zeros_like(p)
                state["step"] = float(state["step"]) + 1
                _K.adam_step_(p._a, p.grad._a, state["exp_avg"]._a, state["exp_avg_sq"]._a,
                              state["max_exp_avg_sq"]._a if amsgrad else None, lr, beta1, beta2,
                              float(group["eps"]), float(group["weight_decay"]), state["step"], amsgrad,
                              bool(group["maximize"]), bool(group["decoupled_weight_decay"]))
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Same as :class:`Adam` except that weight decay shrinks the parameter directly,
    ``p *= 1 − lr·weight_decay``, instead of being added to the gradient; default
    ``weight_decay=1e-2``. Args as :class:`Adam`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
