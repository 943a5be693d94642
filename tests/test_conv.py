"""Convolution and pooling: the course slides' worked examples, layers, output sizes and bad inputs.

Op-level parity with PyTorch and gradchecks live in tests/opinfo/conv.py (run by tests/test_ops.py).
"""

import math

import numpy as np
import pytest
import tocha
import tocha.nn.functional as F
import torch
from tocha import nn

# the 4x4 matrix of the slides ("Matriz entrada") and the 2x2 filter
SLIDE_X = [[1, 3, 6, 4], [2, 2, 0, 4], [5, 0, 1, 4], [4, 4, 1, 3]]
SLIDE_F = [[-1, 1], [-1, 1]]


def t4(a, dtype=tocha.float64):
    return tocha.tensor(np.asarray(a, dtype=np.float64)[None, None], dtype=dtype)


def np_xcorr(x, f, pad=0):
    """Reference cross-correlation (no kernel flip, like PyTorch), written as the slide explains it."""
    x = np.pad(np.asarray(x, float), pad)
    f = np.asarray(f, float)
    r = x.shape[0] - f.shape[0] + 1
    return np.array([[np.sum(x[i:i + f.shape[0], j:j + f.shape[1]] * f) for j in range(r)] for i in range(r)])


# ----------------------------------------------------------------------------------- slide examples
def test_slide_convolution_no_padding():
    y = F.conv2d(t4(SLIDE_X), t4(SLIDE_F))
    expected = [[2, 1, 2], [-5, -1, 7], [-5, -2, 5]]  # (3-1)+(2-2)=2, (6-3)+(0-2)=1, ...
    np.testing.assert_array_equal(y.numpy()[0, 0], expected)
    np.testing.assert_array_equal(y.numpy()[0, 0], np_xcorr(SLIDE_X, SLIDE_F))


def test_slide_convolution_padding_1():
    y = F.conv2d(t4(SLIDE_X), t4(SLIDE_F), padding=1)
    assert tuple(y.shape) == (1, 1, 5, 5)
    expected = np_xcorr(SLIDE_X, SLIDE_F, pad=1)
    np.testing.assert_array_equal(y.numpy()[0, 0], expected)
    # first row: only the bottom filter row sees the image: -0+1, -1+3, -3+6, -6+4, -4+0
    np.testing.assert_array_equal(y.numpy()[0, 0, 0], [1, 2, 3, -2, -4])


@pytest.mark.parametrize("w,f,b,p", [(4, 2, 0, 1), (4, 2, 1, 1), (6, 3, 1, 1), (7, 3, 0, 2), (28, 5, 2, 1),
                                     (9, 3, 1, 2)])
def test_slide_output_size_formula(w, f, b, p):
    # the slide: r = (w - f + 2b)/p (+ 1, rounded down, when the stride does not divide)
    r = (w - f + 2 * b) // p + 1
    y = F.conv2d(tocha.zeros(1, 1, w, w), tocha.zeros(1, 1, f, f), stride=p, padding=b)
    assert tuple(y.shape) == (1, 1, r, r)


def test_slide_max_pool():
    y = F.max_pool2d(t4(SLIDE_X), 2, stride=1)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[3, 6, 6], [5, 2, 4], [5, 4, 4]])


def test_slide_avg_pool_with_erratum():
    """The slide prints 2 at row 3, column 2; the window there is [[0, 1], [4, 1]] so the mean is 1.5."""
    y = F.avg_pool2d(t4(SLIDE_X), 2, stride=1)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[2, 2.75, 3.5], [2.25, 0.75, 2.25], [3.25, 1.5, 2.25]])
    assert (0 + 1 + 4 + 1) / 4 == 1.5


def test_slide_moving_average_conv1d():
    series = tocha.tensor([[[100.0, 120, 115, 200, 135, 130, 140]]], dtype=tocha.float64)
    f = tocha.full((1, 1, 4), 0.25, dtype=tocha.float64)
    y = F.conv1d(series, f)
    np.testing.assert_allclose(y.numpy()[0, 0], [133.75, 142.5, 145.0, 151.25])
    # the same through the layer API
    layer = nn.Conv1d(1, 1, 4, bias=False).double()
    with tocha.no_grad():
        layer.weight.copy_(f)
    np.testing.assert_allclose(layer(series).detach().numpy()[0, 0], [133.75, 142.5, 145.0, 151.25])


FILTERS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "edge1": [[1, 0, -1], [0, 0, 0], [-1, 0, 1]],
    "edge2": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "edge3": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "vertical": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "horizontal": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "box": (np.ones((3, 3)) / 9).tolist(),
    "gauss": (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).tolist(),
}


def _image():
    # left half constant 0.2, right half constant 0.8: a vertical edge at column 4
    img = np.full((8, 8), 0.2)
    img[:, 4:] = 0.8
    return img


