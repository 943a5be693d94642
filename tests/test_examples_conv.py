"""Smoke test of examples/cnn_mnist.py on a tiny subset (the full run is documented in the README)."""

import importlib.util
import os
import pickle

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_example():
    path = os.path.join(HERE, "..", "examples", "cnn_mnist.py")
    spec = importlib.util.spec_from_file_location("cnn_mnist", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cnn_mnist_smoke():
    ex = _load_example()
    acc = ex.main(["--limit", "256", "--test-limit", "200", "--epochs", "1", "--batch-size", "32"])
    assert 0.0 <= acc <= 1.0


def test_unpickler_refuses_arbitrary_globals():
    ex = _load_example()
    import io

    payload = pickle.dumps(os.getcwd.__name__) + b""  # harmless baseline
    assert ex._NumpyOnlyUnpickler(io.BytesIO(payload)).load() == "getcwd"
    evil = b"cos\nsystem\n(S'echo pwned'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        ex._NumpyOnlyUnpickler(io.BytesIO(evil)).load()
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(ex._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arr, protocol=4))).load(), arr)
