"""``tocha.nn.init``: in-place parameter initialisers with PyTorch names, signatures and defaults.

All functions modify ``tensor`` in place without recording autograd history and return it. Random
draws come from tocha's global Philox stream (``tocha.manual_seed``) or from ``generator``.

Which initialiser for which activation (slides 001/002, Glorot & Bengio 2010, He et al. 2015):

* tanh / linear: Xavier (Glorot) — ``xavier_uniform_(w)``, bound ``√(6/(fan_in+fan_out))``, keeps the
  activation and gradient variances equal in both directions.
* ReLU family: Kaiming (He) — ``kaiming_normal_(w, nonlinearity='relu')``, std ``√2/√fan_in``.
* logistic sigmoid: the course slides (002) recommend the Xavier bound times 4,
  ``ε = 4·√(6/(n_in+n_out))``, because σ'(0) = 1/4 while tanh'(0) = 1: a unit with 4× larger
  weights has the same slope at the origin as tanh. tocha exposes that factor as
  ``calculate_gain('logistic') == 4`` (a tocha extension; PyTorch has no 'logistic' entry), so
  ``xavier_uniform_(w, gain=calculate_gain('logistic'))`` is the slides' rule. PyTorch's
  ``calculate_gain('sigmoid')`` is 1 and stays 1 here.
"""

import math
import warnings

from .. import _ops
from .._dtype import float64
from ..autograd import no_grad

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def calculate_gain(nonlinearity, param=None):
    """Recommended gain (scale of the weight std) for a non-linearity, PyTorch's table.

    ======================  =====================================
    nonlinearity            gain
    ======================  =====================================
    linear / conv*d / ...   1
    sigmoid                 1
    tanh                    5/3
    relu                    √2
    leaky_relu              √(2 / (1 + negative_slope²))
    selu                    3/4
    logistic (tocha)        4   (Glorot & Bengio's sigmoid rule, slides 002)
    ======================  =====================================

    Args:
        nonlinearity: name of the non-linear function (``nn.functional`` name).
        param: optional parameter (the negative slope of leaky_relu, default 0.01).

    Returns:
        float gain.
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "logistic":
        return 4.0
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) = (size(1)·receptive field, size(0)·receptive field), as PyTorch."""
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


@no_grad()
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b).

    Args:
        tensor: n-d tensor to fill.
        a, b: bounds (default 0, 1).
        generator: optional ``tocha.Generator``.
    """
    return tensor.uniform_(a, b, generator=generator)


@no_grad()
def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std²)."""
    return tensor.normal_(mean, std, generator=generator)


@no_grad()
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std²) truncated to [a, b] (absolute cut-offs), by rejection as in PyTorch.

    Out-of-range draws are redrawn until none is left (when the interval holds > 30 % of the mass);
    otherwise proposals are uniform on [a, b], accepted with the Gaussian density ratio.
    """
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    if tensor.numel() == 0:
        return tensor
    mass = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std)
    if mass > 0.3:
        result = tensor.normal_(mean, std, generator=generator)
        while True:
            mask = (result < a) | (result > b)
            if not bool(mask.any()):
                break
            result.copy_(_ops.where(mask, _ops.empty_like(result).normal_(mean, std, generator=generator), result))
        return tensor
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2

    def log_ratio(x):
        return ((x - mean) / std) ** 2 * -0.5 - log_peak

    tensor.uniform_(a, b, generator=generator)
    pending = _ops.empty_like(tensor).uniform_(generator=generator).log() > log_ratio(tensor)
    while bool(pending.any()):
        cand = _ops.empty_like(tensor).uniform_(a, b, generator=generator)
        tensor.copy_(_ops.where(pending, cand, tensor))
        redraw = _ops.empty_like(tensor).uniform_(generator=generator).log() > log_ratio(cand)
        pending = pending & redraw
    return tensor


@no_grad()
def constant_(tensor, val):
    """Fill with the constant ``val``."""
    return tensor.fill_(val)


@no_grad()
def ones_(tensor):
    """Fill with ones."""
    return tensor.fill_(1.0)


@no_grad()
def zeros_(tensor):
    """Fill with zeros."""
    return tensor.zero_()


@no_grad()
def eye_(tensor):
    """Fill a 2-d tensor with the identity (ones on the main diagonal; rectangular allowed).

    Preserves the identity of the inputs in Linear layers.
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    tensor.copy_(_ops.eye(*tensor.shape, dtype=tensor.dtype))
    return tensor


@no_grad()
def dirac_(tensor, groups=1):
    """Fill a 3/4/5-d convolution weight with the Dirac delta (identity convolution), per group.

    Shape:
        tensor (out_channels, in_channels/groups, *kernel): out_channels divisible by ``groups``.
    """
    dims = tensor.ndimension()
    if dims not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    centre = tuple(s // 2 for s in sizes[2:])
    tensor.zero_()
    for g in range(groups):
        for d in range(min_dim):
            tensor[(g * out_per_group + d, d) + centre] = 1
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(−ε, ε), ε = gain·√(6 / (fan_in + fan_out)).

    Use ``gain=calculate_gain('logistic')`` (= 4) for the slides' sigmoid rule.
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, σ²), σ = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(−b, b), b = gain·√(3 / fan).

    Args:
        tensor: n-d tensor (n ≥ 2).
        a: negative slope of the following leaky_relu (only used with 'leaky_relu').
        mode: 'fan_in' (preserve forward variance, default) or 'fan_out' (backward).
        nonlinearity: name for :func:`calculate_gain` (default 'leaky_relu').
        generator: optional ``tocha.Generator``.
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, σ²), σ = gain / √fan. Arguments as :func:`kaiming_uniform_`."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


@no_grad()
def orthogonal_(tensor, gain=1, generator=None):
    """(Semi-)orthogonal matrix (Saxe et al., 2013): QR of a Gaussian matrix with the signs fixed
    by diag(R), so the result is Haar-distributed. Trailing dims are flattened; then scaled by ``gain``.

    The QR runs in NumPy (LAPACK); the Gaussian draws come from tocha's generator.
    """
    import numpy as np

    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _ops.empty(rows, cols, dtype=float64).normal_(0, 1, generator=generator).numpy()
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    tensor.copy_(_ops.tensor(np.ascontiguousarray(q) * gain, dtype=tensor.dtype).reshape(*tensor.shape))
    return tensor


@no_grad()
def sparse_(tensor, sparsity, std=0.01, generator=None):
    """2-d sparse init (Martens, 2010): N(0, std²) with a fraction ``sparsity`` of each column zeroed."""
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    tensor.normal_(0, std, generator=generator)
    for col in range(cols):
        zero_rows = _ops.randperm(rows, generator=generator)[:num_zeros]
        tensor[zero_rows, col] = 0
    return tensor


# deprecated PyTorch aliases (non-underscore names)
def _deprecated(fn):
    def wrapper(*args, **kwargs):
        warnings.warn(f"`nn.init.{fn.__name__[:-1]}` is now deprecated in favor of `nn.init.{fn.__name__}`.",
                      FutureWarning, stacklevel=2)
        return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__[:-1]
    return wrapper


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