def test_slide_filter_table():
    img = _image()
    x = t4(img)
    out = {k: F.conv2d(x, t4(f)).numpy()[0, 0] for k, f in FILTERS.items()}
    np.testing.assert_allclose(out["identity"], img[1:-1, 1:-1])            # identity returns the interior
    for k in ("edge1", "edge2", "edge3", "horizontal"):
        np.testing.assert_allclose(out[k][:, :2], 0, atol=1e-12)            # 0 on constant regions
        np.testing.assert_allclose(out[k][:, -2:], 0, atol=1e-12)
    # the Laplacian-type edge filters respond at the edge columns, with opposite signs on each side
    assert np.all(out["edge2"][:, 2] > 0.5) and np.all(out["edge2"][:, 3] < -0.5)
    assert np.all(out["edge3"][:, 2] < -1) and np.all(out["edge3"][:, 3] > 1)
    np.testing.assert_allclose(out["vertical"][:, 2:4], 3 * 0.6)           # vertical edge detector fires
    np.testing.assert_allclose(out["horizontal"], 0, atol=1e-12)           # no horizontal edge in the image
    np.testing.assert_allclose(out["sharpen"][:, :2], 0.2)                 # sharpen keeps constant regions
    assert out["sharpen"][0, 2] < 0.2 and out["sharpen"][0, 3] > 0.8       # and amplifies the edge
    for k in ("box", "gauss"):
        np.testing.assert_allclose(out[k][:, :2], 0.2)                     # blur keeps constant regions
        assert np.all((out[k][:, 2:4] > 0.2) & (out[k][:, 2:4] < 0.8))     # and smooths the edge
    const = t4(np.full((5, 5), 3.0))
    for k in ("box", "gauss", "sharpen", "identity"):
        np.testing.assert_allclose(F.conv2d(const, t4(FILTERS[k])).numpy(), 3.0)


# ----------------------------------------------------------------------------------------- layers
def test_conv2d_layer_matches_torch_with_same_weights():
    torch.manual_seed(0)
    ref = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=1, groups=1)
    layer = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    layer.load_state_dict({k: tocha.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 10)).astype(np.float32)
    np.testing.assert_allclose(layer(tocha.tensor(x)).detach().numpy(), ref(torch.tensor(x)).detach().numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv_padding_modes_match_torch(mode):
    torch.manual_seed(0)
    for nd, shape in ((1, (2, 4, 9)), (2, (2, 4, 7, 6))):
        cls_t, cls = (torch.nn.Conv1d, nn.Conv1d) if nd == 1 else (torch.nn.Conv2d, nn.Conv2d)
        ref = cls_t(4, 6, 3, padding=2, padding_mode=mode, groups=2)
        layer = cls(4, 6, 3, padding=2, padding_mode=mode, groups=2)
        layer.load_state_dict({k: tocha.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(layer(tocha.tensor(x)).detach().numpy(), ref(torch.tensor(x)).detach().numpy(),
                                   atol=1e-5)


def test_conv_transpose_layer_and_output_size():
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert tuple(layer.weight.shape) == (4, 3, 3, 3)
    layer.load_state_dict({k: tocha.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6)).astype(np.float32)
    y = layer(tocha.tensor(x))
    assert tuple(y.shape) == (2, 6, 10, 12)
    np.testing.assert_allclose(y.detach().numpy(), ref(torch.tensor(x)).detach().numpy(), atol=1e-5)
    l1 = nn.ConvTranspose1d(3, 2, 4, stride=3)
    assert tuple(l1(tocha.zeros(2, 3, 5)).shape) == (2, 2, 16)
    l2 = nn.ConvTranspose2d(2, 2, 3, stride=2)
    assert tuple(l2(tocha.zeros(1, 2, 4, 4), output_size=(10, 10)).shape) == (1, 2, 10, 10)


def test_default_init_is_kaiming_uniform_a_sqrt5():
    layer = nn.Conv2d(16, 32, 3)
    fan_in = 16 * 9
    wb = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=√5): gain √(2/6), bound gain*√(3/fan_in) = 1/√fan_in
    w = layer.weight.detach().numpy()
    b = layer.bias.detach().numpy()
    assert w.shape == (32, 16, 3, 3) and np.abs(w).max() <= wb + 1e-7 and np.abs(w).max() > 0.9 * wb
    assert np.abs(b).max() <= 1 / math.sqrt(fan_in) + 1e-7
    assert abs(w.std() - wb / math.sqrt(3)) < 0.1 * wb
    assert nn.Conv1d(4, 4, 3, bias=False).bias is None


def test_pool_layers_and_indices():
    x = t4(SLIDE_X)
    _, idx = nn.MaxPool2d(2, stride=1, return_indices=True)(x)
    assert idx.dtype == tocha.int64
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[1, 2, 2], [8, 5, 7], [8, 13, 11]])
    np.testing.assert_array_equal(nn.AvgPool2d(2, stride=1)(x).numpy()[0, 0][2, 1], 1.5)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).numpy()[0, 0], [[3, 6], [5, 4]])
    np.testing.assert_array_equal(nn.AdaptiveAvgPool2d(1)(x).numpy().ravel(), [np.mean(SLIDE_X)])
    np.testing.assert_array_equal(nn.AdaptiveMaxPool2d((2, 2))(x).numpy()[0, 0], [[3, 6], [5, 4]])
    s = tocha.tensor([[[1.0, 5, 2, 8, 3]]])
    np.testing.assert_array_equal(nn.MaxPool1d(2)(s).numpy(), [[[5, 8]]])
    np.testing.assert_array_equal(nn.AvgPool1d(2)(s).numpy(), [[[3, 5]]])
    np.testing.assert_allclose(nn.AdaptiveAvgPool1d(1)(s).numpy(), [[[19 / 5]]], rtol=1e-6)


