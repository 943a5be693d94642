"""Flatten parameters to one vector and back (``torch.nn.utils.parameters_to_vector``)."""

from ... import _ops
from ..._tensor import Tensor
from ...autograd import no_grad

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """Concatenate all parameters (flattened, in order) into one 1-d tensor (differentiable).

    Args:
        parameters: an iterable of tensors.

    Returns:
        1-d tensor of length Σ numel.
    """
    return _ops.cat([p.reshape(-1) for p in parameters])


@no_grad()
def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of ``vec`` into ``parameters`` (in order), in place.

    Args:
        vec: 1-d tensor with exactly Σ numel elements.
        parameters: an iterable of tensors.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    need = sum(p.numel() for p in params)
    if vec.numel() != need:
        raise ValueError(f"vector has {vec.numel()} elements but the parameters need {need}")
    off = 0
    for p in params:
        n = p.numel()
        p.copy_(vec[off:off + n].reshape(*p.shape))
        off += n
