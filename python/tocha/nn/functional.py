"""``tocha.nn.functional`` (mirrors ``torch.nn.functional``)."""

from ._functional_core import *  # noqa: F401,F403
from ._functional_core import __all__ as _core_all
from ._functional_nn import *  # noqa: F401,F403
from ._functional_nn import __all__ as _nn_all
from ._functional_conv import *  # noqa: F401,F403
from ._functional_conv import __all__ as _conv_all

__all__ = list(_core_all) + list(_nn_all) + list(_conv_all)
