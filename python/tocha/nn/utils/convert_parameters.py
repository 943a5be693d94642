"""Flatten parameters to one vector and back."""

from ... import _ops
from ...autograd import no_grad


def parameters_to_vector(parameters):
    """Concatenate all parameters (flattened) into one 1-d tensor."""
    return _ops.cat([p.reshape(-1) for p in parameters])


@no_grad()
def vector_to_parameters(vec, parameters):
    """Copy slices of ``vec`` back into ``parameters`` (in order)."""
    off = 0
    for p in parameters:
        n = p.numel()
        p.copy_(vec[off:off + n].reshape(*p.shape))
        off += n
    if off != vec.numel():
        raise ValueError(f"vector has {vec.numel()} elements but parameters need {off}")
