"""Smoke test of examples/cnn_mnist.py on a tiny subset (the full run is documented in the README)."""

import importlib.util
import os


HERE = os.path.dirname(os.path.abspath(__file__))


def _load_example():
    path = os.path.join(HERE, "..", "examples", "cnn_mnist.py")
    spec = importlib.util.spec_from_file_location("cnn_mnist", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cnn_mnist_smoke():
    ex = _load_example()
    acc = ex.main(["--limit", "1024", "--test-limit", "500", "--epochs", "1", "--batch-size", "32"])
    assert acc > 0.5   # 32 Adam steps on real digits already beat chance (0.1) by far
