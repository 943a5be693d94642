"""Device dispatch for kernel calls: ``K.<kernel>(...)`` is where an op's forward/backward calls a kernel.

The op registry (``_ops.py``) defines every op once and calls its kernels through ``K`` instead of
``_C``. In a CPU-only build (the default) ``K`` *is* ``_C``, so a kernel call costs exactly what it
did before. In a CUDA build ``K`` is a module holding every ``_C`` function, with the kernels listed
in ``CUDA_KERNELS`` replaced by a wrapper that checks the input Array's ``device_type`` (an int
attribute: one cheap test, taken only when it is non-zero) and then calls the ``_C.cuda_*`` kernel.

Rules on CUDA inputs (as PyTorch):
* operands on different devices raise ``RuntimeError("Expected all tensors to be on the same device,
  but found at least two devices, cuda:0 and cpu!")`` (a 0-d CPU tensor next to a CUDA tensor is
  allowed and moved, like a Python scalar);
* an op with no CUDA kernel raises ``NotImplementedError`` naming the op and the device, either here
  (unsupported op codes of the wired kernels) or from the C++ CPU kernel, which refuses device
  storage (``Array::data_ptr``).
"""

import types

from . import _C

HAS_CUDA = bool(getattr(_C, "has_cuda", False))

# CPU kernel name (as called through K) -> the _C binding(s) implementing it on CUDA. Op names that
# reach these kernels are listed in CUDA_OPS; tests check both against csrc/bindings/bind_cuda.cpp.
CUDA_KERNELS = {
    "unary": ("cuda_unary",),
    "unary_": ("cuda_unary", "cuda_copy_"),
    "axpy_": ("cuda_binary", "cuda_copy_", "to_device"),
    "binary": ("cuda_binary",),
    "binary_scalar": ("cuda_binary", "to_device"),
    "binary_": ("cuda_binary", "cuda_copy_"),
    "binary_scalar_": ("cuda_binary", "cuda_copy_", "to_device"),
    "reduce": ("cuda_reduce",),
    "softmax": ("cuda_softmax",),
    "softmax_backward": ("cuda_softmax_backward",),
    "cross_entropy_forward": ("cuda_cross_entropy_forward", "to_device"),
    "cross_entropy_backward": ("cuda_cross_entropy_backward",),
    "matmul": ("cuda_matmul", "cuda_copy_", "cuda_empty"),
    "linear": ("cuda_matmul", "cuda_binary", "cuda_unary"),
    "uniform_": ("cuda_uniform_",),
    "normal_": ("cuda_normal_",),
    "bernoulli_": ("cuda_bernoulli_",),
    "layer_norm_forward": ("cuda_layer_norm_forward",),
    "layer_norm_backward": ("cuda_layer_norm_backward",),
    "copy_": ("cuda_copy_", "to_device"),
    "fill_": ("cuda_fill_",),
    "sgd_step_": ("cuda_sgd_step_",),
    "adam_step_": ("cuda_adam_step_",),
}

# Op codes (csrc/core/ops.h) with a CUDA kernel (csrc/cuda/kernels.cu: unary_supported / binary_supported).
# U_NEG U_ABS U_EXP U_LOG U_SQRT U_RSQRT U_SIN U_COS U_TANH U_SIGMOID U_RELU U_SQUARE U_RECIPROCAL U_LOG1P U_EXPM1,
# U_SIGN U_FLOOR U_CEIL U_ROUND U_TRUNC
CUDA_UNARY = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 19, 18, 16, 17, 12, 13, 14, 15, 25})
# B_ADD B_SUB B_MUL B_DIV B_POW B_MAXIMUM B_MINIMUM, comparisons B_EQ..B_GE, B_RELU_GRAD B_SIGMOID_GRAD B_TANH_GRAD
CUDA_BINARY = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 25, 26})
# R_SUM R_MAX R_MIN R_MEAN R_AMAX R_AMIN
CUDA_REDUCE = frozenset({0, 2, 3, 4, 5, 6})

# Registered ops whose forward and backward run entirely on CUDA kernels (tests/test_cuda.py runs
# each against the CPU on a GPU machine).
CUDA_OPS = (
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "square",
    "reciprocal", "log1p", "expm1", "sign", "floor", "ceil", "trunc", "round", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne",
    "lt", "le", "gt", "ge", "sum", "mean", "amax", "amin", "softmax", "log_softmax",
    "cross_entropy", "matmul", "mm", "linear", "clone", "contiguous", "layer_norm", "rms_norm",
)

