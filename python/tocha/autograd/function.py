"""Autograd: ``Function`` (the one way an op records itself), graph nodes and the backward engine.

Every differentiable op — built-in or user-defined — is a ``Function`` subclass with
``forward(ctx, *args)`` and ``backward(ctx, *grads)``. ``Function.apply`` runs ``forward``; when grad
mode is on and an input requires grad it turns ``ctx`` into a graph node whose edges point at the
inputs' nodes (or at the leaf tensors themselves). ``backward()`` sorts the graph once
(post-order DFS) and walks it in reverse, summing gradients of reused tensors, reducing broadcast
gradients back to input shapes, and freeing saved tensors unless ``retain_graph``.
"""

from .._dispatch import K as _K  # _C, with CUDA dispatch in a CUDA build
from .._tensor import Tensor
from . import grad_mode
from .grad_mode import _state


class Node:
    """A recorded op application; it is also the ``ctx`` handed to ``forward``/``backward``."""

    # defaults live on the class so creating a node sets only what differs (a hot path)
    next = ()                   # per input: None | (Node, output_index) | leaf Tensor
    needs_input_grad = ()
    _saved = None
    _saved_versions = None
    _in_meta = ()               # per input: the input's C++ Array (shape/dtype for grad reduction)
    _hooks = None               # {output_index: [hook, ...]}
    _released = False
    _non_diff = None
    _n_out = 1
    materialize_grads = True

    def __init__(self, fn):
        self._fn = fn

    # -- ctx API (torch.autograd.function.FunctionCtx) --
    def save_for_backward(self, *tensors):
        self._saved = tensors
        self._saved_versions = tuple(t._a.version if t is not None else 0 for t in tensors)

    @property
    def saved_tensors(self):
        if self._released:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors "
                "after they have already been freed). Specify retain_graph=True if you need to backward "
                "through the graph a second time.")
        saved = self._saved or ()
        for i, (t, v) in enumerate(zip(saved, self._saved_versions or ())):
            if t is not None and t._a.version != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: saved tensor {i} of {self.name()} with shape {tuple(t.shape)} "
                    f"is at version {t._a.version}; expected version {v} instead.")
        return saved

    def mark_non_differentiable(self, *tensors):
        self._non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        pass

    # -- graph API --
    def name(self):
        return self._fn.__name__ + "Backward"

    @property
    def next_functions(self):
        out = []
        for e in self.next:
            if e is None:
                out.append((None, 0))
            elif isinstance(e, Tensor):
                out.append((AccumulateGrad(e), 0))
            else:
                out.append(e)
        return tuple(out)

    def register_hook(self, hook):
        raise NotImplementedError("tocha: register hooks on tensors (Tensor.register_hook) instead of nodes")

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


