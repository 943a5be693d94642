"""Op database: each module here exports ``CASES = {op_name: [Case, ...]}`` for ops in ``tocha.OPS``.

``tests/test_ops.py`` runs every case (forward+backward parity vs PyTorch in float32/float64 and a
float64 gradcheck) and fails if a registered op has no case.
"""

import importlib
import pkgutil


def all_cases():
    cases = {}
    for info in pkgutil.iter_modules(__path__):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for name, lst in getattr(mod, "CASES", {}).items():
            if name in cases:
                raise KeyError(f"op {name!r} has cases in two opinfo modules")
            cases[name] = lst
    return cases
