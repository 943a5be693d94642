"""tocha.cuda: device queries. This build's CUDA backend status is reported honestly.

``is_available()`` is False when tocha was built without CUDA (the default ``pip install .``) or
when no GPU is visible; moving a tensor to "cuda" then raises a RuntimeError saying which.
A build with ``-Ccmake.define.TOCHA_CUDA=ON`` has the CUDA kernels, the caching allocator and
``_C.to_device``; tensors move with ``.to("cuda")`` / ``.cuda()`` / ``device=`` and their ops dispatch
to the CUDA kernels through ``tocha._dispatch`` (ops without a CUDA kernel raise NotImplementedError).
"""

from . import _C


def is_available():
    """True when tocha was built with CUDA and a GPU is visible."""
    return bool(getattr(_C, "has_cuda", False)) and device_count() > 0


def device_count():
    """Number of visible CUDA GPUs; 0 when not built with CUDA or without a driver/GPU."""
    if not getattr(_C, "has_cuda", False):
        return 0
    return int(_C.cuda_device_count())


_current = [0]


def _require(index=None):
    """Return when CUDA tensors can be made (on ``index``); else raise the RuntimeError saying why."""
    if not getattr(_C, "has_cuda", False):
        raise RuntimeError(
            "tocha was built without CUDA support (the default CPU build). Rebuild with "
            "`pip install . -Ccmake.define.TOCHA_CUDA=ON` on a machine with nvcc to use device='cuda'.")
    n = device_count()
    if n == 0:
        raise RuntimeError("tocha was built with CUDA but no CUDA GPU is visible (torch.cuda.is_available() "
                           f"would be False here): {_C.cuda_device_status()}")
    if index is not None and index >= n:
        raise RuntimeError(f"CUDA error: invalid device ordinal (cuda:{index} requested, {n} device(s) visible)")


def current_device():
    """Index of the device that ``"cuda"`` (no index) means; 0 unless changed by ``set_device``."""
    return _current[0]


def set_device(device):
    """Make ``device`` (an index, "cuda:N" or a tocha.device) the default CUDA device."""
    from ._dtype import to_device

    d = to_device(device)
    idx = d.index if d.index is not None else 0
    _require(idx)
    _current[0] = idx


def synchronize(device=None):
    """Wait for all queued kernels; raises RuntimeError for an earlier asynchronous kernel error."""
    if is_available():
        _C.cuda_synchronize()


def manual_seed(seed):
    from . import _ops

    _ops.manual_seed(seed)


manual_seed_all = manual_seed


def _built():
    return bool(getattr(_C, "has_cuda", False))


def memory_allocated(device=None):
    """Bytes held by live CUDA tensors (size-class rounded), all devices; 0 without CUDA."""
    return int(_C.cuda_memory_allocated()) if _built() else 0


def max_memory_allocated(device=None):
    """Peak of memory_allocated() since start or reset_peak_memory_stats()."""
    return int(_C.cuda_max_memory_allocated()) if _built() else 0


def memory_reserved(device=None):
    """Bytes obtained from cudaMalloc: live blocks plus the allocator's cache."""
    return int(_C.cuda_memory_reserved()) if _built() else 0


def reset_peak_memory_stats(device=None):
    if _built():
        _C.cuda_reset_peak_memory_stats()


def empty_cache():
    """Return cached, unused blocks to the driver (live tensors are untouched)."""
    if _built():
        _C.cuda_empty_cache()