def test_max_pool_gradient_routes_to_argmax():
    x = t4(SLIDE_X)
    x.requires_grad_(True)
    F.max_pool2d(x, 2).sum().backward()
    g = np.zeros((4, 4))
    for i, j in ((0, 1), (0, 2), (2, 0), (2, 3)):   # 3, 6, 5 and the first 4 (row 2, col 3)
        g[i, j] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], g)


def test_cnn_trains_and_gradients_flow():
    tocha.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    x = tocha.randn(8, 1, 8, 8)
    y = tocha.tensor([0, 1] * 4)
    opt = tocha.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]


def test_results_independent_of_thread_count():
    rng = np.random.default_rng(0)
    x = tocha.tensor(rng.standard_normal((6, 8, 12, 12)).astype(np.float32), requires_grad=True)
    w = tocha.tensor(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), requires_grad=True)
    outs = []
    prev = tocha.get_num_threads()
    try:
        for nt in (1, 2):
            tocha.set_num_threads(nt)
            x.grad = None
            w.grad = None
            y = F.conv2d(x, w, padding=1)
            y.sum().backward()
            outs.append((y.detach().numpy().copy(), x.grad.numpy().copy(), w.grad.numpy().copy()))
    finally:
        tocha.set_num_threads(prev)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_direct_and_im2col_paths_agree():
    rng = np.random.default_rng(0)
    x = tocha.tensor(rng.standard_normal((3, 6, 9, 8)), requires_grad=True)
    w = tocha.tensor(rng.standard_normal((12, 1, 3, 3)), requires_grad=True)
    res = []
    try:
        for algo in (0, 1):
            tocha._C.set_conv_algo(algo)
            x.grad = None
            w.grad = None
            y = F.conv2d(x, w, stride=2, padding=1, dilation=(1, 2), groups=6)
            (y * y).sum().backward()
            res.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy()))
    finally:
        tocha._C.set_conv_algo(-1)
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


# Shapes that exercise every path of the im2col + GEMM kernels: N = 1 and prime N (uneven thread split,
# slices of the weight gradient), groups > 1, stride 2, dilation, the flat stride-1 'same' path (OW == W),
# valid convs, pointwise (1x1), both orientations of the weight-gradient GEMM (CKK x Kg tile waste) and
# 1-d-like planes (H = 1). Each runs with whole-image GEMMs and with images cut into row bands.
KERNEL_PATH_SHAPES = [
    # N, C, H, W, K, (kh, kw), stride, padding, dilation, groups
    (1, 3, 7, 9, 4, (3, 3), 1, 1, 1, 1),
    (7, 4, 9, 8, 6, (3, 3), 1, 1, 1, 1),
    (5, 6, 11, 10, 8, (3, 2), 2, 1, 1, 2),
    (3, 4, 12, 13, 4, (3, 3), 1, 2, 2, 2),
    (2, 3, 10, 10, 5, (5, 5), 1, 2, 1, 1),
    (11, 2, 9, 12, 3, (4, 3), 1, 0, 1, 1),
    (3, 16, 5, 5, 6, (1, 1), 2, 0, 1, 1),
    (4, 8, 6, 7, 16, (1, 1), 1, 0, 1, 1),
    (17, 1, 6, 6, 32, (3, 3), 1, 0, 1, 1),
    (3, 4, 1, 23, 6, (1, 5), 1, (0, 2), 1, 1),
    (2, 3, 8, 9, 4, (2, 3), (2, 3), (1, 2), (2, 1), 1),
    (3, 2, 9, 7, 3, (3, 3), (2, 1), 1, 1, 1),  # OW == W with a row stride: not the flat path
    # depthwise (direct kernels): weight-gradient rows of 16-lane chunks plus a tail, stride 2 (the
    # de-interleaved row), multiplier 2, dilation, rows narrower than one chunk
    (3, 6, 9, 37, 6, (3, 3), 1, 1, 1, 6),
    (2, 4, 8, 35, 8, (3, 5), 2, 2, 1, 4),
    (2, 3, 6, 40, 3, (2, 3), 1, (1, 0), (1, 3), 3),
    (5, 2, 4, 5, 2, (3, 3), 1, 0, 1, 2),
]


@pytest.mark.parametrize("shape", KERNEL_PATH_SHAPES, ids=[str(i) for i in range(len(KERNEL_PATH_SHAPES))])
@pytest.mark.parametrize("band_bytes", [0, 1, 700])
def test_kernel_paths_match_torch_and_thread_count(shape, band_bytes):
    N, C, H, W, K, ks, stride, padding, dilation, groups = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // groups) + ks)
    b = rng.standard_normal(K)
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    xp, wp, bp = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yp = torch.nn.functional.conv2d(xp, wp, bp, **kw)
    gp = torch.tensor(rng.standard_normal(tuple(yp.shape)))
    yp.backward(gp)
    prev = tocha.get_num_threads()
    results = []
    try:
        tocha._C.set_conv_band_bytes(band_bytes)
        for dtype, nt in ((tocha.float64, 1), (tocha.float32, 1), (tocha.float32, 2)):
            tocha.set_num_threads(nt)
            xt, wt, bt = (tocha.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b))
            yt = F.conv2d(xt, wt, bt, **kw)
            yt.backward(tocha.tensor(gp.numpy(), dtype=dtype))
            results.append([a.numpy().copy() for a in (yt.detach(), xt.grad, wt.grad, bt.grad)])
    finally:
        tocha._C.set_conv_band_bytes(0)
        tocha.set_num_threads(prev)
    for got, ref in zip(results[0], (yp.detach(), xp.grad, wp.grad, bp.grad)):
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-10)
    for got, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    for a, b_ in zip(results[1], results[2]):  # bitwise identical for 1 and 2 threads
        np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("band_bytes", [0, 700])
