"""``tocha.Tensor``: a C++ ``Array`` plus autograd state.

Operators and most methods are attached by ``tocha._ops`` (where every op is defined once); this
file holds the state, properties, conversion and printing.
"""

import numpy as np

from . import _C
from ._dtype import _c_contig, CPU, DTYPES, device, float32, to_device, to_dtype

_new = _C._TensorBase.__new__


class Tensor(_C._TensorBase):
    """An n-dimensional array with autograd support, mirroring ``torch.Tensor``."""

    # ``_a`` (the C++ Array) is the C base's slot (csrc/bindings/tensor_base.cpp), which also implements ``@``.
    __slots__ = ("__weakref__", "__dict__")
    # Autograd state defaults live on the class, so wrapping a kernel's result sets only ``_a`` (``_wrap``:
    # ~0.1 us instead of ~0.35 us for eight slot writes); a tensor gets its own value when one is assigned.
    requires_grad = False
    grad = None
    grad_fn = None
    _out_idx = 0
    _hooks = None
    _base = None
    _retains = False

    def __new__(cls, *args, **kwargs):
        return _new(cls)

    def __init__(self, *args, dtype=None, device=None, requires_grad=False):
        # torch.Tensor(data) / torch.Tensor(*sizes): a float32 tensor
        from . import _ops

        if len(args) == 1 and not isinstance(args[0], int):
            src = _ops.tensor(args[0], dtype=dtype or float32)
        else:
            src = _ops.empty(*args, dtype=dtype or float32)
        _init(self, src._a)
        self.requires_grad = requires_grad

    # ---------------- basic properties ----------------
    @property
    def shape(self):
        return Size(self._a.shape)

    def size(self, dim=None):
        s = self._a.shape
        if dim is None:
            return Size(s)
        nd = len(s)
        if not -max(nd, 1) <= dim < max(nd, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
        return s[dim]

    @property
    def dtype(self):
        return DTYPES[self._a.dtype]

    @property
    def device(self):
        if self._a.device_type == 0:
            return CPU
        return device("cuda", self._a.device_index)

    @property
    def is_cuda(self):
        return self._a.device_type == 1

    @property
    def ndim(self):
        return self._a.ndim

    def dim(self):
        return self._a.ndim

    ndimension = dim

    def numel(self):
        return self._a.numel

    nelement = numel

    def element_size(self):
        return self._a.itemsize

    @property
    def itemsize(self):
        return self._a.itemsize

    @property
    def nbytes(self):
        return self._a.itemsize * self._a.numel

    def stride(self, dim=None):
        s = self._a.strides
        return s if dim is None else s[dim]

    def storage_offset(self):
        return self._a.offset

    def data_ptr(self):
        return self._a.data_ptr

    def is_contiguous(self, memory_format=None):
        return self._a.is_contiguous()

    def is_floating_point(self):
        return self._a.dtype >= 4

    def is_complex(self):
        return False

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def _version(self):
        return self._a.version

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, other):
        self._a = other._a

    @property
    def T(self):
        nd = self._a.ndim
        return self.transpose(0, 1) if nd == 2 else self.permute(*range(nd - 1, -1, -1))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    # ---------------- autograd ----------------
    def requires_grad_(self, requires_grad=True):
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")
        if requires_grad and self._a.dtype < 4:
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``torch.Tensor.backward``)."""
        from .autograd.function import backward

        backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self):
        t = _wrap(self._a)
        return t

    def detach_(self):
        if self._base is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn = None
        self.requires_grad = False
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new grad."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            lst, item = self._hooks, hook
        else:
            node = self.grad_fn
            if node._hooks is None:
                node._hooks = {}
            lst = node._hooks.setdefault(self._out_idx, [])
            lst.append(hook)
            item = hook
        return _RemovableHandle(lst, item)

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None or self._retains:
            return
        import weakref

        ref = weakref.ref(self)

        def _keep(g):
            t = ref()
            if t is not None:
                t.grad = g.detach() if t.grad is None else t.grad + g.detach()

        self.register_hook(_keep)
        self._retains = True

    @property
    def retains_grad(self):
        return bool(self._retains)

    # ---------------- conversion ----------------
    def numpy(self, force=False):
        """A NumPy array sharing memory with this (CPU) tensor."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self._a.device_type != 0:
            raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy "
                            "the tensor to host memory first.")
        return np.asarray(self._a)

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self._a) if self._a.device_type == 0 else self.cpu().numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        a = self._a
        return (a if not a.device_type else _C.to_device(a, 0, 0)).item()

    def tolist(self):
        return np.asarray(self.detach().cpu()._a).tolist()

    def __len__(self):
        s = self._a.shape
        if not s:
            raise TypeError("len() of a 0-d tensor")
        return s[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._a.shape[0]))

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._a.dtype in (1, 2, 3) and self.numel() == 1:
            return int(self.item())
        raise TypeError("only integer tensors of a single element can be converted to an index")

    def __hash__(self):
        return id(self)

    def __reduce_ex__(self, protocol):
        # pickling (used by multiprocessing DataLoader workers) goes through NumPy
        return (_rebuild, (np.array(self.detach().cpu()._a), self.requires_grad))

    def __deepcopy__(self, memo):
        t = _wrap(self._a.clone())
        t.requires_grad = self.requires_grad
        if self.grad is not None:
            t.grad = _wrap(self.grad._a.clone())
        memo[id(self)] = t
        return t

    # ---------------- devices ----------------
    def cpu(self, memory_format=None):
        """This tensor on the CPU (itself when already there; a differentiable copy otherwise)."""
        return self if not self._a.device_type else self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to(device or "cuda")

    # ---------------- printing ----------------
    def __repr__(self):
        return _format(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self.ndim == 0:
            return format(self.item(), spec)
        return repr(self)


class Size(tuple):
    """Tensor shape (a tuple, like ``torch.Size``)."""

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return "tocha.Size([" + ", ".join(str(s) for s in self) + "])"


class _RemovableHandle:
    def __init__(self, lst, item):
        self._lst, self._item = lst, item

    def remove(self):
        try:
            self._lst.remove(self._item)
        except ValueError:
            pass


def _init(t, a):
    t._a = a
    t.requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._out_idx = 0
    t._hooks = None
    t._base = None
    t._retains = False


_C._tensor_class(Tensor)
# Wrap a C++ Array in a Tensor without copying (autograd state: the class defaults); in C: every op's result
# goes through it.
_wrap = _C._wrap


def _rebuild(arr, requires_grad):
    t = _wrap(_C.from_buffer(_c_contig(arr)).clone())
    t.requires_grad = requires_grad
    return t


def _format(t):
    a = np.asarray(t.detach().cpu()._a)
    extras = []
    dt = t.dtype
    if dt.is_floating_point:
        finite = a[np.isfinite(a)]
        int_valued = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        nz = np.abs(finite[finite != 0])
        big = nz.size > 0 and (nz.max() >= 1e8 or nz.min() < 1e-4 or nz.max() / nz.min() > 1e5)
        if big:
            f = lambda x: f"{x:.4e}"  # noqa: E731
        elif int_valued:
            f = lambda x: f"{x:.0f}." if np.isfinite(x) else str(x)  # noqa: E731
        else:
            f = lambda x: f"{x:.4f}" if np.isfinite(x) else str(x)  # noqa: E731
        kind = "float_kind"
    elif dt is DTYPES[0]:
        f, kind = str, "bool"
    else:
        f, kind = str, "int"
    # right-align every element to the widest one, as PyTorch does
    width = max((len(f(v)) for v in a.reshape(-1)[:2000]), default=0)
    fmt = {kind: lambda x: f(x).rjust(width)}
    if a.size == 0:
        body = "[]"
        extras.append(f"size={tuple(a.shape)}")
    else:
        body = np.array2string(a, separator=", ", prefix="tensor(", formatter=fmt, threshold=1000, edgeitems=3)
    if dt not in (float32, DTYPES[3], DTYPES[0]) or (dt is DTYPES[3] and a.size == 0):
        if not (dt is DTYPES[3] and a.size != 0):
            extras.append(f"dtype=tocha.{dt.name}")
    if t.device.type != "cpu":
        extras.insert(0, f"device='{t.device}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _as_device(d):
    return to_device(d)


def _as_dtype(d):
    return to_dtype(d)
