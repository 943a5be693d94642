"""``tocha.optim``: optimisers sharing one ``Optimizer`` base, and ``lr_scheduler``."""

from . import lr_scheduler
from .optimizer import Optimizer
from .sgd import SGD