@pytest.mark.parametrize("dtype", [tocha.float32, tocha.float64])
def test_flat_packed_forward_bitwise_equals_im2col_path(dtype, band_bytes):
    # stride 1 with OW == W ('same' padding) builds the forward's col band straight in the GEMM's packed
    # layout; explicit zero padding + a valid conv takes the plain im2col + GEMM packing path with the same
    # K, so both must give the same bits (bias, groups, dilation, 1-d, row bands, 1 and 2 threads)
    rng = np.random.default_rng(3)
    cases = [((5, 8, 14, 14), (16, 8, 3, 3), (1, 1), (1, 1), 1), ((3, 4, 9, 11), (6, 2, 3, 3), (2, 2), (2, 2), 2),
             ((2, 3, 1, 37), (5, 3, 1, 5), (0, 2), (1, 1), 1), ((4, 6, 7, 7), (32, 6, 5, 5), (2, 2), (1, 1), 1)]
    prev = tocha.get_num_threads()
    try:
        tocha._C.set_conv_band_bytes(band_bytes)
        for xs, ws, pad, dil, g in cases:
            x = tocha.tensor(rng.standard_normal(xs), dtype=dtype)
            w = tocha.tensor(rng.standard_normal(ws), dtype=dtype)
            b = tocha.tensor(rng.standard_normal(ws[0]), dtype=dtype)
            xp = F.pad(x, (pad[1], pad[1], pad[0], pad[0]))
            for nt in (1, 2):
                tocha.set_num_threads(nt)
                for bias in (None, b):
                    y = F.conv2d(x, w, bias, padding=pad, dilation=dil, groups=g).numpy()
                    yv = F.conv2d(xp, w, bias, dilation=dil, groups=g).numpy()
                    assert y.shape == yv.shape
                    np.testing.assert_array_equal(y, yv)
        # a single output row (conv1d-like, valid: OW != W) takes the same packed path; the same conv with an
        # extra input row (two output rows, plain im2col path) gives the same bits in its first row
        for xs, ws, dil in (((3, 16, 1, 50), (8, 16, 1, 5), (1, 1)), ((2, 5, 3, 20), (7, 5, 3, 4), (1, 2))):
            x2 = tocha.tensor(rng.standard_normal(xs[:2] + (xs[2] + 1, xs[3])), dtype=dtype)
            w = tocha.tensor(rng.standard_normal(ws), dtype=dtype)
            b = tocha.tensor(rng.standard_normal(ws[0]), dtype=dtype)
            x1 = tocha.tensor(x2.numpy()[:, :, :xs[2]], dtype=dtype)
            for nt in (1, 2):
                tocha.set_num_threads(nt)
                for bias in (None, b):
                    y1 = F.conv2d(x1, w, bias, dilation=dil).numpy()
                    y2 = F.conv2d(x2, w, bias, dilation=dil).numpy()
                    assert y1.shape[2] == 1 and y2.shape[2] == 2
                    np.testing.assert_array_equal(y1, y2[:, :, :1])
    finally:
        tocha._C.set_conv_band_bytes(0)
        tocha.set_num_threads(prev)


# Winograd F(2x2, 3x3) (3x3, stride 1, groups 1; forward, input and weight gradients), forced with
# set_conv_algo(2): odd output sizes (partial 2x2 tiles), padding 0 / 1 / 2 and unequal, a single output
# pixel, rows wider than a vector of tiles, several tile chunks with GEMM panels shared by two images, channel
# counts that are not multiples of 8 / 16 and C > 256 (two GEMM K blocks); the input gradient runs the same
# kernel with K -> C channels, the weight gradient (F(3x3, 2x2)) sums over chunks of tiles in fixed slices.
WINOGRAD_SHAPES = [
    # N, C, H, W, K, padding, bias
    (3, 5, 7, 9, 6, 0, True),
    (2, 17, 9, 7, 19, 1, False),
    (1, 20, 8, 11, 18, 2, True),
    (2, 6, 8, 9, 5, (2, 0), True),
    (5, 16, 3, 3, 16, 0, True),
    (2, 3, 1, 30, 4, 1, True),
    (4, 33, 13, 40, 9, 1, False),
    (2, 300, 5, 6, 7, 1, True),
]


