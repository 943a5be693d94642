"""``nn.Parameter``: a leaf tensor that modules register as trainable."""

from .._tensor import Tensor, _init


class Parameter(Tensor):
    """A tensor that is a module parameter (``requires_grad=True`` by default); shares ``data``'s storage."""

    def __new__(cls, data=None, requires_grad=True):
        return Tensor.__new__(cls)

    def __init__(self, data=None, requires_grad=True):
        from .. import _ops

        if data is None:
            data = _ops.empty(0)
        _init(self, data.detach()._a)
        if requires_grad and not data.is_floating_point():
            raise RuntimeError(f"Only Tensors of floating point dtype can require gradients, got {data.dtype}")
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        p = Parameter(Tensor.__deepcopy__(self, {}), self.requires_grad)
        if self.grad is not None:
            p.grad = self.grad.clone()
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, protocol):
        from .._tensor import _rebuild
        import numpy as np

        return (_rebuild_parameter, (np.array(self.detach().cpu()._a), self.requires_grad))


def _rebuild_parameter(arr, requires_grad):
    from .._tensor import _rebuild

    return Parameter(_rebuild(arr, False), requires_grad)


class Buffer(Tensor):
    """Marker type accepted by ``Module.__setattr__`` to register a buffer (torch 2.5+ API)."""

    def __new__(cls, data=None, *, persistent=True):
        return data
