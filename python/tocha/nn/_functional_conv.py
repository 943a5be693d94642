"""``nn.functional`` additions of the [conv] work: convolution, pooling, padding, unfold/fold.

Every op here is registered in ``tocha._ops`` and backed by the C++ kernels of ``csrc/cpu/conv.cpp`` and
``csrc/cpu/pool.cpp``. 1-d ops run the 2-d kernels on a (N, C, 1, L) view; unbatched inputs (no N dim)
are accepted like PyTorch. Backward rules call dedicated backward kernels (they are not themselves
differentiable: double backward through conv/pool is not supported).
"""

import numbers

from .. import _C
from .._ops import Function, _wrap, register
from .._tensor import Tensor

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "fold",
    "max_pool1d",
    "max_pool2d",
    "pad",
    "unfold",
]


# ------------------------------------------------------------------------------------------- helpers
def _tuple(v, n, name, op):
    """int or sequence of n ints -> tuple of n Python ints (TypeError/ValueError otherwise)."""
    if type(v) is int:  # the common cases first: the numbers.Integral ABC check costs ~0.3 us
        return (v,) * n
    if type(v) is tuple and len(v) == n and all(type(e) is int for e in v):
        return v
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return (int(v),) * n
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) == n and all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in v):
            return tuple(int(e) for e in v)
        raise ValueError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {tuple(v)}")
    raise TypeError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {type(v).__name__}")


def _check_tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] {name} must be a Tensor, got {type(x).__name__}")


def _spatial_in(x, nd, op):
    """Check ndim (batched nd+2 or unbatched nd+1); return (batched 4-d array, unbatched flag)."""
    a = x._a
    if a.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"[{op}] expected a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) input, "
                         f"got shape {tuple(a.shape)}")
    unbatched = a.ndim == nd + 1
    shape = tuple(a.shape)
    if unbatched:
        shape = (1,) + shape
    if nd == 1:
        shape = shape[:2] + (1,) + shape[2:]
    return a.reshape(list(shape)), unbatched


def _spatial_out(arr, nd, unbatched):
    """Inverse of _spatial_in for a 4-d result array."""
    shape = tuple(arr.shape)
    if nd == 1:
        shape = shape[:2] + shape[3:]
    if unbatched:
        shape = shape[1:]
    return arr.reshape(list(shape))


def _as4(arr, shape4):
    return arr.reshape(list(shape4))


# ---------------------------------------------------------------------------------------- convolution
class _ConvNd(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, w, b, params, nd):
        op = f"conv{nd}d"
        x4, unbatched = _spatial_in(x, nd, op)
        wa = w._a
        if wa.ndim != nd + 2:
            raise ValueError(f"[{op}] expected a {nd + 2}-d weight, got shape {tuple(wa.shape)}")
        w4 = wa.reshape([wa.shape[0], wa.shape[1], 1, wa.shape[2]]) if nd == 1 else wa
        if x4.shape[1] != w4.shape[1] * params[6]:
            raise ValueError(f"[{op}] input of shape {tuple(x._a.shape)} has {x4.shape[1]} channels, but weight "
                             f"of shape {tuple(wa.shape)} with groups={params[6]} expects "
                             f"{w4.shape[1] * params[6]} channels")
        y = _C.conv2d_forward(x4, w4, None if b is None else b._a, params)
        ctx.save_for_backward(x, w)
        ctx.meta = (x4, w4, params, nd, unbatched, tuple(x._a.shape), tuple(wa.shape))
        return _wrap(_spatial_out(y, nd, unbatched))

    @staticmethod
    def backward(ctx, g):
        x4, w4, params, nd, _, xshape, wshape = ctx.meta
        y4, _ = _spatial_in(g, nd, "conv_backward")
        y4 = y4.contiguous()  # once here, not in each of the three kernels (g is often an expanded view)
        need = ctx.needs_input_grad
        dx = dw = db = None
        if need[0]:
            dx = _wrap(_C.conv2d_backward_input(y4, w4, x4.shape[2], x4.shape[3], params).reshape(list(xshape)))
        if need[1]:
            dw = _wrap(_C.conv2d_backward_weight(x4, y4, w4.shape[2], w4.shape[3], params).reshape(list(wshape)))
        if len(need) > 2 and need[2]:
            db = _wrap(_C.conv2d_backward_bias(y4))
        return dx, dw, db, None, None


