"""Cases for the [conv] ops: convolution, transposed convolution, pooling, padding, unfold/fold.

Parity (float32/float64, forward + backward) runs on every case; float64 gradcheck only on the small ones
(``gradcheck=False`` marks the larger grid points, odd sizes and non-contiguous inputs).
"""

from harness import NC, Case, Sliced


def _F(m):
    return m.nn.functional


# (N, C, H, W, K, kernel, stride, padding, dilation, groups, gradcheck)
_CONV2D_GRID = [
    (2, 3, 5, 6, 4, 3, 1, 0, 1, 1, True),
    (1, 2, 6, 5, 3, (2, 3), (2, 1), (1, 0), 1, 1, True),
    (2, 4, 7, 7, 4, 3, 2, 1, (2, 1), 2, True),
    (1, 4, 5, 5, 4, 3, 1, 1, 1, 4, True),            # depthwise (direct kernel)
    (2, 2, 6, 6, 4, 3, 1, 2, 2, 2, True),            # depthwise multiplier 2, dilation 2
    (2, 3, 4, 5, 5, 1, 1, 0, 1, 1, True),            # pointwise (no im2col)
    (3, 1, 13, 7, 5, 3, 1, 0, 1, 1, True),           # 1-channel input
    (4, 6, 13, 11, 8, 5, 2, 2, 1, 2, False),         # odd sizes, bigger
    (1, 16, 9, 9, 16, 3, 1, 1, 1, 16, False),        # depthwise, batch 1
    (5, 8, 7, 13, 12, (3, 1), (1, 3), (0, 1), (1, 1), 4, False),
    (2, 3, 8, 8, 6, 7, 3, 3, 1, 1, False),           # kernel close to the input size
    (2, 3, 3, 3, 2, 3, 1, 0, 1, 1, True),            # 1x1 output
]


def _conv2d_fn(s, p, d, g):
    return lambda m, x, w, b: _F(m).conv2d(x, w, b, s, p, d, g)


def _conv1d_fn(s, p, d, g):
    return lambda m, x, w, b: _F(m).conv1d(x, w, b, s, p, d, g)


def _convt_fn(name, s, p, op, g, d):
    return lambda m, x, w, b: getattr(_F(m), name)(x, w, b, s, p, op, g, d)


def _pad_fn(pads, mode):
    return lambda m, x: _F(m).pad(x, pads, mode=mode)