def _check_forced_conv(algo, x, w, b, **kw):
    """F.conv2d forward, input and weight gradients with set_conv_algo(algo) forced, in float64 and float32 at 1
    and 2 threads, against float64 PyTorch (1e-10 / 1e-4) and bitwise across the thread counts."""
    rng = np.random.default_rng(11)
    xp, wp = (torch.tensor(a, requires_grad=True) for a in (x, w))
    yp = torch.nn.functional.conv2d(xp, wp, None if b is None else torch.tensor(b), **kw)
    gy = rng.standard_normal(tuple(yp.shape))
    yp.backward(torch.tensor(gy))
    refs = [a.detach().numpy() for a in (yp, xp.grad, wp.grad)]
    prev = tocha.get_num_threads()
    results = []
    try:
        tocha._C.set_conv_algo(algo)
        for dtype, nt in ((tocha.float64, 1), (tocha.float64, 2), (tocha.float32, 1), (tocha.float32, 2)):
            tocha.set_num_threads(nt)
            xt, wt = (tocha.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w))
            yt = F.conv2d(xt, wt, None if b is None else tocha.tensor(b, dtype=dtype), **kw)
            yt.backward(tocha.tensor(gy, dtype=dtype))
            results.append([a.numpy().copy() for a in (yt.detach(), xt.grad, wt.grad)])
    finally:
        tocha._C.set_conv_algo(-1)
        tocha.set_num_threads(prev)
    for got, ref in zip(results[0], refs):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    for got, ref in zip(results[2], refs):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    for i, j in ((0, 1), (2, 3)):  # bitwise identical for 1 and 2 threads
        for a, b_ in zip(results[i], results[j]):
            np.testing.assert_array_equal(a, b_)


def _gradcheck_forced(algo, x_shape, w_shape, **kw):
    """Float64 finite-difference gradcheck of F.conv2d (input, weight, bias) with set_conv_algo(algo) forced."""
    rng = np.random.default_rng(6)
    x = tocha.tensor(rng.standard_normal(x_shape), dtype=tocha.float64, requires_grad=True)
    w = tocha.tensor(rng.standard_normal(w_shape), dtype=tocha.float64, requires_grad=True)
    b = tocha.tensor(rng.standard_normal(w_shape[0]), dtype=tocha.float64, requires_grad=True)
    try:
        tocha._C.set_conv_algo(algo)
        assert tocha.autograd.gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, **kw), (x, w, b),
                                        eps=1e-6, atol=1e-5, rtol=1e-3)
    finally:
        tocha._C.set_conv_algo(-1)


@pytest.mark.parametrize("shape", WINOGRAD_SHAPES, ids=[str(i) for i in range(len(WINOGRAD_SHAPES))])
def test_winograd_matches_torch_and_thread_count(shape):
    N, C, H, W, K, padding, bias = shape
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C, 3, 3))
    _check_forced_conv(2, x, w, rng.standard_normal(K) if bias else None, padding=padding)


def test_winograd_float64_gradcheck():
    # finite differences through the Winograd forward, input gradient and weight gradient (forced; odd plane,
    # padding 1, bias), on a shape small enough for the numerical Jacobian
    _gradcheck_forced(2, (1, 3, 5, 6), (2, 3, 3, 3), padding=1)


def test_winograd_dispatch():
    # the default choice gives the same bits as forcing the expected path (2: Winograd, 0: im2col + GEMM /
    # col2im), for the forward and the weight gradient (same tiles) and the input gradient (a Winograd conv K
    # -> C channels onto the H x W input): Winograd with >= 16 channels in and out unless the 2x2 tiles waste
    # a quarter of the outputs (5x5 planes)
    from tocha._ops import _wrap

    rng = np.random.default_rng(4)
    cases = [  # x shape, K, padding, expected (forward and weight gradient, input gradient)
        ((2, 16, 10, 9), 16, 1, (2, 2)), ((2, 8, 10, 9), 16, 1, (0, 0)), ((2, 16, 10, 9), 8, 1, (0, 0)),
        ((2, 16, 7, 7), 16, 0, (0, 2)), ((2, 16, 5, 5), 16, 1, (0, 0)), ((2, 1, 12, 12), 32, 0, (0, 0))]
    try:
        for xs, K, pad, expected in cases:
            x = tocha.tensor(rng.standard_normal(xs).astype(np.float32))._a
            w = tocha.tensor(rng.standard_normal((K, xs[1], 3, 3)).astype(np.float32))._a
            params = (1, 1, pad, pad, 1, 1, 1)
            gy = tocha.tensor(rng.standard_normal((xs[0], K, xs[2] + 2 * pad - 2, xs[3] + 2 * pad - 2))
                              .astype(np.float32))._a
            runs = {}
            for algo in (-1, 0, 2):
                tocha._C.set_conv_algo(algo)
                runs[algo] = (_wrap(tocha._C.conv2d_forward(x, w, None, params)).numpy(),
                              _wrap(tocha._C.conv2d_backward_input(gy, w, xs[2], xs[3], params)).numpy(),
                              _wrap(tocha._C.conv2d_backward_weight(x, gy, 3, 3, params)).numpy())
            for i, algo in enumerate(expected + expected[:1]):
                np.testing.assert_array_equal(runs[-1][i], runs[algo][i], err_msg=str((xs, K, pad, i)))
                assert not np.array_equal(runs[-1][i], runs[2 - algo][i]), (xs, K, pad, i)
    finally:
        tocha._C.set_conv_algo(-1)