def _same_padding(weight, dilation, nd):
    """('same' padding) -> symmetric padding per dim and extra right-side padding (PyTorch's rule)."""
    ks = tuple(weight.shape[2:])
    sym, extra = [], []
    for k, d in zip(ks, dilation):
        total = d * (k - 1)
        sym.append(total // 2)
        extra.append(total - 2 * (total // 2))
    return tuple(sym), tuple(extra)


def _conv(input, weight, bias, stride, padding, dilation, groups, nd):
    op = f"conv{nd}d"
    _check_tensor(input, op)
    _check_tensor(weight, op, "weight")
    if bias is not None:
        _check_tensor(bias, op, "bias")
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"[{op}] groups must be a positive integer, got {groups}")
    if weight.ndim != nd + 2:
        raise ValueError(f"[{op}] expected a {nd + 2}-d weight, got shape {tuple(weight.shape)}")
    extra = (0,) * nd
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
            padding, extra = _same_padding(weight, dilation, nd)
        else:
            raise ValueError(f"[{op}] invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        padding = _tuple(padding, nd, "padding", op)
    if any(extra):
        # odd total padding: PyTorch pads the extra element on the right/bottom
        pads = []
        for e in reversed(extra):
            pads += [0, e]
        input = pad(input, pads)
    if nd == 1:
        params = (1, stride[0], 0, padding[0], 1, dilation[0], int(groups))
    else:
        params = (stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], int(groups))
    return _ConvNd.apply(input, weight, bias, params, nd)


@register("conv1d")
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation over an input of several channels (as ``torch.nn.functional.conv1d``).

    Args:
        input: (N, C_in, L) or unbatched (C_in, L).
        weight: (C_out, C_in / groups, k).
        bias: optional (C_out,).
        stride, padding, dilation: int or 1-tuple; padding may also be 'valid' or 'same'.
        groups: split input and output channels into this many groups.

    Returns:
        (N, C_out, L_out) with L_out = (L + 2*padding - dilation*(k-1) - 1) // stride + 1.

    Example (the course's moving average): conv1d over [100,120,115,200,135,130,140] with the filter
    [1/4]*4 gives [133.75, 142.5, 145, 151.25].
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


@register("conv2d")
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation (as ``torch.nn.functional.conv2d``; no kernel flip, like PyTorch).

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W).
        weight: (C_out, C_in / groups, kH, kW).
        bias: optional (C_out,).
        stride, padding, dilation: int or 2-tuple; padding may also be 'valid' or 'same'.
        groups: channel groups (groups == C_in == C_out is a depthwise convolution).

    Returns:
        (N, C_out, H_out, W_out) with H_out = (H + 2*padding - dilation*(kH-1) - 1) // stride + 1; with
        dilation 1 this is the course's r = (w - f + 2b)/p + 1.

    Raises:
        ValueError: wrong ndim, channel/groups mismatch, kernel larger than the padded input,
            stride/dilation <= 0 or padding < 0.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


class _ConvTransposeNd(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, w, params, out_hw, nd):
        op = f"conv_transpose{nd}d"
        x4, unbatched = _spatial_in(x, nd, op)
        wa = w._a
        w4 = wa.reshape([wa.shape[0], wa.shape[1], 1, wa.shape[2]]) if nd == 1 else wa
        if x4.shape[1] != w4.shape[0]:
            raise ValueError(f"[{op}] input of shape {tuple(x._a.shape)} has {x4.shape[1]} channels, but weight "
                             f"of shape {tuple(wa.shape)} expects {w4.shape[0]}")
        y = _C.conv2d_backward_input(x4, w4, out_hw[0], out_hw[1], params)
        ctx.save_for_backward(x, w)
        ctx.meta = (x4, w4, params, nd, unbatched, tuple(x._a.shape), tuple(wa.shape))
        return _wrap(_spatial_out(y, nd, unbatched))

    @staticmethod
    def backward(ctx, g):
        x4, w4, params, nd, _, xshape, wshape = ctx.meta
        g4, _ = _spatial_in(g, nd, "conv_transpose_backward")
        g4 = g4.contiguous()
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = _wrap(_C.conv2d_forward(g4, w4, None, params).reshape(list(xshape)))
        if ctx.needs_input_grad[1]:
            dw = _wrap(_C.conv2d_backward_weight(g4, x4, w4.shape[2], w4.shape[3], params).reshape(list(wshape)))
        return dx, dw, None, None, None


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd):
    op = f"conv_transpose{nd}d"
    _check_tensor(input, op)
    _check_tensor(weight, op, "weight")
    stride = _tuple(stride, nd, "stride", op)
    padding = _tuple(padding, nd, "padding", op)
    output_padding = _tuple(output_padding, nd, "output_padding", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"[{op}] groups must be a positive integer, got {groups}")
    if weight.ndim != nd + 2:
        raise ValueError(f"[{op}] expected a {nd + 2}-d weight (C_in, C_out/groups, k...), got shape "
                         f"{tuple(weight.shape)}")
    if any(s <= 0 for s in stride) or any(d <= 0 for d in dilation):
        raise ValueError(f"[{op}] stride and dilation must be positive, got stride={stride}, dilation={dilation}")
    if any(p < 0 for p in padding) or any(p < 0 for p in output_padding):
        raise ValueError(f"[{op}] padding and output_padding must be non-negative")
    if any(o >= s for o, s in zip(output_padding, stride)):
        raise ValueError(f"[{op}] output_padding {output_padding} must be smaller than stride {stride}")
    if weight.shape[0] % groups != 0:
        raise ValueError(f"[{op}] weight {tuple(weight.shape)}: in_channels must be divisible by groups={groups}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"[{op}] expected a {nd + 1}-d or {nd + 2}-d input, got shape {tuple(input.shape)}")
    insz = tuple(input.shape[-nd:])
    ks = tuple(weight.shape[2:])
    out = tuple((i - 1) * s - 2 * p + d * (k - 1) + o + 1
                for i, s, p, d, k, o in zip(insz, stride, padding, dilation, ks, output_padding))
    if any(o <= 0 for o in out):
        raise ValueError(f"[{op}] computed output size {out} is not positive for input {tuple(input.shape)}")
    if nd == 1:
        params = (1, stride[0], 0, padding[0], 1, dilation[0], int(groups))
        out_hw = (1, out[0])
    else:
        params = (stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], int(groups))
        out_hw = out
    y = _ConvTransposeNd.apply(input, weight, params, out_hw, nd)
    if bias is not None:
        _check_tensor(bias, op, "bias")
        y = y + bias.reshape((-1,) + (1,) * nd)
    return y


@register("conv_transpose1d")
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution (the gradient of conv1d w.r.t. its input), as in PyTorch.

    Args:
        input: (N, C_in, L) or (C_in, L). weight: (C_in, C_out / groups, k). bias: optional (C_out,).

    Returns:
        (N, C_out, L_out), L_out = (L-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1)


@register("conv_transpose2d")
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution ("deconvolution"), as ``torch.nn.functional.conv_transpose2d``.

    Args:
        input: (N, C_in, H, W) or (C_in, H, W). weight: (C_in, C_out / groups, kH, kW). bias: optional.
        output_padding: extra size added to one side of the output (must be < stride).

    Returns:
        (N, C_out, H_out, W_out), H_out = (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2)


# --------------------------------------------------------------------------------------------- pooling
def _pool_params(kernel_size, stride, padding, dilation, ceil_mode, nd, op):
    k = _tuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        _tuple(stride, nd, "stride", op)
    p = _tuple(padding, nd, "padding", op)
    d = _tuple(dilation, nd, "dilation", op)
    if nd == 1:
        return (1, k[0], 1, s[0], 0, p[0], 1, d[0], int(bool(ceil_mode)))
    return (k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], int(bool(ceil_mode)))


