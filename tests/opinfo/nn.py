"""Cases for the [nn] ops: activations, losses, normalisation, dropout, embedding.

Ops without a PyTorch twin (isru, isrlu, sqnl, binary_step, bipolar_relu) run PyTorch on the
reference formula (``_twin``) here; tests/test_nn_layers.py also checks them against NumPy.
"""

import tocha
import tocha.nn  # registers the nn ops in tocha.OPS
from harness import NC, Case, Fixed, Int, Pos, Sliced


def F(m):
    return m.nn.functional


def A(name, *args, scale=1.0, **kw):
    """Activation cases: plain, odd sizes, non-contiguous, 0-d, batch 1, in-place on a non-leaf."""
    f = lambda m, x: getattr(F(m), name)(x * scale, *args, **kw)
    return [Case(f, [(3, 4)]), Case(f, [(7, 13)], gradcheck=False), Case(f, [NC((4, 3))], gradcheck=False),
            Case(f, [()]), Case(f, [Sliced((1, 5))], gradcheck=False)]


def A_inplace(name, *args, scale=1.0, **kw):
    f = lambda m, x: getattr(F(m), name)(x * scale, *args, inplace=True, **kw)
    return [Case(f, [(3, 4)])]


def _twin(name, ref):
    """tocha calls F.<name>; PyTorch runs ``ref`` (the published formula) on torch ops."""

    def f(m, x, *a):
        if m is tocha:
            return getattr(F(m), name)(x, *a)
        return ref(m, x, *a)

    return f


def _isru_ref(m, x, alpha=1.0):
    return x / m.sqrt(1 + alpha * x * x)


def _isrlu_ref(m, x, alpha=1.0):
    return m.where(x >= 0, x, x / m.sqrt(1 + alpha * x * x))


def _sqnl_ref(m, x):
    one = m.ones_like(x)
    return m.where(x > 2, one, m.where(x >= 0, x - x * x / 4, m.where(x >= -2, x + x * x / 4, -one)))


def _step_ref(m, x):
    return (x >= 0).to(x.dtype) + 0 * x


def _bipolar_ref(m, x):
    odd = (m.arange(x.shape[-1]) % 2) == 1
    return m.where(odd, x.clamp(max=0), x.clamp(min=0))


def T(name, ref, scale=1.0, *args):
    f = _twin(name, ref)
    g = lambda m, x: f(m, x * scale, *args)
    return [Case(g, [(3, 4)]), Case(g, [(7, 13)], gradcheck=False), Case(g, [NC((4, 3))], gradcheck=False)]


def _bn(training, affine=True, rs=True, c=3, momentum=0.1, stats=True):
    """batch_norm returning (y, running_mean, running_var); the stats depend on x without a gradient,
    so finite differences only make sense on y (stats=False)."""
    def f(m, x, *wb):
        w, b = wb if affine else (None, None)
        rm = m.zeros(c, dtype=x.dtype) + 0.1 if rs else None
        rv = m.ones(c, dtype=x.dtype) * 1.5 if rs else None
        y = F(m).batch_norm(x, rm, rv, w, b, training, momentum)
        return (y, rm, rv) if rs and stats else y
    return f


def _ctc(reduction="mean", flat=False, zero_inf=False, blank=0):
    tg = [[1, 2, 2, 3], [3, 1, 4, 0], [2, 4, 0, 0]]
    tl = [4, 3, 2]
    il = [12, 10, 1] if zero_inf else [12, 10, 8]

    def f(m, x):
        lp = x.log_softmax(2)
        if blank != 0:
            t = m.tensor([[v if v != blank else 0 for v in row] for row in tg])
        else:
            t = m.tensor(tg)
        if flat:
            t = m.cat([t[i, :tl[i]] for i in range(3)])
        return F(m).ctc_loss(lp, t, m.tensor(il), m.tensor(tl), blank=blank, reduction=reduction,
                             zero_infinity=zero_inf)
    return f


def _emb(**kw):
    return lambda m, w, i: F(m).embedding(i, w * 1 if "max_norm" in kw else w, **kw)


PM1 = [1, -1, 1, -1, -1]