def test_winograd_empty_batch():
    # no tiles at all: empty output and input gradient, a zero weight gradient
    x = tocha.zeros((0, 16, 8, 8), requires_grad=True)
    w = tocha.tensor(np.ones((16, 16, 3, 3), np.float32), requires_grad=True)
    try:
        tocha._C.set_conv_algo(2)
        y = F.conv2d(x, w, padding=1)
        y.sum().backward()
    finally:
        tocha._C.set_conv_algo(-1)
    assert y.shape == (0, 16, 8, 8) and x.grad.shape == (0, 16, 8, 8)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((16, 16, 3, 3), np.float32))


# Direct multi-channel forward (stride-1 columns, no col matrix; conv_impl.h direct_mc_forward), forced with
# set_conv_algo(3): every channel-block height 1..6 (K = 1, 2, 3, 4, 5, 7 = 4 + 3, 13 and 16 -> 6, 5, 5), output rows
# narrower than one 16-lane tile, rows with a partial last tile and several full ones, row stride 2, dilation,
# unequal padding, groups with several channels each, 1-d convs, a batch smaller than the thread count (bands of
# output rows per thread) and the column groups of wide rows.
DIRECT_MC_SHAPES = [
    # N, C, H, W, K, (kh, kw), stride (rows), padding, dilation, groups, bias
    (2, 3, 12, 20, 16, (5, 5), 1, 0, 1, 1, True),
    (3, 2, 7, 9, 1, (3, 3), 1, 1, 1, 1, False),
    (2, 4, 9, 33, 2, (3, 2), 2, (1, 0), 1, 1, True),
    (2, 5, 8, 18, 3, (2, 3), 1, (0, 2), (2, 1), 1, True),
    (1, 6, 11, 40, 4, (3, 3), 1, 1, (1, 3), 1, False),
    (2, 8, 6, 17, 5, (1, 3), 1, 0, 1, 1, True),
    (2, 6, 7, 23, 21, (3, 3), 2, 2, 2, 3, True),
    (2, 4, 5, 19, 13, (2, 2), 1, 0, 1, 1, False),
    (1, 3, 30, 30, 7, (5, 5), 1, 2, 1, 1, True),
    (2, 16, 1, 300, 32, (1, 5), 1, (0, 2), 1, 1, True),
    (2, 2, 5, 4, 6, (5, 4), 1, 0, 1, 2, True),
]


@pytest.mark.parametrize("shape", DIRECT_MC_SHAPES, ids=[str(i) for i in range(len(DIRECT_MC_SHAPES))])
def test_direct_mc_matches_torch_and_thread_count(shape):
    # forward and (where the row stride is 1) input gradient through the direct kernel; the weight gradient
    # runs im2col + GEMM
    N, C, H, W, K, ks, sh, padding, dilation, groups, bias = shape
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C // groups) + ks)
    _check_forced_conv(3, x, w, rng.standard_normal(K) if bias else None, stride=(sh, 1), padding=padding,
                       dilation=dilation, groups=groups)


def test_direct_mc_float64_gradcheck():
    # finite differences through the direct forward and input gradient (the weight gradient runs im2col)
    _gradcheck_forced(3, (2, 3, 6, 7), (5, 3, 3, 2), padding=(1, 0), dilation=(1, 2))


def test_direct_mc_dispatch():
    # the default forward runs the expected path (3: direct multi-channel, 0: im2col + GEMM) and gives its bits:
    # direct for few output channels per group (5x5 from 3 channels -> 16, LeNet's 1 -> 6), many-channel 1-d
    # convs and 'valid' convs up to 32 output channels; im2col for few taps (1 channel 3x3 -> 32), narrow planes
    # (OW = 9: a 16-lane tile would waste 7/16) and 64 output channels. Both paths sum each output as one FMA
    # chain over the taps in the same order, bias last, so on the AVX2 build (taps within one GEMM K block)
    # their results are even bitwise equal.
    from tocha._ops import _wrap

    rng = np.random.default_rng(9)
    cases = [  # x shape, K, (kh, kw), padding, expected
        ((2, 3, 20, 20), 16, (5, 5), 0, 3), ((2, 1, 20, 20), 6, (5, 5), 0, 3), ((2, 16, 1, 100), 32, (1, 5), 0, 3),
        ((2, 3, 20, 20), 32, (5, 5), 0, 3), ((2, 1, 20, 20), 32, (3, 3), 0, 0), ((2, 3, 11, 13), 16, (5, 5), 0, 0),
        ((2, 3, 20, 20), 64, (5, 5), 2, 0), ((2, 8, 20, 20), 32, (3, 3), 1, 0)]
    try:
        for xs, K, ks, pad, expected in cases:
            x = tocha.tensor(rng.standard_normal(xs).astype(np.float32))._a
            w = tocha.tensor(rng.standard_normal((K, xs[1]) + ks).astype(np.float32))._a
            params = (1, 1, pad, pad, 1, 1, 1)
            runs = {}
            for algo in (-1, 0, 3):
                tocha._C.set_conv_algo(algo)
                runs[algo] = _wrap(tocha._C.conv2d_forward(x, w, None, params)).numpy()
                assert tocha._C.last_conv_forward_algo() == (expected if algo == -1 else algo), (xs, K, ks, algo)
            np.testing.assert_array_equal(runs[-1], runs[expected], err_msg=str((xs, K, ks, pad)))
    finally:
        tocha._C.set_conv_algo(-1)