class _MaxPool(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, params, nd, op, adaptive_size=None):
        x4, unbatched = _spatial_in(x, nd, op)
        if adaptive_size is None:
            y, idx = _C.max_pool2d_forward(x4, params)
        else:
            y, idx = _C.adaptive_max_pool2d_forward(x4, adaptive_size[0], adaptive_size[1])
        ctx.meta = (idx, x4.shape[2], x4.shape[3], nd, unbatched, tuple(x._a.shape))
        return _wrap(_spatial_out(y, nd, unbatched)), _wrap(_spatial_out(idx, nd, unbatched))

    @staticmethod
    def backward(ctx, g, _gidx=None):
        idx, H, W, nd, _, xshape = ctx.meta
        g4, _ = _spatial_in(g, nd, "max_pool_backward")
        dx = _C.max_pool2d_backward(g4, idx, H, W)
        return _wrap(dx.reshape(list(xshape))), None, None, None, None


@register("max_pool1d")
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-d max pooling over (N, C, L) or (C, L) (as ``torch.nn.functional.max_pool1d``).

    Returns:
        values (N, C, L_out), and int64 indices into L when ``return_indices``.
    """
    _check_tensor(input, "max_pool1d")
    y, idx = _MaxPool.apply(input, _pool_params(kernel_size, stride, padding, dilation, ceil_mode, 1,
                                                "max_pool1d"), 1, "max_pool1d", None)
    return (y, idx) if return_indices else y


@register("max_pool2d")
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling (as ``torch.nn.functional.max_pool2d``).

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size, stride (default: kernel_size), padding (<= kernel_size/2, implicit -inf), dilation.
        ceil_mode: use ceil instead of floor for the output size (windows never start in the padding).
        return_indices: also return int64 indices (flat ih*W + iw within each plane), like PyTorch.

    Returns:
        values (N, C, H_out, W_out) [, indices].

    Example (course slide): the 4x4 input [[1,3,6,4],[2,2,0,4],[5,0,1,4],[4,4,1,3]] with a 2x2 window and
    stride 1 gives [[3,6,6],[5,2,4],[5,4,4]].
    """
    _check_tensor(input, "max_pool2d")
    y, idx = _MaxPool.apply(input, _pool_params(kernel_size, stride, padding, dilation, ceil_mode, 2,
                                                "max_pool2d"), 2, "max_pool2d", None)
    return (y, idx) if return_indices else y


