"""``nn.functional`` additions of the [nn] work: activations, losses, normalisation, dropout, embedding.

Elementwise activations with parameters run one C++ kernel forward and one backward
(``_C.activation_forward/backward``, csrc/cpu/activation.cpp); batch/layer/group/RMS norm run fused
kernels (csrc/cpu/norm.cpp); CTC runs its alpha/beta recursions in C++ (csrc/cpu/ctc.cpp). Losses
that are short elementwise formulas are composed from registered ops (their backward comes for free).

Backward of the activation and norm kernels is first-order only: differentiating a gradient again
(``create_graph=True``) through them raises instead of silently returning a wrong answer.
"""

import math
import numbers

from .. import _C, _ops
from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from .._ops import Function, _wrap, register
from .._tensor import Tensor
from ..autograd.grad_mode import _state, no_grad
from ._functional_core import _check_same_shape, _reduce

__all__ = [
    "alpha_dropout",
    "arctan",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "binary_step",
    "bipolar_relu",
    "celu",
    "celu_",
    "cosine_embedding_loss",
    "ctc_loss",
    "dropout",
    "dropout1d",
    "dropout2d",
    "elu",
    "elu_",
    "embedding",
    "gaussian_nll_loss",
    "gelu",
    "group_norm",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "hardtanh_",
    "huber_loss",
    "isrlu",
    "isru",
    "kl_div",
    "layer_norm",
    "leaky_relu",
    "leaky_relu_",
    "logsigmoid",
    "margin_ranking_loss",
    "mish",
    "poisson_nll_loss",
    "prelu",
    "relu6",
    "rms_norm",
    "rrelu",
    "rrelu_",
    "selu",
    "selu_",
    "silu",
    "smooth_l1_loss",
    "softplus",
    "softsign",
    "sqnl",
]

# activation codes: must match tocha::cpu::Act in csrc/cpu/activation.h
(A_LEAKY_RELU, A_ELU, A_SELU, A_CELU, A_SOFTPLUS, A_HARDTANH, A_HARDSIGMOID, A_HARDSWISH, A_LOGSIGMOID,
 A_SOFTSIGN, A_ISRU, A_ISRLU, A_SQNL, A_BINARY_STEP, A_BIPOLAR_RELU) = range(15)


def _no_double_backward(name):
    if _state.enabled:
        raise NotImplementedError(f"[{name}] double backward (create_graph=True) is not implemented")


# =====================================================================================================
# activations
# =====================================================================================================
class _Activation(Function):
    """y = f(x; p1, p2) with a fused C++ kernel each way (gradient always from the input x)."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, code, p1, p2):
        ctx.save_for_backward(x)
        ctx.code, ctx.p1, ctx.p2 = code, p1, p2
        return _wrap(_C.activation_forward(code, x._a, p1, p2))

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("activation")
        (x,) = ctx.saved_tensors
        return _wrap(_C.activation_backward(ctx.code, g._a, x._a, ctx.p1, ctx.p2)), None, None, None


def _act(input, code, p1=0.0, p2=0.0):
    if not isinstance(input, Tensor):
        raise TypeError(f"expected a Tensor, got {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"activation expected a floating-point tensor, got {input.dtype}")
    return _Activation.apply(input, code, float(p1), float(p2))


def _maybe_inplace(fn, input, inplace):
    """Run ``fn`` out of place, or with PyTorch in-place semantics (the input is overwritten)."""
    if not inplace:
        return fn(input)
    # the op saves its input for backward: give it a copy so that overwriting ``input`` is safe
    return _ops._inplace_unary(lambda t: fn(t.clone() if t.requires_grad else t))(input)


@register()
def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x.

    Args:
        input: float tensor of any shape.
        negative_slope: slope for x <= 0 (default 0.01).
        inplace: overwrite ``input``.
    Returns:
        Tensor of the same shape.
    """
    return _maybe_inplace(lambda t: _act(t, A_LEAKY_RELU, negative_slope), input, inplace)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