def test_direct_mc_input_gradient_dispatch():
    # the default input gradient gives the bits of the expected path (3: the direct kernel on gy padded by
    # (k-1)*d - p with the rotated, transposed kernel; 0: colgrad GEMM + col2im) and not the other one's: direct
    # with 16-32 channels on both sides and little zero border ('same' 5x5, 1-d), col2im for 3 input channels
    # and for a 'valid' 5x5 conv of a 12x12 plane (the correlation would run over 2.3x gy's area)
    from tocha._ops import _wrap

    rng = np.random.default_rng(10)
    cases = [  # x shape, K, (kh, kw), padding, expected
        ((2, 16, 1, 200), 32, (1, 5), 0, 3), ((2, 16, 14, 14), 32, (5, 5), 2, 3), ((2, 32, 9, 32), 16, (3, 5), (1, 2), 3),
        ((2, 3, 20, 20), 16, (5, 5), 0, 0), ((2, 32, 12, 12), 32, (5, 5), 0, 0), ((2, 8, 20, 20), 32, (5, 5), 2, 0)]
    try:
        for xs, K, ks, pad, expected in cases:
            ph, pw = pad if isinstance(pad, tuple) else (pad, pad)
            w = tocha.tensor(rng.standard_normal((K, xs[1]) + ks).astype(np.float32))._a
            oh, ow = xs[2] + 2 * ph - ks[0] + 1, xs[3] + 2 * pw - ks[1] + 1
            gy = tocha.tensor(rng.standard_normal((xs[0], K, oh, ow)).astype(np.float32))._a
            params = (1, 1, ph, pw, 1, 1, 1)
            runs = {}
            for algo in (-1, 0, 3):
                tocha._C.set_conv_algo(algo)
                runs[algo] = _wrap(tocha._C.conv2d_backward_input(gy, w, xs[2], xs[3], params)).numpy()
            np.testing.assert_array_equal(runs[-1], runs[expected], err_msg=str((xs, K, ks, pad)))
            assert not np.array_equal(runs[-1], runs[3 - expected]), (xs, K, ks, pad)
            np.testing.assert_allclose(runs[0], runs[3], rtol=1e-4, atol=1e-4)
    finally:
        tocha._C.set_conv_algo(-1)


def test_direct_mc_empty_and_nonfinite():
    # an empty batch, and an inf that only the discarded lanes of a partial tile read (the valid conv's last
    # input columns beyond what any output pixel reads are zero padding in the buffer: no inf leaks into y)
    try:
        tocha._C.set_conv_algo(3)
        y = F.conv2d(tocha.zeros((0, 3, 8, 8)), tocha.ones((4, 3, 3, 3)))
        assert y.shape == (0, 4, 6, 6)
        x = np.ones((1, 2, 4, 21), np.float32)
        x[0, 1, 2, 20] = np.inf  # read by output column 18 only (kw = 3)
        y = F.conv2d(tocha.tensor(x), tocha.ones((3, 2, 1, 3))).numpy()
    finally:
        tocha._C.set_conv_algo(-1)
    assert np.isinf(y[0, :, 2, 18]).all() and np.isfinite(np.delete(y[0, :, 2], 18, axis=1)).all()
    assert np.isfinite(y[0, :, [0, 1, 3]]).all()


def test_kernel_paths_generic_isa_in_subprocess():
    # TOCHA_CPU_ISA=generic: the baseline conv build with the generic GEMM (4x8 / 4x4 tiles, so other pre-packed
    # weight layouts and edge tiles): the same torch parity and 1-vs-2-thread bitwise checks as above
    import os
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    code = ("import tocha, test_conv as t\n"
            "assert tocha._C.gemm_isa() == 'generic'\n"
            "for s in t.KERNEL_PATH_SHAPES:\n"
            "    for bb in (0, 700):\n"
            "        t.test_kernel_paths_match_torch_and_thread_count(s, bb)\n"
            "for dt in (tocha.float32, tocha.float64):\n"
            "    t.test_flat_packed_forward_bitwise_equals_im2col_path(dt, 700)\n"
            "for s in t.WINOGRAD_SHAPES:\n"
            "    t.test_winograd_matches_torch_and_thread_count(s)\n"
            "for s in t.DIRECT_MC_SHAPES:\n"
            "    t.test_direct_mc_matches_torch_and_thread_count(s)\n"
            "print('ok')\n")
    env = dict(os.environ, TOCHA_CPU_ISA="generic")
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in [env.get("PYTHONPATH")] if p])
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