class _AvgPool(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, params, cip, div, nd, op):
        x4, unbatched = _spatial_in(x, nd, op)
        y = _C.avg_pool2d_forward(x4, params, cip, div)
        ctx.meta = (params, cip, div, x4.shape[2], x4.shape[3], nd, unbatched, tuple(x._a.shape))
        return _wrap(_spatial_out(y, nd, unbatched))

    @staticmethod
    def backward(ctx, g):
        params, cip, div, H, W, nd, _, xshape = ctx.meta
        g4, _ = _spatial_in(g, nd, "avg_pool_backward")
        dx = _C.avg_pool2d_backward(g4, H, W, params, cip, div)
        return _wrap(dx.reshape(list(xshape))), None, None, None, None, None


def _divisor(divisor_override, op):
    if divisor_override is None:
        return 0
    if not isinstance(divisor_override, numbers.Integral) or divisor_override <= 0:
        raise ValueError(f"[{op}] divisor_override must be a positive int, got {divisor_override!r}")
    return int(divisor_override)


@register("avg_pool1d")
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-d average pooling over (N, C, L) or (C, L) (as ``torch.nn.functional.avg_pool1d``)."""
    _check_tensor(input, "avg_pool1d")
    p = _pool_params(kernel_size, stride, padding, 1, ceil_mode, 1, "avg_pool1d")
    return _AvgPool.apply(input, p, bool(count_include_pad), 0, 1, "avg_pool1d")


@register("avg_pool2d")
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-d average pooling (as ``torch.nn.functional.avg_pool2d``).

    Args:
        count_include_pad: count the zero padding in the divisor (default True).
        divisor_override: if given, divide every window sum by this value instead.

    Example (course slide): the slide's 4x4 input with a 2x2 window and stride 1 gives
    [[2, 2.75, 3.5], [2.25, 0.75, 2.25], [3.25, 1.5, 2.25]]. The slide prints 2 at row 3, column 2:
    an erratum, that window is (0 + 1 + 4 + 1) / 4 = 1.5.
    """
    _check_tensor(input, "avg_pool2d")
    p = _pool_params(kernel_size, stride, padding, 1, ceil_mode, 2, "avg_pool2d")
    return _AvgPool.apply(input, p, bool(count_include_pad), _divisor(divisor_override, "avg_pool2d"), 2,
                          "avg_pool2d")