def _conv2d_cases():
    cases = []
    for N, C, H, W, K, k, s, p, d, g, gc in _CONV2D_GRID:
        kh, kw = (k, k) if isinstance(k, int) else k
        f = _conv2d_fn(s, p, d, g)
        cases.append(Case(f, [(N, C, H, W), (K, C // g, kh, kw), (K,)], gradcheck=gc))
    # no bias, non-contiguous input and weight, string padding, unbatched
    cases.append(Case(lambda m, x, w: _F(m).conv2d(x, w, stride=2, padding=1), [NC((2, 3, 7, 6)), NC((4, 3, 3, 3))],
                      gradcheck=False))
    cases.append(Case(lambda m, x, w: _F(m).conv2d(x, w, groups=3), [Sliced((2, 3, 6, 5)), (6, 1, 3, 2)],
                      gradcheck=False))
    cases.append(Case(lambda m, x, w: _F(m).conv2d(x, w, padding="same", dilation=(1, 2)), [(2, 2, 5, 6), (3, 2, 3, 2)]))
    cases.append(Case(lambda m, x, w: _F(m).conv2d(x, w, padding="valid"), [(1, 2, 5, 6), (3, 2, 3, 2)]))
    cases.append(Case(lambda m, x, w: _F(m).conv2d(x, w, padding=1), [(2, 5, 6), (3, 2, 3, 3)]))
    return cases


_CONV1D_GRID = [
    # (N, C, L, K, k, stride, padding, dilation, groups, gradcheck)
    (2, 3, 9, 4, 3, 1, 0, 1, 1, True),
    (1, 4, 11, 6, 4, 2, 1, 2, 2, True),
    (3, 4, 10, 4, 3, 1, 1, 1, 4, True),     # depthwise
    (4, 16, 101, 8, 5, 3, 2, 1, 1, False),
]


def _conv1d_cases():
    cases = []
    for N, C, L, K, k, s, p, d, g, gc in _CONV1D_GRID:
        f = _conv1d_fn(s, p, d, g)
        cases.append(Case(f, [(N, C, L), (K, C // g, k), (K,)], gradcheck=gc))
    cases.append(Case(lambda m, x, w: _F(m).conv1d(x, w, padding="same"), [NC((2, 3, 8)), (2, 3, 4)], gradcheck=False))
    cases.append(Case(lambda m, x, w: _F(m).conv1d(x, w, padding="same"), [(2, 3, 8), (2, 3, 4)]))
    cases.append(Case(lambda m, x, w: _F(m).conv1d(x, w), [(3, 8), (2, 3, 3)]))
    return cases


def _convt_cases(nd):
    name = f"conv_transpose{nd}d"
    # (N, Cin, spatial, Cout, kernel, stride, padding, output_padding, groups, dilation, gradcheck)
    grid = [
        (2, 3, 4, 2, 3, 1, 0, 0, 1, 1, True),
        (1, 4, 5, 6, 3, 2, 1, 1, 2, 1, True),
        (2, 2, 4, 2, 2, 2, 0, 0, 1, 2, True),
        (3, 6, 7, 4, 4, 3, 2, 2, 2, 1, False),
    ]
    cases = []
    for N, Ci, S, Co, k, s, p, op, g, d, gc in grid:
        f = _convt_fn(name, s, p, op, g, d)
        sp = (S,) * nd if nd == 1 else (S, S + 1)
        cases.append(Case(f, [(N, Ci) + sp, (Ci, Co // g) + (k,) * nd, (Co,)], gradcheck=gc))
    cases.append(Case(lambda m, x, w: getattr(_F(m), name)(x, w, stride=2), [NC((2, 3) + (5,) * nd), (3, 2) + (3,) * nd],
                      gradcheck=False))
    return cases


def _pool_cases():
    c = {}
    c["max_pool2d"] = [
        Case(lambda m, x: _F(m).max_pool2d(x, 2), [(2, 3, 6, 7)]),
        Case(lambda m, x: _F(m).max_pool2d(x, 3, 2, 1, ceil_mode=True), [(2, 2, 7, 8)]),
        Case(lambda m, x: _F(m).max_pool2d(x, (2, 3), (1, 2), (1, 1), dilation=(2, 1)), [(1, 2, 7, 9)]),
        Case(lambda m, x: _F(m).max_pool2d(x, 2, return_indices=True), [(2, 3, 6, 7)]),
        Case(lambda m, x: _F(m).max_pool2d(x, 3, 1, ceil_mode=True), [NC((2, 3, 9, 8))], gradcheck=False),
        Case(lambda m, x: _F(m).max_pool2d(x, 2, 2), [(3, 5, 5)]),
    ]
    c["max_pool1d"] = [
        Case(lambda m, x: _F(m).max_pool1d(x, 3), [(2, 3, 10)]),
        Case(lambda m, x: _F(m).max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True, return_indices=True), [(2, 2, 11)]),
        Case(lambda m, x: _F(m).max_pool1d(x, 2), [NC((2, 3, 9))], gradcheck=False),
    ]
    c["avg_pool2d"] = [
        Case(lambda m, x: _F(m).avg_pool2d(x, 2), [(2, 3, 6, 7)]),
        Case(lambda m, x: _F(m).avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [(2, 2, 7, 8)]),
        Case(lambda m, x: _F(m).avg_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True), [(1, 2, 8, 5)]),
        Case(lambda m, x: _F(m).avg_pool2d(x, 3, 2, 1, divisor_override=4), [(2, 2, 7, 7)]),
        Case(lambda m, x: _F(m).avg_pool2d(x, 2, 1), [NC((2, 3, 6, 5))], gradcheck=False),
    ]
    c["avg_pool1d"] = [
        Case(lambda m, x: _F(m).avg_pool1d(x, 3), [(2, 3, 10)]),
        Case(lambda m, x: _F(m).avg_pool1d(x, 4, 3, 2, ceil_mode=True, count_include_pad=False), [(2, 2, 11)]),
        Case(lambda m, x: _F(m).avg_pool1d(x, 2), [Sliced((2, 3, 9))], gradcheck=False),
    ]
    c["adaptive_avg_pool2d"] = [
        Case(lambda m, x: _F(m).adaptive_avg_pool2d(x, (3, 4)), [(2, 3, 7, 9)]),
        Case(lambda m, x: _F(m).adaptive_avg_pool2d(x, 1), [(2, 3, 5, 6)]),
        # global pooling takes the mean fast path: unbatched and non-contiguous inputs too
        Case(lambda m, x: _F(m).adaptive_avg_pool2d(x, (1, 1)), [(3, 5, 6)]),
        Case(lambda m, x: _F(m).adaptive_avg_pool2d(x, 1), [NC((2, 3, 5, 6))], gradcheck=False),
        Case(lambda m, x: _F(m).adaptive_avg_pool2d(x, (None, 2)), [(2, 5, 7)]),
        Case(lambda m, x: _F(m).adaptive_avg_pool2d(x, (5, 8)), [NC((2, 3, 7, 6))], gradcheck=False),
    ]
    c["adaptive_avg_pool1d"] = [
        Case(lambda m, x: _F(m).adaptive_avg_pool1d(x, 4), [(2, 3, 10)]),
        Case(lambda m, x: _F(m).adaptive_avg_pool1d(x, 1), [(2, 3, 10)]),
        Case(lambda m, x: _F(m).adaptive_avg_pool1d(x, 7), [NC((2, 3, 5))], gradcheck=False),
    ]
    c["adaptive_max_pool2d"] = [
        Case(lambda m, x: _F(m).adaptive_max_pool2d(x, (3, 4)), [(2, 3, 7, 9)]),
        Case(lambda m, x: _F(m).adaptive_max_pool2d(x, 2, return_indices=True), [(2, 2, 5, 5)]),
        Case(lambda m, x: _F(m).adaptive_max_pool2d(x, (4, 3)), [NC((2, 3, 7, 6))], gradcheck=False),
    ]
    c["adaptive_max_pool1d"] = [
        Case(lambda m, x: _F(m).adaptive_max_pool1d(x, 4), [(2, 3, 10)]),
        Case(lambda m, x: _F(m).adaptive_max_pool1d(x, 3, return_indices=True), [NC((2, 3, 8))], gradcheck=False),
    ]
    return c


def _pad_cases():
    cases = []
    for mode in ("constant", "reflect", "replicate", "circular"):
        cases.append(Case(_pad_fn((1, 2, 2, 1), mode), [(2, 2, 4, 5)]))
        cases.append(Case(_pad_fn((2, 3), mode), [(2, 3, 5)]))
        cases.append(Case(_pad_fn((1, 1, 2, 0), mode), [NC((2, 3, 4, 5))], gradcheck=False))
    cases.append(Case(lambda m, x: _F(m).pad(x, (-1, 2, 1, -2), value=1.5), [(2, 5, 6)]))
    cases.append(Case(lambda m, x: _F(m).pad(x, (3, 1)), [(4,)]))
    return cases


CASES = {
    "conv2d": _conv2d_cases(),
    "conv1d": _conv1d_cases(),
    "conv_transpose1d": _convt_cases(1),
    "conv_transpose2d": _convt_cases(2),
    **_pool_cases(),
    "pad": _pad_cases(),
    "unfold": [
        Case(lambda m, x: _F(m).unfold(x, 2), [(2, 3, 4, 5)]),
        Case(lambda m, x: _F(m).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), [(1, 2, 5, 6)]),
        Case(lambda m, x: _F(m).unfold(x, 3, padding=1), [NC((2, 3, 5, 4))], gradcheck=False),
    ],
    "fold": [
        Case(lambda m, x: _F(m).fold(x, (4, 5), 2), [(2, 12, 12)]),
        Case(lambda m, x: _F(m).fold(x, (6, 7), (2, 3), padding=1, stride=(2, 1)), [(1, 12, 28)]),
        Case(lambda m, x: _F(m).fold(x, (3, 3), 2), [NC((2, 8, 4))], gradcheck=False),
    ],
}
