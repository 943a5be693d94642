"""Gradient clipping (``clip_grad_norm_``, ``clip_grad_value_``, ``get_total_norm``,
``clip_grads_with_norm_``), as in ``torch.nn.utils``.

Clipping tames exploding gradients (slides 001: "clip |g| ≤ 1"): ``clip_grad_value_`` clamps each
element, ``clip_grad_norm_`` rescales all gradients together so their global norm is ≤ max_norm
(direction preserved).
"""

import math

from ... import _ops
from ..._tensor import Tensor
from ...autograd import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Norm of the norms of ``tensors`` (as if they were concatenated into one vector).

    Args:
        tensors: a tensor or an iterable of tensors (typically gradients).
        norm_type: p of the p-norm; ``inf`` for the max-abs norm.
        error_if_nonfinite: raise RuntimeError if the total norm is nan/inf.

    Returns:
        0-d tensor in the dtype of the first tensor (accumulated in float64).
    """
    tensors = [tensors] if isinstance(tensors, Tensor) else [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return _ops.tensor(0.0)
    if norm_type == math.inf:
        total = _ops.stack([t.detach().abs().max().double() for t in tensors]).max()
    elif norm_type == 0:
        # PyTorch takes the 0-"norm" of the per-tensor 0-norms: the number of tensors with a nonzero
        total = _ops.stack([(t.detach() != 0).any().double() for t in tensors]).sum()
    else:
        total = _ops.stack([(t.detach().double().abs() ** norm_type).sum() for t in tensors]).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    return total.to(tensors[0].dtype)


@no_grad()
def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients of ``parameters`` by ``min(1, max_norm / (total_norm + 1e-6))``."""
    grads = _grads(parameters)
    if not grads:
        return
    coef = float(max_norm) / (float(total_norm) + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Rescale gradients in place so their global ``norm_type`` norm is at most ``max_norm``.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped.
        max_norm: maximal global norm.
        norm_type: p of the p-norm (default 2; ``inf`` for max-abs).
        error_if_nonfinite: raise RuntimeError when the norm is nan/inf.
        foreach: accepted for compatibility.

    Returns:
        the total norm before clipping (0-d tensor).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    if not grads:
        return _ops.tensor(0.0)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    v = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-v, v)
