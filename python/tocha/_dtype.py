"""dtype and device objects (``tocha.float32``, ``tocha.device("cpu")``)."""

import numpy as np


class dtype:
    """A tensor element type. Codes match the C++ ``DType`` enum."""

    __slots__ = ("name", "code", "itemsize", "is_floating_point", "is_signed", "np")

    def __init__(self, name, code, itemsize, is_floating_point, is_signed, np_dtype):
        self.name = name
        self.code = code
        self.itemsize = itemsize
        self.is_floating_point = is_floating_point
        self.is_signed = is_signed
        self.np = np.dtype(np_dtype)

    @property
    def is_complex(self):
        return False

    def __repr__(self):
        return "tocha." + self.name

    def __reduce__(self):
        return (_dtype_by_name, (self.name,))


bool_ = dtype("bool", 0, 1, False, False, np.bool_)
uint8 = dtype("uint8", 1, 1, False, False, np.uint8)
int32 = dtype("int32", 2, 4, False, True, np.int32)
int64 = dtype("int64", 3, 8, False, True, np.int64)
float32 = dtype("float32", 4, 4, True, True, np.float32)
float64 = dtype("float64", 5, 8, True, True, np.float64)

DTYPES = (bool_, uint8, int32, int64, float32, float64)
_BY_NAME = {d.name: d for d in DTYPES}
_BY_NP = {d.np: d for d in DTYPES}

_default_dtype = [float32]


def _dtype_by_name(name):
    return _BY_NAME[name]


def get_default_dtype():
    """The dtype of floating tensors created from Python floats (float32 unless changed)."""
    return _default_dtype[0]


def set_default_dtype(d):
    """Set the default floating dtype (float32 or float64)."""
    if d not in (float32, float64):
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_dtype[0] = d


def from_numpy_dtype(npdt):
    """Map a NumPy dtype to a tocha dtype (float16 is widened by the caller)."""
    npdt = np.dtype(npdt)
    try:
        return _BY_NP[npdt]
    except KeyError:
        raise TypeError(
            f"can't convert np.ndarray of type {npdt}. The only supported types are: float64, float32, "
            "int64, int32, uint8, and bool.") from None


def to_dtype(d):
    """Accept a tocha dtype, a NumPy dtype / type, a name, or Python's float/int/bool."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return get_default_dtype()
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        key = {"float": "float32", "double": "float64", "long": "int64", "int": "int32",
               "half": "float32"}.get(d, d)
        if key.startswith("tocha."):
            key = key[6:]
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise TypeError(f"unknown dtype name {d!r}")
    mod = type(d).__module__
    if mod.startswith("torch"):
        return _BY_NAME[str(d).split(".")[-1]]
    try:
        return from_numpy_dtype(d)
    except TypeError:
        raise TypeError(f"expected a tocha dtype, got {d!r}") from None


class device:
    """A device: ``device("cpu")``, ``device("cuda")``, ``device("cuda", 0)``, ``device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device() expects a string, got {type!r}")
        if ":" in type:
            if index is not None:
                raise ValueError("device(): type string already names an index")
            type, idx = type.split(":", 1)
            try:
                index = int(idx)
            except ValueError:
                raise ValueError(f"invalid device string: {type}:{idx!r}") from None
        if type not in ("cpu", "cuda"):
            raise ValueError(f"Expected one of cpu, cuda device type at start of device string: {type}")
        if index is not None and index < 0:
            raise ValueError(f"device index must be non-negative, got {index}")
        self.type = type
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def to_device(d):
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    if isinstance(d, int):
        return device("cuda", d)
    return device(d)


def _c_contig(arr):
    """C-contiguous view/copy of ``arr`` that keeps 0-d arrays 0-d (np.ascontiguousarray does not)."""
    arr = np.asarray(arr)
    return arr if arr.flags.c_contiguous else np.array(arr, order="C")