_K_NAMES = {"unary": None, "binary": None, "reduce": None}  # filled lazily from _ops' U_/B_/R_ constants


def device_str(a):
    """'cpu' or 'cuda:N' for a C++ Array."""
    return "cpu" if not a.device_type else f"cuda:{a.device_index}"


def mismatch(a, b):
    """The PyTorch error for operands on two devices (the CUDA one named first)."""
    if not a.device_type:
        a, b = b, a
    return RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                        f"{device_str(a)} and {device_str(b)}!")


def _code_name(kind, code):
    names = _K_NAMES.get(kind)
    if names is None:
        from . import _ops

        prefix = {"unary": "U_", "binary": "B_", "reduce": "R_"}[kind]
        names = {v: k[2:].lower() for k, v in vars(_ops).items() if k.startswith(prefix) and isinstance(v, int)}
        _K_NAMES[kind] = names
    return names.get(code, f"{kind} op {code}")


_DT_NAMES = ("bool", "uint8", "int32", "int64", "float32", "float64")


def not_implemented(op, a, dtype=None):
    what = "" if dtype is None or dtype >= 4 else f" for {_DT_NAMES[dtype]}"
    return NotImplementedError(f"[{op}] has no CUDA kernel{what} yet (input on {device_str(a)}); move the "
                               "tensor to the CPU with .cpu() for this op")


if not HAS_CUDA:
    # CPU-only build: kernel calls go straight to the C++ module (zero dispatch overhead).
    K = _C

    def same_device(a, b):
        return b
