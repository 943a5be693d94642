"""tocha.autograd: reverse-mode automatic differentiation (mirrors ``torch.autograd``)."""

from . import grad_mode
from .function import Function, Node, backward, grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled


from .function import _anomaly


class detect_anomaly:
    """Context manager: after each backward op, raise if a gradient contains NaN/Inf, naming the op."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = _anomaly.enabled
        _anomaly.enabled = self.check_nan

    def __exit__(self, *exc):
        _anomaly.enabled = self._prev
        return False


def set_detect_anomaly(mode, check_nan=True):
    _anomaly.enabled = bool(mode) and check_nan


__all__ = ["Function", "Node", "backward", "grad", "gradcheck", "gradgradcheck", "GradcheckError",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "detect_anomaly", "set_detect_anomaly", "grad_mode"]
