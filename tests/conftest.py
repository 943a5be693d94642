"""Shared pytest fixtures: a ``device`` fixture (cpu, plus cuda when tocha has a GPU)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import tocha  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if tocha.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    tocha.manual_seed(0)
    yield
