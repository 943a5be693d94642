"""Autograd semantics: accumulation, no_grad, detach, hooks, custom Function, non-scalar backward,
retain_graph, graph freeing, version-counter checks, autograd.grad, higher-order gradients."""

import gc
import weakref

import numpy as np
import pytest
import torch

import tocha


def t(data, **kw):
    return tocha.tensor(data, dtype=tocha.float64, **kw)


def test_accumulation_on_reuse():
    x = t([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x + x * 3 + x   # x used three times
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1, 2, 3.0]) + 4)


def test_grad_accumulates_across_backward_calls():
    x = t([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_no_grad_and_set_grad_enabled():
    x = t([1.0], requires_grad=True)
    with tocha.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    with tocha.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    tocha.set_grad_enabled(False)
    assert not tocha.is_grad_enabled()
    tocha.set_grad_enabled(True)

    @tocha.no_grad()
    def f(z):
        return z * 2

    assert not f(x).requires_grad
    with tocha.no_grad():
        with tocha.enable_grad():
            assert (x * 2).requires_grad


def test_detach_shares_storage_and_stops_gradient():
    x = t([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    d[0] = 5.0
    assert x[0].item() == 5.0
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), d.numpy())


def test_leaf_and_grad_fn():
    x = t([1.0], requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf
    assert y.grad_fn is not None and "Mul" in y.grad_fn.name()
    assert isinstance(y.grad_fn.next_functions, tuple)


def test_non_scalar_backward_needs_gradient():
    x = t([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(t([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 30.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 3).backward(t([1.0, 2.0, 3.0]))


def test_retain_graph_and_second_backward_error():
    x = t([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.clone()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1.numpy())
    z = (x.exp() * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_graph_freed_after_backward():
    x = t(np.ones(4), requires_grad=True)
    h = x * 2
    ref = weakref.ref(h)
    y = (h * h).sum()     # mul saves both of its inputs
    del h
    gc.collect()
    assert ref() is not None  # still saved by the graph
    y.backward()
    gc.collect()
    assert ref() is None, "saved tensors must be released after backward"


def test_hooks_on_leaf_and_intermediate():
    x = t([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 2
    y.register_hook(lambda g: g * 10)      # replaces the gradient flowing into y
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0])
    np.testing.assert_allclose(seen[0], [20.0, 20.0])
    h.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert len(seen) == 1


def test_retain_grad():
    x = t([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.detach().numpy())


def test_custom_function():
    class Cube(tocha.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x * x * x * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * ctx.k * g, None

    x = t([1.0, -2.0], requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy() ** 2)
    assert tocha.autograd.gradcheck(lambda z: Cube.apply(z, 2.0), [t([0.5, 1.5], requires_grad=True)])


def test_custom_function_multiple_outputs_and_non_differentiable():
    class SplitMax(tocha.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = x.argmax()
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(x)
            return x * 2, idx

        @staticmethod
        def backward(ctx, g, gi):
            return g * 2

    x = t([1.0, 5.0, 2.0], requires_grad=True)
    y, i = SplitMax.apply(x)
    assert not i.requires_grad and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_inplace_on_saved_tensor_is_detected():
    x = t([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y.exp()      # saves its output
    z.add_(1)        # modifies the saved output in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = t([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x.add_(1)
    with tocha.no_grad():
        x.add_(1)
    assert x.item() == 2.0


def test_inplace_rebase_keeps_gradients_correct():
    a = t([1.0, 2.0, 3.0], requires_grad=True)
    y = a * a
    y.mul_(3)          # in-place ops on a non-leaf are recorded and rebase y
    y.add_(a)
    y[0] = 0.0         # setitem recorded as an op
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 13.0, 19.0])
    at = torch.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=torch.float64)
    yt = at * at
    yt.mul_(3)
    yt.add_(at)
    yt[0] = 0.0
    yt.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy())


def test_autograd_grad_and_create_graph():
    x = t([1.0, 2.0], requires_grad=True)
    y = (x ** 3).sum()
    (g,) = tocha.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * np.array([1.0, 4.0]))
    assert x.grad is None
    (g2,) = tocha.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * np.array([1.0, 2.0]))


def test_autograd_grad_unused_input():
    x = t([1.0], requires_grad=True)
    z = t([1.0], requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="not have been used"):
        tocha.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = tocha.autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0


def test_broadcast_gradient_reduced_to_input_shape():
    a = t(np.ones((3, 1)), requires_grad=True)
    b = t(np.ones((4,)), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 4.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full((4,), 3.0))


def test_pass_through_gradients_are_not_aliased():
    a = t([1.0], requires_grad=True)
    b = t([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(100)
    assert b.grad.item() == 1.0


def test_requires_grad_only_floating():
    with pytest.raises(RuntimeError, match="floating point"):
        tocha.tensor([1, 2]).requires_grad_()


def test_gradcheck_detects_wrong_gradient():
    class Bad(tocha.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # wrong: should be 2 x g

    with pytest.raises(tocha.autograd.GradcheckError, match="Jacobian mismatch"):
        tocha.autograd.gradcheck(Bad.apply, [t([1.0, 2.0], requires_grad=True)])


def test_gradcheck_central_difference_formula_matches_slide_002():
    # (J(θ+ε) − J(θ−ε)) / 2ε on J = θ³ at θ = 2: exact derivative 12
    theta, eps = 2.0, 1e-4
    num = ((theta + eps) ** 3 - (theta - eps) ** 3) / (2 * eps)
    x = t([theta], requires_grad=True)
    (x ** 3).sum().backward()
    assert abs(x.grad.item() - num) < 1e-6


def test_detect_anomaly_names_the_op():
    x = t([0.0, 1.0], requires_grad=True)
    y = x.sqrt().sum()          # d sqrt / dx at 0 is inf
    with tocha.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="Sqrt.*inf"):
            y.backward(retain_graph=True)
    y.backward()                # outside the context: no check
    assert np.isinf(x.grad.numpy()[0])


def test_repeated_backward_accumulates_through_expanding_backward_rules():
    # sum/mean/expand backward produce stride-0 gradients; .grad must still accumulate in place
    x = t([1.0, 2.0, 3.0], requires_grad=True)
    for _ in range(3):
        x.sum().backward()
        x.mean().backward()
        x.expand(2, 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3 * (1 + 1 / 3 + 2)))
    assert x.grad.is_contiguous()
