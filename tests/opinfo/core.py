"""Cases for the foundation ops (elementwise, reductions, linear algebra, shapes, indexing)."""

from harness import NC, Bool, Case, Const, Fixed, Int, Pos, Sliced, Unit


def _get(m, dotted):
    for part in dotted.split("."):
        m = getattr(m, part)
    return m


def U(name, spec=(3, 4), pos=False, unit=False, **kw):
    """Unary op: plain, odd sizes, non-contiguous, 0-d."""
    f = lambda m, x: _get(m, name)(x)  # noqa: E731
    mk = Pos if pos else Unit if unit else (lambda s: s)
    nc = [mk((4, 3))] if (pos or unit) else [NC((4, 3))]
    kw2 = dict(kw)
    kw2["gradcheck"] = False
    return [Case(f, [mk(spec)], **kw), Case(f, [mk((7, 13))], **kw2), Case(f, nc, **kw2), Case(f, [mk(())], **kw)]


def B(name, pos_b=False, **kw):
    """Binary op: same shape, broadcasting both ways, scalar on either side, non-contiguous."""
    f = lambda m, a, b: getattr(m, name)(a, b)  # noqa: E731
    bspec = Pos if pos_b else (lambda s: s)
    return [
        Case(f, [(3, 4), bspec((3, 4))], **kw),
        Case(f, [(2, 1, 4), bspec((3, 1))], **kw),
        Case(f, [(5,), bspec((7, 1))], gradcheck=False, **kw),
        Case(lambda m, a: getattr(m, name)(a, 2.5), [(3, 4)], **kw),
        Case(lambda m, a: getattr(m, name)(a.t(), a), [(4, 4)], **kw),
        Case(lambda m, a, b: getattr(m, name)(a, b), [Sliced((3, 4)), bspec((4,))], gradcheck=False, **kw),
    ]


def CMP(name):
    f = lambda m, a, b: getattr(m, name)(a, b)  # noqa: E731
    return [Case(f, [(3, 4), (3, 4)], grad=False, gradcheck=False),
            Case(f, [(2, 1, 4), (3, 1)], grad=False, gradcheck=False),
            Case(lambda m, a: getattr(m, name)(a, 0.0), [(3, 4)], grad=False, gradcheck=False),
            Case(f, [Int((3, 4), 3), Int((4,), 3)], grad=False, gradcheck=False)]


def NG(fn, specs):
    return [Case(fn, specs, grad=False, gradcheck=False)]


def R(name, **kw):
    """Reduction with dim/keepdim variants."""
    f = lambda m, x: getattr(m, name)(x)  # noqa: E731
    return [Case(f, [(3, 4)], **kw),
            Case(lambda m, x: getattr(m, name)(x, 1), [(3, 4, 5)], **kw),
            Case(lambda m, x: getattr(m, name)(x, (0, 2), keepdim=True), [(3, 4, 5)], **kw),
            Case(lambda m, x: getattr(m, name)(x, -1), [NC((4, 5))], gradcheck=False, **kw),
            Case(lambda m, x: getattr(m, name)(x, 0), [(1000, 3)], gradcheck=False, **kw)]


