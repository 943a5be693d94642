"""tocha — a PyTorch-like deep-learning framework with hand-written C++ kernels.

``import tocha as torch`` goes a long way: tensors, autograd, ``nn``, ``optim`` and
``utils.data`` mirror PyTorch names and defaults.
"""

import os as _os

# OpenMP threads spin-wait between parallel regions. With libgomp's default (300000 spins) two processes that
# both run 2-thread kernels on a 2-core machine (tests beside a training run, two trainings) can make every
# parallel region wait for a descheduled spinning thread: measured 3.3 s instead of 0.4-0.5 s for the same
# GEMM loop. 10000 spins measured no cost on an idle machine (GEMM, 65K-4M elementwise, MLP step) and kept
# the concurrent case at 0.5 s. Read by libgomp when tocha._C loads it; a value the user set wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from . import _C
from ._dtype import (bool_ as bool, device, dtype, float32, float64, get_default_dtype, int32, int64,
                     set_default_dtype, uint8)
from ._tensor import Size, Tensor
from . import _ops
from ._ops import *  # noqa: F401,F403  (public op functions)
from ._ops import OPS, Generator, abs, all, any, max, min, pow, round, sum  # noqa: F401
from . import autograd
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from . import cuda

float = float32
double = float64
long = int64
int = int32
half = float32  # no float16 kernels yet: half maps to float32 storage
cfloat = None

__version__ = "0.1.0"

FloatTensor = DoubleTensor = LongTensor = Tensor


def set_num_threads(n):
    """Set the number of OpenMP threads used by CPU kernels."""
    _C.set_num_threads(n)


def get_num_threads():
    """Number of OpenMP threads used by CPU kernels."""
    return _C.get_num_threads()


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(t):
    return t.numel()


def is_floating_point(t):
    return t.is_floating_point()


def typename(t):
    return t.type()


def _lazy(name):
    import importlib

    return importlib.import_module("." + name, __name__)


def __getattr__(name):
    if name in ("nn", "optim", "utils", "datasets", "transforms", "serialization"):
        mod = _lazy(name)
        globals()[name] = mod
        return mod
    if name in ("save", "load"):
        return getattr(_lazy("serialization"), name)
    raise AttributeError(f"module 'tocha' has no attribute {name!r}")
