"""Global switch for graph recording: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""

import functools

from .. import _C

# ``_state.enabled``: the calling thread's grad mode (True in every new thread), a C++ thread_local that the
# C fast paths (csrc/bindings/tensor_base.cpp) read directly.
_state = _C.grad_state


def is_grad_enabled():
    """Return True when operations are being recorded for autograd."""
    return _state.enabled


class _GradModeContext:
    """Base of the grad-mode context managers; also usable as a decorator."""

    _mode = True

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager / decorator that disables gradient recording (like ``torch.no_grad``)."""

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager / decorator that enables gradient recording."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode on or off; works as a function call, a context manager or a decorator."""

    def __init__(self, mode):
        self._mode = bool(mode)
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, fn):
        _state.enabled = self._prev
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class inference_mode(no_grad):
    """Alias of ``no_grad`` (tocha has no separate inference tensors)."""

    def __init__(self, mode=True):
        self._mode = not mode
