"""Core of ``tocha.nn.functional``: the foundation's activations and losses.

Activations/losses added by later work live in ``_functional_nn.py`` (activations, losses,
normalisation, dropout) and ``_functional_conv.py`` (convolution, pooling, padding); ``functional``
re-exports all three.
"""

from .. import _C
from .. import _ops
from .._ops import (Function, _wrap, cross_entropy, linear, log_softmax, mish, register, relu, sigmoid,
                     silu, softmax, tanh)
from .._tensor import Tensor

__all__ = ["relu", "relu_", "sigmoid", "tanh", "silu", "mish", "linear", "softmax", "log_softmax", "softmin",
           "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy", "one_hot"]


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_same_shape(input, target, name):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")


def relu_(input):
    return input.relu_()


def softmin(input, dim=None, dtype=None):
    """softmax(-x) along ``dim``."""
    return softmax(-input, dim, dtype)


@register("mse_loss")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error: mean((input - target)^2)."""
    _check_same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction)


@register("l1_loss")
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean absolute error: mean(|input - target|)."""
    _check_same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


@register("nll_loss")
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of class indices given log-probabilities ``input`` (N, C, ...)."""
    if input.ndim < 1:
        raise ValueError("nll_loss: input must be at least 1-d")
    if input.ndim == 1:
        input, target, squeeze = input.unsqueeze(0), target.reshape(1), True
    else:
        squeeze = False
    if input.ndim > 2:
        c = input.shape[1]
        spatial = tuple(target.shape)
        input = input.movedim(1, -1).reshape(-1, c)
        target = target.reshape(-1)
    else:
        spatial = None
    n, c = input.shape
    if tuple(target.shape) != (n,):
        raise ValueError(f"nll_loss: expected target of shape ({n},), got {tuple(target.shape)}")
    if target.is_floating_point():
        raise TypeError("nll_loss: expected an integer class-index target")
    valid = target != ignore_index
    tv = _ops.where(valid, target, _ops.zeros_like(target))
    if tv.numel() and (int(tv.min()) < 0 or int(tv.max()) >= c):
        bad = tv[(tv < 0) | (tv >= c)][0].item()
        raise IndexError(f"nll_loss: target {bad} is out of bounds for {c} classes")
    picked = -input.gather(1, tv.unsqueeze(1)).squeeze(1)
    w = valid.to(input.dtype)
    if weight is not None:
        w = w * weight.to(input.dtype)[tv]
    loss = picked * w
    if reduction == "none":
        if spatial is not None:
            return loss.reshape(spatial)
        return loss.reshape(()) if squeeze else loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / w.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


class _BCE(Function):
    """Binary cross-entropy on probabilities, log clamped at -100 like PyTorch."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, t, w):
        ctx.save_for_backward(x, t, w)
        lx = _ops.clamp(_ops.log(x.detach()), min=-100.0)
        l1x = _ops.clamp(_ops.log(1 - x.detach()), min=-100.0)
        loss = -(t.detach() * lx + (1 - t.detach()) * l1x)
        if w is not None:
            loss = loss * w.detach()
        return _wrap(loss._a)

    @staticmethod
    def backward(ctx, g):
        x, t, w = ctx.saved_tensors
        denom = _ops.clamp((1 - x) * x, min=1e-12)
        gx = g * (x - t) / denom
        gt = None
        if ctx.needs_input_grad[1]:
            gt = g * (_ops.clamp(_ops.log(1 - x), min=-100.0) - _ops.clamp(_ops.log(x), min=-100.0))
        if w is not None:
            gx = gx * w
            gt = None if gt is None else gt * w
        return gx, gt, None


@register("binary_cross_entropy")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """BCE between probabilities ``input`` in [0, 1] and ``target``."""
    _check_same_shape(input, target, "binary_cross_entropy")
    with _ops_no_grad():
        lo, hi = (float(input.min()), float(input.max())) if input.numel() else (0.0, 1.0)
    if lo < 0 or hi > 1:
        raise ValueError("all elements of input should be between 0 and 1")
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        weight = weight.expand(*input.shape)
    return _reduce(_BCE.apply(input, target, weight), reduction)


def _ops_no_grad():
    from ..autograd import no_grad

    return no_grad()


def one_hot(tensor, num_classes=-1):
    """(..., ) int64 class indices -> (..., num_classes) int64 one-hot."""
    if num_classes == -1:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    return _wrap(_C.one_hot(tensor._a, int(num_classes)))
