"""``summary(model, input_shape)``: a Keras-style table of layers, output shapes and parameter counts."""

from .. import _ops
from ..autograd import no_grad


def _shape_of(out):
    if hasattr(out, "shape"):
        return list(out.shape)
    if isinstance(out, (tuple, list)):
        return [_shape_of(o) for o in out]
    if isinstance(out, dict):
        return {k: _shape_of(v) for k, v in out.items()}
    return type(out).__name__


def summary(model, input_shape=None, input_data=None, dtype=None, print_fn=print, depth=None):
    """Run one forward pass with hooks and print a table of every leaf module.

    Args:
        model: an ``nn.Module``.
        input_shape: input shape including the batch dimension, e.g. ``(1, 784)``; or a list of
            shapes for several inputs. Zeros of the default dtype are fed (forward only, no grad).
        input_data: a tensor (or tuple of tensors) to feed instead of ``input_shape``.
        dtype: dtype for the generated input.
        print_fn: where the table goes (``None`` to print nothing).
        depth: only list modules up to this nesting depth (default: leaf modules only).

    Returns:
        dict with ``rows`` (list of (name, class, output shape, #params)), ``total_params``,
        ``trainable_params`` and ``text`` (the table).
    """
    if input_data is None:
        if input_shape is None:
            raise ValueError("summary() needs input_shape or input_data")
        shapes = input_shape if isinstance(input_shape[0], (tuple, list)) else [input_shape]
        input_data = tuple(_ops.zeros(*s, dtype=dtype) for s in shapes)
    elif not isinstance(input_data, (tuple, list)):
        input_data = (input_data,)
    rows, handles = [], []
    named = list(model.named_modules())

    def selected(name, mod):
        if depth is None:
            return not list(mod.children()) or (name and not any(True for _ in mod.children()))
        return name and name.count(".") < depth

    for name, mod in named:
        if not name or not selected(name, mod):
            continue

        def hook(m, args, out, name=name):
            own = sum(p.numel() for p in m.parameters())
            rows.append((name, type(m).__name__, _shape_of(out), own))
        handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(*input_data)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not rows:  # a single leaf module
        rows.append((type(model).__name__, type(model).__name__, _shape_of(out),
                     sum(p.numel() for p in model.parameters())))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    header = ("Layer (type)", "Output Shape", "Param #")
    body = [(f"{n} ({c})", str(s), f"{p:,}") for n, c, s, p in rows]
    w0 = max(len(header[0]), *(len(r[0]) for r in body))
    w1 = max(len(header[1]), *(len(r[1]) for r in body))
    w2 = max(len(header[2]), *(len(r[2]) for r in body), len(f"{total:,}"))
    line = "=" * (w0 + w1 + w2 + 6)
    fmt = f"{{:<{w0}}}   {{:<{w1}}}   {{:>{w2}}}"
    lines = [line, fmt.format(*header), line] + [fmt.format(*r) for r in body] + [
        line, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}", line]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return {"rows": rows, "total_params": total, "trainable_params": trainable, "text": text}