CASES = {
    # unary
    "neg": U("neg"), "abs": U("abs"), "exp": U("exp"), "log": U("log", pos=True),
    "sqrt": U("sqrt", pos=True), "rsqrt": U("rsqrt", pos=True), "sin": U("sin"), "cos": U("cos"),
    "tan": U("tan", unit=True), "tanh": U("tanh"), "sigmoid": U("sigmoid"), "relu": U("relu"),
    "log1p": U("log1p", pos=True), "expm1": U("expm1"), "reciprocal": U("reciprocal", pos=True),
    "square": U("square"), "erf": U("erf"), "atan": U("atan"), "asin": U("asin", unit=True),
    "acos": U("acos", unit=True), "sinh": U("sinh"), "cosh": U("cosh"), "asinh": U("asinh"),
    "acosh": [Case(lambda m, x: m.acosh(x + 1.5), [Pos((3, 4))])],
    "atanh": U("atanh", unit=True), "log2": U("log2", pos=True), "log10": U("log10", pos=True),
    "exp2": U("exp2"), "frac": U("frac"), "silu": U("nn.functional.silu"), "mish": U("nn.functional.mish"),
    "sign": U("sign"), "floor": U("floor"),
    "ceil": U("ceil"), "trunc": U("trunc"),
    "round": U("round") + [Case(lambda m, x: m.round(x, decimals=2), [(3, 4)], gradcheck=False)],
    "isnan": NG(lambda m, x: m.isnan(m.log(x)), [(3, 4)]),
    "isinf": NG(lambda m, x: m.isinf(1 / (x * 0)), [(3, 4)]),
    "isfinite": NG(lambda m, x: m.isfinite(m.log(x)), [(3, 4)]),
    "logical_not": NG(lambda m, x: m.logical_not(x), [Bool((3, 4))]),
    "bitwise_not": NG(lambda m, x: m.bitwise_not(x), [Int((3, 4), 100)]),
    # binary
    "add": B("add") + [Case(lambda m, a, b: m.add(a, b, alpha=0.5), [(3, 4), (4,)])],
    "sub": B("sub") + [Case(lambda m, a: 3 - a, [(3, 4)])],
    "mul": B("mul"),
    "div": B("div", pos_b=True) + [Case(lambda m, a: 2.0 / a, [Pos((3, 4))]),
                                  Case(lambda m, a, b: m.div(a, b, rounding_mode="floor"), [(3, 4), Pos((3, 4))], grad=False, gradcheck=False),
                                  Case(lambda m, a, b: m.div(a - 10, b + 1, rounding_mode="trunc"), [Int((3, 4), 20), Int((4,), 5)], grad=False, gradcheck=False),
                                  Case(lambda m, a, b: m.div(a, b, rounding_mode="trunc"), [(3, 4), Pos((3, 4))], grad=False, gradcheck=False)],
    "pow": [Case(lambda m, a, b: m.pow(a, b), [Pos((3, 4)), (3, 4)]),
            Case(lambda m, a: m.pow(a, 3), [(3, 4)]),
            Case(lambda m, a: m.pow(a, 0.5), [Pos((3, 4))]),
            Case(lambda m, a: m.pow(2.0, a), [(3, 4)]),
            Case(lambda m, a, b: m.pow(a, b), [Pos((2, 1, 4)), (3, 1)])],
    "maximum": [Case(lambda m, a, b: m.maximum(a, b), [(3, 4), (3, 4)]), Case(lambda m, a, b: m.maximum(a, b), [(2, 1, 4), (3, 1)])],
    "minimum": [Case(lambda m, a, b: m.minimum(a, b), [(3, 4), (3, 4)]), Case(lambda m, a, b: m.minimum(a, b), [(2, 1, 4), (3, 1)])],
    "atan2": [Case(lambda m, a, b: m.atan2(a, b), [(3, 4), (3, 4)])],
    "remainder": [Case(lambda m, a, b: m.remainder(a, b), [(3, 4), Pos((3, 4))]),
                  Case(lambda m, a: m.remainder(a, 1.5), [(3, 4)]),
                  Case(lambda m, a, b: m.remainder(a, b + 1), [Int((3, 4), 9), Int((4,), 5)], grad=False, gradcheck=False)],
    "fmod": [Case(lambda m, a, b: m.fmod(a, b), [(3, 4), Pos((3, 4))]),
             Case(lambda m, a: m.fmod(a, -1.5), [(3, 4)])],
    "hypot": [Case(lambda m, a, b: m.hypot(a, b), [(3, 4), (3, 4)])],
    "floor_divide": NG(lambda m, a, b: m.floor_divide(a, b), [(3, 4), Pos((3, 4))])
    + NG(lambda m, a, b: m.floor_divide(a - 4, b + 1), [Int((3, 4), 9), Int((4,), 5)]),
    "eq": CMP("eq"), "ne": CMP("ne"), "lt": CMP("lt"), "le": CMP("le"), "gt": CMP("gt"), "ge": CMP("ge"),
    "logical_and": NG(lambda m, a, b: m.logical_and(a, b), [Bool((3, 4)), Bool((4,))]),
    "logical_or": NG(lambda m, a, b: m.logical_or(a, b), [Bool((3, 4)), Bool((4,))]),
    "logical_xor": NG(lambda m, a, b: m.logical_xor(a, b), [Bool((3, 4)), Bool((4,))]),
    "bitwise_and": NG(lambda m, a, b: m.bitwise_and(a, b), [Int((3, 4), 16), Int((4,), 16)]),
    "bitwise_or": NG(lambda m, a, b: m.bitwise_or(a, b), [Bool((3, 4)), Bool((3, 4))]),
    "bitwise_xor": NG(lambda m, a, b: m.bitwise_xor(a, b), [Int((3, 4), 16), Int((4,), 16)]),
    "where": [Case(lambda m, c, a, b: m.where(c, a, b), [Bool((3, 4)), (3, 4), (4,)]),
              Case(lambda m, c, a: m.where(c, a, 0.0), [Bool((3, 1)), (3, 4)])],
    "clamp": [Case(lambda m, x: m.clamp(x, -0.5, 0.5), [(3, 4)]),
              Case(lambda m, x: m.clamp(x, min=0.1), [(3, 4)]),
              Case(lambda m, x, lo: m.clamp(x, min=lo), [(3, 4), (4,)])],
    # reductions
    "sum": R("sum") + [Case(lambda m, x: m.sum(x, dtype=m.float64), [(3, 4)])],
    "mean": R("mean"),
    "prod": [Case(lambda m, x: m.prod(x), [Pos((3, 4))]), Case(lambda m, x: m.prod(x, 1), [(3, 4)]),
             Case(lambda m, x: m.prod(x * m.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=x.dtype), 1), [(3, 4)])],
    "max": [Case(lambda m, x: m.max(x), [(3, 4)]), Case(lambda m, x: m.max(x, 1), [(3, 4)]),
            Case(lambda m, x: m.max(x, 0, keepdim=True), [NC((4, 5))], gradcheck=False),
            Case(lambda m, x, y: m.max(x, y), [(3, 4), (4,)])],
    "min": [Case(lambda m, x: m.min(x), [(3, 4)]), Case(lambda m, x: m.min(x, -1), [(2, 3, 4)])],
    "amax": [Case(lambda m, x: m.amax(x, (0, 2)), [(3, 4, 5)]), Case(lambda m, x: m.amax(x), [(3, 4)])],
    "amin": [Case(lambda m, x: m.amin(x, 1, keepdim=True), [(3, 4, 5)])],
    "argmax": NG(lambda m, x: m.argmax(x), [(3, 4)]) + NG(lambda m, x: m.argmax(x, 1), [(3, 4)])
    + NG(lambda m, x: m.argmax(x, 0, keepdim=True), [NC((4, 5))]),
    "argmin": NG(lambda m, x: m.argmin(x), [(3, 4)]) + NG(lambda m, x: m.argmin(x, -1), [(3, 4)]),
    "all": NG(lambda m, x: m.all(x), [Bool((3, 4))]) + NG(lambda m, x: m.all(x, 1), [Bool((3, 4))]),
    "any": NG(lambda m, x: m.any(x), [Bool((3, 4))]) + NG(lambda m, x: m.any(x, 0), [Bool((3, 4))]),
    "var": R("var") + [Case(lambda m, x: m.var(x, 1, correction=0), [(3, 4)])],
    "std": [Case(lambda m, x: m.std(x), [(3, 4)]), Case(lambda m, x: m.std(x, 0, unbiased=False), [(5, 4)])],
    "logsumexp": [Case(lambda m, x: m.logsumexp(x, 1), [(3, 4)]),
                  Case(lambda m, x: m.logsumexp(x, (0, 1), keepdim=True), [(3, 4, 2)])],
    "cumsum": [Case(lambda m, x: m.cumsum(x, 1), [(3, 4)]), Case(lambda m, x: m.cumsum(x, 0), [NC((4, 3))], gradcheck=False)],
    "cumprod": [Case(lambda m, x: m.cumprod(x, 1), [Pos((3, 4))]),
                Case(lambda m, x: m.cumprod(x * m.tensor([1.0, 0.0, 1.0, 1.0], dtype=x.dtype), 1), [(3, 4)])],
    "norm": [Case(lambda m, x: m.norm(x), [(3, 4)]), Case(lambda m, x: m.norm(x, dim=1), [(3, 4)]),
             Case(lambda m, x: m.norm(x, p=1, dim=0), [(3, 4)], gradcheck=False)],
    # softmax family
    "softmax": [Case(lambda m, x: m.softmax(x, 1), [(3, 5)]), Case(lambda m, x: m.softmax(x, 0), [(3, 5)]),
                Case(lambda m, x: m.softmax(x * 50, -1), [(2, 3, 4)])],
    "log_softmax": [Case(lambda m, x: m.log_softmax(x, 1), [(3, 5)]), Case(lambda m, x: m.log_softmax(x, 0), [NC((3, 5))], gradcheck=False)],
    "cross_entropy": [
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t), [(8, 5), Int((8,), 5)]),
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t, reduction="sum"), [(8, 5), Int((8,), 5)]),
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t, reduction="none"), [(8, 5), Int((8,), 5)]),
        Case(lambda m, x, t, w: m.nn.functional.cross_entropy(x, t, weight=w), [(8, 5), Int((8,), 5), Fixed(Pos((5,)))]),
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t, ignore_index=2), [(8, 5), Int((8,), 5)]),
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t, label_smoothing=0.1), [(8, 5), Int((8,), 5)]),
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t.softmax(1)), [(8, 5), (8, 5)]),
        Case(lambda m, x, t: m.nn.functional.cross_entropy(x, t), [(2, 5, 3, 3), Int((2, 3, 3), 5)]),
    ],
    "nll_loss": [Case(lambda m, x, t: m.nn.functional.nll_loss(x.log_softmax(1), t), [(8, 5), Int((8,), 5)]),
                 Case(lambda m, x, t, w: m.nn.functional.nll_loss(x, t, weight=w, ignore_index=1), [(8, 5), Int((8,), 5), Fixed(Pos((5,)))])],
    "mse_loss": [Case(lambda m, x, t: m.nn.functional.mse_loss(x, t), [(4, 3), (4, 3)]),
                 Case(lambda m, x, t: m.nn.functional.mse_loss(x, t, reduction="none"), [(4, 3), (4, 3)])],
    "l1_loss": [Case(lambda m, x, t: m.nn.functional.l1_loss(x, t), [(4, 3), (4, 3)])],
    "binary_cross_entropy": [
        Case(lambda m, x, t: m.nn.functional.binary_cross_entropy(m.sigmoid(x), t.sigmoid()), [(4, 3), (4, 3)]),
        Case(lambda m, x, t, w: m.nn.functional.binary_cross_entropy(m.sigmoid(x), t.sigmoid(), weight=w, reduction="sum"), [(4, 3), (4, 3), Fixed(Pos((4, 3)))])],
    # linear algebra
    "matmul": [Case(lambda m, a, b: m.matmul(a, b), [(3, 4), (4, 5)]),
               Case(lambda m, a, b: m.matmul(a, b), [(7, 13), NC((13, 5))]),
               Case(lambda m, a, b: m.matmul(a, b), [(2, 3, 4), (4, 5)]),
               Case(lambda m, a, b: m.matmul(a, b), [(2, 1, 3, 4), (5, 4, 2)]),
               Case(lambda m, a, b: m.matmul(a, b), [(4,), (4, 5)]),
               Case(lambda m, a, b: m.matmul(a, b), [(3, 4), (4,)]),
               Case(lambda m, a, b: m.matmul(a, b), [(4,), (4,)]),
               Case(lambda m, a, b: m.matmul(a, b), [(1, 1), (1, 1)]),
               Case(lambda m, a, b: a.t() @ b, [(130, 70), (130, 66)], gradcheck=False, atol=1e-4)],
    "linear": [Case(lambda m, x, w, b: m.nn.functional.linear(x, w, b), [(5, 4), (3, 4), (3,)]),
               Case(lambda m, x, w: m.nn.functional.linear(x, w), [(2, 5, 4), (3, 4)]),
               Case(lambda m, x, w, b: m.nn.functional.linear(x, w, b), [NC((5, 4)), NC((3, 4)), (3,)], gradcheck=False)],
    "einsum": [Case(lambda m, a, b: m.einsum("ij,jk->ik", a, b), [(3, 4), (4, 5)]),
               Case(lambda m, a, b: m.einsum("bhqd,bhkd->bhqk", a, b), [(2, 3, 4, 5), (2, 3, 6, 5)]),
               Case(lambda m, a: m.einsum("ii->i", a), [(3, 3)]),
               Case(lambda m, a, b: m.einsum("...ij,...jk", a, b), [(2, 3, 4), NC((4, 5))], gradcheck=False),
               Case(lambda m, a, b, c: m.einsum("i,j,k->ijk", a, b, c), [(2,), (3,), (4,)]),
               Case(lambda m, a, b: m.einsum("ijk,jil->kl", a, b), [(2, 3, 4), (3, 2, 5)])],
    # shapes
    "reshape": [Case(lambda m, x: x.reshape(4, 3), [(3, 4)]), Case(lambda m, x: x.reshape(-1), [NC((3, 4))]),
                Case(lambda m, x: m.reshape(x, (2, -1, 2)), [(3, 4)])],
    "squeeze": [Case(lambda m, x: x.squeeze(), [(3, 1, 4, 1)]), Case(lambda m, x: x.squeeze(1), [(3, 1, 4)])],
    "unsqueeze": [Case(lambda m, x: x.unsqueeze(1), [(3, 4)]), Case(lambda m, x: x.unsqueeze(-1), [(3, 4)])],
    "permute": [Case(lambda m, x: x.permute(2, 0, 1), [(2, 3, 4)]), Case(lambda m, x: m.permute(x, (1, 0)), [(3, 4)])],
    "transpose": [Case(lambda m, x: x.transpose(0, 2), [(2, 3, 4)]), Case(lambda m, x: x.t() * 2, [(3, 4)])],
    "expand": [Case(lambda m, x: x.expand(3, 4) * 1, [(1, 4)]), Case(lambda m, x: x.expand(2, -1, 4) * 1, [(3, 1)])],
    "clone": [Case(lambda m, x: x.clone(), [(3, 4)])],
    "repeat": [Case(lambda m, x: x.repeat(2, 3), [(3, 4)]), Case(lambda m, x: x.repeat(2, 1, 2), [(3, 4)])],
    "cat": [Case(lambda m, a, b: m.cat([a, b], 1), [(3, 4), (3, 2)]), Case(lambda m, a, b: m.cat([a, b]), [(3, 4), NC((2, 4))])],
    "stack": [Case(lambda m, a, b: m.stack([a, b], 1), [(3, 4), (3, 4)]), Case(lambda m, a, b: m.stack((a, b)), [(4,), (4,)])],
    # indexing
    "index_select": [Case(lambda m, x, i: m.index_select(x, 0, i), [(5, 3), Int((7,), 5)]),
                     Case(lambda m, x, i: x.index_select(1, i), [(2, 5, 3), Int((4,), 3)])],
    "gather": [Case(lambda m, x, i: m.gather(x, 1, i), [(3, 5), Int((3, 4), 5)]),
               Case(lambda m, x, i: x.gather(0, i), [(5, 3), Int((2, 3), 5)])],
    "scatter_add": [Case(lambda m, x, i, s: m.scatter_add(x, 1, i, s), [(3, 5), Int((3, 4), 5), (3, 4)])],
    "scatter": [Case(lambda m, x, i, s: m.scatter(x, 1, i[:, :1], s[:, :1]), [(3, 5), Int((3, 4), 5), (3, 4)])],
    "nonzero": NG(lambda m, x: m.nonzero(x > 0), [(3, 4)]) + NG(lambda m, x: m.nonzero(x > 0, as_tuple=True), [(3, 4)]),
}
