"""``tocha.utils``: data loading (``utils.data``) and the model ``summary`` table."""

from . import data
from .summary import summary

__all__ = ["data", "summary"]
