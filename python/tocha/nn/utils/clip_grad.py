"""Gradient clipping (``clip_grad_norm_``, ``clip_grad_value_``)."""

import math

from ... import _ops
from ..._tensor import Tensor
from ...autograd import no_grad


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale gradients so their total ``norm_type`` norm is at most ``max_norm``; returns the norm."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return _ops.tensor(0.0)
    if norm_type == math.inf:
        total = _ops.stack([g.abs().max().double() for g in grads]).max()
    else:
        total = _ops.stack([(g.double().abs() ** norm_type).sum() for g in grads]).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = float(max_norm) / (total.item() + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)
    return total.to(grads[0].dtype)


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    v = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-v, v)
