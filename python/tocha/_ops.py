"""The op registry: every tocha op is defined here once — argument checks, the kernel call, and
its backward rule (a ``Function`` whose backward is composed from other registered ops, or calls a
dedicated ``*_backward`` kernel where composing would be slow).

``OPS`` maps each public op name to its callable; ``tests/test_ops.py`` checks that every entry has
a PyTorch parity case and a float64 gradcheck case.
"""

import builtins
import math
import numbers

import numpy as np

from . import _C
from ._dtype import (_c_contig, DTYPES, bool_, float32, float64, get_default_dtype, int32, int64, to_device,
                     to_dtype, uint8)
from . import _dispatch
from ._dispatch import K as _K
from ._tensor import Size, Tensor, _wrap
from .autograd.function import _NO_CTX, Function
from .autograd.grad_mode import _state

_DTYPES = DTYPES
OPS = {}          # name -> public callable (differentiable or not)


def register(name=None, differentiable=True):
    """Add a public op to the registry (tests are parametrised from it)."""

    def deco(fn):
        OPS[name or fn.__name__] = fn
        fn._differentiable = differentiable
        return fn

    return deco


# ---- kernel op codes (must match csrc/core/ops.h) ----
(U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_SIN, U_COS, U_TAN, U_TANH, U_SIGMOID, U_RELU, U_SIGN,
 U_FLOOR, U_CEIL, U_ROUND, U_LOG1P, U_EXPM1, U_RECIPROCAL, U_SQUARE, U_ERF, U_LOGICAL_NOT, U_ATAN, U_ASIN,
 U_ACOS, U_TRUNC, U_FRAC, U_LOG2, U_LOG10, U_EXP2, U_SOFTPLUS, U_GELU, U_GELU_TANH, U_SILU, U_MISH, U_SINH,
 U_COSH, U_ASINH, U_ACOSH, U_ATANH, U_ISNAN, U_ISINF, U_ISFINITE, U_BITWISE_NOT) = range(44)
(B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE, B_FLOORDIV,
 B_REMAINDER, B_ATAN2, B_LAND, B_LOR, B_LXOR, B_BAND, B_BOR, B_BXOR, B_FMOD, B_HYPOT, B_RELU_GRAD,
 B_SIGMOID_GRAD, B_TANH_GRAD, B_GELU_GRAD, B_GELU_TANH_GRAD, B_SILU_GRAD, B_SOFTPLUS_GRAD,
 B_MISH_GRAD) = range(32)
R_SUM, R_PROD, R_MAX, R_MIN, R_MEAN, R_AMAX, R_AMIN, R_ALL, R_ANY = range(9)


def _is_tensor(x):
    return isinstance(x, Tensor)


def _check_scalar(x, op):
    if isinstance(x, (bool, int, float, np.number)):
        return x
    raise TypeError(f"[{op}] unsupported operand type {type(x).__name__}; expected a Tensor or a number")


# =====================================================================================================
# creation
# =====================================================================================================
def _shape_arg(size, op="shape"):
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        size = tuple(size[0])
    for s in size:  # the common case, all ints, returns without the per-element conversions below
        if type(s) is not int:
            break
    else:
        return list(size)
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"[{op}] size must be a tuple of ints, got {type(s).__name__}")
        out.append(int(s))
    return out


def _cuda_index(device):
    """None for the CPU; the CUDA device index for a CUDA device (raising the clear "no CUDA" error
    of ``tocha.cuda`` when this build or machine cannot hold CUDA tensors)."""
    if device is None:
        return None
    d = to_device(device)
    if d.type == "cpu":
        return None
    from . import cuda

    cuda._require(d.index)
    return d.index if d.index is not None else cuda.current_device()


def _like_index(t, device):
    """Device index for a ``*_like`` result: ``device`` when given, else ``t``'s device."""
    if device is None:
        return t._a.device_index if t._a.device_type else None
    return _cuda_index(device)


def _place(t, idx):
    """Move a freshly made CPU tensor to cuda:``idx`` (no-op for idx None)."""
    if idx is None:
        return t
    return _wrap(_C.to_device(t._a, 1, idx))


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dtype_or_default(dtype):
    return get_default_dtype() if dtype is None else to_dtype(dtype)


def _new(shape, dt, idx, fill):
    """A new array on the CPU (idx None) or cuda:idx, uninitialised (fill None) or filled."""
    if idx is not None:
        return _wrap(_dispatch.new(shape, dt, idx, fill))
    if fill is None:
        return _wrap(_C.empty(shape, dt))
    return _wrap(_C.zeros(shape, dt) if fill == 0 else _C.full(shape, float(fill), dt))


def _zeros_on(shape, like):
    """Zeros of ``shape`` with ``like``'s dtype and device (gradient buffers of view/index backward)."""
    a = like._a
    if not a.device_type:
        return _wrap(_C.zeros(list(shape), a.dtype))
    return _wrap(_dispatch.new(list(shape), a.dtype, a.device_index, 0))


