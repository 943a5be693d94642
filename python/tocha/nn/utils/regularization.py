"""Explicit regularisation penalties to add to a loss (L1; L2 is usually ``weight_decay``)."""

from ... import _ops
from ..._tensor import Tensor

__all__ = ["l1_penalty", "l2_penalty"]


def _params(parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def l1_penalty(parameters):
    r"""Differentiable L1 penalty :math:`\sum_i |w_i|` over all elements of ``parameters``.

    Add ``lam * l1_penalty(weights)`` to the loss for lasso-style sparsity; its gradient is
    ``lam * sign(w)`` (0 at exactly 0, the subgradient PyTorch's ``abs`` uses). Biases are usually
    excluded, e.g. ``l1_penalty(p for n, p in model.named_parameters() if n.endswith('weight'))``.

    Args:
        parameters: a tensor or an iterable of tensors.

    Returns:
        0-d tensor (dtype of the first parameter), ``0.`` when ``parameters`` is empty.
    """
    ps = _params(parameters)
    if not ps:
        return _ops.tensor(0.0)
    total = ps[0].abs().sum()
    for p in ps[1:]:
        total = total + p.abs().sum()
    return total


def l2_penalty(parameters):
    r"""Differentiable squared L2 penalty :math:`\frac{1}{2}\sum_i w_i^2` (slides 002/004:
    :math:`\frac{\lambda}{2m}\|W\|^2` with ``lam / m`` as the factor). Its gradient is ``w``, so
    ``lam * l2_penalty(ws)`` is equivalent to SGD's ``weight_decay=lam`` on those weights.

    Args:
        parameters: a tensor or an iterable of tensors.

    Returns:
        0-d tensor, ``0.`` when ``parameters`` is empty.
    """
    ps = _params(parameters)
    if not ps:
        return _ops.tensor(0.0)
    total = (ps[0] * ps[0]).sum()
    for p in ps[1:]:
        total = total + (p * p).sum()
    return total * 0.5