@register()
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomised leaky ReLU (Xu et al. 2015).

    In training each negative element gets its own slope a ~ U(lower, upper), drawn from tocha's
    seeded Philox stream (``tocha.manual_seed``); otherwise the fixed slope (lower + upper) / 2.
    The gradient is ``a`` where x <= 0 and 1 elsewhere.
    """
    if not training:
        return leaky_relu(input, (lower + upper) / 2.0, inplace)

    def fn(t):
        u = _ops.rand(*t.shape, dtype=t.dtype) * (upper - lower) + lower
        noise = _ops.where(t.detach() > 0, _ops.ones_like(u), u)
        return t * noise

    return _maybe_inplace(fn, input, inplace)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


class _PReLU(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _wrap(_C.prelu_forward(x._a, w._a))

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("prelu")
        x, w = ctx.saved_tensors
        gx, gw = _C.prelu_backward(g._a, x._a, w._a)
        return _wrap(gx), _wrap(gw)


@register()
def prelu(input, weight):
    """x if x > 0 else a_c * x with learnable slopes ``weight`` (1 shared, or one per channel = dim 1).

    Shape: input (N, C, *) or any shape when weight has one element; weight (C,) or (1,).
    """
    if weight.dtype is not input.dtype:
        weight = weight.to(input.dtype)
    return _PReLU.apply(input, weight.reshape(-1) if weight.ndim != 1 else weight)


@register()
def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _maybe_inplace(lambda t: _act(t, A_ELU, alpha), input, inplace)


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


@register()
def selu(input, inplace=False):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)) with the self-normalising constants of
    Klambauer et al. 2017 (alpha ≈ 1.6733, scale ≈ 1.0507)."""
    return _maybe_inplace(lambda t: _act(t, A_SELU), input, inplace)


def selu_(input):
    return selu(input, inplace=True)


@register()
def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise ValueError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _maybe_inplace(lambda t: _act(t, A_CELU, alpha), input, inplace)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


@register()
def gelu(input, approximate="none"):
    """x * Φ(x) (``approximate='none'``) or its tanh approximation (``'tanh'``)."""
    if approximate == "none":
        return _ops.gelu_(input)
    if approximate == "tanh":
        return _ops.gelu_tanh_(input)
    raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")


def silu(input, inplace=False):
    """x * sigmoid(x) (the registered ``tocha.silu`` kernel)."""
    return _maybe_inplace(_ops.silu, input, inplace)


def mish(input, inplace=False):
    """x * tanh(softplus(x)) (the registered ``tocha.mish`` kernel)."""
    return _maybe_inplace(_ops.mish, input, inplace)


