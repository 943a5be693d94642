"""Smoke test: examples/activations_gallery.py runs and writes a PNG."""

import os
import subprocess
import sys
from harness import subprocess_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_activations_gallery_writes_png(tmp_path):
    out = tmp_path / "gallery.png"
    env = subprocess_env(MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "activations_gallery.py"), str(out)],
                       capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