class _AdaptiveAvgPool(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, size, nd, op):
        x4, unbatched = _spatial_in(x, nd, op)
        y = _C.adaptive_avg_pool2d_forward(x4, size[0], size[1])
        ctx.meta = (x4.shape[2], x4.shape[3], nd, unbatched, tuple(x._a.shape))
        return _wrap(_spatial_out(y, nd, unbatched))

    @staticmethod
    def backward(ctx, g):
        H, W, nd, _, xshape = ctx.meta
        g4, _ = _spatial_in(g, nd, "adaptive_avg_pool_backward")
        return _wrap(_C.adaptive_avg_pool2d_backward(g4, H, W).reshape(list(xshape))), None, None, None


def _adaptive_size(output_size, input, nd, op):
    if type(output_size) is int and output_size >= 0:  # the common case, without the checks below
        return (1, output_size) if nd == 1 else (output_size,) * nd
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise ValueError(f"[{op}] output_size must have {nd} elements, got {tuple(output_size)}")
        size = tuple(input.shape[-nd + i] if s is None else s for i, s in enumerate(output_size))
    else:
        size = (output_size,) * nd
    size = _tuple(tuple(size), nd, "output_size", op)
    if any(s < 0 for s in size):
        raise ValueError(f"[{op}] output_size must be non-negative, got {size}")
    return (1, size[0]) if nd == 1 else size


@register("adaptive_avg_pool1d")
def adaptive_avg_pool1d(input, output_size):
    """1-d adaptive average pooling: (N, C, L) -> (N, C, output_size); windows [floor(i*L/O), ceil((i+1)*L/O))."""
    _check_tensor(input, "adaptive_avg_pool1d")
    size = _adaptive_size(output_size, input, 1, "adaptive_avg_pool1d")
    if size == (1, 1) and _global_pool_ok(input, 1):
        return input.mean(-1, keepdim=True)
    return _AdaptiveAvgPool.apply(input, size, 1, "adaptive_avg_pool1d")


@register("adaptive_avg_pool2d")
def adaptive_avg_pool2d(input, output_size):
    """2-d adaptive average pooling: (N, C, H, W) -> (N, C, *output_size) (None keeps an input size)."""
    _check_tensor(input, "adaptive_avg_pool2d")
    size = _adaptive_size(output_size, input, 2, "adaptive_avg_pool2d")
    if size == (1, 1) and _global_pool_ok(input, 2):
        # global average pooling is a plain mean over H, W: the vectorised reduction is much faster
        return input.mean((-2, -1), keepdim=True)
    return _AdaptiveAvgPool.apply(input, size, 2, "adaptive_avg_pool2d")


