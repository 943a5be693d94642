"""tocha.cuda: device queries. This build's CUDA backend status is reported honestly.

``is_available()`` is False when tocha was built without CUDA (the default ``pip install .``) or
when no GPU is visible; moving a tensor to "cuda" then raises a RuntimeError saying which.
"""

from . import _C


def is_available():
    """True when tocha was built with CUDA and a GPU is visible."""
    return bool(getattr(_C, "has_cuda", False)) and device_count() > 0


def device_count():
    if not getattr(_C, "has_cuda", False):
        return 0
    return int(_C.cuda_device_count())


def _require():
    if not getattr(_C, "has_cuda", False):
        raise RuntimeError(
            "tocha was built without CUDA support (the default CPU build). Rebuild with "
            "`pip install . -Ccmake.define.TOCHA_CUDA=ON` on a machine with nvcc to use device='cuda'.")
    if device_count() == 0:
        raise RuntimeError("tocha was built with CUDA but no CUDA GPU is visible (torch.cuda.is_available() "
                           "would be False here)")
    raise RuntimeError("tocha's CUDA tensors are not implemented yet in this version")


def synchronize(device=None):
    if is_available():
        _C.cuda_synchronize()


def manual_seed(seed):
    from . import _ops

    _ops.manual_seed(seed)


manual_seed_all = manual_seed


def memory_allocated(device=None):
    return 0


def max_memory_allocated(device=None):
    return 0


def empty_cache():
    pass
