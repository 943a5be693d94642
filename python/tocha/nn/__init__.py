"""``tocha.nn``: modules, parameters, functional API, initialisers and utilities."""

from . import functional, init, utils
from .modules import *  # noqa: F401,F403
from .modules import Module
from .parameter import Buffer, Parameter