@register()
def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (for stability)."""
    if beta == 0:
        raise ValueError("softplus: beta must not be zero")
    return _act(input, A_SOFTPLUS, beta, threshold)


@register()
def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val); gradient 1 strictly inside the interval, 0 outside."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _maybe_inplace(lambda t: _act(t, A_HARDTANH, min_val, max_val), input, inplace)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


@register()
def relu6(input, inplace=False):
    """min(max(0, x), 6) = hardtanh(x, 0, 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


@register()
def hardsigmoid(input, inplace=False):
    """0 if x <= -3, 1 if x >= 3, else x / 6 + 1/2."""
    return _maybe_inplace(lambda t: _act(t, A_HARDSIGMOID), input, inplace)


@register()
def hardswish(input, inplace=False):
    """x * hardsigmoid(x) (Howard et al. 2019, MobileNetV3)."""
    return _maybe_inplace(lambda t: _act(t, A_HARDSWISH), input, inplace)


@register()
def logsigmoid(input):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)) (no overflow)."""
    return _act(input, A_LOGSIGMOID)


@register()
def softsign(input):
    """x / (1 + |x|)."""
    return _act(input, A_SOFTSIGN)


# ---- activations of the course list without a PyTorch twin (NumPy-reference tests) ----
@register()
def isru(input, alpha=1.0):
    """Inverse square root unit (Carlile et al. 2017): x / sqrt(1 + alpha * x²).

    Derivative: (1 / sqrt(1 + alpha * x²))³. No PyTorch twin.
    """
    return _act(input, A_ISRU, alpha)


@register()
def isrlu(input, alpha=1.0):
    """Inverse square root linear unit (Carlile et al. 2017): x if x >= 0 else x / sqrt(1 + alpha x²).

    No PyTorch twin.
    """
    return _act(input, A_ISRLU, alpha)


@register()
def sqnl(input):
    """Square non-linearity (Wuraola & Patel 2018):

    1 for x > 2, x - x²/4 for 0 <= x <= 2, x + x²/4 for -2 <= x < 0, -1 for x < -2.
    Derivative 1 - |x|/2 inside [-2, 2], 0 outside. No PyTorch twin.
    """
    return _act(input, A_SQNL)


@register()
def binary_step(input):
    """Heaviside/binary step: 1 where x >= 0, else 0.

    Its gradient is **0 by definition** (the derivative of a step is 0 wherever it exists; at 0 it is
    undefined and we use 0 too), so nothing upstream of a binary step learns by backprop — the
    reason the course replaces it by sigmoid/ReLU. No PyTorch twin.
    """
    return _act(input, A_BINARY_STEP)


@register()
def bipolar_relu(input):
    """Bipolar ReLU (Eidnes & Nøkland 2018): along the last dimension, units at even positions give
    relu(x) and units at odd positions give -relu(-x) = min(x, 0), which pushes the mean activation
    towards zero. No PyTorch twin.
    """
    if input.ndim == 0:
        return _act(input, A_BIPOLAR_RELU, 1.0)
    return _act(input, A_BIPOLAR_RELU, float(max(input.shape[-1], 1)))


def arctan(input):
    """atan(x) as an activation (range (-π/2, π/2), derivative 1 / (1 + x²)); the ``tocha.atan`` kernel."""
    return _ops.atan(input)


# =====================================================================================================
# losses
# =====================================================================================================
def _check_reduction(reduction, allowed=("mean", "sum", "none")):
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")


@register()
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """BCE on logits, stable for any |x|: (1 - t) x - (1 + (pw - 1) t) · logsigmoid(x).

    Args:
        input: logits (*). target: same shape, values in [0, 1].
        weight: rescales each element (broadcast to input).
        pos_weight: weight of positive examples, broadcast along the last (class) dim.
    """
    _check_reduction(reduction)
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    if not target.is_floating_point():
        target = target.to(input.dtype)
    ls = logsigmoid(input)
    if pos_weight is not None:
        lw = (pos_weight - 1) * target + 1
        loss = (1 - target) * input - lw * ls
    else:
        loss = (1 - target) * input - ls
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@register()
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence with ``input`` = log q and ``target`` = p (or log p if ``log_target``).

    loss = p (log p - log q), with 0 log 0 = 0. ``reduction='batchmean'`` divides the sum by the
    batch size (the mathematically correct KL); 'mean' averages over all elements like PyTorch.
    """
    _check_reduction(reduction, ("mean", "sum", "none", "batchmean"))
    if log_target:
        loss = _ops.exp(target) * (target - input)
    else:
        pos = target > 0
        safe = _ops.where(pos, target, _ops.ones_like(target))
        loss = _ops.where(pos, target * _ops.log(safe), _ops.zeros_like(target)) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


