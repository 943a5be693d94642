"""``tocha.utils``: data loading (``utils.data``), the model ``summary`` table, and (lazily) the
training helpers of ``tocha.training`` (EarlyStopping, GridSearch, RandomSearch, fit, plot_history)."""

from . import data
from .summary import summary

__all__ = ["data", "summary"]

_TRAINING = ("EarlyStopping", "GridSearch", "RandomSearch", "fit", "evaluate", "plot_history", "History")


def __getattr__(name):
    if name in _TRAINING:
        from .. import training
        return getattr(training, name)
    raise AttributeError(f"module 'tocha.utils' has no attribute {name!r}")