def _global_pool_ok(x, nd):
    a = x._a
    shp = a.shape
    return a.dtype >= 4 and len(shp) in (nd + 1, nd + 2) and min(shp[-nd:]) > 0  # floating (codes >= 4)


@register("adaptive_max_pool1d")
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """1-d adaptive max pooling: (N, C, L) -> (N, C, output_size) [, int64 indices]."""
    _check_tensor(input, "adaptive_max_pool1d")
    size = _adaptive_size(output_size, input, 1, "adaptive_max_pool1d")
    y, idx = _MaxPool.apply(input, None, 1, "adaptive_max_pool1d", size)
    return (y, idx) if return_indices else y


@register("adaptive_max_pool2d")
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """2-d adaptive max pooling: (N, C, H, W) -> (N, C, *output_size) [, int64 indices]."""
    _check_tensor(input, "adaptive_max_pool2d")
    size = _adaptive_size(output_size, input, 2, "adaptive_max_pool2d")
    y, idx = _MaxPool.apply(input, None, 2, "adaptive_max_pool2d", size)
    return (y, idx) if return_indices else y


# --------------------------------------------------------------------------------- padding, unfold/fold
_PAD_MODES = {"constant": 0, "reflect": 1, "replicate": 2, "circular": 3}


class _Pad(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, tblr, mode, value):
        a = x._a
        shape = tuple(a.shape)
        if len(shape) < 1:
            raise ValueError("[pad] expected an input with at least 1 dim")
        is2d = tblr[4] == 2
        # 1-d padding runs the 2-d kernel on a (P, 1, W) view
        a3 = a if is2d else a.reshape([-1, 1, shape[-1]])
        y = _C.pad2d_forward(a3, tblr[0], tblr[1], tblr[2], tblr[3], mode, float(value))
        out_shape = shape[:-2] + tuple(y.shape[-2:]) if is2d else shape[:-1] + (y.shape[-1],)
        ctx.meta = (tblr, mode, shape, is2d)
        return _wrap(y.reshape(list(out_shape)))

    @staticmethod
    def backward(ctx, g):
        tblr, mode, shape, is2d = ctx.meta
        ga = g._a
        g3 = ga if is2d else ga.reshape([-1, 1, ga.shape[-1]])
        dx = _C.pad2d_backward(g3, tblr[0], tblr[1], tblr[2], tblr[3], mode)
        return _wrap(dx.reshape(list(shape))), None, None, None


