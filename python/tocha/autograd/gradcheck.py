"""Finite-difference gradient checks (central differences, float64)."""

import numpy as np


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytical and numerical gradients disagree."""


def _as_tuple(x):
    from .._tensor import Tensor

    return (x,) if isinstance(x, Tensor) else tuple(x)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0):
    """Compare autograd gradients of ``fn(*inputs)`` with central finite differences.

    For every input element θ_i that requires grad: (J(θ+ε e_i) − J(θ−ε e_i)) / 2ε, where J is the
    sum of the outputs weighted by a fixed random projection (so one backward checks the whole
    Jacobian-vector product). Inputs should be float64; the error names the worst element.

    Returns:
        True when every gradient agrees within ``atol + rtol * |numerical|``.
    """
    from .. import _ops
    from .function import grad as autograd_grad
    from .grad_mode import no_grad

    inputs = _as_tuple(inputs)
    diff_inputs = [t for t in inputs if hasattr(t, "requires_grad") and t.requires_grad]
    if not diff_inputs:
        raise ValueError("gradcheck expects at least one input tensor with requires_grad=True")
    for t in diff_inputs:
        if t.dtype is not _ops.float64:
            import warnings

            warnings.warn(f"gradcheck: input of dtype {t.dtype} is not float64; finite differences "
                          "will be inaccurate", stacklevel=2)
    outs = _as_tuple(fn(*inputs))
    rng = np.random.default_rng(0)
    projections = [_ops.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype) for o in outs]

    def objective():
        with no_grad():
            res = _as_tuple(fn(*inputs))
            return sum(float((o.detach().double() * p.double()).sum().item()) for o, p in zip(res, projections))

    diff_outs = [(o, p) for o, p in zip(outs, projections) if o.requires_grad]
    if not diff_outs:
        raise GradcheckError("gradcheck: no output requires grad")
    analytic = autograd_grad([o for o, _ in diff_outs], diff_inputs, [p for _, p in diff_outs],
                             allow_unused=True)
    for k, (t, a) in enumerate(zip(diff_inputs, analytic)):
        arr = t.detach().numpy()  # shares memory with the input
        a_np = np.zeros(arr.shape) if a is None else a.detach().double().numpy()
        num = np.zeros(arr.shape)
        flat = arr.reshape(-1) if arr.flags.c_contiguous else None
        if flat is None:
            raise ValueError("gradcheck needs contiguous inputs")
        nflat = num.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            t._a.bump_version()
            jp = objective()
            flat[i] = orig - eps
            jm = objective()
            flat[i] = orig
            nflat[i] = (jp - jm) / (2 * eps)
        err = np.abs(a_np - num)
        tol = atol + rtol * np.abs(num)
        if (err > tol).any():
            idx = np.unravel_index(int(np.argmax(err - tol)), arr.shape) if arr.ndim else ()
            msg = (f"Jacobian mismatch for input {k} (shape {tuple(arr.shape)}) at index {tuple(idx)}: "
                   f"analytical {a_np[idx]:.8g} vs numerical {num[idx]:.8g} (max abs error "
                   f"{err.max():.3g}, atol={atol}, rtol={rtol})")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Second-order check: gradcheck of the (create_graph) gradient of ``fn``."""
    from .function import grad as autograd_grad

    inputs = _as_tuple(inputs)

    def first(*xs):
        outs = _as_tuple(fn(*xs))
        total = sum(o.sum() for o in outs)
        return autograd_grad(total, [x for x in xs if x.requires_grad], create_graph=True)

    return gradcheck(first, inputs, eps=eps, atol=atol, rtol=rtol)