else:
    K = types.ModuleType("tocha._kernels", "The _C kernels, with CUDA dispatch for CUDA_KERNELS")
    K.__dict__.update({k: v for k, v in vars(_C).items() if not k.startswith("__")})

    CPU_T, CUDA_T = 0, 1
    _U_RELU, _B_ADD, _B_MUL = 11, 0, 2
    _scalars = {}

    def same_device(a, b):
        """``b`` on ``a``'s device: returns ``b`` when they match, moves a 0-d CPU ``b``, else raises."""
        if a.device_type == b.device_type and a.device_index == b.device_index:
            return b
        if not b.device_type and b.ndim == 0:
            return _C.to_device(b, a.device_type, a.device_index)
        raise mismatch(a, b)

    def _pair(a, b):
        """Both operands on one device (0-d CPU tensors follow the other operand)."""
        if a.device_type == b.device_type and a.device_index == b.device_index:
            return a, b
        if not a.device_type and a.ndim == 0:
            return _C.to_device(a, b.device_type, b.device_index), b
        return a, same_device(a, b)

    def _scalar(s, dtype, index):
        """A cached 0-d device array holding ``s`` (never written: kernels only read their inputs)."""
        key = (s, dtype, index)
        v = _scalars.get(key)
        if v is None:
            if len(_scalars) > 1024:
                _scalars.clear()
            v = _scalars[key] = _C.to_device(_C.full([], s, dtype), CUDA_T, index)
        return v

    def unary(code, a):
        if a.device_type:
            if code not in CUDA_UNARY or a.dtype < 4:  # the CUDA unary kernels are float-only
                raise not_implemented(_code_name("unary", code), a, a.dtype)
            return _C.cuda_unary(code, a)
        return _C.unary(code, a)

    def unary_(code, a):
        if a.device_type:
            _C.cuda_copy_(a, unary(code, a))  # out-of-place kernel + copy back
            return None
        return _C.unary_(code, a)

    def axpy_(y, x, alpha):
        """y += alpha * x (gradient accumulation)."""
        if y.device_type or x.device_type:
            x = same_device(y, x)
            t = x if alpha == 1.0 else binary_scalar(_B_MUL, x, alpha, True, False)
            _C.cuda_copy_(y, _C.cuda_binary(_B_ADD, y, t))
            return None
        return _C.axpy_(y, x, alpha)

    def binary(code, a, b):
        if a.device_type or b.device_type:
            if code not in CUDA_BINARY:
                raise not_implemented(_code_name("binary", code), a if a.device_type else b)
            a, b = _pair(a, b)
            return _C.cuda_binary(code, a, b)
        return _C.binary(code, a, b)

    def _scalar_dtype(code, a, s, is_float):
        # the CPU kernel's rule (csrc/cpu/elementwise.cpp binary_scalar)
        if a.dtype >= 4:
            return a.dtype
        if is_float:
            return 4
        if a.dtype == 0:
            if s not in (0.0, 1.0) or code in (0, 1, 2, 4, 13, 14):  # add sub mul pow floordiv remainder
                return 3
            return 0
        return a.dtype

    def binary_scalar(code, a, s, is_float, reverse):
        if a.device_type:
            if code not in CUDA_BINARY:
                raise not_implemented(_code_name("binary", code), a)
            sv = _scalar(s, _scalar_dtype(code, a, s, is_float), a.device_index)
            return _C.cuda_binary(code, sv, a) if reverse else _C.cuda_binary(code, a, sv)
        return _C.binary_scalar(code, a, s, is_float, reverse)

    def binary_(code, a, b):
        if a.device_type or b.device_type:
            # out-of-place kernel + copy back (an extra pass; in-place CUDA kernels are future work)
            if not a.device_type:
                raise mismatch(a, b)
            out = binary(code, a, b)
            if list(out.shape) != list(a.shape):
                raise RuntimeError(f"output with shape {list(a.shape)} doesn't match the broadcast shape "
                                   f"{list(out.shape)}")
            _C.cuda_copy_(a, out)
            return None
        return _C.binary_(code, a, b)

    def binary_scalar_(code, a, s):
        if a.device_type:
            _C.cuda_copy_(a, binary_scalar(code, a, s, isinstance(s, float) and a.dtype >= 4, False))
            return None
        return _C.binary_scalar_(code, a, s)

    def reduce(code, a, dims, keepdim, dtype):
        if a.device_type:
            if code not in CUDA_REDUCE:
                raise not_implemented(_code_name("reduce", code), a)
            return _C.cuda_reduce(code, a, dims, keepdim, dtype)
        return _C.reduce(code, a, dims, keepdim, dtype)

    def softmax(a, dim, log):
        if a.device_type:
            return _C.cuda_softmax(a, dim, log)
        return _C.softmax(a, dim, log)

    def softmax_backward(g, y, dim, log):
        if g.device_type or y.device_type:
            return _C.cuda_softmax_backward(same_device(y, g), y, dim, log)
        return _C.softmax_backward(g, y, dim, log)

    def cross_entropy_forward(x, t, ignore_index, w, ls):
        if x.device_type or t.device_type:
            t = same_device(x, t)
            if w is not None:
                w = same_device(x, w)
            return _C.cuda_cross_entropy_forward(x, t, ignore_index, w, ls)
        return _C.cross_entropy_forward(x, t, ignore_index, w, ls)

    def cross_entropy_backward(g, lsm, t, ignore_index, w, ls):
        if lsm.device_type:
            return _C.cuda_cross_entropy_backward(same_device(lsm, g), lsm, t, ignore_index, w, ls)
        return _C.cross_entropy_backward(g, lsm, t, ignore_index, w, ls)

    def matmul(a, b):
        if a.device_type or b.device_type:
            b = same_device(a, b)
            return _cuda_matmul(a, b)
        return _C.matmul(a, b)

    def _cuda_matmul(a, b):
        # torch.matmul semantics on top of the 2-d CUDA GEMM: 1-d operands are promoted, batch dims
        # broadcast and run one GEMM per batch entry (a batched GEMM kernel is future work)
        if a.ndim == 2 and b.ndim == 2:
            return _C.cuda_matmul(a, b)
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                               f"{a.ndim}D and {b.ndim}D")
        a2 = a.reshape([1, a.shape[0]]) if a.ndim == 1 else a
        b2 = b.reshape([b.shape[0], 1]) if b.ndim == 1 else b
        if a2.ndim == 2 and b2.ndim == 2:
            out = _C.cuda_matmul(a2, b2)
        else:
            batch = list(_C.broadcast_shapes(list(a2.shape[:-2]), list(b2.shape[:-2])))
            M, N = a2.shape[-2], b2.shape[-1]
            ae = a2.expand(batch + list(a2.shape[-2:])).reshape([-1, M, a2.shape[-1]])
            be = b2.expand(batch + list(b2.shape[-2:])).reshape([-1, b2.shape[-2], N])
            first = _C.cuda_matmul(ae.select(0, 0), be.select(0, 0)) if ae.shape[0] else None
            dt = first.dtype if first is not None else max(a.dtype, b.dtype)
            out = _C.cuda_empty([ae.shape[0], M, N], dt, a.device_index)
            for i in range(ae.shape[0]):
                _C.cuda_copy_(out.select(0, i), first if i == 0 else _C.cuda_matmul(ae.select(0, i), be.select(0, i)))
            out = out.reshape(batch + [M, N])
        shape = list(out.shape)
        if a.ndim == 1:
            del shape[-2]
        if b.ndim == 1:
            del shape[-1]
        return out.reshape(shape)


    def linear(x, w, b, act):
        if x.device_type or w.device_type:
            w = same_device(x, w)
            if act == 2:
                raise not_implemented("linear(activation='gelu')", x)
            x2 = x.reshape([-1, x.shape[-1]]) if x.ndim != 2 else x
            y = _C.cuda_matmul(x2, w.transpose(0, 1))
            if b is not None:
                y = _C.cuda_binary(_B_ADD, y, same_device(x, b))
            if act == 1:
                y = _C.cuda_unary(_U_RELU, y)
            return y.reshape(list(x.shape[:-1]) + [w.shape[0]]) if x.ndim != 2 else y
        return _C.linear(x, w, b, act)

    def uniform_(a, lo, hi):
        return _C.cuda_uniform_(a, lo, hi) if a.device_type else _C.uniform_(a, lo, hi)

    def normal_(a, mean, std):
        return _C.cuda_normal_(a, mean, std) if a.device_type else _C.normal_(a, mean, std)

    def bernoulli_(a, p):
        return _C.cuda_bernoulli_(a, p) if a.device_type else _C.bernoulli_(a, p)

    def layer_norm_forward(x, w, b, d, eps, rms):
        if x.device_type:
            return _C.cuda_layer_norm_forward(x, w, b, d, eps, rms)
        return _C.layer_norm_forward(x, w, b, d, eps, rms)

    def layer_norm_backward(g, x, w, mean, rstd, d, rms):
        if x.device_type or g.device_type:
            return _C.cuda_layer_norm_backward(same_device(x, g), x, w, mean, rstd, d, rms)
        return _C.layer_norm_backward(g, x, w, mean, rstd, d, rms)

    def copy_(dst, src):
        if dst.device_type or src.device_type:
            if dst.device_type != src.device_type or dst.device_index != src.device_index:
                # cross-device copy_ (allowed, as in PyTorch): stage the source on dst's device
                src = _C.to_device(src, dst.device_type, dst.device_index)
                if not dst.device_type:
                    return _C.copy_(dst, src)
            return _C.cuda_copy_(dst, src)
        return _C.copy_(dst, src)

    def fill_(a, value):
        return _C.cuda_fill_(a, value) if a.device_type else _C.fill_(a, value)

    def _optim(name):
        cpu, gpu = getattr(_C, name), getattr(_C, "cuda_" + name, None)

        def step(p, *args):
            if p.device_type:
                if gpu is None:
                    raise not_implemented(name, p)
                return gpu(p, *args)
            return cpu(p, *args)

        step.__name__ = name
        return step

    sgd_step_ = _optim("sgd_step_")
    adam_step_ = _optim("adam_step_")

    for _name in CUDA_KERNELS:
        setattr(K, _name, globals()[_name])
    for _name in vars(_C):
        if _name.endswith("_step_") and _name not in CUDA_KERNELS:
            setattr(K, _name, _optim(_name))  # no CUDA kernel: a named NotImplementedError on CUDA
    del _name


def to_device(a, device_type, index):
    """``a`` copied to (device_type, index) (0 = CPU, 1 = CUDA); ``a`` itself when already there."""
    if a.device_type == device_type and (not device_type or a.device_index == index):
        return a
    return _C.to_device(a, device_type, index)


def host(a):
    """A CPU Array with ``a``'s values (``a`` itself when already on the CPU)."""
    return a if not a.device_type else _C.to_device(a, 0, 0)


def new(shape, dtype, index, fill=None):
    """An array of ``shape``/``dtype`` allocated on cuda:``index`` (filled with ``fill`` if given)."""
    a = _C.cuda_empty(shape, dtype, index)
    if fill is not None:
        _C.cuda_fill_(a, float(fill))
    return a