@register()
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Poisson negative log-likelihood: exp(x) - t x (log_input) or x - t log(x + eps).

    ``full`` adds the Stirling term t log t - t + ½ log(2π t) where t > 1.
    """
    _check_reduction(reduction)
    if log_input:
        loss = _ops.exp(input) - target * input
    else:
        loss = input - target * _ops.log(input + eps)
    if full:
        big = target > 1
        safe = _ops.where(big, target, _ops.full_like(target, 2.0))
        st = safe * _ops.log(safe) - safe + 0.5 * _ops.log(2 * math.pi * safe)
        loss = loss + _ops.where(big, st, _ops.zeros_like(st))
    return _reduce(loss, reduction)


@register()
def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood ½ (log var + (x - t)² / var) (+ ½ log 2π when ``full``).

    ``var`` has input's shape, or input's shape without the last dim, or a last dim of 1
    (heteroscedastic / homoscedastic). It is clamped at ``eps`` for stability; the gradient passes
    through the clamp unchanged (as PyTorch). Negative variances raise ValueError.
    """
    _check_reduction(reduction)
    if isinstance(var, numbers.Number):
        var = _ops.full_like(input, float(var))
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1:
            pass
        else:
            raise ValueError(f"gaussian_nll_loss: var of shape {tuple(var.shape)} is incompatible with "
                             f"input of shape {tuple(input.shape)}")
    with no_grad():
        if var.numel() and float(var.min()) < 0:
            raise ValueError("var has negative entry/entries")
        shift = _ops.clamp(var.detach(), min=eps) - var.detach()
    v = var + shift
    d = input - target
    loss = 0.5 * (_ops.log(v) + d * d / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


@register()
def huber_loss(input, target, reduction="mean", delta=1.0):
    """½ d² where |d| < delta, else delta (|d| - ½ delta), d = input - target."""
    _check_reduction(reduction)
    _check_same_shape(input, target, "huber_loss")
    d = input - target
    ad = d.abs()
    loss = _ops.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
    return _reduce(loss, reduction)


@register()
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """½ d² / beta where |d| < beta, else |d| - ½ beta (= huber_loss / beta); beta = 0 gives L1."""
    _check_reduction(reduction)
    _check_same_shape(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError("smooth_l1_loss does not support negative values for beta.")
    d = input - target
    ad = d.abs()
    if beta == 0:
        return _reduce(ad, reduction)
    loss = _ops.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)
    return _reduce(loss, reduction)


def _check_pm1(target, name):
    with no_grad():
        if target.numel() and not bool(((target == 1) | (target == -1)).all()):
            raise ValueError(f"{name}: target values must be 1 or -1")


@register()
def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(x1, x2) for target 1, max(0, cos(x1, x2) - margin) for target -1.

    Shape: input1, input2 (N, D) or (D); target (N) or () with values ±1.
    """
    _check_reduction(reduction)
    if tuple(input1.shape) != tuple(input2.shape):
        raise ValueError(f"cosine_embedding_loss: input1 {tuple(input1.shape)} and input2 "
                         f"{tuple(input2.shape)} must have the same shape")
    if input1.ndim not in (1, 2) or target.ndim != input1.ndim - 1 or (
            input1.ndim == 2 and target.shape[0] != input1.shape[0]):
        raise ValueError(f"cosine_embedding_loss: expected inputs (N, D) with target (N) or (D) with a "
                         f"0-d target, got {tuple(input1.shape)} and target {tuple(target.shape)}")
    _check_pm1(target, "cosine_embedding_loss")
    eps = 1e-12
    prod = (input1 * input2).sum(-1)
    m1 = (input1 * input1).sum(-1) + eps
    m2 = (input2 * input2).sum(-1) + eps
    cos = prod / _ops.sqrt(m1 * m2)
    zeros = _ops.zeros_like(cos)
    pos = _ops.where(target == 1, 1 - cos, zeros)
    neg = _ops.where(target == -1, _ops.clamp(cos - margin, min=0.0), zeros)
    return _reduce(pos + neg, reduction)


@register()
def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -target (x1 - x2) + margin); target holds ±1 and all three shapes must match."""
    _check_reduction(reduction)
    if not (tuple(input1.shape) == tuple(input2.shape) == tuple(target.shape)):
        raise ValueError(f"margin_ranking_loss: input1 {tuple(input1.shape)}, input2 {tuple(input2.shape)} "
                         f"and target {tuple(target.shape)} must have the same shape")
    return _reduce(_ops.clamp(-target * (input1 - input2) + margin, min=0.0), reduction)


class _CTC(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, lp, targets, il, tl, blank, zero_infinity):
        nll, la = _C.ctc_loss_forward(lp._a, targets._a, il._a, tl._a, blank)
        ctx.save_for_backward(lp)
        ctx.args = (targets._a, il._a, tl._a, nll, la, blank, zero_infinity)
        return _wrap(nll)

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("ctc_loss")
        (lp,) = ctx.saved_tensors
        t, il, tl, nll, la, blank, zi = ctx.args
        return _wrap(_C.ctc_loss_backward(g._a, lp._a, t, il, tl, nll, la, blank, zi)), None, None, None, \
            None, None


def _as_lengths(x, n, name):
    if isinstance(x, Tensor):
        if x.is_floating_point():
            raise TypeError(f"ctc_loss: {name} must be integers")
        t = x.to(_ops.int64).reshape(-1)
    else:
        t = _ops.tensor(list(x) if not isinstance(x, numbers.Integral) else [x], dtype=_ops.int64)
    if t.numel() != n:
        raise ValueError(f"ctc_loss: {name} must have {n} entries (the batch size), got {t.numel()}")
    return t


@register()
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Connectionist Temporal Classification loss (forward-backward in C++, log space).

    Args:
        log_probs: (T, N, C) or unbatched (T, C) log-probabilities (e.g. ``log_softmax(x, 2)``).
        targets: (N, S) padded or 1-d concatenated class indices (never ``blank``).
        input_lengths, target_lengths: (N) lengths (tensors or sequences of ints).
        blank: index of the blank class. zero_infinity: impossible alignments give loss 0, grad 0.
        reduction: 'mean' (each loss divided by its target length, then averaged), 'sum', 'none'.
    Returns:
        The loss (scalar, or (N) with reduction='none').
    The gradient matches PyTorch's: it is the gradient seen by logits feeding a log_softmax.
    """
    _check_reduction(reduction)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        if targets.ndim == 1:
            targets = targets.unsqueeze(0)
    if log_probs.ndim != 3:
        raise ValueError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got {tuple(log_probs.shape)}")
    if targets.is_floating_point():
        raise TypeError("ctc_loss: targets must be integer class indices")
    n = log_probs.shape[1]
    il = _as_lengths(input_lengths, n, "input_lengths")
    tl = _as_lengths(target_lengths, n, "target_lengths")
    loss = _CTC.apply(log_probs, targets, il, tl, int(blank), bool(zero_infinity))
    if zero_infinity:
        with no_grad():
            finite = ~_ops.isinf(loss)
        loss = _ops.where(finite, loss, _ops.zeros_like(loss))
    if reduction == "mean":
        return (loss / _ops.clamp(tl.to(loss.dtype), min=1.0)).mean()
    if reduction == "sum":
        return loss.sum()
    return loss.reshape(()) if unbatched else loss


# =====================================================================================================
# dropout
# =====================================================================================================
def _check_p(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(shape, p, like):
    """Bernoulli(1 - p) mask from tocha's Philox stream, scaled by 1 / (1 - p) (inverted dropout), with
    ``like``'s dtype and device (the same seed gives the same mask on the CPU and on CUDA)."""
    m = _ops.empty(*shape, dtype=like.dtype, device=like.device if like._a.device_type else None)
    _K.bernoulli_(m._a, 1.0 - p)
    if p < 1.0:
        _K.binary_scalar_(_ops.B_MUL, m._a, 1.0 / (1.0 - p))
    return m


def _apply_mask(input, mask, inplace):
    if inplace:
        return input.mul_(mask)
    return input * mask


@register()
def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale survivors by 1 / (1 - p); identity when
    not training. The mask comes from tocha's seeded Philox stream (``tocha.manual_seed``)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    return _apply_mask(input, _keep_mask(input.shape, p, input), inplace)


def _feature_dropout(input, p, training, inplace, batched_ndim, name):
    _check_p(p)
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise ValueError(f"{name}: expected {batched_ndim - 1}-D or {batched_ndim}-D input, got "
                         f"{input.ndim}-D input of shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    nlead = 2 if input.ndim == batched_ndim else 1
    shape = tuple(input.shape[:nlead]) + (1,) * (input.ndim - nlead)
    return _apply_mask(input, _keep_mask(shape, p, input), inplace)


@register()
def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: input (N, C, L) or (C, L); each channel kept with probability 1 - p."""
    return _feature_dropout(input, p, training, inplace, 3, "dropout1d")


@register()
def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: input (N, C, H, W) or (C, H, W)."""
    return _feature_dropout(input, p, training, inplace, 4, "dropout2d")


@register()
def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks (Klambauer et al. 2017): dropped units take SELU's negative
    saturation value, then an affine map a·x + b restores zero mean and unit variance."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    alpha = 1.7580993408473766
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    keep = _ops.empty(*input.shape, dtype=input.dtype)
    _C.bernoulli_(keep._a, 1.0 - p)
    b = (keep - 1) * (alpha * a) + alpha * a * p
    out = input * (keep * a) + b
    return _ops._rebase(input, out) if inplace else out


# =====================================================================================================
# normalisation (fused kernels)
# =====================================================================================================
class _BatchNorm(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, w, b, rm, rv, training, momentum, eps):
        y, mean, inv = _C.batch_norm_forward(x._a, None if w is None else w._a, None if b is None else b._a,
                                             None if rm is None else rm._a, None if rv is None else rv._a,
                                             training, momentum, eps)
        ctx.save_for_backward(x, w)
        ctx.mean, ctx.inv, ctx.training, ctx.has_b = mean, inv, training, b is not None
        return _wrap(y)

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("batch_norm")
        x, w = ctx.saved_tensors
        gx, gw, gb = _C.batch_norm_backward(g._a, x._a, None if w is None else w._a, ctx.mean, ctx.inv,
                                            ctx.training)
        return (_wrap(gx), None if w is None else _wrap(gw), _wrap(gb) if ctx.has_b else None,
                None, None, None, None, None)


@register()
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Batch normalisation over (N, *spatial) per channel (dim 1), one fused kernel each way.

    Training uses the batch statistics (biased variance to normalise) and, when given, updates
    ``running_mean``/``running_var`` in place with ``momentum`` (unbiased variance); otherwise the
    running statistics normalise.

    Shape: input (N, C) or (N, C, *); running stats, weight, bias (C).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input with at least 2 dims (N, C, *), got {tuple(input.shape)}")
    if training:
        size = input.numel() // max(input.shape[1], 1)
        if size == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(input.shape)}")
    for t in (running_mean, running_var):
        if t is not None and t.requires_grad:
            raise ValueError("batch_norm: running statistics must not require grad")
    return _BatchNorm.apply(input, weight, bias, running_mean, running_var, bool(training),
                            float(momentum if momentum is not None else 0.0), float(eps))


class _LayerNorm(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, w, b, d, eps, rms):
        y, mean, rstd = _K.layer_norm_forward(x._a, None if w is None else w._a, None if b is None else b._a,
                                              d, eps, rms)
        ctx.save_for_backward(x, w)
        ctx.mean, ctx.rstd, ctx.d, ctx.rms, ctx.has_b = mean, rstd, d, rms, b is not None
        return _wrap(y)

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("layer_norm")
        x, w = ctx.saved_tensors
        gx, gw, gb = _K.layer_norm_backward(g._a, x._a, None if w is None else w._a, ctx.mean, ctx.rstd,
                                            ctx.d, ctx.rms)
        return (_wrap(gx), None if w is None else _wrap(gw), _wrap(gb) if ctx.has_b else None,
                None, None, None)


def _norm_shape(input, normalized_shape, name):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise ValueError(f"{name}: given normalized_shape={list(normalized_shape)}, expected input with "
                         f"shape [*, {', '.join(map(str, normalized_shape))}], but got input of size "
                         f"{list(input.shape)}")
    return normalized_shape, math.prod(normalized_shape)


def _flat_param(p, shape, name, what):
    if p is None:
        return None
    if tuple(p.shape) != tuple(shape):
        raise ValueError(f"{name}: {what} shape {tuple(p.shape)} must equal normalized_shape {tuple(shape)}")
    return p if p.ndim == 1 else p.reshape(-1)


@register()
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` dims: (x - mean) / sqrt(var + eps) * w + b."""
    shape, d = _norm_shape(input, normalized_shape, "layer_norm")
    return _LayerNorm.apply(input, _flat_param(weight, shape, "layer_norm", "weight"),
                            _flat_param(bias, shape, "layer_norm", "bias"), d, float(eps), False)


@register()
def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x²) + eps) * w over the trailing dims (Zhang & Sennrich 2019).

    ``eps=None`` uses the machine epsilon of the input's dtype, as PyTorch.
    """
    shape, d = _norm_shape(input, normalized_shape, "rms_norm")
    if eps is None:
        eps = 1.1920928955078125e-07 if input.dtype is _ops.float32 else 2.220446049250313e-16
    return _LayerNorm.apply(input, _flat_param(weight, shape, "rms_norm", "weight"), None, d, float(eps),
                            True)


@register()
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of ``num_groups`` channel groups per sample, then a per-channel affine map.

    Shape: input (N, C, *) with C divisible by num_groups; weight, bias (C).
    """
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C, *), got {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"Expected number of channels in input to be divisible by num_groups, but got "
                         f"input of shape {tuple(input.shape)} and num_groups={num_groups}")
    d = input.numel() // max(n * num_groups, 1)
    y = _LayerNorm.apply(input.reshape(n * num_groups, d) if input.numel() else input, None, None,
                         max(d, 1), float(eps), False).reshape(*input.shape)
    bshape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(*bshape)
    if bias is not None:
        y = y + bias.reshape(*bshape)
    return y


# =====================================================================================================
# embedding
# =====================================================================================================
class _Embedding(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, weight, idx, padding_idx, scale_grad_by_freq):
        flat = idx.reshape(-1)
        out = _C.index_select(weight._a, 0, flat._a)
        ctx.flat, ctx.wshape, ctx.pad, ctx.freq = flat, tuple(weight.shape), padding_idx, scale_grad_by_freq
        return _wrap(out).reshape(*idx.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("embedding")
        v, d = ctx.wshape
        g2 = g.reshape(-1, d)
        flat = ctx.flat
        if ctx.pad is not None or ctx.freq:
            scale = _ops.ones(flat.shape[0], dtype=g.dtype)
            if ctx.freq:
                counts = _ops.bincount(flat, minlength=v).to(g.dtype)
                scale = scale / counts[flat]
            if ctx.pad is not None:
                scale = scale * (flat != ctx.pad).to(g.dtype)
            g2 = g2 * scale.unsqueeze(1)
        gw = _ops.zeros(v, d, dtype=g.dtype)
        _C.index_put_(gw._a, 0, flat._a, g2.contiguous()._a, True)   # += with repeats
        return gw, None, None, None


@register()
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` picked by integer ``input``: (*) -> (*, D).

    ``padding_idx`` rows get no gradient; ``max_norm`` renormalises (in place, without gradient) each
    referenced row whose ``norm_type``-norm exceeds it, as PyTorch.
    """
    if input.is_floating_point() or input.dtype is _ops.bool_:
        raise TypeError(f"embedding: expected an integer index tensor, got {input.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported")
    v = weight.shape[0]
    if padding_idx is not None:
        if not -v <= padding_idx < v:
            raise ValueError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx % v
    if input.numel():
        lo, hi = int(input.min()), int(input.max())
        if lo < 0 or hi >= v:
            raise IndexError(f"embedding: index {lo if lo < 0 else hi} is out of range for {v} embeddings")
    if input.dtype is not _ops.int64:
        input = input.to(_ops.int64)
    if max_norm is not None:
        with no_grad():
            rows = _ops.unique(input.reshape(-1))
            sel = weight[rows]
            norms = _ops.norm(sel, norm_type, dim=1, keepdim=True)
            scale = _ops.where(norms > max_norm, max_norm / (norms + 1e-7), _ops.ones_like(norms))
            weight[rows] = sel * scale
    return _Embedding.apply(weight, input, padding_idx, bool(scale_grad_by_freq))