# ------------------------------------------------------------------------------------- bad inputs
def test_errors():
    x = tocha.zeros(1, 3, 5, 5)
    with pytest.raises(ValueError, match=r"kernel size.*greater than the padded input"):
        F.conv2d(x, tocha.zeros(2, 3, 7, 7))
    F.conv2d(x, tocha.zeros(2, 3, 7, 7), padding=1)  # fits once padded
    with pytest.raises(ValueError, match=r"stride must be positive"):
        F.conv2d(x, tocha.zeros(2, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"dilation must be positive"):
        F.conv2d(x, tocha.zeros(2, 3, 3, 3), dilation=-1)
    with pytest.raises(ValueError, match=r"padding must be non-negative"):
        F.conv2d(x, tocha.zeros(2, 3, 3, 3), padding=-1)
    with pytest.raises(ValueError, match=r"\(1, 3, 5, 5\) has 3 channels, but weight of shape \(2, 2, 3, 3\)"):
        F.conv2d(x, tocha.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"groups"):
        F.conv2d(x, tocha.zeros(4, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"expected a 3-d \(unbatched\) or 4-d \(batched\) input"):
        F.conv2d(tocha.zeros(5, 5), tocha.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"4-d weight"):
        F.conv2d(x, tocha.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"'same' is not supported for strided"):
        F.conv2d(x, tocha.zeros(2, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"invalid padding string"):
        F.conv2d(x, tocha.zeros(2, 3, 3, 3), padding="full")
    with pytest.raises(ValueError, match=r"expected bias of shape"):
        F.conv2d(x, tocha.zeros(2, 3, 3, 3), tocha.zeros(3))
    with pytest.raises(TypeError, match=r"floating-point"):
        F.conv2d(tocha.zeros(1, 3, 5, 5, dtype=tocha.int64), tocha.zeros(2, 3, 3, 3, dtype=tocha.int64))
    with pytest.raises(ValueError, match=r"output_padding"):
        F.conv_transpose2d(x, tocha.zeros(3, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"in_channels \(3\) must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"pad should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"too small"):
        F.max_pool2d(tocha.zeros(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match=r"stride must be positive"):
        F.avg_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"too large for reflect"):
        F.pad(x, (5, 5, 0, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"unsupported padding mode"):
        F.pad(x, (1, 1), mode="wrap")
    with pytest.raises(ValueError, match=r"number of sliding blocks"):
        F.fold(tocha.zeros(1, 4, 5), (3, 3), 2)


def test_non_contiguous_input():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 9, 8, 3))
    x = tocha.tensor(base).permute(0, 3, 1, 2)     # (2, 3, 9, 8), channels-last strides
    assert not x.is_contiguous()
    w = rng.standard_normal((4, 3, 3, 3))
    ref = torch.nn.functional.conv2d(torch.tensor(base).permute(0, 3, 1, 2), torch.tensor(w), padding=1)
    np.testing.assert_allclose(F.conv2d(x, tocha.tensor(w), padding=1).numpy(), ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(F.max_pool2d(x, 2).numpy(),
                               torch.nn.functional.max_pool2d(torch.tensor(base).permute(0, 3, 1, 2), 2).numpy())


def test_pad_integer_tensor_and_modes():
    x = tocha.tensor([[1, 2, 3]])
    np.testing.assert_array_equal(F.pad(x, (1, 2), value=7).numpy(), [[7, 1, 2, 3, 7, 7]])
    xf = tocha.tensor([[[1.0, 2, 3]]])
    np.testing.assert_array_equal(F.pad(xf, (2, 2), mode="reflect").numpy(), [[[3, 2, 1, 2, 3, 2, 1]]])
    np.testing.assert_array_equal(F.pad(xf, (2, 2), mode="replicate").numpy(), [[[1, 1, 1, 2, 3, 3, 3]]])
    np.testing.assert_array_equal(F.pad(xf, (2, 2), mode="circular").numpy(), [[[2, 3, 1, 2, 3, 1, 2]]])


def test_depthwise_weight_grad_ignores_unread_columns():
    # stride 2 never reads the last input column; an inf there must not leak into dW (the direct kernel's
    # zero-padded lanes multiply only zeros), as in PyTorch
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 6, 20))
    x[:, :, :, 19] = np.inf
    w = rng.standard_normal((4, 1, 3, 3))
    xp, wp = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(xp, wp, stride=2, groups=4).sum().backward()
    xt, wt = tocha.tensor(x, requires_grad=True), tocha.tensor(w, requires_grad=True)
    F.conv2d(xt, wt, stride=2, groups=4).sum().backward()
    assert np.isfinite(wt.grad.numpy()).all()
    np.testing.assert_allclose(wt.grad.numpy(), wp.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                dict(kernel_size=3, stride=3, ceil_mode=True),
                                dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1))])
def test_max_pool_ties_and_nan_match_torch(kw):
    # small integers: many ties (the first maximum in window order wins); NaNs propagate with PyTorch's index
    rng = np.random.default_rng(5)
    for shape in ((2, 3, 13, 17), (1, 2, 9, 70)):  # 2x2: one vector chunk per row / several, padded rows
        x = rng.integers(0, 4, shape).astype(np.float64)
        x[0, 0, 3, 5] = x[0, 1, 7, 8] = x[0, 1, 7, 9] = x[0, 1, 2, shape[3] - 4] = np.nan
        _check_max_pool_vs_torch(x, kw)


def _check_max_pool_vs_torch(x, kw):
    ref, ref_idx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    prev = tocha.get_num_threads()
    try:
        for dtype in (tocha.float32, tocha.float64):
            for nt in (1, 2):
                tocha.set_num_threads(nt)
                y, idx = F.max_pool2d(tocha.tensor(x, dtype=dtype), return_indices=True, **kw)
                np.testing.assert_array_equal(y.numpy(), ref.numpy().astype(y.numpy().dtype))
                np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    finally:
        tocha.set_num_threads(prev)
