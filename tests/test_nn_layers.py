"""[nn] layers: activation/loss/norm/dropout/embedding modules vs PyTorch, NumPy references for the
activations without a PyTorch twin, randomness (RReLU, dropout), bad inputs, hooks, freezing."""

import math

import numpy as np
import pytest
import tocha
import tocha.nn.functional as F
import torch
from tocha import nn
from harness import at_thread_counts


def tt(a, dtype=np.float64, rg=False):
    return tocha.tensor(np.asarray(a, dtype=dtype), requires_grad=rg)


def pt(a, dtype=np.float64, rg=False):
    return torch.tensor(np.asarray(a, dtype=dtype), requires_grad=rg)


def close(a, b, atol=1e-6, rtol=1e-5):
    an = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    bn = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    np.testing.assert_allclose(an, bn, atol=atol, rtol=rtol)


RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 7)) * 3


# ---------------------------------------------------------------------------------------------------
# activations without a PyTorch twin: NumPy reference (forward and derivative)
# ---------------------------------------------------------------------------------------------------
def _bip(x):
    odd = (np.arange(x.shape[-1]) % 2) == 1
    return np.where(odd, np.minimum(x, 0), np.maximum(x, 0)), np.where(odd, x < 0, x > 0).astype(float)


NUMPY_REFS = {
    "arctan": (nn.ArcTan(), lambda x: (np.arctan(x), 1 / (1 + x * x))),
    "isru": (nn.ISRU(0.5), lambda x: (x / np.sqrt(1 + 0.5 * x * x), (1 + 0.5 * x * x) ** -1.5)),
    "isrlu": (nn.ISRLU(2.0), lambda x: (np.where(x >= 0, x, x / np.sqrt(1 + 2 * x * x)),
                                        np.where(x >= 0, 1.0, (1 + 2 * x * x) ** -1.5))),
    "sqnl": (nn.SQNL(), lambda x: (np.clip(np.where(x >= 0, x - x * x / 4, x + x * x / 4), -1, 1)
                                   * (np.abs(x) <= 2) + np.sign(x) * (np.abs(x) > 2),
                                   np.where(np.abs(x) <= 2, 1 - np.abs(x) / 2, 0.0))),
    "binary_step": (nn.BinaryStep(), lambda x: ((x >= 0).astype(float), np.zeros_like(x))),
    "bipolar_relu": (nn.BipolarReLU(), _bip),
}