CASES = {
    # ---- activations (PyTorch twins) ----
    "leaky_relu": A("leaky_relu") + A("leaky_relu", 0.2) + A_inplace("leaky_relu", 0.3),
    "rrelu": [Case(lambda m, x: F(m).rrelu(x, 0.1, 0.3, training=False), [(3, 4)])] + A_inplace("rrelu"),
    "prelu": [Case(lambda m, x, w: F(m).prelu(x, w), [(2, 3, 4), Pos((3,))]),
              Case(lambda m, x, w: F(m).prelu(x, w), [(5, 3), Pos((1,))]),
              Case(lambda m, x, w: F(m).prelu(x, w), [NC((4, 3)), Pos((3,))], gradcheck=False)],
    "elu": A("elu") + A("elu", 0.5) + A_inplace("elu"),
    "selu": A("selu") + A_inplace("selu"),
    "celu": A("celu") + A("celu", 0.7) + A_inplace("celu", 1.5),
    "gelu": A("gelu") + A("gelu", approximate="tanh"),
    "softplus": A("softplus") + A("softplus", 2.0, 1.0) + A("softplus", 0.5, 3.0, scale=4.0),
    "hardtanh": A("hardtanh", scale=2.0) + A("hardtanh", -0.5, 0.8) + A_inplace("hardtanh"),
    "relu6": A("relu6", scale=5.0) + A_inplace("relu6", scale=5.0),
    "hardsigmoid": A("hardsigmoid", scale=4.0) + A_inplace("hardsigmoid", scale=4.0),
    "hardswish": A("hardswish", scale=4.0) + A_inplace("hardswish", scale=4.0),
    "logsigmoid": A("logsigmoid") + A("logsigmoid", scale=30.0),
    "softsign": A("softsign"),
    # ---- activations without a PyTorch twin (reference formula on the torch side) ----
    "isru": T("isru", _isru_ref) + T("isru", _isru_ref, 2.0, 0.5),
    "isrlu": T("isrlu", _isrlu_ref) + T("isrlu", _isrlu_ref, 2.0, 3.0),
    "sqnl": T("sqnl", _sqnl_ref, 2.0),
    "binary_step": T("binary_step", _step_ref),
    "bipolar_relu": T("bipolar_relu", _bipolar_ref),
    # ---- losses ----
    "binary_cross_entropy_with_logits": [
        Case(lambda m, x, t: F(m).binary_cross_entropy_with_logits(x * 3, t / 2), [(3, 4), Pos((3, 4))]),
        Case(lambda m, x, t, pw: F(m).binary_cross_entropy_with_logits(x, t / 2, pos_weight=pw),
             [(3, 4), Pos((3, 4)), Fixed(Pos((4,)))]),
        Case(lambda m, x, t, w: F(m).binary_cross_entropy_with_logits(x * 50, t / 2, w, reduction="sum"),
             [(3, 4), Pos((3, 4)), Fixed(Pos((3, 4)))]),
        Case(lambda m, x, t: F(m).binary_cross_entropy_with_logits(x, t / 2, reduction="none"),
             [NC((4, 3)), Pos((4, 3))], gradcheck=False)],
    "kl_div": [
        Case(lambda m, x, t: F(m).kl_div(x.log_softmax(1), t, reduction="batchmean"), [(3, 5), Pos((3, 5))]),
        Case(lambda m, x, t: F(m).kl_div(x.log_softmax(1), t, reduction="none"), [(3, 5), Pos((3, 5))]),
        Case(lambda m, x, t: F(m).kl_div(x, t.log_softmax(1), log_target=True), [(3, 5), (3, 5)]),
        Case(lambda m, x, t: F(m).kl_div(x, m.relu(t), reduction="sum"), [(3, 5), (3, 5)], gradcheck=False)],
    "poisson_nll_loss": [
        Case(lambda m, x, t: F(m).poisson_nll_loss(x, t), [(3, 4), Pos((3, 4))]),
        Case(lambda m, x, t: F(m).poisson_nll_loss(x, t * 2, log_input=False, full=True, reduction="sum"),
             [Pos((3, 4)), Pos((3, 4))]),
        Case(lambda m, x, t: F(m).poisson_nll_loss(x, t, full=True, reduction="none"), [(3, 4), Pos((3, 4))])],
    "gaussian_nll_loss": [
        Case(lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v), [(3, 4), (3, 4), Pos((3, 4))]),
        Case(lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v, full=True, reduction="sum"),
             [(3, 4), (3, 4), Pos((3,))]),
        Case(lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v, reduction="none"), [(3, 4), (3, 4), Pos((3, 1))])],
    "huber_loss": [
        Case(lambda m, x, t: F(m).huber_loss(x, t), [(3, 4), (3, 4)]),
        Case(lambda m, x, t: F(m).huber_loss(x, t, reduction="none", delta=0.5), [(3, 4), (3, 4)]),
        Case(lambda m, x, t: F(m).huber_loss(x, t, reduction="sum", delta=2.0), [NC((4, 3)), (4, 3)],
             gradcheck=False)],
    "smooth_l1_loss": [
        Case(lambda m, x, t: F(m).smooth_l1_loss(x, t), [(3, 4), (3, 4)]),
        Case(lambda m, x, t: F(m).smooth_l1_loss(x, t, reduction="none", beta=0.5), [(3, 4), (3, 4)]),
        Case(lambda m, x, t: F(m).smooth_l1_loss(x, t, reduction="sum", beta=0.0), [(3, 4), (3, 4)])],
    "cosine_embedding_loss": [
        Case(lambda m, a, b: F(m).cosine_embedding_loss(a, b, m.tensor(PM1)), [(5, 4), (5, 4)]),
        Case(lambda m, a, b: F(m).cosine_embedding_loss(a, b, m.tensor(PM1), margin=-0.3, reduction="none"),
             [(5, 4), (5, 4)]),
        Case(lambda m, a, b: F(m).cosine_embedding_loss(a, b, m.tensor(-1), reduction="sum"), [(4,), (4,)])],
    "margin_ranking_loss": [
        Case(lambda m, a, b: F(m).margin_ranking_loss(a, b, m.tensor(PM1, dtype=a.dtype)), [(5,), (5,)]),
        Case(lambda m, a, b: F(m).margin_ranking_loss(a, b, m.tensor(PM1, dtype=a.dtype), margin=0.5,
                                                      reduction="none"), [(5,), (5,)])],
    "ctc_loss": [Case(_ctc(), [(12, 3, 5)]), Case(_ctc("none"), [(12, 3, 5)]),
                 Case(_ctc("sum", flat=True), [(12, 3, 5)]), Case(_ctc("mean", zero_inf=True), [(12, 3, 5)]),
                 Case(_ctc("none", blank=4), [(12, 3, 5)])],
    # ---- dropout (deterministic settings; random masks are tested in test_nn_layers.py) ----
    "dropout": [Case(lambda m, x: F(m).dropout(x * 2, 0.5, training=False), [(3, 4)]),
                Case(lambda m, x: F(m).dropout(x * 2, 0.0), [(3, 4)]),
                Case(lambda m, x: F(m).dropout(x * 2, 1.0), [(3, 4)])],
    "dropout1d": [Case(lambda m, x: F(m).dropout1d(x * 2, 0.5, training=False), [(2, 3, 4)]),
                  Case(lambda m, x: F(m).dropout1d(x * 2, 1.0), [(2, 3, 4)])],
    "dropout2d": [Case(lambda m, x: F(m).dropout2d(x * 2, 0.5, training=False), [(2, 3, 4, 2)]),
                  Case(lambda m, x: F(m).dropout2d(x * 2, 1.0), [(2, 3, 4, 2)])],
    "alpha_dropout": [Case(lambda m, x: F(m).alpha_dropout(x * 2, 0.5, training=False), [(3, 4)]),
                      Case(lambda m, x: F(m).alpha_dropout(x * 2, 1.0, training=True), [(3, 4)])],
    # ---- normalisation ----
    "batch_norm": [Case(_bn(True), [(4, 3, 5, 5), Pos((3,)), (3,)], gradcheck=False),
                   Case(_bn(True, affine=False), [(6, 3)], gradcheck=False),
                   Case(_bn(True, rs=False), [(2, 3, 7), Pos((3,)), (3,)]),
                   Case(_bn(False), [(4, 3, 2, 2), Pos((3,)), (3,)]),
                   Case(_bn(True, c=4), [NC((5, 4)), Pos((4,)), (4,)], gradcheck=False),
                   Case(_bn(True, c=4), [(1, 4, 3), Pos((4,)), (4,)], gradcheck=False),
                   Case(_bn(True, stats=False), [(4, 3, 2, 3), Pos((3,)), (3,)]),
                   Case(_bn(True, affine=False, stats=False), [(6, 3)]),
                   # (N, C) with 130 rows: the row-slice kernels with two slices, affine, float64 gradcheck
                   Case(_bn(True, stats=False), [(130, 3), Pos((3,)), (3,)])],
    "layer_norm": [Case(lambda m, x, w, b: F(m).layer_norm(x, (4,), w, b), [(2, 3, 4), Pos((4,)), (4,)]),
                   Case(lambda m, x, w, b: F(m).layer_norm(x, (3, 4), w, b, eps=1e-3),
                        [(2, 3, 4), Pos((3, 4)), (3, 4)]),
                   Case(lambda m, x: F(m).layer_norm(x, [5]), [(7, 5)]),
                   Case(lambda m, x, w: F(m).layer_norm(x, (3,), w), [NC((4, 3)), Pos((3,))], gradcheck=False),
                   Case(lambda m, x: F(m).layer_norm(x * 100 + 1000, (300,)), [(2, 300)], gradcheck=False)],
    "rms_norm": [Case(lambda m, x, w: F(m).rms_norm(x, (4,), w), [(2, 3, 4), Pos((4,))]),
                 Case(lambda m, x: F(m).rms_norm(x, (3, 4), eps=1e-4), [(2, 3, 4)]),
                 Case(lambda m, x, w: F(m).rms_norm(x, [3], w), [NC((4, 3)), Pos((3,))], gradcheck=False)],
    "group_norm": [Case(lambda m, x, w, b: F(m).group_norm(x, 3, w, b), [(2, 6, 3, 3), Pos((6,)), (6,)]),
                   Case(lambda m, x: F(m).group_norm(x, 2), [(2, 4, 5)]),
                   Case(lambda m, x, w, b: F(m).group_norm(x, 1, w, b, eps=1e-3), [(3, 2, 4), Pos((2,)), (2,)])],
    # ---- embedding ----
    # padding_idx / scale_grad_by_freq change the gradient by definition: parity only, no gradcheck
    "embedding": [Case(_emb(), [(10, 4), Int((3, 5), 10)]),
                  Case(_emb(padding_idx=2), [(10, 4), Int((3, 5), 10)], gradcheck=False),
                  Case(_emb(padding_idx=-1, scale_grad_by_freq=True), [(10, 4), Int((20,), 10)], gradcheck=False),
                  Case(_emb(max_norm=1.0), [(10, 4), Int((3, 5), 10)], gradcheck=False)],
}