class AccumulateGrad:
    """Stand-in shown by ``next_functions`` for a leaf tensor."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"


class _NoCtx:
    """ctx used when nothing is recorded: saving is free and does nothing."""

    __slots__ = ("needs_input_grad", "__dict__")

    def __init__(self):
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        pass

    def mark_non_differentiable(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        pass

    def mark_dirty(self, *tensors):
        pass


class Function:
    """Base class of every differentiable op (subclass it like ``torch.autograd.Function``).

    Example::

        class Exp(tocha.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, g):
                (y,) = ctx.saved_tensors
                return g * y

        y = Exp.apply(x)
    """

    # built-in ops call kernels directly and never record inside forward; user Functions run
    # forward under no_grad
    _builtin = False

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses must implement backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args, **kwargs):
        record = False
        if _state.enabled:
            for a in args:
                if isinstance(a, Tensor) and a.requires_grad:
                    record = True
                    break
        if not record:
            if cls._builtin:
                return cls.forward(_NO_CTX, *args, **kwargs)
            prev = _state.enabled
            _state.enabled = False
            try:
                return cls.forward(_NoCtx(), *args, **kwargs)
            finally:
                _state.enabled = prev

        node = Node(cls)
        edges = []
        needs = []
        meta = []
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                fn = a.grad_fn
                edges.append(a if fn is None else (fn, a._out_idx))
                needs.append(True)
                meta.append(a._a)
            else:
                edges.append(None)
                needs.append(False)
                meta.append(None)
        node.next = tuple(edges)
        node.needs_input_grad = tuple(needs)   # known to forward, so it can save only what it needs
        node._in_meta = tuple(meta)
        if cls._builtin:
            out = cls.forward(node, *args, **kwargs)
        else:
            prev = _state.enabled
            _state.enabled = False
            try:
                out = cls.forward(node, *args, **kwargs)
            finally:
                _state.enabled = prev
        non_diff = node._non_diff
        if type(out) is tuple:
            for i, o in enumerate(out):
                if isinstance(o, Tensor) and (non_diff is None or id(o) not in non_diff):
                    if o._a.dtype >= 4:  # only floating tensors carry gradients
                        o.grad_fn = node
                        o._out_idx = i
                        o.requires_grad = True
            node._n_out = len(out)
            node._out_meta = tuple((o._a.shape, o._a.dtype) if isinstance(o, Tensor) else ((), 4) for o in out)
        else:
            if out._a.dtype >= 4 and (non_diff is None or id(out) not in non_diff):
                out.grad_fn = node
                out._out_idx = 0
                out.requires_grad = True
            node._n_out = 1
        return out


_NO_CTX = _NoCtx()


class BackwardHook:
    pass


def _sum_to(g, arr):
    """Reduce a broadcast gradient ``g`` to the shape (and dtype) of input array ``arr``."""
    from .. import _ops

    shape = arr.shape
    if g._a.shape != shape:
        g = _ops.sum_to_shape(g, shape)
    if g._a.dtype != arr.dtype:
        g = g.to(_ops._DTYPES[arr.dtype])
    return g


def _toposort(root_nodes):
    """Nodes reachable from the roots, each after every node that feeds it a gradient."""
    order = []
    visited = set()
    stack = [(n, False) for n in root_nodes]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for e in node.next:
            if e is not None and not isinstance(e, Tensor):
                if id(e[0]) not in visited:
                    stack.append((e[0], False))
    order.reverse()
    return order


def run_backward(tensors, grad_tensors, retain_graph=False, create_graph=False, inputs=None,
                 allow_unused=False, accumulate=True):
    """Backpropagate from ``tensors`` with seed gradients ``grad_tensors``.

    With ``accumulate`` the gradients of leaves land in ``.grad``; otherwise the gradients of
    ``inputs`` are returned (``tocha.autograd.grad``).
    """

    grads = {}   # id(node) -> list of output grads
    roots = []
    leaf_grads = {}  # id(leaf) -> [tensor, grad]
    for t, g in zip(tensors, grad_tensors):
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if t.grad_fn is None:
            # backward from a leaf: its gradient is the seed itself
            prev = leaf_grads.get(id(t))
            leaf_grads[id(t)] = [t, g if prev is None else prev[1] + g]
            continue
        node = t.grad_fn
        slot = grads.get(id(node))
        if slot is None:
            slot = grads[id(node)] = [None] * node._n_out
            roots.append(node)
        i = t._out_idx
        slot[i] = g if slot[i] is None else slot[i] + g

    capture = None
    if inputs is not None:
        capture = {}
        for inp in inputs:
            if inp.grad_fn is not None:
                capture[(id(inp.grad_fn), inp._out_idx)] = None
    order = _toposort(roots)
    prev_mode = _state.enabled
    _state.enabled = bool(create_graph)
    try:
        for node in order:
            slot = grads.pop(id(node), None)
            if slot is None:
                continue
            if node._released:
                raise RuntimeError(
                    "Trying to backward through the graph a second time (or directly access saved "
                    "tensors after they have already been freed). Saved intermediate values of the graph "
                    "are freed when you call .backward() or autograd.grad(). Specify retain_graph=True "
                    "if you need to backward through the graph a second time or if you need to access "
                    "saved tensors after calling backward.")
            if node._hooks:
                for i, hooks in node._hooks.items():
                    for h in hooks:
                        if slot[i] is not None:
                            r = h(slot[i])
                            if r is not None:
                                slot[i] = r
            if capture is not None:
                for i in range(len(slot)):
                    key = (id(node), i)
                    if key in capture:
                        capture[key] = slot[i]
            if node.materialize_grads and any(s is None for s in slot):
                slot = [s if s is not None else _zeros_for_output(node, i) for i, s in enumerate(slot)]
            in_grads = node._fn.backward(node, *slot)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if _anomaly.enabled:
                _check_anomaly(node, in_grads)
            if len(in_grads) < len(node.next):
                raise RuntimeError(
                    f"function {node.name()} returned an incorrect number of gradients "
                    f"(expected {len(node.next)}, got {len(in_grads)})")
            if not retain_graph:
                node._saved = None
                node._released = True
            for edge, g, arr in zip(node.next, in_grads, node._in_meta):
                if edge is None or g is None:
                    continue
                if not isinstance(g, Tensor):
                    raise TypeError(f"{node.name()} returned a gradient of type {type(g).__name__}")
                g = _sum_to(g, arr)
                if isinstance(edge, Tensor):
                    prev = leaf_grads.get(id(edge))
                    leaf_grads[id(edge)] = [edge, g if prev is None else prev[1] + g]
                else:
                    nxt, idx = edge
                    s = grads.get(id(nxt))
                    if s is None:
                        s = grads[id(nxt)] = [None] * nxt._n_out
                    s[idx] = g if s[idx] is None else s[idx] + g
    finally:
        _state.enabled = prev_mode

    if inputs is not None:
        result = []
        for inp in inputs:
            if inp.grad_fn is None:
                entry = leaf_grads.get(id(inp))
                g = None if entry is None else entry[1]
                if g is not None and inp._hooks:
                    for h in inp._hooks:
                        r = h(g)
                        if r is not None:
                            g = r
            else:
                g = capture.get((id(inp.grad_fn), inp._out_idx))
            if g is None and not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior.")
            result.append(g)
        if not accumulate:
            return tuple(result)

    if accumulate:
        input_ids = None if inputs is None else {id(t) for t in inputs}
        # a pass-through gradient (e.g. of ``a + b``) may alias a seed or another leaf's new .grad:
        # give each leaf a private buffer so later in-place accumulation cannot leak between them
        used = {s._a.storage_ptr for s in grad_tensors}
        for tid, (leaf, g) in leaf_grads.items():
            if input_ids is not None and tid not in input_ids:
                continue
            if leaf._hooks:
                for h in leaf._hooks:
                    r = h(g)
                    if r is not None:
                        g = r
            if leaf.grad is None:
                if not create_graph:
                    g = g.detach()
                    # own, dense storage: later backward passes accumulate into .grad in place, which an
                    # aliased or expanded (stride-0, e.g. from sum/mean backward) gradient cannot take
                    if g._a.storage_ptr in used or not g._a.is_contiguous():
                        g = g.clone()
                    used.add(g._a.storage_ptr)
                leaf.grad = g
            elif create_graph:
                leaf.grad = leaf.grad + g
            else:
                _K.axpy_(leaf.grad._a, g._a, 1.0)
    return None


class _anomaly:
    """Global switch flipped by ``tocha.autograd.detect_anomaly``."""

    enabled = False


def _check_anomaly(node, grads):
    from .. import _ops

    for i, g in enumerate(grads):
        if isinstance(g, Tensor) and g.is_floating_point() and not bool(_ops.isfinite(g).all()):
            kind = "nan" if bool(_ops.isnan(g).any()) else "inf"
            raise RuntimeError(f"Function '{node.name()}' returned {kind} values in its {i}th output "
                               f"(gradient of shape {tuple(g.shape)}).")


def _zeros_for_output(node, i):
    from .. import _ops

    meta = getattr(node, "_out_meta", None)
    if meta is None:
        raise RuntimeError(f"{node.name()}: missing gradient for output {i}")
    shape, dt = meta[i]
    return _ops.zeros(shape, dtype=_ops._DTYPES[dt])


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the sum of gradients of ``tensors`` w.r.t. graph leaves (``torch.autograd.backward``)."""
    from .. import _ops

    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    tensors = tuple(tensors)
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,)
    seeds = []
    for t, g in zip(tensors, grad_tensors):
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (got shape {tuple(t.shape)}); "
                    "pass a gradient argument of the same shape")
            g = _ops.ones_like(t)
        elif not isinstance(g, Tensor):
            g = _ops.tensor(g, dtype=t.dtype)
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output has a shape of {tuple(g.shape)} and output has a shape "
                f"of {tuple(t.shape)}")
        seeds.append(g)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    run_backward(tensors, seeds, retain_graph, create_graph, inputs=inputs, allow_unused=True,
                 accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """Return the gradients of ``outputs`` w.r.t. ``inputs`` without touching ``.grad``."""
    from .. import _ops

    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    for inp in inputs:
        if not inp.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    seeds = []
    for o, g in zip(outputs, grad_outputs):
        if g is None:
            if o.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = _ops.ones_like(o)
        seeds.append(g)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    res = run_backward(outputs, seeds, retain_graph, create_graph, inputs=inputs,
                       allow_unused=allow_unused, accumulate=False)
    if materialize_grads:
        res = tuple(_ops.zeros_like(i) if r is None else r for i, r in zip(inputs, res))
    return res


__all__ = ["Function", "Node", "backward", "grad", "grad_mode"]