@pytest.mark.parametrize("name", sorted(NUMPY_REFS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_numpy_reference(name, dtype):
    mod, ref = NUMPY_REFS[name]
    x = tt(X, dtype, rg=True)
    y = mod(x)
    y.backward(tocha.ones_like(y))
    fy, dy = ref(X.astype(dtype).astype(np.float64))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    close(y, fy, atol=tol, rtol=tol)
    close(x.grad, dy, atol=tol, rtol=tol)
    assert y.dtype == x.dtype


def test_binary_step_gradient_is_zero_by_definition():
    x = tt([-2.0, -1e-9, 0.0, 1e-9, 3.0], rg=True)
    F.binary_step(x).sum().backward()
    assert np.all(x.grad.numpy() == 0)
    assert F.binary_step(x).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_sqnl_range_and_continuity():
    x = tt(np.linspace(-5, 5, 1001))
    y = F.sqnl(x).numpy()
    assert y.min() == -1 and y.max() == 1
    assert np.max(np.abs(np.diff(y))) < 0.02   # continuous (no jumps at ±2 or 0)


# ---------------------------------------------------------------------------------------------------
# activation modules vs torch.nn
# ---------------------------------------------------------------------------------------------------
TWINS = [("LeakyReLU", (0.2,)), ("ELU", (0.7,)), ("SELU", ()), ("CELU", (1.3,)), ("GELU", ()),
         ("SiLU", ()), ("Mish", ()), ("Softsign", ()), ("Softplus", (2.0, 3.0)), ("Hardtanh", (-0.5, 2.0)),
         ("ReLU6", ()), ("Hardsigmoid", ()), ("Hardswish", ()), ("LogSigmoid", ()), ("Softmin", (1,)),
         ("Identity", ()), ("Sigmoid", ()), ("Tanh", ()), ("ReLU", ()), ("Softmax", (0,)),
         ("LogSoftmax", (1,))]


@pytest.mark.parametrize("name,args", TWINS, ids=[n for n, _ in TWINS])
def test_activation_module_matches_torch(name, args):
    a, b = tt(X, rg=True), pt(X, rg=True)
    ya, yb = getattr(nn, name)(*args)(a), getattr(torch.nn, name)(*args)(b)
    close(ya, yb, 1e-10, 1e-10)
    g = RNG.standard_normal(X.shape)
    ya.backward(tt(g))
    yb.backward(pt(g))
    # PyTorch rounds a constant to float32 in these backward rules even for float64 tensors
    # (CELU: 1.0/alpha.toFloat() in derivatives.yaml; Hardsigmoid: one_sixth = 1.0f / 6.0f)
    tol = 1e-6 if name in ("CELU", "Hardsigmoid") else 1e-10
    close(a.grad, b.grad, tol, tol)


def test_gelu_tanh_module_and_bad_approximate():
    close(nn.GELU("tanh")(tt(X)), torch.nn.GELU("tanh")(pt(X)), 1e-12)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(tt(X), approximate="fast")


@pytest.mark.parametrize("name", ["LeakyReLU", "ELU", "SELU", "CELU", "Hardtanh", "ReLU6", "Hardsigmoid",
                                  "Hardswish", "SiLU", "Mish", "RReLU"])
def test_inplace_activation_overwrites_and_backprops(name):
    base_t, base_p = tt(X, rg=True), pt(X, rg=True)
    h_t, h_p = base_t * 1.5, base_p * 1.5
    mt, mp = getattr(nn, name)(inplace=True), getattr(torch.nn, name)(inplace=True)
    mt.eval(), mp.eval()
    yt, yp = mt(h_t), mp(h_p)
    assert yt is h_t
    close(h_t, h_p, 1e-12)
    (yt * yt).sum().backward()
    (yp * yp).sum().backward()
    close(base_t.grad, base_p.grad, 1e-10)


def test_rrelu_train_random_slopes_seeded_and_eval_fixed():
    x = tt(-np.abs(X) - 0.1, rg=True)
    m = nn.RReLU(0.1, 0.3)
    tocha.manual_seed(7)
    y1 = m(x)
    tocha.manual_seed(7)
    y2 = m(x)
    close(y1, y2, 0, 0)                       # same seed, same slopes
    slope = (y1 / x).detach().numpy()
    assert slope.min() >= 0.1 and slope.max() <= 0.3 and slope.std() > 0.02
    y1.sum().backward()
    close(x.grad, slope, 1e-12)               # gradient = the drawn slope
    pos = tt(np.abs(X) + 0.1)
    close(m(pos), pos, 0, 0)
    m.eval()
    close(m(x), x.detach() * 0.2, 1e-12)      # eval: (lower + upper) / 2
    close(F.rrelu(x, 0.1, 0.3, training=False), torch.nn.functional.rrelu(pt(x.detach().numpy()), 0.1, 0.3),
          1e-12)


def test_prelu_module_learns_and_matches_torch():
    m, mp = nn.PReLU(3), torch.nn.PReLU(3)
    assert m.weight.tolist() == [0.25, 0.25, 0.25] and m.weight.requires_grad
    x = RNG.standard_normal((4, 3, 5))
    a, b = tt(x, np.float32, rg=True), pt(x, np.float32, rg=True)
    m(a).pow(2).sum().backward()
    mp(b).pow(2).sum().backward()
    close(a.grad, b.grad, 1e-5)
    close(m.weight.grad, mp.weight.grad, 1e-4, 1e-4)
    with pytest.raises(ValueError, match="channel"):
        m(tocha.randn(2, 4))
    assert nn.PReLU(init=0.1).weight.shape == (1,)


def test_activation_bad_inputs():
    with pytest.raises(TypeError, match="floating"):
        F.elu(tocha.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        F.celu(tt(X), alpha=0.0)


# ---------------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------------
def test_loss_modules_match_torch():
    x, t = RNG.standard_normal((4, 5)), RNG.uniform(0.1, 1, (4, 5))
    pairs = [
        (nn.BCEWithLogitsLoss(pos_weight=tt(np.full(5, 2.0))),
         torch.nn.BCEWithLogitsLoss(pos_weight=pt(np.full(5, 2.0))), (x, t)),
        (nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"), (x, t)),
        (nn.PoissonNLLLoss(full=True), torch.nn.PoissonNLLLoss(full=True), (x, t * 3)),
        (nn.HuberLoss(delta=0.3), torch.nn.HuberLoss(delta=0.3), (x, t)),
        (nn.SmoothL1Loss(reduction="sum", beta=0.4), torch.nn.SmoothL1Loss(reduction="sum", beta=0.4), (x, t)),
    ]
    for mt, mp, (a, b) in pairs:
        close(mt(tt(a), tt(b)), mp(pt(a), pt(b)), 1e-10, 1e-10)
    v = RNG.uniform(0.5, 2, (4, 5))
    close(nn.GaussianNLLLoss(full=True)(tt(x), tt(t), tt(v)),
          torch.nn.GaussianNLLLoss(full=True)(pt(x), pt(t), pt(v)), 1e-10)
    y = [1.0, -1.0, 1.0, -1.0]
    close(nn.CosineEmbeddingLoss(0.1)(tt(x), tt(t), tt(y)), torch.nn.CosineEmbeddingLoss(0.1)(pt(x), pt(t), pt(y)))
    close(nn.MarginRankingLoss(0.2)(tt(x[0, :4]), tt(t[0, :4]), tt(y)),
          torch.nn.MarginRankingLoss(0.2)(pt(x[0, :4]), pt(t[0, :4]), pt(y)))


def test_bce_with_logits_is_stable_for_huge_logits():
    x = tt([1000.0, -1000.0, 0.0], rg=True)
    t = tt([0.0, 1.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    close(loss, [1000.0, 1000.0, math.log(2)], 1e-9)
    loss.sum().backward()
    close(x.grad, [1.0, -1.0, -0.5], 1e-12)


def test_ctc_module_matches_torch_with_gradients():
    T_, N, C = 15, 4, 6
    logits = RNG.standard_normal((T_, N, C))
    tg = RNG.integers(1, C, (N, 5))
    il, tl = [15, 14, 9, 15], [5, 3, 4, 1]
    a, b = tt(logits, rg=True), pt(logits, rg=True)
    la = nn.CTCLoss()(a.log_softmax(2), tocha.tensor(tg), tocha.tensor(il), tocha.tensor(tl))
    lb = torch.nn.CTCLoss()(b.log_softmax(2), torch.tensor(tg), torch.tensor(il), torch.tensor(tl))
    close(la, lb, 1e-10)
    la.backward()
    lb.backward()
    close(a.grad, b.grad, 1e-10)
    # lengths given as lists/tuples, as PyTorch accepts
    close(F.ctc_loss(a.log_softmax(2), tocha.tensor(tg), il, tuple(tl)), lb, 1e-10)


def test_ctc_impossible_alignment_inf_or_zero():
    lp = tt(RNG.standard_normal((2, 1, 4))).log_softmax(2)
    tg, il, tl = tocha.tensor([[1, 2, 3]]), [2], [3]
    assert math.isinf(F.ctc_loss(lp, tg, il, tl, reduction="sum").item())
    assert F.ctc_loss(lp, tg, il, tl, reduction="sum", zero_infinity=True).item() == 0.0


def test_loss_bad_targets_raise():
    x = tt(RNG.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="same as input size"):
        F.binary_cross_entropy_with_logits(x, tt(np.zeros((3, 5))))
    with pytest.raises(ValueError, match="1 or -1"):
        F.cosine_embedding_loss(x, x, tt([1.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(x, x, tt(-np.ones((3, 4))))
    with pytest.raises(ValueError, match="incompatible"):
        F.gaussian_nll_loss(x, x, tt(np.ones((2, 4))))
    with pytest.raises(ValueError, match="same shape"):
        F.margin_ranking_loss(x[0], x[1], tt([1.0, -1.0]))
    with pytest.raises(ValueError, match="valid value for reduction"):
        F.huber_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="valid value for reduction"):
        nn.KLDivLoss(reduction="batchsum")
    lp = tt(RNG.standard_normal((5, 2, 4))).log_softmax(2)
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        F.ctc_loss(lp, tocha.tensor([[1, 7], [1, 2]]), [5, 5], [2, 2])
    with pytest.raises(ValueError, match="input_lengths"):
        F.ctc_loss(lp, tocha.tensor([[1, 2], [1, 2]]), [6, 5], [2, 2])
    with pytest.raises(ValueError, match="batch size"):
        F.ctc_loss(lp, tocha.tensor([[1, 2], [1, 2]]), [5, 5, 5], [2, 2])
    with pytest.raises(IndexError, match="blank"):
        F.ctc_loss(lp, tocha.tensor([[1, 2], [1, 2]]), [5, 5], [2, 2], blank=4)


# ---------------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------------
def test_dropout_inverted_scaling_seeded_and_eval_identity():
    x = tocha.ones(200, 300, requires_grad=True)
    d = nn.Dropout(0.3)
    tocha.manual_seed(3)
    y = d(x)
    tocha.manual_seed(3)
    close(d(x), y, 0, 0)
    v = y.detach().numpy()
    assert np.all((v == 0) | np.isclose(v, 1 / 0.7, rtol=1e-6))
    assert abs((v == 0).mean() - 0.3) < 0.01
    y.sum().backward()
    close(x.grad, v, 0, 0)                   # gradient = the scaled mask
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout2d_and_1d_zero_whole_channels():
    x = tocha.ones(8, 16, 5, 5)
    y = nn.Dropout2d(0.5)(x).numpy()
    per_channel = y.reshape(8, 16, -1)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))   # each channel all-0 or all-2
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    y1 = nn.Dropout1d(0.5)(tocha.ones(16, 7)).numpy()           # unbatched (C, L)
    assert np.all(y1.min(-1) == y1.max(-1))
    with pytest.raises(ValueError, match="3-D or 4-D"):
        F.dropout2d(tocha.ones(3, 4))


def test_alpha_dropout_keeps_mean_and_variance():
    tocha.manual_seed(0)
    x = tocha.randn(400, 500, dtype=tocha.float64)
    y = nn.AlphaDropout(0.2)(x).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    m = nn.AlphaDropout(0.2)
    m.eval()
    assert m(x) is x


# ---------------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------------
def _batchnorm_matches_torch(m, mp, shape, eval_shape, scale):
    """Three training steps (outputs, input and affine gradients, running statistics), then eval mode
    (outputs and input gradients), of tocha's batch-norm module m against torch's mp."""
    for step in range(3):
        x = RNG.standard_normal(shape) * scale + step
        a, b = tt(x, rg=True), pt(x, rg=True)
        ya, yb = m(a), mp(b)
        close(ya, yb, 1e-10)
        g = RNG.standard_normal(shape)
        ya.backward(tt(g))
        yb.backward(pt(g))
        close(a.grad, b.grad, 1e-9)
        if m.affine:
            close(m.weight.grad, mp.weight.grad, 1e-9)
            close(m.bias.grad, mp.bias.grad, 1e-9)
            m.weight.grad = None
            mp.weight.grad = None
    close(m.running_mean, mp.running_mean, 1e-12)
    close(m.running_var, mp.running_var, 1e-12)
    m.eval(), mp.eval()
    x = RNG.standard_normal(eval_shape)
    a, b = tt(x, rg=True), pt(x, rg=True)
    close(m(a), mp(b), 1e-10)
    (m(a) * tt(x)).sum().backward()
    (mp(b) * pt(x)).sum().backward()
    close(a.grad, b.grad, 1e-10)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm2d_training_running_stats_and_eval(momentum, affine):
    m = nn.BatchNorm2d(3, momentum=momentum, affine=affine).double()
    mp = torch.nn.BatchNorm2d(3, momentum=momentum, affine=affine).double()
    _batchnorm_matches_torch(m, mp, (4, 3, 5, 6), (2, 3, 5, 6), 2)
    assert m.num_batches_tracked.item() == 3


@pytest.mark.parametrize("shape", [(37, 150), (5, 64), (1000, 3), (9, 70, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm1d_features_training_and_eval_match_torch(shape, affine):
    # (N, C) inputs -- and (N, C, 1) -- run the row-slice kernels (norm_impl.h): 1000 rows make 15 slices,
    # the others one; weights away from 1 so the affine gradients are exercised
    C = shape[1]
    m, mp = nn.BatchNorm1d(C, affine=affine).double(), torch.nn.BatchNorm1d(C, affine=affine).double()
    if affine:
        w = RNG.uniform(0.5, 2, C)
        with tocha.no_grad():
            m.weight.copy_(tt(w))
        with torch.no_grad():
            mp.weight.copy_(pt(w))
    _batchnorm_matches_torch(m, mp, shape, shape, 3)


def test_batchnorm1d_features_float32_accurate_and_thread_independent():
    x = (RNG.standard_normal((300, 130)) * 0.01 + 1e4).astype(np.float32)
    y = F.batch_norm(tt(x, np.float32), None, None, training=True)
    close(y, torch.nn.functional.batch_norm(pt(x, np.float64), None, None, training=True), 2e-2, 2e-2)
    xs = tocha.tensor(RNG.standard_normal((500, 130)).astype(np.float32), requires_grad=True)
    g = tocha.tensor(RNG.standard_normal((500, 130)).astype(np.float32))
    w = tocha.tensor(RNG.uniform(0.5, 2, 130).astype(np.float32), requires_grad=True)
    def run():
        xs.grad = w.grad = None
        y = F.batch_norm(xs, None, None, w, None, training=True)
        y.backward(g)
        return [t.numpy().copy() for t in (y.detach(), xs.grad, w.grad)]

    for a, b in zip(*at_thread_counts(run)):
        np.testing.assert_array_equal(a, b)


def test_batchnorm1d_no_tracking_uses_batch_stats_in_eval():
    m, mp = nn.BatchNorm1d(4, track_running_stats=False), torch.nn.BatchNorm1d(4, track_running_stats=False)
    assert m.running_mean is None
    m.eval(), mp.eval()
    x = RNG.standard_normal((6, 4, 3)).astype(np.float32)
    close(m(tt(x, np.float32)), mp(pt(x, np.float32)), 1e-5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(tocha.randn(1, 4))
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(4)(tocha.randn(2, 4))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm2d(4)(tocha.randn(2, 3, 2, 2))


def test_norm_modules_match_torch():
    x = RNG.standard_normal((3, 4, 6))
    for mt, mp in [(nn.LayerNorm(6), torch.nn.LayerNorm(6)), (nn.LayerNorm((4, 6), bias=False),
                                                                torch.nn.LayerNorm((4, 6), bias=False)),
                   (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)), (nn.RMSNorm(6), torch.nn.RMSNorm(6))]:
        mt.double(), mp.double()
        w = RNG.uniform(0.5, 2, tuple(mp.weight.shape))
        with torch.no_grad():
            mp.weight.copy_(pt(w))
        with tocha.no_grad():
            mt.weight.copy_(tt(w))
        a, b = tt(x, rg=True), pt(x, rg=True)
        ya, yb = mt(a), mp(b)
        close(ya, yb, 1e-10)
        (ya * ya).sum().backward()
        (yb * yb).sum().backward()
        close(a.grad, b.grad, 1e-9)
        close(mt.weight.grad, mp.weight.grad, 1e-9)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(5)(tocha.randn(2, 4))
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(3, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,norm,kw", [
    ((5, 3, 7), (7,), {}),                                   # odd row length: vector tails only
    ((4, 3, 40), (3, 40), {"bias": False}),                   # several trailing dims, no bias
    ((3, 5000), (5000,), {}),                                 # rows longer than one summation block
    ((6, 33), (33,), {"elementwise_affine": False}),          # no weight, no bias
])
def test_layernorm_kernel_shapes_match_torch(dtype, shape, norm, kw):
    x = (RNG.standard_normal(shape) * 2 + 3).astype(dtype)
    g = RNG.standard_normal(shape).astype(dtype)
    mt, mp = nn.LayerNorm(norm, **kw), torch.nn.LayerNorm(norm, **kw)
    if dtype is np.float64:
        mt.double(), mp.double()
    if mp.weight is not None:
        w = RNG.uniform(0.5, 2, norm).astype(dtype)
        with torch.no_grad():
            mp.weight.copy_(torch.from_numpy(w))
        with tocha.no_grad():
            mt.weight.copy_(tocha.tensor(w))
    a, b = tt(x, dtype, rg=True), pt(x, dtype, rg=True)
    ya, yb = mt(a), mp(b)
    tol = 1e-5 if dtype is np.float32 else 1e-12
    close(ya, yb, tol, tol)
    ya.backward(tt(g, dtype)), yb.backward(pt(g, dtype))
    close(a.grad, b.grad, 20 * tol, 20 * tol)
    for pa, pb in zip(mt.parameters(), mp.parameters()):
        # weight/bias grads sum over every row: error grows with the row count
        close(pa.grad, pb.grad, 200 * tol, 20 * tol)


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm", "group_norm"])
def test_norm_results_bitwise_independent_of_thread_count(fn):
    # the weight/bias gradients are reduced over row blocks fixed by the row count, never by the threads
    x = tocha.tensor(RNG.standard_normal((300, 8, 40)).astype(np.float32), requires_grad=True)
    g = tocha.tensor(RNG.standard_normal((300, 8, 40)).astype(np.float32))
    w = tocha.tensor(RNG.uniform(0.5, 2, 8 * 40 if fn != "group_norm" else 8).astype(np.float32),
                     requires_grad=True)
    call = {"layer_norm": lambda: F.layer_norm(x, (8, 40), w.reshape(8, 40)),
            "rms_norm": lambda: F.rms_norm(x, (8, 40), w.reshape(8, 40)),
            "group_norm": lambda: F.group_norm(x, 4, w)}[fn]
    def run():
        x.grad = w.grad = None
        y = call()
        y.backward(g)
        return [t.numpy().copy() for t in (y.detach(), x.grad, w.grad)]

    for a, b in zip(*at_thread_counts(run)):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_large_mean_float32_is_accurate():
    x = (RNG.standard_normal((16, 2, 8, 8)) * 0.01 + 1e4).astype(np.float32)
    y = F.batch_norm(tt(x, np.float32), None, None, training=True)
    yr = torch.nn.functional.batch_norm(pt(x, np.float64), None, None, training=True)
    close(y, yr, 2e-2, 2e-2)


# ---------------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------------
def test_embedding_padding_idx_gets_no_gradient():
    tocha.manual_seed(0)
    e = nn.Embedding(10, 3, padding_idx=0)
    assert e.weight[0].tolist() == [0.0, 0.0, 0.0]
    idx = tocha.tensor([[0, 2, 0], [4, 2, 9]])
    out = e(idx)
    assert tuple(out.shape) == (2, 3, 3)
    (out * 3).sum().backward()
    g = e.weight.grad.numpy()
    assert np.all(g[0] == 0) and np.all(g[2] == 6) and np.all(g[4] == 3) and np.all(g[1] == 0)
    with pytest.raises(IndexError, match="out of range"):
        e(tocha.tensor([10]))
    with pytest.raises(TypeError, match="integer"):
        e(tocha.tensor([1.0]))


def test_embedding_from_pretrained_and_max_norm():
    w = RNG.standard_normal((5, 4)) * 3
    e = nn.Embedding.from_pretrained(tt(w))
    assert not e.weight.requires_grad
    close(e(tocha.tensor([3, 1])), w[[3, 1]], 0)
    assert nn.Embedding.from_pretrained(tt(w), freeze=False).weight.requires_grad
    et, ep = nn.Embedding.from_pretrained(tt(w), max_norm=1.0), torch.nn.Embedding.from_pretrained(pt(w), max_norm=1.0)
    idx = [0, 2, 2]
    close(et(tocha.tensor(idx)), ep(torch.tensor(idx)), 1e-7)
    close(et.weight, ep.weight, 1e-7)          # referenced rows renormalised in place, others kept


# ---------------------------------------------------------------------------------------------------
# containers, hooks, freezing
# ---------------------------------------------------------------------------------------------------
def test_containers_indexing_and_slicing():
    s = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh())
    assert isinstance(s[0], nn.Linear) and isinstance(s[-1], nn.Tanh)
    sub = s[1:3]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[1] is s[2]
    ml = nn.ModuleList([nn.ReLU(), nn.ELU()])
    ml.append(nn.GELU())
    assert len(ml) == 3 and isinstance(ml[-1], nn.GELU) and len(ml[:2]) == 2
    md = nn.ModuleDict({"act": nn.SiLU(), "norm": nn.LayerNorm(3)})
    assert set(md.keys()) == {"act", "norm"} and len(list(md.parameters())) == 2
    pl = nn.ParameterList([nn.Parameter(tocha.ones(2)), nn.Parameter(tocha.zeros(3))])
    assert len(list(pl.parameters())) == 2 and tuple(pl[1].shape) == (3,)


def _pair_nets():
    tocha.manual_seed(0)
    torch.manual_seed(0)
    lt, lp = nn.Linear(4, 3).double(), torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        lp.weight.copy_(torch.tensor(lt.weight.detach().numpy()))
        lp.bias.copy_(torch.tensor(lt.bias.detach().numpy()))
    return lt, lp


def test_forward_pre_and_forward_hooks_like_torch():
    lt, lp = _pair_nets()
    seen, handles = {}, {}
    for lin, key in ((lt, "t"), (lp, "p")):
        lin.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
        handles[key] = lin.register_forward_hook(
            lambda mod, args, out, key=key: seen.__setitem__(key, out) or out + 1)
    x = RNG.standard_normal((2, 4))
    yt, yp = lt(tt(x)), lp(pt(x))
    close(yt, yp, 1e-12)
    close(seen["t"], seen["p"], 1e-12)
    close(yt, seen["t"].detach().numpy() + 1, 1e-12)
    handles["t"].remove()                     # only tocha's forward hook goes away
    close(lt(tt(x)), lp(pt(x)) - 1, 1e-12)
    handles["p"].remove()
    close(lt(tt(x)), lp(pt(x)), 1e-12)


def test_full_backward_hook_like_torch():
    lt, lp = _pair_nets()
    rec = {"t": [], "p": []}
    for lin, key in ((lt, "t"), (lp, "p")):
        lin.register_full_backward_hook(lambda mod, gin, gout, key=key: rec[key].append((gin, gout)))
    x = RNG.standard_normal((2, 4))
    a, b = tt(x, rg=True), pt(x, rg=True)
    (lt(a) ** 2).sum().backward()
    (lp(b) ** 2).sum().backward()
    assert len(rec["t"]) == len(rec["p"]) == 1
    (gin_t, gout_t), (gin_p, gout_p) = rec["t"][0], rec["p"][0]
    assert len(gin_t) == len(gin_p) and len(gout_t) == len(gout_p)
    close(gout_t[0], gout_p[0], 1e-12)
    close(gin_t[0], gin_p[0], 1e-12)
    close(a.grad, b.grad, 1e-12)


def test_full_backward_hook_can_replace_grad_input():
    lt, lp = _pair_nets()
    for lin in (lt, lp):
        lin.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 0.5,))
    x = RNG.standard_normal((2, 4))
    a, b = tt(x, rg=True), pt(x, rg=True)
    lt(a).sum().backward()
    lp(b).sum().backward()
    close(a.grad, b.grad, 1e-12)


def test_frozen_weights_do_not_change_during_training():
    tocha.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2))
    net[0].requires_grad_(False)
    frozen = {k: v.detach().clone() for k, v in net[0].state_dict().items()}
    head = net[4].weight.detach().clone()
    opt = tocha.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    x, y = tocha.randn(32, 5), tocha.randint(0, 2, (32,))
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    for k, v in net[0].state_dict().items():
        assert np.array_equal(v.numpy(), frozen[k].numpy()), k
        assert net[0]._parameters[k].grad is None
    assert not np.allclose(net[4].weight.detach().numpy(), head.numpy())


def test_full_backward_hook_input_without_grad_gets_zero_like_torch():
    got = {}
    for M, key in ((tocha, "t"), (torch, "p")):
        class Two(M.nn.Module):
            def forward(self, a, b):
                return a * b + a
        mod = Two()
        mod.register_full_backward_hook(lambda mm, gin, gout, key=key: got.__setitem__(key, gin))
        a = M.tensor(np.arange(3.0), requires_grad=True)
        b = M.tensor(np.full(3, 2.0))
        mod(a, b).sum().backward()
        assert not b.requires_grad and b.grad is None
    for x, y in zip(got["t"], got["p"]):
        close(x, y, 0)


# ---------------------------------------------------------------------------------------------------
# determinism: thread count and SIMD build
# ---------------------------------------------------------------------------------------------------
def _kernel_outputs():
    tocha.manual_seed(0)
    x = tocha.randn(8, 16, 32, 33, requires_grad=True)
    w = tocha.rand(16) + 0.5
    outs = []
    for y in (F.batch_norm(x, None, None, w, None, training=True), F.layer_norm(x, (33,)),
              F.group_norm(x, 4), F.elu(x), F.softplus(x, 2.0), F.hardswish(x * 3)):
        (g,) = tocha.autograd.grad(y, [x], tocha.ones_like(y))
        outs += [y.detach().numpy(), g.numpy()]
    return outs


def test_kernels_do_not_depend_on_thread_count():
    one, two = at_thread_counts(_kernel_outputs)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_generic_build_matches_simd_build(tmp_path):
    """TOCHA_CPU_ISA=generic runs the baseline (non-AVX2) kernels in a subprocess: same results."""
    import os
    import subprocess
    import sys

    out = tmp_path / "generic.npz"
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import numpy as np; "
            f"import test_nn_layers as t; np.savez({str(out)!r}, *t._kernel_outputs())")
    env = dict(os.environ, TOCHA_CPU_ISA="generic")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr
    ref = np.load(out)
    for i, a in enumerate(_kernel_outputs()):
        np.testing.assert_allclose(ref[f"arr_{i}"], a, rtol=1e-5, atol=1e-5)