@register("pad")
def pad(input, pad, mode="constant", value=None):
    """Pad the last 1 or 2 dims of ``input`` (as ``torch.nn.functional.pad``).

    Args:
        input: tensor; reflect/replicate/circular need 2-3 dims for 1-d padding, 3-4 dims for 2-d.
        pad: (left, right) or (left, right, top, bottom). Constant pads may be negative (crop).
        mode: 'constant' | 'reflect' | 'replicate' | 'circular'.
        value: fill value for 'constant' (default 0).

    Returns:
        the padded tensor.
    """
    _check_tensor(input, "pad")
    if mode not in _PAD_MODES:
        raise ValueError(f"[pad] unsupported padding mode {mode!r}; expected one of {sorted(_PAD_MODES)}")
    pad = tuple(pad)
    if len(pad) % 2 != 0 or not all(isinstance(p, numbers.Integral) for p in pad):
        raise ValueError(f"[pad] padding length must be divisible by 2 and made of ints, got {pad}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"[pad] padding {pad} covers {len(pad) // 2} dims but input has shape {tuple(input.shape)}")
    if len(pad) not in (2, 4):
        raise NotImplementedError(f"[pad] only the last 1 or 2 dims can be padded, got pad={pad}")
    if mode != "constant" and value not in (None, 0):
        raise ValueError(f"[pad] padding mode {mode!r} doesn't take in value argument")
    if mode != "constant":
        nd = len(pad) // 2
        if input.ndim not in (nd + 1, nd + 2):
            raise ValueError(f"[pad] {mode} padding of {nd} dim(s) expects a {nd + 1}-d or {nd + 2}-d input, "
                             f"got shape {tuple(input.shape)}")
    if len(pad) == 2:
        tblr = (0, 0, int(pad[0]), int(pad[1]), 1)
    else:
        tblr = (int(pad[2]), int(pad[3]), int(pad[0]), int(pad[1]), 2)
    return _Pad.apply(input, tblr, _PAD_MODES[mode], 0.0 if value is None else value)


class _Unfold(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, k, params):
        a = x._a
        if a.ndim not in (3, 4):
            raise ValueError(f"[unfold] expected a 3-d (unbatched) or 4-d (batched) input, got shape "
                             f"{tuple(a.shape)}")
        unbatched = a.ndim == 3
        a4 = a.reshape([1] + list(a.shape)) if unbatched else a
        y = _C.unfold_forward(a4, k[0], k[1], params)
        ctx.meta = (k, params, a4.shape[2], a4.shape[3], tuple(a.shape), unbatched)
        return _wrap(y.reshape(list(y.shape[1:])) if unbatched else y)

    @staticmethod
    def backward(ctx, g):
        k, params, H, W, shape, unbatched = ctx.meta
        ga = g._a
        g3 = ga.reshape([1] + list(ga.shape)) if unbatched else ga
        dx = _C.fold_forward(g3, H, W, k[0], k[1], params)
        return _wrap(dx.reshape(list(shape))), None, None


class _Fold(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, out_hw, k, params):
        a = x._a
        if a.ndim not in (2, 3):
            raise ValueError(f"[fold] expected a 2-d (unbatched) or 3-d (batched) input, got shape {tuple(a.shape)}")
        unbatched = a.ndim == 2
        a3 = a.reshape([1] + list(a.shape)) if unbatched else a
        y = _C.fold_forward(a3, out_hw[0], out_hw[1], k[0], k[1], params)
        ctx.meta = (k, params, tuple(a.shape), unbatched)
        return _wrap(y.reshape(list(y.shape[1:])) if unbatched else y)

    @staticmethod
    def backward(ctx, g):
        k, params, shape, unbatched = ctx.meta
        ga = g._a
        g4 = ga.reshape([1] + list(ga.shape)) if unbatched else ga
        return _wrap(_C.unfold_forward(g4, k[0], k[1], params).reshape(list(shape))), None, None, None


def _unfold_params(kernel_size, dilation, padding, stride, op):
    k = _tuple(kernel_size, 2, "kernel_size", op)
    d = _tuple(dilation, 2, "dilation", op)
    p = _tuple(padding, 2, "padding", op)
    s = _tuple(stride, 2, "stride", op)
    return k, (s[0], s[1], p[0], p[1], d[0], d[1], 1)


@register("unfold")
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding local blocks (im2col), as ``torch.nn.functional.unfold``.

    Shape:
        (N, C, H, W) -> (N, C * kH * kW, L), L = number of block positions.
    """
    _check_tensor(input, "unfold")
    k, params = _unfold_params(kernel_size, dilation, padding, stride, "unfold")
    return _Unfold.apply(input, k, params)


@register("fold")
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Combine sliding local blocks into a tensor, summing overlaps (col2im; the adjoint of unfold).

    Shape:
        (N, C * kH * kW, L) -> (N, C, *output_size).
    """
    _check_tensor(input, "fold")
    out_hw = _tuple(output_size, 2, "output_size", "fold")
    k, params = _unfold_params(kernel_size, dilation, padding, stride, "fold")
    return _Fold.apply(input, out_hw, k, params)
