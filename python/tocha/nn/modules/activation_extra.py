"""Activation modules of the [nn] work (the foundation's ReLU/Sigmoid/Tanh/Softmax/LogSoftmax live in
activation.py). Each wraps its ``nn.functional`` form; names and defaults follow PyTorch. ArcTan, ISRU,
ISRLU, SQNL, BinaryStep and BipolarReLU come from the course's list and have no PyTorch twin."""

from ... import _ops
from .. import _functional_nn as F
from .._functional_core import softmin
from ..parameter import Parameter
from .module import Module

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "ISRLU",
    "ISRU",
    "SELU",
    "SQNL",
    "ArcTan",
    "BinaryStep",
    "BipolarReLU",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "Mish",
    "PReLU",
    "RReLU",
    "ReLU6",
    "SiLU",
    "Softmin",
    "Softplus",
    "Softsign",
]


class _Inplace(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ArcTan(Module):
    """atan(x): a smooth squashing function with range (-π/2, π/2) and derivative 1 / (1 + x²)."""

    def forward(self, input):
        return _ops.atan(input)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x (default slope 0.01)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class RReLU(Module):
    """Randomised leaky ReLU: slope ~ U(lower, upper) per element in training (seeded by
    ``tocha.manual_seed``), the fixed slope (lower + upper) / 2 in eval mode."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


class PReLU(Module):
    """Leaky ReLU with learnable slopes: one shared (num_parameters=1) or one per channel (dim 1).

    Args:
        num_parameters: 1 or the number of input channels.
        init: initial slope (default 0.25).
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(_ops.full((num_parameters,), float(init), dtype=dtype))

    def reset_parameters(self):
        with _ops_no_grad():
            self.weight.fill_(self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


def _ops_no_grad():
    from ...autograd import no_grad

    return no_grad()


class BinaryStep(Module):
    """1 where x >= 0 else 0. Its gradient is 0 by definition (see ``F.binary_step``)."""

    def forward(self, input):
        return F.binary_step(input)


class ELU(_Inplace):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(_Inplace):
    """Scaled ELU with the self-normalising constants (Klambauer et al. 2017)."""

    def forward(self, input):
        return F.selu(input, self.inplace)


class CELU(_Inplace):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x Φ(x); ``approximate='tanh'`` uses 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Inplace):
    """x * sigmoid(x) (a.k.a. swish)."""

    def forward(self, input):
        return F.silu(input, self.inplace)


class Mish(_Inplace):
    """x * tanh(softplus(x))."""

    def forward(self, input):
        return F.mish(input, self.inplace)


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, input):
        return F.softsign(input)


class ISRU(Module):
    """Inverse square root unit x / sqrt(1 + alpha x²) (Carlile et al. 2017)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, input):
        return F.isru(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class ISRLU(ISRU):
    """Inverse square root linear unit: x for x >= 0, x / sqrt(1 + alpha x²) otherwise."""

    def forward(self, input):
        return F.isrlu(input, self.alpha)


class SQNL(Module):
    """Square non-linearity (Wuraola & Patel 2018), a cheap tanh-like function with range [-1, 1]."""

    def forward(self, input):
        return F.sqnl(input)


class BipolarReLU(Module):
    """Bipolar ReLU (Eidnes & Nøkland 2018): relu(x) at even, min(x, 0) at odd last-dim positions."""

    def forward(self, input):
        return F.bipolar_relu(input)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear above ``threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """clamp(x, min_val, max_val)."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if min_val > max_val:
            raise ValueError("min_val cannot be greater than max_val")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """min(max(0, x), 6)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardsigmoid(_Inplace):
    """Piecewise-linear sigmoid: clamp(x / 6 + 1/2, 0, 1)."""

    def forward(self, input):
        return F.hardsigmoid(input, self.inplace)


class Hardswish(_Inplace):
    """x * hardsigmoid(x)."""

    def forward(self, input):
        return F.hardswish(input, self.inplace)


class LogSigmoid(Module):
    """log(sigmoid(x)), computed without overflow."""

    def forward(self, input):
        return F.logsigmoid(input)


class Softmin(Module):
    """softmax(-x) along ``dim``."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return softmin(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