def empty(*size, dtype=None, device=None, requires_grad=False):
    """Uninitialised tensor of the given size."""
    if device is not None:
        return _finish(_new(_shape_arg(size, "empty"), _dtype_or_default(dtype).code, _cuda_index(device), None),
                       requires_grad)
    return _finish(_wrap(_C.empty(_shape_arg(size, "empty"), _dtype_or_default(dtype).code)), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """Tensor filled with 0."""
    if device is not None:
        return _finish(_new(_shape_arg(size, "zeros"), _dtype_or_default(dtype).code, _cuda_index(device), 0),
                       requires_grad)
    return _finish(_wrap(_C.zeros(_shape_arg(size, "zeros"), _dtype_or_default(dtype).code)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """Tensor filled with 1."""
    if device is not None:
        return _finish(_new(_shape_arg(size, "ones"), _dtype_or_default(dtype).code, _cuda_index(device), 1),
                       requires_grad)
    return _finish(_wrap(_C.full(_shape_arg(size, "ones"), 1.0, _dtype_or_default(dtype).code)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """Tensor filled with ``fill_value`` (dtype inferred from the value like PyTorch)."""
    idx = _cuda_index(device)
    if dtype is None:
        dtype = (bool_ if isinstance(fill_value, bool) else int64 if isinstance(fill_value, int)
                 else get_default_dtype())
    if idx is not None:
        return _finish(_new(_shape_arg((size,), "full"), to_dtype(dtype).code, idx, float(fill_value)),
                       requires_grad)
    return _finish(_wrap(_C.full(_shape_arg((size,), "full"), float(fill_value), to_dtype(dtype).code)),
                   requires_grad)


def _like(t, dtype):
    return t.dtype if dtype is None else to_dtype(dtype)


# *_like results live on the input's device unless ``device`` says otherwise (as PyTorch)
def empty_like(t, dtype=None, device=None, requires_grad=False):
    return _finish(_new(t._a.shape, _like(t, dtype).code, _like_index(t, device), None), requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return _finish(_new(t._a.shape, _like(t, dtype).code, _like_index(t, device), 0), requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return _finish(_new(t._a.shape, _like(t, dtype).code, _like_index(t, device), 1), requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return _finish(_new(t._a.shape, _like(t, dtype).code, _like_index(t, device), float(fill_value)),
                   requires_grad)


def _like_device(t, device):
    idx = _like_index(t, device)
    return None if idx is None else f"cuda:{idx}"


def rand_like(t, dtype=None, device=None, requires_grad=False):
    return rand(*t.shape, dtype=_like(t, dtype), device=_like_device(t, device), requires_grad=requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False):
    return randn(*t.shape, dtype=_like(t, dtype), device=_like_device(t, device), requires_grad=requires_grad)


def randint_like(t, low=0, high=None, dtype=None, device=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(t.shape), dtype=_like(t, dtype), device=_like_device(t, device))


def _infer_np(data, dtype):
    """NumPy array for nested Python data following PyTorch's dtype inference."""
    if isinstance(data, Tensor):
        return np.asarray(_dispatch.host(data.detach()._a))
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, (list, tuple)) and builtins.any(isinstance(x, Tensor) for x in _flatten_seq(data)):
        arr = np.array([_infer_np(x, None) if isinstance(x, Tensor) else _infer_np(x, None) for x in data])
    else:
        arr = np.array(data)
        if dtype is None and arr.dtype.kind == "f":
            # Python floats take the default dtype; NumPy float scalars keep theirs (the widest wins), as in torch
            seq = _flatten_seq(data) if isinstance(data, (list, tuple)) else (data,)
            widths = [x.dtype.itemsize for x in seq if isinstance(x, np.floating)]
            arr = arr.astype(np.float64 if widths and builtins.max(widths) == 8 else
                             np.float32 if widths else get_default_dtype().np)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.kind in "iu" and arr.dtype not in (np.uint8, np.int32, np.int64):
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "O" or arr.dtype.kind in "USc":
        raise TypeError(f"tensor(): could not infer dtype of {type(data).__name__} (got NumPy kind "
                        f"{arr.dtype.kind!r}); nested sequences must be rectangular and numeric")
    return arr


def _flatten_seq(x):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flatten_seq(y)
    else:
        yield x


def tensor(data, dtype=None, device=None, requires_grad=False):
    """Copy ``data`` (nested lists, numbers, NumPy arrays, tensors) into a new tensor."""
    idx = _cuda_index(device)
    arr = _infer_np(data, dtype)
    if dtype is not None:
        arr = arr.astype(to_dtype(dtype).np, copy=False)
    arr = _c_contig(arr)
    a = _C.from_buffer(arr)
    t = _wrap(a.clone() if idx is None else _C.to_device(a, 1, idx))
    return _finish(t, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with a tensor or a compatible NumPy array."""
    if isinstance(data, Tensor) and (dtype is None or to_dtype(dtype) is data.dtype):
        return data if device is None else data.to(device)
    if isinstance(data, np.ndarray) and (dtype is None or to_dtype(dtype).np == data.dtype) and \
            _cuda_index(device) is None:
        try:
            return from_numpy(data)
        except (TypeError, ValueError):
            pass
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr):
    """A tensor sharing memory with the NumPy array ``arr`` (no copy)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    if not arr.flags.writeable:
        # sharing read-only memory would let in-place ops write into it: copy instead (and say so)
        import warnings

        warnings.warn("The given NumPy array is not writable; tocha.from_numpy copied it instead of sharing "
                      "its memory.", UserWarning, stacklevel=2)
        arr = np.array(arr)
    return _wrap(_C.from_buffer(arr))


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` to ``end`` (exclusive) by ``step``."""
    idx = _cuda_index(device)
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = builtins.all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) or isinstance(v, bool)
                     for v in (start, end, step))
        dtype = int64 if is_int else get_default_dtype()
    t = _wrap(_C.arange(float(start), float(end), float(step), to_dtype(dtype).code))
    return _finish(_place(t, idx), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    idx = _cuda_index(device)
    t = _wrap(_C.linspace(float(start), float(end), int(steps), _dtype_or_default(dtype).code))
    return _finish(_place(t, idx), requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    t = pow(base, linspace(start, end, steps, dtype=float64))
    return _finish(_place(t.to(_dtype_or_default(dtype)), _cuda_index(device)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """Identity matrix (n x m)."""
    m = n if m is None else m
    t = zeros(n, m, dtype=dtype, device=device)
    _K.fill_(t._a.diagonal(), 1.0)
    return _finish(t, requires_grad)


# ---- random ----
def manual_seed(seed):
    """Seed the global Philox generator (identical streams for any thread count)."""
    seed = int(seed)
    if seed < 0:
        seed &= (1 << 64) - 1
    _C.manual_seed(seed)
    return _Generator()


def seed():
    import os

    s = int.from_bytes(os.urandom(8), "little")
    _C.manual_seed(s)
    return s


def initial_seed():
    return _C.initial_seed()


def get_rng_state():
    """Generator state as a uint8 tensor (seed and offset), for ``set_rng_state``."""
    s, o = _C.get_rng_state()
    return tensor(np.frombuffer(np.array([s, o], dtype=np.uint64).tobytes(), dtype=np.uint8).copy())


def set_rng_state(state):
    s, o = np.frombuffer(state.numpy().tobytes(), dtype=np.uint64)
    _C.set_rng_state(int(s), int(o))


class _Generator:
    """Returned by ``manual_seed`` (mirrors torch's Generator enough for chained calls)."""

    def initial_seed(self):
        return _C.initial_seed()


class Generator:
    """A private random stream (seeded), usable as ``generator=`` in samplers and ``random_split``.

    tocha kernels draw from one global Philox stream; a Generator saves/restores that stream's
    state around each use so that its own sequence stays independent and reproducible.
    """

    def __init__(self, device="cpu"):
        self._seed = 67280421310721
        self._offset = 0

    def manual_seed(self, seed):
        self._seed = int(seed) & ((1 << 64) - 1)
        self._offset = 0
        return self

    def seed(self):
        import os

        self._seed = int.from_bytes(os.urandom(8), "little")
        self._offset = 0
        return self._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return tensor(np.frombuffer(np.array([self._seed, self._offset], dtype=np.uint64).tobytes(),
                                    dtype=np.uint8).copy())

    def set_state(self, state):
        self._seed, self._offset = (int(v) for v in np.frombuffer(state.numpy().tobytes(), dtype=np.uint64))

    def __enter__(self):
        self._saved = _C.get_rng_state()
        _C.set_rng_state(self._seed, self._offset)
        return self

    def __exit__(self, *exc):
        self._seed, self._offset = _C.get_rng_state()
        _C.set_rng_state(*self._saved)
        return False


def _with_gen(generator, fn):
    if generator is None:
        return fn()
    with generator:
        return fn()


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    t = empty(*size, dtype=dtype, device=device)
    _with_gen(generator, lambda: _K.uniform_(t._a, 0.0, 1.0))
    return _finish(t, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    t = empty(*size, dtype=dtype, device=device)
    _with_gen(generator, lambda: _K.normal_(t._a, 0.0, 1.0))
    return _finish(t, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniformly drawn from [low, high)."""
    if size is None:
        if high is None or isinstance(high, (tuple, list)):
            low, high, size = 0, low, high
        else:
            raise TypeError("randint() missing required argument 'size'")
    if high is None:
        low, high = 0, low
    idx = _cuda_index(device)
    t = empty(*_shape_arg((size,), "randint"), dtype=dtype or int64)
    _with_gen(generator, lambda: _C.randint_(t._a, int(low), int(high)))
    return _place(t, idx)  # drawn on the CPU (no CUDA integer sampler yet), then moved


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0..n-1."""
    t = _wrap(_with_gen(generator, lambda: _C.randperm(int(n))))
    return _place(t if dtype is None else t.to(dtype), _cuda_index(device))


def normal(mean, std, size=None, generator=None, dtype=None):
    """Normal samples with the given mean/std (scalars with ``size``, or tensors)."""
    if size is not None:
        t = empty(*_shape_arg((size,)), dtype=dtype)
        _with_gen(generator, lambda: _K.normal_(t._a, float(mean), float(std)))
        return t
    m = mean if isinstance(mean, Tensor) else None
    s = std if isinstance(std, Tensor) else None
    shape = (m if m is not None else s).shape
    ref = m if m is not None else s
    z = randn(*shape, generator=generator, dtype=ref.dtype, device=_like_device(ref, None))
    return z * std + mean


def bernoulli(input, p=None, generator=None):
    """Draw 0/1 with probability ``input`` (elementwise) or ``p``."""
    if p is not None:
        t = empty_like(input)
        _with_gen(generator, lambda: _K.bernoulli_(t._a, float(p)))
        return t
    u = rand(*input.shape, generator=generator, dtype=input.dtype, device=_like_device(input, None))
    return (u < input).to(input.dtype)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Sample indices according to (unnormalised) weights ``input`` (1-d or 2-d)."""
    if input.ndim == 2:
        return stack([multinomial(r, num_samples, replacement, generator) for r in input])
    return _wrap(_with_gen(generator, lambda: _C.multinomial(input.detach()._a, int(num_samples),
                                                             bool(replacement))))


# =====================================================================================================
# elementwise
# =====================================================================================================
class _Unary(Function):
    _builtin = True


def _unary_fn(name, code, grad_rule, save="input"):
    """Build a differentiable unary op; ``grad_rule(x, y, g)`` returns the input gradient."""

    class Op(_Unary):
        @staticmethod
        def forward(ctx, x):
            y = _wrap(_K.unary(code, x._a))
            if save == "input":
                ctx.save_for_backward(x)
            elif save == "output":
                ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            if save is None:
                return grad_rule(None, None, g)
            (s,) = ctx.saved_tensors
            if save == "input":
                return grad_rule(s, None, g)
            return grad_rule(None, s, g)

    Op.__name__ = name.capitalize()

    def op(input):
        return Op.apply(input)

    op.__name__ = name
    op.__doc__ = f"Elementwise ``{name}``."
    register(name)(op)
    return op


def _kernel_grad(code):
    """Backward rule implemented by a fused (grad, saved) -> grad kernel."""

    def rule(x, y, g):
        return _wrap(_K.binary(code, g._a, (x if x is not None else y)._a))

    return rule


neg = _unary_fn("neg", U_NEG, lambda x, y, g: -g, save=None)
abs = _unary_fn("abs", U_ABS, lambda x, y, g: g * sign(x))
exp = _unary_fn("exp", U_EXP, lambda x, y, g: g * y, save="output")
log = _unary_fn("log", U_LOG, lambda x, y, g: g / x)
sqrt = _unary_fn("sqrt", U_SQRT, lambda x, y, g: g / (2 * y), save="output")
rsqrt = _unary_fn("rsqrt", U_RSQRT, lambda x, y, g: g * (-0.5) * y * y * y, save="output")
sin = _unary_fn("sin", U_SIN, lambda x, y, g: g * cos(x))
cos = _unary_fn("cos", U_COS, lambda x, y, g: -g * sin(x))
tan = _unary_fn("tan", U_TAN, lambda x, y, g: g * (1 + y * y), save="output")
tanh = _unary_fn("tanh", U_TANH, _kernel_grad(B_TANH_GRAD), save="output")
sigmoid = _unary_fn("sigmoid", U_SIGMOID, _kernel_grad(B_SIGMOID_GRAD), save="output")
relu = _unary_fn("relu", U_RELU, _kernel_grad(B_RELU_GRAD))
log1p = _unary_fn("log1p", U_LOG1P, lambda x, y, g: g / (1 + x))
expm1 = _unary_fn("expm1", U_EXPM1, lambda x, y, g: g * (y + 1), save="output")
reciprocal = _unary_fn("reciprocal", U_RECIPROCAL, lambda x, y, g: -g * y * y, save="output")
square = _unary_fn("square", U_SQUARE, lambda x, y, g: 2 * g * x)
erf = _unary_fn("erf", U_ERF, lambda x, y, g: g * (2 / math.sqrt(math.pi)) * exp(-x * x))
atan = _unary_fn("atan", U_ATAN, lambda x, y, g: g / (1 + x * x))
asin = _unary_fn("asin", U_ASIN, lambda x, y, g: g * rsqrt(1 - x * x))
acos = _unary_fn("acos", U_ACOS, lambda x, y, g: -g * rsqrt(1 - x * x))
sinh = _unary_fn("sinh", U_SINH, lambda x, y, g: g * cosh(x))
cosh = _unary_fn("cosh", U_COSH, lambda x, y, g: g * sinh(x))
asinh = _unary_fn("asinh", U_ASINH, lambda x, y, g: g * rsqrt(x * x + 1))
acosh = _unary_fn("acosh", U_ACOSH, lambda x, y, g: g * rsqrt(x * x - 1))
atanh = _unary_fn("atanh", U_ATANH, lambda x, y, g: g / (1 - x * x))
log2 = _unary_fn("log2", U_LOG2, lambda x, y, g: g / (x * math.log(2.0)))
log10 = _unary_fn("log10", U_LOG10, lambda x, y, g: g / (x * math.log(10.0)))
exp2 = _unary_fn("exp2", U_EXP2, lambda x, y, g: g * y * math.log(2.0), save="output")
frac = _unary_fn("frac", U_FRAC, lambda x, y, g: g, save=None)
softplus_ = _unary_fn("_softplus", U_SOFTPLUS, _kernel_grad(B_SOFTPLUS_GRAD))
gelu_ = _unary_fn("_gelu", U_GELU, _kernel_grad(B_GELU_GRAD))
gelu_tanh_ = _unary_fn("_gelu_tanh", U_GELU_TANH, _kernel_grad(B_GELU_TANH_GRAD))
silu = _unary_fn("silu", U_SILU, _kernel_grad(B_SILU_GRAD))
mish = _unary_fn("mish", U_MISH, _kernel_grad(B_MISH_GRAD))
# piecewise-constant: gradient is zero almost everywhere (as PyTorch)
sign = _unary_fn("sign", U_SIGN, lambda x, y, g: zeros_like(g), save=None)
floor = _unary_fn("floor", U_FLOOR, lambda x, y, g: zeros_like(g), save=None)
ceil = _unary_fn("ceil", U_CEIL, lambda x, y, g: zeros_like(g), save=None)
trunc = _unary_fn("trunc", U_TRUNC, lambda x, y, g: zeros_like(g), save=None)
for _n in ("_softplus", "_gelu", "_gelu_tanh"):
    OPS.pop(_n)


def round(input, decimals=0):
    """Round half to even (like PyTorch); ``decimals`` shifts the rounding position."""
    if decimals:
        s = 10.0 ** decimals
        return _round(input * s) / s
    return _round(input)


_round = _unary_fn("round", U_ROUND, lambda x, y, g: zeros_like(g), save=None)
OPS["round"] = round
fix = trunc


def _predicate(name, code):
    def op(input):
        return _wrap(_K.unary(code, input._a))

    op.__name__ = name
    register(name, differentiable=False)(op)
    return op


isnan = _predicate("isnan", U_ISNAN)
isinf = _predicate("isinf", U_ISINF)
isfinite = _predicate("isfinite", U_ISFINITE)
logical_not = _predicate("logical_not", U_LOGICAL_NOT)


@register("bitwise_not", differentiable=False)
def bitwise_not(input):
    return _wrap(_K.unary(U_BITWISE_NOT, input._a))


# ---- binary ----
def _binary_forward(code, a, b):
    if type(a) is Tensor or isinstance(a, Tensor):
        if type(b) is Tensor or isinstance(b, Tensor):
            return _wrap(_K.binary(code, a._a, b._a))
        return _wrap(_K.binary_scalar(code, a._a, _scalar(b), isinstance(b, (float, np.floating)), False))
    return _wrap(_K.binary_scalar(code, b._a, _scalar(a), isinstance(a, (float, np.floating)), True))


def _scalar(x):
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, (np.number, np.bool_)):
        return float(x)
    raise TypeError(f"unsupported operand type {type(x).__name__}; expected a Tensor or a number")


class Add(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        return _binary_forward(B_ADD, a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        return _binary_forward(B_SUB, a, b)

    @staticmethod
    def backward(ctx, g):
        return g, -g


def _save_binary(ctx, a, b):
    """Save each operand only if the other operand's gradient needs it (like PyTorch)."""
    need = ctx.needs_input_grad
    if not need:
        return
    ta, tb = _is_tensor(a), _is_tensor(b)
    ctx.save_for_backward(a if ta and need[1] else None, b if tb and need[0] else None)
    if not ta:
        ctx.sa = a
    if not tb:
        ctx.sb = b


def _save_both(ctx, a, b, *extra):
    """Save both operands of a binary op (tensors, or Python scalars as ctx.sa / ctx.sb) and ``extra``."""
    ctx.save_for_backward(a if _is_tensor(a) else None, b if _is_tensor(b) else None, *extra)
    if not _is_tensor(a):
        ctx.sa = a
    if not _is_tensor(b):
        ctx.sb = b


def _operands(ctx):
    """The (a, b, *extra) values saved by ``_save_both``."""
    a, b, *extra = ctx.saved_tensors
    return ((a if a is not None else ctx.sa), (b if b is not None else ctx.sb), *extra)


class Mul(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        _save_binary(ctx, a, b)
        return _binary_forward(B_MUL, a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = g * (b if b is not None else ctx.sb) if na else None
        gb = g * (a if a is not None else ctx.sa) if nb else None
        return ga, gb


class Div(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        need = ctx.needs_input_grad
        if need:
            # d/da needs b; d/db needs a and b
            ta, tb = _is_tensor(a), _is_tensor(b)
            ctx.save_for_backward(a if ta and need[1] else None, b if tb else None)
            if not ta:
                ctx.sa = a
            if not tb:
                ctx.sb = b
        return _binary_forward(B_DIV, a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        bv = b if b is not None else ctx.sb
        ga = g / bv if na else None
        gb = None
        if nb:
            av = a if a is not None else ctx.sa
            gb = -g * av / (bv * bv)
        return ga, gb


class Pow(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        y = _binary_forward(B_POW, a, b)
        _save_both(ctx, a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        av, bv, y = _operands(ctx)
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:
            if not _is_tensor(bv) and bv == 0:
                ga = zeros_like(g)
            else:
                ga = g * bv * pow(av, bv - 1)
        if nb:
            if _is_tensor(av):
                # d/db a^b = a^b log a, defined as 0 where a == 0 and b >= 0 (PyTorch's convention)
                ga_log = where(av == 0, zeros_like(y), y * log(av))
                gb = g * ga_log
            else:
                gb = g * y * math.log(av) if av > 0 else g * 0.0
        return ga, gb


def _binary_pick(code):
    class Op(Function):
        _builtin = True

        @staticmethod
        def forward(ctx, a, b):
            _save_both(ctx, a, b)
            return _binary_forward(code, a, b)

        @staticmethod
        def backward(ctx, g):
            av, bv = _operands(ctx)
            # ties split the gradient evenly, as PyTorch does
            if code == B_MAXIMUM:
                wa = (av > bv).to(g.dtype) + (av == bv).to(g.dtype) * 0.5
            else:
                wa = (av < bv).to(g.dtype) + (av == bv).to(g.dtype) * 0.5
            return g * wa, g * (1 - wa)

    return Op


_Maximum = _binary_pick(B_MAXIMUM)
_Minimum = _binary_pick(B_MINIMUM)


class Atan2(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _wrap(_K.binary(B_ATAN2, a._a, b._a))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        d = a * a + b * b
        return g * b / d, -g * a / d


class Remainder(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        _save_both(ctx, a, b)
        return _binary_forward(B_REMAINDER, a, b)

    @staticmethod
    def backward(ctx, g):
        av, bv = _operands(ctx)
        return g, -g * floor_divide(av, bv) if ctx.needs_input_grad[1] else None


class Fmod(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        _save_both(ctx, a, b)
        return _binary_forward(B_FMOD, a, b)

    @staticmethod
    def backward(ctx, g):
        av, bv = _operands(ctx)
        gb = -g * trunc(av / bv) if ctx.needs_input_grad[1] else None
        return g, gb


class Hypot(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        y = _wrap(_K.binary(B_HYPOT, a._a, b._a))
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_tensors
        return g * a / y, g * b / y


def _binary_args(input, other, op):
    if not _is_tensor(input) and not _is_tensor(other):
        raise TypeError(f"[{op}] expected at least one Tensor argument, got {type(input).__name__} and "
                        f"{type(other).__name__}")
    return input, other


@register()
def add(input, other, *, alpha=1, out=None):
    """``input + alpha * other`` with broadcasting."""
    if alpha != 1:
        other = other * alpha
    return Add.apply(*_binary_args(input, other, "add"))


@register()
def sub(input, other, *, alpha=1, out=None):
    """``input - alpha * other`` with broadcasting."""
    if alpha != 1:
        other = other * alpha
    return Sub.apply(*_binary_args(input, other, "sub"))


subtract = sub


@register()
def mul(input, other, *, out=None):
    """Elementwise product with broadcasting."""
    return Mul.apply(*_binary_args(input, other, "mul"))


multiply = mul


@register()
def div(input, other, *, rounding_mode=None, out=None):
    """Elementwise true division (``rounding_mode`` 'trunc' or 'floor' rounds the quotient)."""
    if rounding_mode is None:
        return Div.apply(*_binary_args(input, other, "div"))
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        t = input if _is_tensor(input) else other
        if t.is_floating_point() or isinstance(other, float) or isinstance(input, float):
            return trunc(Div.apply(input, other))
        q = floor_divide(input, other)
        r = remainder(input, other)
        return q + ((r != 0) & ((q < 0) | ((q == 0) & (input * other < 0)))).to(q.dtype)
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


divide = true_divide = div


@register()
def pow(input, exponent):
    """``input ** exponent`` (tensor or scalar either side)."""
    return Pow.apply(*_binary_args(input, exponent, "pow"))


float_power = pow


@register()
def maximum(input, other):
    """Elementwise maximum (NaN propagates)."""
    return _Maximum.apply(input, other)


@register()
def minimum(input, other):
    """Elementwise minimum (NaN propagates)."""
    return _Minimum.apply(input, other)


fmax = maximum
fmin = minimum


@register()
def atan2(input, other):
    return Atan2.apply(input, other)


arctan2 = atan2


@register()
def remainder(input, other):
    """Python-style modulus (result has the sign of ``other``)."""
    return Remainder.apply(*_binary_args(input, other, "remainder"))


@register()
def fmod(input, other):
    """C-style modulus (result has the sign of ``input``)."""
    return Fmod.apply(*_binary_args(input, other, "fmod"))


@register()
def hypot(input, other):
    return Hypot.apply(input, other)


@register(differentiable=False)
def floor_divide(input, other):
    """Floor of the quotient (no gradient)."""
    return _binary_forward(B_FLOORDIV, *_binary_args(input, other, "floor_divide"))


def _cmp(name, code):
    def op(input, other):
        return _binary_forward(code, *_binary_args(input, other, name))

    op.__name__ = name
    register(name, differentiable=False)(op)
    return op


eq = _cmp("eq", B_EQ)
ne = _cmp("ne", B_NE)
lt = _cmp("lt", B_LT)
le = _cmp("le", B_LE)
gt = _cmp("gt", B_GT)
ge = _cmp("ge", B_GE)
logical_and = _cmp("logical_and", B_LAND)
logical_or = _cmp("logical_or", B_LOR)
logical_xor = _cmp("logical_xor", B_LXOR)
bitwise_and = _cmp("bitwise_and", B_BAND)
bitwise_or = _cmp("bitwise_or", B_BOR)
bitwise_xor = _cmp("bitwise_xor", B_BXOR)
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def equal(input, other):
    """True when both tensors have the same shape and elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(eq(input, other).all().item())


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def isclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False):
    a = input.double() if _is_tensor(input) else input
    b = other.double() if _is_tensor(other) else other
    close = abs(a - b) <= atol + rtol * abs(b)
    close = close | (a == b)
    if equal_nan:
        close = close | (isnan(a) & isnan(b))
    return close


class Where(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ta = a if _is_tensor(a) else full([], a, dtype=b.dtype if _is_tensor(b) else None)
        tb = b if _is_tensor(b) else full([], b, dtype=ta.dtype)
        return _wrap(_C.where(cond._a, ta._a, tb._a))

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        z = zeros_like(g)
        return None, where(cond, g, z), where(cond, z, g)


@register()
def where(condition, input=None, other=None):
    """Pick from ``input`` where ``condition`` else ``other`` (broadcasting)."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if condition.dtype is not bool_:
        raise TypeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {condition.dtype}")
    return Where.apply(condition, input, other)


class Clamp(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return _wrap(_C.clamp(x._a, lo, hi))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        mask = ones_like(x, dtype=bool_)
        if ctx.lo is not None:
            mask = mask & (x >= ctx.lo)
        if ctx.hi is not None:
            mask = mask & (x <= ctx.hi)
        return g * mask.to(g.dtype), None, None


@register()
def clamp(input, min=None, max=None):
    """Limit values to [min, max] (gradient passes inside the range)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if _is_tensor(min) or _is_tensor(max):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return Clamp.apply(input, None if min is None else float(min), None if max is None else float(max))


clip = clamp


def lerp(input, end, weight):
    return input + weight * (end - input)


# =====================================================================================================
# reductions
# =====================================================================================================
def _dims_arg(dim, ndim):
    if dim is None:
        return []
    if isinstance(dim, (int, np.integer)):
        return [int(dim)]
    dims = [int(d) for d in dim]
    return dims if dims else []


def _expand_grad(g, shape, dims, keepdim):
    """Broadcast a reduced gradient back to ``shape``."""
    if not keepdim and len(shape):
        nd = len(shape)
        ds = sorted((d % nd) for d in dims) if dims else list(range(nd))
        for d in ds:
            g = g.unsqueeze(d)
    return g.expand(*shape)


class Sum(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.shape, ctx.dims, ctx.keepdim = x._a.shape, dims, keepdim
        return _wrap(_K.reduce(R_SUM, x._a, dims, keepdim, dtype))

    @staticmethod
    def backward(ctx, g):
        return _expand_grad(g, ctx.shape, ctx.dims, ctx.keepdim), None, None, None


class Mean(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.shape, ctx.dims, ctx.keepdim = x._a.shape, dims, keepdim
        return _wrap(_K.reduce(R_MEAN, x._a, dims, keepdim, dtype))

    @staticmethod
    def backward(ctx, g):
        n = math.prod(ctx.shape) // g.numel() if g.numel() else 0  # elements averaged per output
        return _expand_grad(g / builtins.max(n, 1), ctx.shape, ctx.dims, ctx.keepdim), None, None, None


@register()
def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all dims when None)."""
    dims, code = _dims_arg(dim, None), None if dtype is None else to_dtype(dtype).code
    if _state.enabled and input.requires_grad:
        return Sum.apply(input, dims, keepdim, code)
    return Sum.forward(_NO_CTX, input, dims, keepdim, code)  # nothing recorded: skip apply's argument scan


@register()
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over ``dim`` (all dims when None); floating inputs only."""
    dims, code = _dims_arg(dim, None), None if dtype is None else to_dtype(dtype).code
    if _state.enabled and input.requires_grad:
        return Mean.apply(input, dims, keepdim, code)
    return Mean.forward(_NO_CTX, input, dims, keepdim, code)  # nothing recorded: skip apply's argument scan


class Prod(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        y = _wrap(_K.reduce(R_PROD, x._a, dims, keepdim, None))
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        shape = x.shape
        ge = _expand_grad(g, shape, ctx.dims, ctx.keepdim)
        ye = _expand_grad(y, shape, ctx.dims, ctx.keepdim)
        if not bool((x == 0).any()):
            return ge * ye / x, None, None
        # zeros present: product of all other elements via exclusive cumulative products
        if len(ctx.dims) != 1 and x.ndim > 1:
            flat = x.reshape(-1)
            others = _prod_others(flat, 0).reshape(shape)
        elif x.ndim == 0:
            return g * ones_like(x), None, None
        else:
            d = ctx.dims[0] if ctx.dims else 0
            others = _prod_others(x, d)
        return ge * others, None, None


def _prod_others(x, dim):
    """prod of all elements along ``dim`` except the one at each position (no division)."""
    n = x.shape[dim]
    ones_shape = list(x.shape)
    ones_shape[dim] = 1
    one = ones(*ones_shape, dtype=x.dtype)
    left = cat([one, cumprod(x.narrow(dim, 0, n - 1), dim)], dim) if n > 1 else one
    rev = x.flip(dim)
    right = cat([one, cumprod(rev.narrow(dim, 0, n - 1), dim)], dim).flip(dim) if n > 1 else one
    return left * right


@register()
def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product over ``dim`` (all elements when None)."""
    if dtype is not None:
        input = input.to(dtype)
    return Prod.apply(input, _dims_arg(dim, input.ndim), keepdim)


class _Extreme(Function):
    """max/min/amax/amin over dims: gradient split evenly among tied extremes."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, code, dims, keepdim):
        y = _wrap(_K.reduce(code, x._a, dims, keepdim, None))
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        ye = _expand_grad(y, x.shape, ctx.dims, ctx.keepdim)
        mask = (x == ye).to(g.dtype)
        count = _expand_grad(mask.sum(ctx.dims if ctx.dims else None, keepdim=True), x.shape, ctx.dims, True) \
            if ctx.dims else mask.sum()
        return _expand_grad(g, x.shape, ctx.dims, ctx.keepdim) * mask / count, None, None, None


class _ExtremeDim(Function):
    """max/min along one dim returning (values, indices); gradient goes to the chosen index."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, is_max, dim, keepdim):
        v, i = _C.reduce_arg(is_max, x._a, dim, keepdim)
        vals, idx = _wrap(v), _wrap(i)
        ctx.mark_non_differentiable(idx)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.dim, ctx.keepdim = x._a.shape, dim, keepdim
        return vals, idx

    @staticmethod
    def backward(ctx, g, gi):
        (idx,) = ctx.saved_tensors
        if not ctx.shape:
            return g, None, None, None
        if not ctx.keepdim:
            g = g.unsqueeze(ctx.dim)
            idx = idx.unsqueeze(ctx.dim)
        out = _zeros_on(ctx.shape, g)
        return out.scatter(ctx.dim, idx, g), None, None, None


class _MinMaxResult(tuple):
    """(values, indices) named tuple returned by ``max(dim=...)`` / ``min(dim=...)``."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _max_min(is_max, input, dim=None, keepdim=False, other=None):
    if _is_tensor(dim):
        other, dim = dim, None
    if other is not None:
        return maximum(input, other) if is_max else minimum(input, other)
    if dim is None:
        return _Extreme.apply(input, R_MAX if is_max else R_MIN, [], False)
    return _MinMaxResult(_ExtremeDim.apply(input, is_max, int(dim), keepdim))


@register()
def max(input, dim=None, keepdim=False, *, other=None):
    """Max of all elements, or (values, indices) along ``dim``, or elementwise with a tensor."""
    return _max_min(True, input, dim, keepdim, other)


@register()
def min(input, dim=None, keepdim=False, *, other=None):
    """Min of all elements, or (values, indices) along ``dim``, or elementwise with a tensor."""
    return _max_min(False, input, dim, keepdim, other)


@register()
def amax(input, dim=(), keepdim=False):
    return _Extreme.apply(input, R_AMAX, _dims_arg(dim, input.ndim), keepdim)


@register()
def amin(input, dim=(), keepdim=False):
    return _Extreme.apply(input, R_AMIN, _dims_arg(dim, input.ndim), keepdim)


@register(differentiable=False)
def argmax(input, dim=None, keepdim=False):
    """Index of the (first) maximum, flattened when ``dim`` is None."""
    if dim is None:
        r = _wrap(_C.argreduce_all(True, input._a))
        return r.reshape([1] * input.ndim) if keepdim else r
    return _wrap(_C.reduce_arg(True, input._a, int(dim), keepdim)[1])


@register(differentiable=False)
def argmin(input, dim=None, keepdim=False):
    """Index of the (first) minimum, flattened when ``dim`` is None."""
    if dim is None:
        r = _wrap(_C.argreduce_all(False, input._a))
        return r.reshape([1] * input.ndim) if keepdim else r
    return _wrap(_C.reduce_arg(False, input._a, int(dim), keepdim)[1])


@register(differentiable=False)
def all(input, dim=None, keepdim=False):
    return _wrap(_K.reduce(R_ALL, input._a, _dims_arg(dim, input.ndim), keepdim, None))


@register(differentiable=False)
def any(input, dim=None, keepdim=False):
    return _wrap(_K.reduce(R_ANY, input._a, _dims_arg(dim, input.ndim), keepdim, None))


class Var(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        ctx.save_for_backward(x)
        ctx.dims, ctx.correction, ctx.keepdim = dims, correction, keepdim
        y = _wrap(_C.var(x._a, dims, float(correction), keepdim))
        ctx.n = x.numel() // builtins.max(y.numel(), 1)
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = ctx.dims if ctx.dims else None
        mu = x.mean(d, keepdim=True) if d is not None else x.mean()
        ge = _expand_grad(g, x.shape, ctx.dims, ctx.keepdim)
        return ge * (2.0 / builtins.max(ctx.n - ctx.correction, 0)) * (x - mu), None, None, None


def _correction(unbiased, correction):
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


@register()
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance (Bessel-corrected by default, like PyTorch)."""
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    return Var.apply(input, _dims_arg(dim, input.ndim), _correction(unbiased, correction), keepdim)


@register()
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation (Bessel-corrected by default)."""
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class LogSumExp(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        y = _wrap(_C.logsumexp(x._a, dims, keepdim))
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        ye = _expand_grad(y, x.shape, ctx.dims, ctx.keepdim)
        return _expand_grad(g, x.shape, ctx.dims, ctx.keepdim) * exp(x - ye), None, None


@register()
def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over ``dim``, computed stably."""
    return LogSumExp.apply(input, _dims_arg(dim, input.ndim), keepdim)


class CumSum(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return _wrap(_C.cumsum(x._a, dim))

    @staticmethod
    def backward(ctx, g):
        if g.ndim == 0:
            return g, None
        return g.flip(ctx.dim).cumsum(ctx.dim).flip(ctx.dim), None


@register()
def cumsum(input, dim, *, dtype=None):
    """Cumulative sum along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    return CumSum.apply(input, int(dim))


class CumProd(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim):
        y = _wrap(_C.cumprod(x._a, dim))
        ctx.save_for_backward(x, y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        if g.ndim == 0:
            return g, None
        d = ctx.dim
        if not bool((x == 0).any()):
            return (g * y).flip(d).cumsum(d).flip(d) / x, None
        # exact rule without division: dy_j/dx_i = prod_{k<=j, k!=i} x_k
        n = x.shape[d]
        cols = []
        for i in range(n):
            xi = x.narrow(d, i, 1)
            xr = x.clone()
            xr.narrow(d, i, 1).fill_(1.0)
            c = cumprod(xr, d) * (arange(n) >= i).to(x.dtype).reshape([n if k == d % x.ndim else 1
                                                                       for k in range(x.ndim)])
            cols.append((g * c).sum(d, keepdim=True))
            del xi
        return cat(cols, d), None


@register()
def cumprod(input, dim, *, dtype=None):
    """Cumulative product along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    return CumProd.apply(input, int(dim))


@register()
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector/matrix p-norm (2-norm / Frobenius by default)."""
    if p in ("fro", 2, 2.0):
        return sqrt((input * input).sum(dim, keepdim=keepdim))
    if p in (float("inf"), "inf"):
        return abs(input).amax(dim if dim is not None else (), keepdim=keepdim)
    if p == 1:
        return abs(input).sum(dim, keepdim=keepdim)
    return pow(pow(abs(input), p).sum(dim, keepdim=keepdim), 1.0 / p)


def dist(input, other, p=2):
    return norm(input - other, p)


# =====================================================================================================
# softmax family and fused cross-entropy (dedicated backward kernels)
# =====================================================================================================
class Softmax(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim, log):
        y = _wrap(_K.softmax(x._a, dim, log))
        ctx.save_for_backward(y)
        ctx.dim, ctx.log = dim, log
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if _state.enabled:   # create_graph: compose from differentiable ops
            if ctx.log:
                return g - exp(y) * g.sum(ctx.dim, keepdim=True), None, None
            return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None, None
        return _wrap(_K.softmax_backward(g._a, y._a, ctx.dim, ctx.log)), None, None


def _softmax_dim(dim, ndim):
    if dim is None:
        return 0 if ndim in (0, 1, 3) else 1   # PyTorch's legacy implicit-dim rule
    return int(dim)


@register()
def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (numerically stable)."""
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(input, _softmax_dim(dim, input.ndim), False)


@register()
def log_softmax(input, dim=None, dtype=None):
    """log(softmax(x)) along ``dim`` computed without overflow."""
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(input, _softmax_dim(dim, input.ndim), True)


class CrossEntropy(Function):
    """Fused log-softmax + NLL over class indices, with the reduction folded in.

    ``reduction`` 'none' returns per-sample losses; 'sum'/'mean' return a scalar computed from them
    without extra graph nodes ('mean' divides by the summed weights of non-ignored targets).
    """

    _builtin = True

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, label_smoothing, reduction):
        w = None if weight is None else weight._a
        loss, logsm = _K.cross_entropy_forward(logits._a, target._a, ignore_index, w, label_smoothing)
        ctx.logsm, ctx.target, ctx.weight = logsm, target._a, w
        ctx.ignore_index, ctx.ls, ctx.reduction = ignore_index, label_smoothing, reduction
        if reduction == "none":
            return _wrap(loss)
        total = _K.reduce(R_SUM, loss, [], False, None)
        if reduction == "sum":
            ctx.scale = 1.0
            return _wrap(total)
        t = np.asarray(_dispatch.host(target._a))  # one small device->host copy on CUDA
        valid = t != ignore_index
        if weight is None:
            denom = float(np.count_nonzero(valid))
        else:
            wn = np.asarray(_dispatch.host(weight._a))
            denom = float(wn[t[valid]].sum()) if valid.any() else 0.0
        ctx.scale = 1.0 / denom if denom else float("nan")
        return _wrap(_K.binary_scalar(B_MUL, total, ctx.scale, True, False))

    @staticmethod
    def backward(ctx, g):
        n = ctx.logsm.shape[0]
        if ctx.reduction == "none":
            ga = g._a
        else:
            # d(scale * sum_i loss_i) / d loss_i = scale: one per-sample gradient array
            ga = _K.binary_scalar(B_MUL, g._a.expand([n]), ctx.scale, True, False)
        gx = _K.cross_entropy_backward(ga, ctx.logsm, ctx.target, ctx.ignore_index, ctx.weight, ctx.ls)
        return _wrap(gx), None, None, None, None, None


@register()
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits ``input`` (N, C, ...) and class indices or class probabilities."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have at least one dimension (C) or (N, C)")
    if target.is_floating_point():
        # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability target shape {tuple(target.shape)} must match "
                             f"input shape {tuple(input.shape)}")
        cdim = 0 if input.ndim == 1 else 1
        c = input.shape[cdim]
        t = target
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / c
        lsm = log_softmax(input, cdim)
        if weight is not None:
            wshape = [1] * input.ndim
            wshape[cdim] = c
            lsm = lsm * weight.reshape(wshape)
        loss = -(t * lsm).sum(cdim)
        if reduction == "mean":
            return loss.sum() / (loss.numel() if input.ndim > 1 else 1)
        return loss.sum() if reduction == "sum" else loss
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.reshape(1)
        squeeze = True
    else:
        squeeze = False
    if input.ndim > 2:
        # (N, C, d1, ...) -> (N*d1*..., C)
        c = input.shape[1]
        perm = [0] + list(range(2, input.ndim)) + [1]
        spatial = tuple(target.shape)
        if spatial != (input.shape[0],) + tuple(input.shape[2:]):
            raise ValueError(f"cross_entropy: expected target of shape {(input.shape[0],) + tuple(input.shape[2:])}, "
                             f"got {spatial}")
        flat_in = input.permute(*perm).reshape(-1, c)
        flat_t = target.reshape(-1)
    else:
        spatial = None
        flat_in, flat_t = input, target
    if weight is not None and weight.dtype is not flat_in.dtype:
        weight = weight.to(flat_in.dtype)
    if weight is not None:
        weight = weight.detach().contiguous()
    if reduction == "none":
        losses = CrossEntropy.apply(flat_in, flat_t, weight, int(ignore_index), float(label_smoothing), "none")
        if spatial is not None:
            return losses.reshape(spatial)
        return losses.reshape(()) if squeeze else losses
    return CrossEntropy.apply(flat_in, flat_t.contiguous(), weight, int(ignore_index), float(label_smoothing),
                              reduction)


# =====================================================================================================
# linear algebra
# =====================================================================================================
class MatMul(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _wrap(_K.matmul(a._a, b._a))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if na else None), (g * a if nb else None)
        if a.ndim == 1:   # (k) @ (..., k, n) -> (..., n)
            if na:
                ga = matmul(g.unsqueeze(-2), b.mT).squeeze(-2)
            if nb:
                gb = matmul(a.unsqueeze(-1), g.unsqueeze(-2))
            return ga, gb
        if b.ndim == 1:   # (..., m, k) @ (k) -> (..., m)
            if na:
                ga = matmul(g.unsqueeze(-1), b.unsqueeze(-2))
            if nb:
                gb = matmul(a.mT, g.unsqueeze(-1)).squeeze(-1)
            return ga, gb
        if na:
            ga = matmul(g, b.mT)
        if nb:
            gb = matmul(a.mT, g)
        return ga, gb


@register()
def matmul(input, other):
    """Matrix product with PyTorch's 1-d promotion and batch broadcasting."""
    if isinstance(input, Tensor):
        return _matmul_dunder(input, other)  # the kernel directly when nothing is recorded
    return MatMul.apply(input, other)


def mm(input, mat2):
    """2-d matrix product."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expected 2-d tensors, got {input.ndim}-d and {mat2.ndim}-d")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched (3-d) matrix product without broadcasting."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ValueError(f"bmm: expected 3-d tensors, got {input.ndim}-d and {mat2.ndim}-d")
    if input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm: batch sizes differ: {input.shape[0]} vs {mat2.shape[0]}")
    return matmul(input, mat2)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise ValueError("dot: 1D tensors expected")
    return matmul(input, other)


vdot = inner = dot


def outer(input, vec2):
    return input.unsqueeze(1) * vec2.unsqueeze(0)


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    out = matmul(mat1, mat2)
    if alpha != 1:
        out = out * alpha
    return out + (input if beta == 1 else input * beta)


@register()
def einsum(equation, *operands):
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)`` (explicit or implicit output, ``...``).

    Operands are aligned on a common index order by views, multiplied with broadcasting and the
    contracted indices summed; a two-operand contraction runs as one batched matmul.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum(): {len(terms)} operand subscripts for {len(operands)} operands")
    # expand '...' into private letters
    ell = None
    spec = []
    for term, op in zip(terms, operands):
        if "..." in term:
            n = op.ndim - (len(term) - 3)
            if n < 0:
                raise ValueError(f"einsum(): subscripts {term!r} do not match operand with {op.ndim} dims")
            ell = n if ell is None else builtins.max(ell, n)
            term = term.replace("...", "".join(chr(0x100 + i) for i in range(ell - n, ell)))
        if len(term) != op.ndim:
            raise ValueError(f"einsum(): subscripts {term!r} do not match operand of shape {tuple(op.shape)}")
        spec.append(term)
    ell_letters = "".join(chr(0x100 + i) for i in range(ell or 0))
    if arrow:
        out = rhs.replace("...", ell_letters)
    else:
        counts = {}
        for t in spec:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell_letters + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell_letters))
    letters = list(dict.fromkeys(out + "".join(spec)))
    sizes = {}
    aligned = []
    for t, op in zip(spec, operands):
        # diagonal (repeated index in one operand) via gather of the diagonal
        while len(set(t)) != len(t):
            c = next(ch for ch in t if t.count(ch) > 1)
            i, j = t.index(c), t.index(c, t.index(c) + 1)
            n = op.shape[i]
            op = op.movedim((i, j), (-2, -1))
            idx = arange(n).reshape(*([1] * (op.ndim - 2)), n, 1).expand(*op.shape[:-2], n, 1)
            op = op.gather(op.ndim - 1, idx).squeeze(-1)
            t = t[:i] + t[i + 1:j] + t[j + 1:] + c
        for c, s_ in zip(t, op.shape):
            if c in sizes and sizes[c] != s_ and 1 not in (sizes[c], s_):
                raise ValueError(f"einsum(): index {c!r} has sizes {sizes[c]} and {s_}")
            sizes[c] = builtins.max(sizes.get(c, 1), s_)
        perm = sorted(range(len(t)), key=lambda k: letters.index(t[k]))
        v = op.permute(*perm) if perm != list(range(len(t))) else op
        present = [t[k] for k in perm]
        shape = [v.shape[present.index(c)] if c in present else 1 for c in letters]
        aligned.append(v.reshape(*shape))
    contracted = [k for k, c in enumerate(letters) if c not in out]
    if len(aligned) == 2 and contracted:
        # batched matmul: free letters of A (m), of B (n), shared kept (batch), contracted (k)
        a, b = aligned
        res = (a * b).sum(contracted) if builtins.any(a.shape[k] != b.shape[k] and 1 not in (a.shape[k], b.shape[k])
                                                      for k in contracted) else _einsum_mm(a, b, contracted)
    else:
        res = aligned[0]
        for v in aligned[1:]:
            res = res * v
        if contracted:
            res = res.sum(contracted)
    kept = [c for c in letters if c in out]
    shape_now = [res.shape[kept.index(c)] if c in kept else 1 for c in kept]
    res = res.reshape(*shape_now) if tuple(res.shape) != tuple(shape_now) else res
    perm = [kept.index(c) for c in out]
    return res.permute(*perm) if perm != list(range(len(perm))) else res


def _einsum_mm(a, b, contracted):
    """sum over ``contracted`` dims of a*b (aligned, broadcastable) as one batched matmul."""
    nd = a.ndim
    keep = [k for k in range(nd) if k not in contracted]
    a_only = [k for k in keep if a.shape[k] != 1 and b.shape[k] == 1]
    b_only = [k for k in keep if b.shape[k] != 1 and a.shape[k] == 1]
    batch = [k for k in keep if k not in a_only and k not in b_only]
    sz = lambda t, ks: [t.shape[k] for k in ks]  # noqa: E731
    bshape = [builtins.max(a.shape[k], b.shape[k]) for k in batch]
    A = a.permute(*(batch + a_only + b_only + contracted)).reshape(
        *[a.shape[k] for k in batch], int(np.prod(sz(a, a_only))) if a_only else 1,
        int(np.prod(sz(a, contracted))))
    B = b.permute(*(batch + contracted + a_only + b_only)).reshape(
        *[b.shape[k] for k in batch], int(np.prod(sz(b, contracted))),
        int(np.prod(sz(b, b_only))) if b_only else 1)
    r = matmul(A, B).reshape(*bshape, *sz(a, a_only), *sz(b, b_only))
    # r's dims are ordered batch + a_only + b_only; put them back in original order
    order = batch + a_only + b_only
    inv = sorted(range(len(order)), key=lambda i: order[i])
    return r.permute(*inv) if inv != list(range(len(inv))) else r


_ACT = {None: 0, "relu": 1, "gelu": 2}


class Linear(Function):
    """y = act(x @ W^T + b) with the activation fused into the GEMM epilogue."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, w, b, act):
        y = _wrap(_K.linear(x._a, w._a, None if b is None else b._a, _ACT[act]))
        ctx.save_for_backward(x, w, y if act == "relu" else None)
        ctx.act = act
        if act == "gelu":
            ctx.pre = _wrap(_K.linear(x._a, w._a, None if b is None else b._a, 0))
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        if ctx.act == "relu":
            g = _wrap(_K.binary(B_RELU_GRAD, g._a, y._a))
        elif ctx.act == "gelu":
            g = _wrap(_K.binary(B_GELU_GRAD, g._a, ctx.pre._a))
        nx, nw, nb = ctx.needs_input_grad[:3]
        gx = matmul(g, w) if nx else None
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        gw = gb = None
        if nw:
            x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
            gw = matmul(g2.t(), x2)
        if nb:
            gb = g2.sum(0)
        return gx, gw, gb, None


@register()
def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (one fused GEMM call)."""
    return Linear.apply(input, weight, bias, None)


def _linear_act(input, weight, bias, act):
    """Linear with a fused activation epilogue ('relu' or 'gelu'), used by nn.Sequential fusion."""
    return Linear.apply(input, weight, bias, act)


# =====================================================================================================
# shape / view ops (no copies where strides allow)
# =====================================================================================================
class _View(Function):
    """Generic view op: forward maps the array, backward maps the gradient back."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, fwd, bwd):
        ctx.bwd = bwd
        ctx.shape = x._a.shape
        return _alias(x, fwd(x._a))

    @staticmethod
    def backward(ctx, g):
        return ctx.bwd(g, ctx.shape), None, None


def _view_op(x, fwd, bwd):
    if _state.enabled and x.requires_grad:
        return _View.apply(x, fwd, bwd)
    return _View.forward(_NO_CTX, x, fwd, bwd)  # nothing recorded: skip apply's argument scan


def _reshape_back(g, shape):
    return g.reshape(*shape)


@register()
def reshape(input, *shape):
    """Same data with a new shape (a view when strides allow, else a copy)."""
    shape = _shape_arg(shape, "reshape")
    if list(input._a.shape) == shape:
        return _view_op(input, lambda a: a, _reshape_back)
    return _view_op(input, lambda a: a.reshape(shape), _reshape_back)


def _alias(t, a=None):
    """A tensor on ``a`` (default: t's own array), a view of t's storage: its _base is t's base."""
    out = _wrap(t._a if a is None else a)
    out._base = t if t._base is None else t._base
    return out


def view(input, *shape):
    """A view with a new shape; raises when the strides do not allow it (use reshape)."""
    if len(shape) == 1 and isinstance(shape[0], type(float32)):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    shape = _shape_arg(shape, "view")
    return _view_op(input, lambda a: a.view(shape), _reshape_back)


def flatten(input, start_dim=0, end_dim=-1):
    """Flatten dims ``start_dim..end_dim`` into one."""
    nd = input.ndim
    if nd == 0:
        return reshape(input, 1)
    s = start_dim % nd
    e = end_dim % nd
    if s > e:
        raise ValueError("flatten() has invalid args: start_dim cannot come after end_dim")
    shp = list(input.shape)
    new = shp[:s] + [int(np.prod(shp[s:e + 1]))] + shp[e + 1:]
    return reshape(input, new)


def unflatten(input, dim, sizes):
    shp = list(input.shape)
    d = dim % len(shp)
    return reshape(input, shp[:d] + list(sizes) + shp[d + 1:])


def _squeeze_back(g, shape):
    return g.reshape(*shape)


@register()
def squeeze(input, dim=None):
    """Remove size-1 dims (all, or the given ones)."""
    dims = [] if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    return _view_op(input, lambda a: a.squeeze(dims), _squeeze_back)


@register()
def unsqueeze(input, dim):
    """Insert a size-1 dim at ``dim``."""
    return _view_op(input, lambda a: a.unsqueeze(dim), _squeeze_back)


@register()
def permute(input, *dims):
    """Reorder dims (a view)."""
    dims = _shape_arg(dims, "permute")

    def back(g, shape):
        nd = len(dims)
        inv = [0] * nd
        for i, d in enumerate(dims):
            inv[d % nd] = i
        return g.permute(*inv)

    return _view_op(input, lambda a: a.permute(dims), back)


@register()
def transpose(input, dim0, dim1):
    """Swap two dims (a view)."""
    return _view_op(input, lambda a: a.transpose(dim0, dim1), lambda g, shape: g.transpose(dim0, dim1))


swapaxes = swapdims = transpose


def t(input):
    """Transpose a tensor of at most 2 dims."""
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def movedim(input, source, destination):
    nd = input.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % nd for s in src]
    dst = [d % nd for d in dst]
    order = [i for i in range(nd) if i not in src]
    perm = [None] * nd
    for s, d in zip(src, dst):
        perm[d] = s
    it = iter(order)
    perm = [p if p is not None else next(it) for p in perm]
    return permute(input, *perm)


moveaxis = movedim


@register()
def expand(input, *sizes):
    """Broadcast size-1 dims to ``sizes`` without copying (-1 keeps a size)."""
    sizes = _shape_arg(sizes, "expand")
    return _view_op(input, lambda a: a.expand(sizes), lambda g, shape: sum_to_shape(g, shape))


def expand_as(input, other):
    return expand(input, *other.shape)


def broadcast_to(input, shape):
    return expand(input, *shape)


def broadcast_shapes(*shapes):
    out = []
    for s in shapes:
        out = _C.broadcast_shapes(list(out), list(s))
    return Size(out)


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, *shape) for t in tensors)


def narrow(input, dim, start, length):
    """Slice ``length`` elements of ``dim`` starting at ``start`` (a view)."""
    n = input.shape[dim]
    if start < 0:
        start += n
    if start < 0 or length < 0 or start + length > n:
        raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size ({n})")
    return _slice(input, dim, start, start + length, 1)


def _slice(input, dim, start, stop, step):
    def back(g, shape):
        z = _zeros_on(shape, g)
        _K.copy_(z._a.slice(dim, start, stop, step), g._a)
        return z

    return _view_op(input, lambda a: a.slice(dim, start, stop, step), back)


def diagonal(input, offset=0, dim1=0, dim2=1):
    if input.ndim != 2 or offset != 0:
        raise NotImplementedError("diagonal: only the main diagonal of 2-d tensors is supported")

    def back(g, shape):
        z = _zeros_on(shape, g)
        _K.copy_(z._a.diagonal(), g._a)
        return z

    return _view_op(input, lambda a: a.diagonal(), back)


def diag(input, diagonal=0):
    if diagonal != 0:
        raise NotImplementedError("diag: only diagonal=0 is supported")
    if input.ndim == 1:
        n = input.shape[0]
        return eye(n, dtype=input.dtype) * input.unsqueeze(0) if n else zeros(0, 0, dtype=input.dtype)
    return globals()["diagonal"](input).clone()


def trace(input):
    return diagonal(input).sum()


class Contiguous(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x):
        return _wrap(x._a.contiguous()) if not x._a.is_contiguous() else _alias(x)

    @staticmethod
    def backward(ctx, g):
        return g


def contiguous(input, memory_format=None):
    if input._a.is_contiguous():
        return input
    return Contiguous.apply(input)


class Clone(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x):
        return _wrap(x._a.clone())

    @staticmethod
    def backward(ctx, g):
        return g


@register()
def clone(input, memory_format=None):
    """A copy with its own storage (gradient flows through)."""
    return Clone.apply(input)


class Cast(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, code):
        ctx.code = x._a.dtype
        return _wrap(x._a.astype(code))

    @staticmethod
    def backward(ctx, g):
        if ctx.code < 4:
            return None, None
        return _wrap(g._a.astype(ctx.code)), None


class ToDevice(Function):
    """Copy to another device; the gradient is copied back to the source device."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, device_type, index):
        ctx.src = (x._a.device_type, x._a.device_index)
        return _wrap(_C.to_device(x._a, device_type, index))

    @staticmethod
    def backward(ctx, g):
        return _wrap(_dispatch.to_device(g._a, *ctx.src)), None, None


def _to(input, *args, dtype=None, device=None, copy=False, non_blocking=False):
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
            device = a.device  # .to(other): other's dtype and device
        elif isinstance(a, str) or type(a).__name__ == "device" or isinstance(a, int):
            device = a
        elif a is not None:
            dtype = a
    if device is not None:
        idx = _cuda_index(device)
        a = input._a
        if idx is None:
            if a.device_type:
                input, copy = ToDevice.apply(input, 0, 0), False
        elif not a.device_type or a.device_index != idx:
            input, copy = ToDevice.apply(input, 1, idx), False
    if dtype is None:
        return clone(input) if copy else input
    dt = to_dtype(dtype)
    if dt.code == input._a.dtype:
        return clone(input) if copy else input
    return Cast.apply(input, dt.code)


class Repeat(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, reps):
        shape = list(x._a.shape)
        reps = list(reps)
        if len(reps) < len(shape):
            raise ValueError("repeat: number of repeat dims can not be smaller than number of tensor dims")
        shape = [1] * (len(reps) - len(shape)) + shape
        ctx.shape = x._a.shape
        ctx.reps = reps
        ctx.ext = shape
        # expand an interleaved view (r0, s0, r1, s1, ...) then make it contiguous
        a = x._a.reshape(shape)
        inter = []
        for r, s in zip(reps, shape):
            inter += [1, s]
        a = a.reshape(inter)
        full_ = []
        for r, s in zip(reps, shape):
            full_ += [r, s]
        out = a.expand(full_).contiguous().reshape([r * s for r, s in zip(reps, shape)])
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        inter = []
        for r, s in zip(ctx.reps, ctx.ext):
            inter += [r, s]
        gg = g.reshape(*inter).sum(list(range(0, 2 * len(ctx.reps), 2)))
        return gg.reshape(*ctx.shape), None


@register()
def repeat(input, *sizes):
    """Tile the tensor ``sizes`` times along each dim (copies)."""
    return Repeat.apply(input, _shape_arg(sizes, "repeat"))


def tile(input, dims):
    dims = list(dims)
    if len(dims) < input.ndim:
        dims = [1] * (input.ndim - len(dims)) + dims
    return repeat(input, *dims)


def repeat_interleave(input, repeats, dim=None):
    if dim is None:
        input, dim = input.reshape(-1), 0
    if isinstance(repeats, Tensor):
        repeats = repeats.tolist()
    n = input.shape[dim]
    if isinstance(repeats, int):
        idx = arange(n).unsqueeze(1).expand(n, repeats).reshape(-1)
    else:
        idx = tensor(np.repeat(np.arange(n), repeats))
    return index_select(input, dim, idx)


class Flip(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        a = x._a
        idxs = a
        for d in dims:
            n = a.shape[d]
            idxs = _C.index_select(idxs, d, _C.arange(n - 1, -1, -1, 3)) if n else idxs
        return _wrap(idxs)

    @staticmethod
    def backward(ctx, g):
        return flip(g, ctx.dims), None


def flip(input, dims):
    """Reverse the order of elements along ``dims`` (copies)."""
    if isinstance(dims, int):
        dims = [dims]
    nd = builtins.max(input.ndim, 1)
    return Flip.apply(input, [d % nd for d in dims])


def fliplr(input):
    return flip(input, [1])


def flipud(input):
    return flip(input, [0])


def roll(input, shifts, dims=None):
    if dims is None:
        return roll(input.reshape(-1), shifts, 0).reshape(*input.shape)
    if isinstance(shifts, int):
        shifts, dims = [shifts], [dims] if isinstance(dims, int) else dims
    out = input
    for s, d in zip(shifts, dims):
        n = out.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            out = cat([out.narrow(d, n - s, s), out.narrow(d, 0, n - s)], d)
    return out


# ---- joining / splitting ----
class Cat(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, dim, *tensors):
        shapes = [t._a.shape for t in tensors]
        ref = shapes[0]
        nd = len(ref)
        d = dim % nd if nd else 0
        dt = tensors[0]._a.dtype
        for t in tensors[1:]:
            dt = _C.promote_types(dt, t._a.dtype)
        total = 0
        for i, s in enumerate(shapes):
            if len(s) != nd:
                raise ValueError(f"cat: tensors must have the same number of dimensions: got {nd} and {len(s)} "
                                 f"(tensor {i} has shape {tuple(s)})")
            for k in range(nd):
                if k != d and s[k] != ref[k]:
                    raise ValueError(f"cat: sizes of tensors must match except in dimension {d}. Expected size "
                                     f"{ref[k]} but got size {s[k]} for tensor number {i} in the list "
                                     f"(shapes {tuple(ref)} and {tuple(s)})")
            total += s[d]
        oshape = list(ref)
        oshape[d] = total
        a0 = tensors[0]._a  # the result lives on the inputs' device, which must be one
        if builtins.any(t._a.device_type for t in tensors):
            for t in tensors[1:]:
                if t._a.device_type != a0.device_type or t._a.device_index != a0.device_index:
                    raise _dispatch.mismatch(a0, t._a)
        out = _C.empty(oshape, dt) if not a0.device_type else _dispatch.new(oshape, dt, a0.device_index)
        off = 0
        sizes = []
        for t, s in zip(tensors, shapes):
            if s[d]:
                _K.copy_(out.slice(d, off, off + s[d], 1), t._a)
            off += s[d]
            sizes.append(s[d])
        ctx.d, ctx.sizes = d, sizes
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        outs = [None]
        off = 0
        for s in ctx.sizes:
            outs.append(g.narrow(ctx.d, off, s))
            off += s
        return tuple(outs)


@register()
def cat(tensors, dim=0):
    """Concatenate tensors along an existing dim."""
    tensors = [t for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"cat: expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
    # legacy: 1-d empty tensors are skipped
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    return Cat.apply(dim, *kept)


concat = concatenate = cat


@register()
def stack(tensors, dim=0):
    """Stack same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack expects a non-empty TensorList")
    s0 = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != s0:
            raise ValueError(f"stack expects each tensor to be equal size, but got {s0} at entry 0 and "
                             f"{tuple(t.shape)} at entry {i}")
    nd = len(s0) + 1
    d = dim % nd
    return cat([t.unsqueeze(d) for t in tensors], d)


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


def split(tensor_, split_size_or_sections, dim=0):
    """Split into chunks of a size (last may be smaller) or of the given section sizes (views)."""
    n = tensor_.shape[dim]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0:
            raise ValueError(f"split expects split_size be positive, got {s}")
        sizes = [s] * (n // s) + ([n % s] if n % s else [])
        if n == 0:
            sizes = [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                             f"dimension {dim}), but got split_sizes={sizes}")
    out, off = [], 0
    for s in sizes:
        out.append(narrow(tensor_, dim, off, s))
        off += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    n = input.shape[dim]
    size = -(-n // chunks) if n else 1
    return split(input, size, dim)


def tensor_split(input, indices_or_sections, dim=0):
    n = input.shape[dim]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        base, extra = divmod(n, k)
        sizes = [base + 1] * extra + [base] * (k - extra)
    else:
        idx = [0] + list(indices_or_sections) + [n]
        sizes = [builtins.max(0, idx[i + 1] - idx[i]) for i in range(len(idx) - 1)]
    return split(input, sizes, dim)


def unbind(input, dim=0):
    """Remove ``dim``, returning the slices along it."""
    return tuple(select(input, dim, i) for i in range(input.shape[dim]))


def select(input, dim, index):
    def back(g, shape):
        z = _zeros_on(shape, g)
        _K.copy_(z._a.select(dim, index), g._a)
        return z

    return _view_op(input, lambda a: a.select(dim, index), back)


# ---- indexing ----
def _index_array(idx):
    """Convert an advanced index to an int64/bool Array."""
    if isinstance(idx, Tensor):
        a = idx._a
    else:
        arr = np.asarray(idx)
        if arr.dtype == object:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "f":
            if arr.size == 0:
                arr = arr.astype(np.int64)
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        a = _C.from_buffer(_c_contig(arr)).clone()
    if a.dtype == 4 or a.dtype == 5:
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return a


def _index_plan(shape, key):
    """Turn a __getitem__ key into a list of basic view steps and advanced (dim, Array) pairs."""
    if not isinstance(key, tuple):
        key = (key,)
    # count dims the key consumes
    consumed = 0
    has_ellipsis = False
    items = []
    for k in key:
        if k is Ellipsis:
            if has_ellipsis:
                raise IndexError("an index can only have a single ellipsis ('...')")
            has_ellipsis = True
            items.append(k)
        elif k is None:
            items.append(k)
        elif isinstance(k, bool):
            items.append(_index_array(np.array(k)))
        elif isinstance(k, (int, np.integer)) or (isinstance(k, Tensor) and k.ndim == 0 and k.dtype in (int64, int32, uint8)):
            consumed += 1
            items.append(int(k))
        elif isinstance(k, slice):
            consumed += 1
            items.append(k)
        else:
            a = _index_array(k)
            consumed += a.ndim if a.dtype == 0 else 1
            items.append(a)
    nd = len(shape)
    if consumed > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    if has_ellipsis:
        i = items.index(Ellipsis)
        items = items[:i] + [slice(None)] * (nd - consumed) + items[i + 1:]
    else:
        items = items + [slice(None)] * (nd - consumed)
    steps = []      # ('none', d) | ('int', d, i) | ('slice', d, start, stop, step)
    adv = []        # (d, Array) on the viewed array
    d = 0
    cur = list(shape)
    for k in items:
        if k is None:
            steps.append(("none", d))
            cur.insert(d, 1)
            d += 1
        elif isinstance(k, int):
            n = cur[d]
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {d} with size {n}")
            steps.append(("int", d, k))
            cur.pop(d)
        elif isinstance(k, slice):
            start, stop, step = k.start, k.stop, k.step
            if step is None:
                step = 1
            else:
                step = int(step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            n = cur[d]
            start = 0 if start is None else int(start)
            stop = n if stop is None else int(stop)
            steps.append(("slice", d, start, stop, step))
            if start < 0:
                start += n
            if stop < 0:
                stop += n
            start = builtins.min(builtins.max(start, 0), n)
            stop = builtins.min(builtins.max(stop, start), n)
            cur[d] = (stop - start + step - 1) // step
            d += 1
        else:
            if k.dtype == 0:   # bool mask over k.ndim dims
                ks = k.shape
                if tuple(cur[d:d + len(ks)]) != tuple(ks) and len(ks) > 0:
                    raise IndexError(f"The shape of the mask {list(ks)} at index {d} does not match the shape "
                                     f"of the indexed tensor {cur}")
                if len(ks) == 0:  # scalar bool: acts like None + mask
                    steps.append(("none", d))
                    cur.insert(d, 1)
                    nz = _C.nonzero(k.view([1]))
                    adv.append((d, nz.select(1, 0)))
                    d += 1
                    continue
                nz = _C.nonzero(k)
                for j in range(len(ks)):
                    adv.append((d + j, nz.select(1, j)))
                d += len(ks)
            else:
                adv.append((d, k))
                d += 1
    return steps, adv


def _apply_steps(a, steps):
    for s in steps:
        if s[0] == "none":
            a = a.unsqueeze(s[1])
        elif s[0] == "int":
            a = a.select(s[1], s[2])
        else:
            a = a.slice(s[1], s[2], s[3], s[4])
    return a


def _advanced_layout(v, adv):
    """Permutation, broadcast index shape and flat index for advanced indexing of view ``v``."""
    dims = [d for d, _ in adv]
    idx_arrays = [a for _, a in adv]
    bshape = []
    for a in idx_arrays:
        bshape = _C.broadcast_shapes(list(bshape), list(a.shape))
    rest = [d for d in range(v.ndim) if d not in dims]
    perm = dims + rest
    sizes = [v.shape[d] for d in dims]
    # flat (row-major) index into the advanced dims, with bounds checks
    flat = None
    stride = 1
    for d, a, n in reversed(list(zip(dims, idx_arrays, sizes))):
        ai = a.astype(3)
        arr = np.asarray(ai)
        if arr.size and (arr.min() < -n or arr.max() >= n):
            bad = arr[(arr < -n) | (arr >= n)].flat[0]
            raise IndexError(f"index {bad} is out of bounds for dimension {d} with size {n}")
        ai = _K.binary(B_REMAINDER, ai, _C.full([], float(n), 3)) if arr.size and arr.min() < 0 else ai
        term = _K.binary_scalar(B_MUL, ai, float(stride), False, False) if stride != 1 else ai
        flat = term if flat is None else _K.binary(B_ADD, flat, term)
        stride *= n
    flat = flat.expand(bshape).contiguous().reshape([-1])
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    return perm, list(bshape), sizes, rest, flat, adjacent, int(np.prod(sizes)) if sizes else 1


class Index(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, key):
        steps, adv = _index_plan(x._a.shape, key)
        v = _apply_steps(x._a, steps)
        ctx.shape, ctx.steps = x._a.shape, steps
        if not adv:
            ctx.adv = None
            out = _wrap(v)
            out._base = x if x._base is None else x._base
            return out
        perm, bshape, sizes, rest, flat, adjacent, nflat = _advanced_layout(v, adv)
        p = v.permute(perm).contiguous()
        rest_shape = [v.shape[d] for d in rest]
        src = p.reshape([nflat] + rest_shape)
        out = _C.index_select(src, 0, flat).reshape(bshape + rest_shape)
        nb = len(bshape)
        if adjacent and adv[0][0] > 0:
            # advanced dims stay in place: move the broadcast dims to the first advanced position
            first = adv[0][0]
            order = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, nb + len(rest)))
            out = out.permute(order)
        ctx.adv = (perm, bshape, sizes, rest_shape, flat, adjacent, nflat, adv[0][0], v.shape)
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        z = _zeros_on(ctx.shape, g)
        v = _apply_steps(z._a, ctx.steps)
        if ctx.adv is None:
            _K.copy_(v, g._a)
            return z, None
        perm, bshape, sizes, rest_shape, flat, adjacent, nflat, first, vshape = ctx.adv
        ga = g._a
        nb = len(bshape)
        if adjacent and first > 0:
            nr = len(rest_shape)
            order = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, nb + nr))
            inv = [0] * len(order)
            for i, o in enumerate(order):
                inv[o] = i
            ga = ga.permute(inv)
        ga = ga.reshape([-1] + rest_shape)
        acc = _C.zeros([nflat] + rest_shape, g._a.dtype)
        _C.index_put_(acc, 0, flat, ga, True)
        pshape = sizes + rest_shape
        acc = acc.reshape(pshape)
        inv = [0] * len(perm)
        for i, p_ in enumerate(perm):
            inv[p_] = i
        _K.copy_(v, acc.permute(inv))
        return z, None


def _getitem(self, key):
    if isinstance(key, int) and not isinstance(key, bool) and not self.requires_grad:
        out = _wrap(self._a.select(0, key))
        out._base = self if self._base is None else self._base
        return out
    return Index.apply(self, key)


class IndexPut(Function):
    """``x[key] = value`` recorded as an op: x's data is overwritten, x is rebased onto this node."""

    _builtin = True

    @staticmethod
    def forward(ctx, x, value, key):
        _setitem_raw(x, key, value)
        ctx.key = key
        ctx.vshape = value._a.shape if _is_tensor(value) else None
        out = _wrap(x._a)
        return out

    @staticmethod
    def backward(ctx, g):
        gx = g.clone()
        _setitem_raw(gx, ctx.key, 0.0)
        gv = None
        if ctx.needs_input_grad[1]:
            gv = Index.apply(g, ctx.key)
        return gx, gv, None


def _setitem_raw(x, key, value):
    steps, adv = _index_plan(x._a.shape, key)
    v = _apply_steps(x._a, steps)
    if not adv:
        if _is_tensor(value):
            _K.copy_(v, value._a)
        else:
            _K.fill_(v, float(value)) if v.ndim or True else None
        x._a.bump_version()
        return
    perm, bshape, sizes, rest, flat, adjacent, nflat = _advanced_layout(v, adv)
    rest_shape = [v.shape[d] for d in rest]
    if _is_tensor(value):
        val = value._a
    else:
        val = _C.full([], float(value), x._a.dtype)
    nb = len(bshape)
    # value broadcasts against the indexing result shape
    res_shape = bshape + rest_shape
    if adjacent and adv[0][0] > 0:
        first = adv[0][0]
        order = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, nb + len(rest)))
        res_view_shape = [res_shape[o] for o in order]
        val = val.expand(res_view_shape) if list(val.shape) != res_view_shape else val
        inv = [0] * len(order)
        for i, o in enumerate(order):
            inv[o] = i
        val = val.permute(inv)
    else:
        val = val.expand(res_shape)
    val = val.contiguous().reshape([-1] + rest_shape)
    pv = v.permute(perm)
    work = pv.contiguous()
    w2 = work.reshape([nflat] + rest_shape)
    _C.index_put_(w2, 0, flat, val, False)
    if not work.same_storage(pv):
        _K.copy_(pv, work)
    x._a.bump_version()


def _setitem(self, key, value):
    if not _is_tensor(value):
        _check_scalar(value, "__setitem__")
    needs = _state.enabled and (self.requires_grad or (_is_tensor(value) and value.requires_grad))
    if not needs:
        _setitem_raw(self, key, value)
        return
    _check_inplace(self)
    out = IndexPut.apply(self, value, key)
    self.grad_fn, self._out_idx, self.requires_grad = out.grad_fn, 0, True


def _check_inplace(t):
    if t.grad_fn is None and t.requires_grad and _state.enabled:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    base = t._base
    if base is not None and _state.enabled and base.requires_grad:
        raise RuntimeError("tocha: in-place modification of a view of a tensor that requires grad is not "
                           "supported by autograd; use an out-of-place op (e.g. torch.where / clone).")


class IndexSelect(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim, ctx.index = x._a.shape, dim, index
        return _wrap(_C.index_select(x._a, dim, index._a))

    @staticmethod
    def backward(ctx, g):
        z = _zeros_on(ctx.shape, g)._a
        if not ctx.shape:
            return _wrap(g._a.reshape([])), None, None
        _C.index_put_(z, ctx.dim, ctx.index._a.reshape([-1]), g._a, True)
        return _wrap(z), None, None


@register()
def index_select(input, dim, index):
    """Pick entries ``index`` (1-d) along ``dim``."""
    return IndexSelect.apply(input, int(dim), index)


class Gather(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim, ctx.index = x._a.shape, dim, index
        return _wrap(_C.gather(x._a, dim, index._a))

    @staticmethod
    def backward(ctx, g):
        z = _zeros_on(ctx.shape, g)
        if not ctx.shape:
            return g.reshape(()), None, None
        _C.scatter_add_(z._a, ctx.dim, ctx.index._a, g._a)
        return z, None, None


@register()
def gather(input, dim, index):
    """out[i][j] = input[i][index[i][j]] (for dim=1), same shape as ``index``."""
    return Gather.apply(input, int(dim), index)


class ScatterAdd(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim, index, src):
        out = x._a.clone()
        _C.scatter_add_(out, dim, index._a, src._a)
        ctx.dim, ctx.index = dim, index
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        gs = gather(g, ctx.dim, ctx.index) if ctx.needs_input_grad[3] else None
        return g, None, None, gs


@register()
def scatter_add(input, dim, index, src):
    """Out-of-place ``input.scatter_add_(dim, index, src)``."""
    return ScatterAdd.apply(input, int(dim), index, src)


class Scatter(Function):
    _builtin = True

    @staticmethod
    def forward(ctx, x, dim, index, src):
        out = x._a.clone()
        s = src._a if _is_tensor(src) else _C.full(index._a.shape, float(src), x._a.dtype)
        _C.scatter_(out, dim, index._a, s)
        ctx.dim, ctx.index = dim, index
        return _wrap(out)

    @staticmethod
    def backward(ctx, g):
        gx = g.clone()
        _C.scatter_(gx._a, ctx.dim, ctx.index._a, _C.zeros(ctx.index._a.shape, g._a.dtype))
        gs = gather(g, ctx.dim, ctx.index) if ctx.needs_input_grad[3] else None
        return gx, None, None, gs


@register()
def scatter(input, dim, index, src=None, value=None, reduce=None):
    """Out-of-place ``scatter_``: write ``src`` (tensor or scalar) at ``index`` along ``dim``."""
    if reduce is not None:
        if reduce == "add":
            s = src if _is_tensor(src) else full(tuple(index.shape), value if src is None else src, dtype=input.dtype)
            return scatter_add(input, dim, index, s)
        raise NotImplementedError(f"scatter reduce={reduce!r} is not supported")
    return Scatter.apply(input, int(dim), index, src if src is not None else value)


def index_add(input, dim, index, source, *, alpha=1):
    if alpha != 1:
        source = source * alpha
    sh = [1] * input.ndim
    d = dim % input.ndim
    sh[d] = index.shape[0]
    idx = index.reshape(sh).expand(*source.shape)
    return scatter_add(input, d, idx, source)


def masked_fill(input, mask, value):
    """Replace entries where ``mask`` is True with ``value``."""
    if mask.dtype is not bool_:
        raise TypeError(f"masked_fill only supports boolean masks, but got mask with dtype {mask.dtype}")
    v = value if _is_tensor(value) else full((), value, dtype=input.dtype)
    return where(mask, v.to(input.dtype), input)


def masked_select(input, mask):
    mask = mask.expand(*broadcast_shapes(input.shape, mask.shape))
    return input.expand(*mask.shape)[mask]


@register(differentiable=False)
def nonzero(input, *, as_tuple=False):
    """Indices of non-zero elements, (nnz, ndim) or a tuple of 1-d index tensors."""
    nz = _wrap(_C.nonzero(input._a))
    if as_tuple:
        return tuple(nz[:, i] for i in range(builtins.max(input.ndim, 1)))
    return nz


def argwhere(input):
    return nonzero(input)


def count_nonzero(input, dim=None):
    return (input != 0).sum(dim)


def take(input, index):
    return input.reshape(-1)[index]


def tril(input, diagonal=0):
    n, m = input.shape[-2], input.shape[-1]
    mask = arange(m).unsqueeze(0) <= arange(n).unsqueeze(1) + diagonal
    return where(mask, input, zeros((), dtype=input.dtype))


def triu(input, diagonal=0):
    n, m = input.shape[-2], input.shape[-1]
    mask = arange(m).unsqueeze(0) >= arange(n).unsqueeze(1) + diagonal
    return where(mask, input, zeros((), dtype=input.dtype))


def sort(input, dim=-1, descending=False, stable=False):
    a = np.asarray(input.detach()._a)
    idx = np.argsort(-a if descending else a, axis=dim, kind="stable")
    it = tensor(idx)
    return _MinMaxResult((gather(input, dim, it), it))


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending, stable)[1]


def topk(input, k, dim=-1, largest=True, sorted=True):
    vals, idx = sort(input, dim, descending=largest)
    idx = idx.narrow(dim, 0, k)
    return _MinMaxResult((gather(input, dim, idx), idx))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    a = np.asarray(input.detach()._a)
    res = np.unique(a, return_inverse=return_inverse, return_counts=return_counts)
    if not (return_inverse or return_counts):
        return tensor(res)
    return tuple(tensor(r.reshape(input.shape) if i == 1 and return_inverse else r) for i, r in enumerate(res))


def bincount(input, weights=None, minlength=0):
    a = np.asarray(input.detach()._a)
    w = None if weights is None else np.asarray(weights.detach()._a)
    return tensor(np.bincount(a, w, minlength))


def searchsorted(sorted_sequence, values, right=False):
    s = np.asarray(sorted_sequence.detach()._a)
    v = np.asarray(values.detach()._a) if _is_tensor(values) else values
    return tensor(np.searchsorted(s, v, side="right" if right else "left"))


def bucketize(input, boundaries, right=False):
    return searchsorted(boundaries, input, right=not right)


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = [t.numel() for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, t in enumerate(tensors):
        s = [1] * len(tensors)
        j = i
        if indexing == "xy" and len(tensors) >= 2 and i < 2:
            j = 1 - i
        s[j] = -1
        out.append(t.reshape(*s).expand(*shape))
    return tuple(out)


# =====================================================================================================
# gradient-reduction helper used by the engine
# =====================================================================================================
def sum_to_shape(g, shape):
    """Sum ``g`` over broadcast dims so its shape becomes ``shape``."""
    shape = tuple(shape)
    gs = tuple(g._a.shape)
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    dims = list(range(lead))
    for i, s in enumerate(shape):
        if s == 1 and gs[lead + i] != 1:
            dims.append(lead + i)
    if dims:
        g = sum(g, dims, keepdim=True)
    if lead:
        g = g.reshape(*shape)
    elif tuple(g._a.shape) != shape:
        g = g.reshape(*shape)
    return g


# =====================================================================================================
# in-place ops: direct kernel when nothing is recorded, else out-of-place op + rebase
# =====================================================================================================
def _rebase(self, out):
    """Make ``self`` carry ``out``'s value and graph position (in-place semantics under autograd)."""
    _K.copy_(self._a, out._a)
    self._a.bump_version()
    self.grad_fn, self._out_idx, self.requires_grad = out.grad_fn, out._out_idx, out.requires_grad
    return self


def _inplace_binary(code, fn):
    def op(self, other, *, alpha=None):
        if alpha is not None and alpha != 1:
            other = other * alpha
        if _state.enabled and (self.requires_grad or (_is_tensor(other) and other.requires_grad)):
            _check_inplace(self)
            return _rebase(self, fn(self, other))
        if _is_tensor(other):
            _K.binary_(code, self._a, other._a)
        else:
            _K.binary_scalar_(code, self._a, float(_check_scalar(other, "inplace")))
        return self

    return op


def _inplace_unary(fn, code=None):
    def op(self, *args, **kwargs):
        if _state.enabled and self.requires_grad:
            _check_inplace(self)
            return _rebase(self, fn(self, *args, **kwargs))
        if code is not None and not args and not kwargs:
            _K.unary_(code, self._a)
        else:
            r = fn(self, *args, **kwargs)
            _K.copy_(self._a, r._a)
            self._a.bump_version()
        return self

    return op


def _zero_(self):
    _check_inplace_nograd(self)
    _K.fill_(self._a, 0.0)
    self._a.bump_version()
    return self


def _fill_(self, value):
    _check_inplace_nograd(self)
    _K.fill_(self._a, float(value.item() if _is_tensor(value) else value))
    self._a.bump_version()
    return self


def _check_inplace_nograd(self):
    if _state.enabled and self.requires_grad:
        _check_inplace(self)
        if self.grad_fn is not None:
            # filling a non-leaf cuts its history: the result is a constant
            self.grad_fn = None
            self.requires_grad = False


def _copy_(self, src, non_blocking=False):
    if _state.enabled and (self.requires_grad or src.requires_grad):
        _check_inplace(self)
        return _rebase(self, src.to(self.dtype).expand(*self.shape) + zeros_like(self))
    _K.copy_(self._a, src._a)
    self._a.bump_version()
    return self


def _random_inplace(kind):
    def op(self, *args, generator=None, **kwargs):
        if _state.enabled and self.requires_grad and self.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if kind == "uniform":
            lo, hi = (args + (0.0, 1.0)[len(args):]) if len(args) < 2 else args[:2]
            lo = kwargs.get("a", kwargs.get("from_", lo))
            hi = kwargs.get("b", kwargs.get("to", hi))
            _with_gen(generator, lambda: _K.uniform_(self._a, float(lo), float(hi)))
        elif kind == "normal":
            m = kwargs.get("mean", args[0] if args else 0.0)
            s = kwargs.get("std", args[1] if len(args) > 1 else 1.0)
            _with_gen(generator, lambda: _K.normal_(self._a, float(m), float(s)))
        elif kind == "bernoulli":
            p = kwargs.get("p", args[0] if args else 0.5)
            _with_gen(generator, lambda: _K.bernoulli_(self._a, float(p)))
        elif kind == "random":
            lo, hi = (0, args[0]) if len(args) == 1 else args
            _with_gen(generator, lambda: _C.randint_(self._a, int(lo), int(hi)))
        self._a.bump_version()
        return self

    return op


def _dunder(fn, code, reflected):
    """Operator method: calls the kernel directly when nothing is recorded (the op's forward does
    exactly this), else goes through ``fn.apply`` so the backward rule is recorded."""
    if reflected:
        def op(self, other):
            if _state.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
                return fn.apply(other, self)
            return _binary_forward(code, other, self)
    else:
        def op(self, other):
            if _state.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
                return fn.apply(self, other)
            if isinstance(other, Tensor):
                return _wrap(_K.binary(code, self._a, other._a))
            return _binary_forward(code, self, other)
    return op


def _matmul_dunder(self, other):
    """``matmul(a, b)`` on tensors, and ``a @ b`` when the C fast path (csrc/bindings/tensor_base.cpp) hands
    over (autograd, CUDA, errors): the kernel directly when nothing is recorded (MatMul.forward does exactly
    this; saves the Function machinery), else MatMul.apply."""
    if (_state.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))) \
            or not isinstance(other, Tensor):
        return MatMul.apply(self, other)
    return MatMul.forward(_NO_CTX, self, other)


def _install_tensor_methods():
    T = Tensor
    # arithmetic operators
    T.__add__ = _dunder(Add, B_ADD, False)
    T.__radd__ = _dunder(Add, B_ADD, True)
    T.__sub__ = _dunder(Sub, B_SUB, False)
    T.__rsub__ = _dunder(Sub, B_SUB, True)
    T.__mul__ = _dunder(Mul, B_MUL, False)
    T.__rmul__ = _dunder(Mul, B_MUL, True)
    T.__truediv__ = _dunder(Div, B_DIV, False)
    T.__rtruediv__ = _dunder(Div, B_DIV, True)
    T.__floordiv__ = lambda s, o: floor_divide(s, o)
    T.__rfloordiv__ = lambda s, o: floor_divide(o, s)
    T.__mod__ = lambda s, o: remainder(s, o)
    T.__rmod__ = lambda s, o: remainder(o, s)
    T.__pow__ = lambda s, o: Pow.apply(s, o)
    T.__rpow__ = lambda s, o: Pow.apply(o, s)
    # ``@`` is the C base's slot (tensor_base.cpp): the kernel directly when nothing is recorded, else this
    _C._tensor_matmul_setup(_matmul_dunder)
    T.__neg__ = lambda s: neg(s)
    T.__pos__ = lambda s: s
    T.__abs__ = lambda s: abs(s)
    T.__invert__ = lambda s: logical_not(s) if s.dtype is bool_ else bitwise_not(s)
    T.__and__ = lambda s, o: bitwise_and(s, o)
    T.__or__ = lambda s, o: bitwise_or(s, o)
    T.__xor__ = lambda s, o: bitwise_xor(s, o)
    T.__rand__ = lambda s, o: bitwise_and(s, o)
    T.__ror__ = lambda s, o: bitwise_or(s, o)
    T.__eq__ = lambda s, o: eq(s, o) if _is_tensor(o) or isinstance(o, numbers.Number) else NotImplemented
    T.__ne__ = lambda s, o: ne(s, o) if _is_tensor(o) or isinstance(o, numbers.Number) else NotImplemented
    T.__lt__ = lambda s, o: lt(s, o)
    T.__le__ = lambda s, o: le(s, o)
    T.__gt__ = lambda s, o: gt(s, o)
    T.__ge__ = lambda s, o: ge(s, o)
    T.__hash__ = lambda s: id(s)
    T.__getitem__ = _getitem
    T.__setitem__ = _setitem
    # in-place operators
    T.__iadd__ = T.add_ = _inplace_binary(B_ADD, add)
    T.__isub__ = T.sub_ = _inplace_binary(B_SUB, sub)
    T.__imul__ = T.mul_ = _inplace_binary(B_MUL, mul)
    T.__itruediv__ = T.div_ = _inplace_binary(B_DIV, div)
    T.__ipow__ = T.pow_ = _inplace_binary(B_POW, pow)
    T.clamp_ = _inplace_unary(clamp)
    T.clip_ = T.clamp_
    T.relu_ = _inplace_unary(relu, U_RELU)
    T.sigmoid_ = _inplace_unary(sigmoid, U_SIGMOID)
    T.tanh_ = _inplace_unary(tanh, U_TANH)
    T.exp_ = _inplace_unary(exp, U_EXP)
    T.log_ = _inplace_unary(log, U_LOG)
    T.sqrt_ = _inplace_unary(sqrt, U_SQRT)
    T.neg_ = _inplace_unary(neg, U_NEG)
    T.abs_ = _inplace_unary(abs, U_ABS)
    T.floor_ = _inplace_unary(floor, U_FLOOR)
    T.round_ = _inplace_unary(round)
    T.masked_fill_ = _inplace_unary(masked_fill)
    T.scatter_ = _inplace_unary(scatter)
    T.scatter_add_ = _inplace_unary(scatter_add)
    T.index_add_ = _inplace_unary(index_add)
    T.lerp_ = _inplace_unary(lerp)
    T.zero_ = _zero_
    T.fill_ = _fill_
    T.copy_ = _copy_
    T.uniform_ = _random_inplace("uniform")
    T.normal_ = _random_inplace("normal")
    T.bernoulli_ = _random_inplace("bernoulli")
    T.random_ = _random_inplace("random")

    def _addcmul_(self, t1, t2, value=1):
        return self.add_(t1 * t2 * value)

    def _addcdiv_(self, t1, t2, value=1):
        return self.add_(t1 / t2 * value)

    T.addcmul_ = _addcmul_
    T.addcdiv_ = _addcdiv_
    # methods that mirror functions (self first)
    for name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "remainder", "fmod",
                 "hypot", "floor_divide", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                 "logical_xor", "logical_not", "bitwise_not", "where", "clamp", "clip", "sum", "mean", "prod",
                 "max", "min", "amax", "amin", "argmax", "argmin", "all", "any", "var", "std", "logsumexp",
                 "cumsum", "cumprod", "norm", "softmax", "log_softmax", "matmul", "mm", "bmm", "dot",
                 "outer", "reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "permute",
                 "transpose", "t", "expand", "expand_as", "broadcast_to", "narrow", "contiguous", "clone",
                 "repeat", "tile", "repeat_interleave", "flip", "roll", "split", "chunk", "tensor_split",
                 "unbind", "select", "index_select", "gather", "scatter", "scatter_add", "index_add",
                 "masked_fill", "masked_select", "nonzero", "argwhere", "count_nonzero", "take", "tril",
                 "triu", "sort", "argsort", "topk", "unique", "isclose", "allclose", "equal", "movedim",
                 "swapaxes", "diagonal", "diag", "trace", "lerp", "isnan", "isinf", "isfinite", "round",
                 "fix", "sign", "floor", "ceil", "trunc", "frac", "neg", "abs", "exp", "log", "sqrt",
                 "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "log1p", "expm1", "reciprocal",
                 "square", "erf", "atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
                 "log10", "exp2", "silu", "mish", "var_mean", "std_mean", "bincount", "dist", "addmm",
                 "true_divide", "multiply", "subtract", "divide", "greater", "less", "greater_equal",
                 "less_equal", "not_equal", "arctan2", "float_power", "fmax", "fmin", "inner",
                 "swapdims", "moveaxis", "ger", "vdot", "bernoulli", "multinomial"):
        setattr(T, name, globals()[name])
    T.to = _to
    T.type_as = lambda s, o: _to(s, o.dtype)
    T.float = lambda s: _to(s, float32)
    T.double = lambda s: _to(s, float64)
    T.long = lambda s: _to(s, int64)
    T.int = lambda s: _to(s, int32)
    T.bool = lambda s: _to(s, bool_)
    T.byte = lambda s: _to(s, uint8)
    T.half = lambda s: _to(s, float32)

    def _type(self, dtype=None):
        if dtype is None:
            return "tocha." + {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
                               "int32": "IntTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}[self.dtype.name]
        return _to(self, dtype)

    T.type = _type
    T.new_zeros = lambda s, *size, dtype=None, device=None, requires_grad=False: zeros(
        *size, dtype=dtype or s.dtype, device=_like_device(s, device), requires_grad=requires_grad)
    T.new_ones = lambda s, *size, dtype=None, device=None, requires_grad=False: ones(
        *size, dtype=dtype or s.dtype, device=_like_device(s, device), requires_grad=requires_grad)
    T.new_full = lambda s, size, v, dtype=None, device=None, requires_grad=False: full(
        size, v, dtype=dtype or s.dtype, device=_like_device(s, device), requires_grad=requires_grad)
    T.new_empty = lambda s, *size, dtype=None, device=None, requires_grad=False: empty(
        *size, dtype=dtype or s.dtype, device=_like_device(s, device), requires_grad=requires_grad)
    T.new_tensor = lambda s, data, dtype=None, device=None, requires_grad=False: tensor(
        data, dtype=dtype or s.dtype, device=_like_device(s, device), requires_grad=requires_grad)


_install_tensor_methods()
