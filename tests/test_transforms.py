"""tocha.transforms: exact behaviour on small arrays, seeding, batching; SMOTE."""

import numpy as np
import pytest
import tocha
import tocha.transforms as T


def _img(c=1, h=4, w=5):
    return tocha.arange(c * h * w).reshape(c, h, w).float()


def test_to_tensor_layouts_and_scaling():
    a = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    t = T.ToTensor()(a)
    assert t.dtype == tocha.float32 and tuple(t.shape) == (1, 2, 2)
    np.testing.assert_allclose(t.numpy()[0], a / 255.0, rtol=1e-6)
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 2] = 255
    t = T.ToTensor()(rgb)
    assert tuple(t.shape) == (3, 4, 5) and t[2].min().item() == 1.0 and t[0].max().item() == 0.0
    assert tuple(T.ToTensor()(tocha.zeros(4, 5, dtype=tocha.uint8)).shape) == (1, 4, 5)
    with pytest.raises(TypeError, match="ndarray or Tensor"):
        T.ToTensor()([1, 2])


def test_normalize_values_and_errors():
    x = tocha.tensor([[[1.0, 3.0]], [[2.0, 4.0]]])  # (2, 1, 2)
    y = T.Normalize([1.0, 2.0], [2.0, 0.5])(x)
    assert y.tolist() == [[[0.0, 1.0]], [[0.0, 4.0]]]
    xb = x.unsqueeze(0).repeat(3, 1, 1, 1)
    assert T.Normalize([1.0, 2.0], [2.0, 0.5])(xb)[2].tolist() == y.tolist()
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="channels"):
        T.Normalize([0, 0, 0], [1, 1, 1])(x)
    with pytest.raises(TypeError, match="float tensor"):
        T.Normalize([0], [1])(tocha.zeros(1, 2, 2, dtype=tocha.uint8))


def test_flips_with_p_one_and_zero():
    x = _img()
    assert T.RandomHorizontalFlip(p=1.0)(x).tolist() == x.numpy()[:, :, ::-1].tolist()
    assert T.RandomVerticalFlip(p=1.0)(x).tolist() == x.numpy()[:, ::-1, :].tolist()
    assert T.RandomHorizontalFlip(p=0.0)(x) is x
    xb = tocha.stack([x, x + 100])
    assert T.RandomHorizontalFlip(p=1.0)(xb).tolist() == xb.numpy()[..., ::-1].tolist()
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)  # NumPy in -> NumPy out, same layout
    out = T.RandomHorizontalFlip(1.0)(a)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.tolist() == [[2, 1, 0], [5, 4, 3]]


def test_random_crop_offsets_and_padding():
    x = _img(1, 4, 5)
    tocha.manual_seed(0)
    out = T.RandomCrop(2)(x)
    crops = {tuple(map(tuple, x.numpy()[0, i:i + 2, j:j + 2])) for i in range(3) for j in range(4)}
    assert tuple(map(tuple, out.numpy()[0])) in crops
    t = T.RandomCrop((2, 3))
    t.get_params = lambda hw: (1, 2, 2, 3)  # known offsets
    assert t(x).tolist() == x.numpy()[:, 1:3, 2:5].tolist()
    padded = T.RandomCrop((6, 7), padding=1)(x)  # padding 1 on each side, only one possible window
    expect = np.pad(x.numpy(), ((0, 0), (1, 1), (1, 1)))
    assert padded.tolist() == expect.tolist()
    assert T.RandomCrop((6, 7), padding=1, padding_mode="edge")(x).tolist() == np.pad(
        x.numpy(), ((0, 0), (1, 1), (1, 1)), mode="edge").tolist()
    with pytest.raises(ValueError, match="larger than input"):
        T.RandomCrop(9)(x)
    assert tuple(T.RandomCrop(6, pad_if_needed=True)(x).shape) == (1, 6, 6)


def test_random_crop_covers_all_offsets_and_is_seeded():
    x = _img(1, 3, 3)
    tocha.manual_seed(1)
    seen = {tuple(T.RandomCrop(2)(x).numpy().ravel()) for _ in range(200)}
    assert len(seen) == 4
    tocha.manual_seed(5)
    a = [T.RandomCrop(2)(x).tolist() for _ in range(5)]
    tocha.manual_seed(5)
    assert a == [T.RandomCrop(2)(x).tolist() for _ in range(5)]
    g1, g2 = tocha.Generator().manual_seed(3), tocha.Generator().manual_seed(3)
    assert T.RandomCrop(2, generator=g1)(x).tolist() == T.RandomCrop(2, generator=g2)(x).tolist()


def test_center_crop_and_resize():
    x = _img(1, 4, 4)
    assert T.CenterCrop(2)(x).tolist() == x.numpy()[:, 1:3, 1:3].tolist()
    up = T.Resize((8, 8))(x)
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.interpolate(torch.from_numpy(x.numpy())[None], size=(8, 8), mode="bilinear",
                                          align_corners=False)[0]
    np.testing.assert_allclose(up.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    down = T.Resize((2, 3))(x)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x.numpy())[None], size=(2, 3), mode="bilinear",
                                          align_corners=False)[0]
    np.testing.assert_allclose(down.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_random_resized_crop_shape_and_full_scale():
    x = _img(2, 6, 6)
    tocha.manual_seed(0)
    out = T.RandomResizedCrop(4)(x)
    assert tuple(out.shape) == (2, 4, 4)
    same = T.RandomResizedCrop(6, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x)  # whole image, no resize
    assert same.tolist() == x.tolist()


def test_rotation_by_90_degrees_is_rot90():
    x = _img(1, 5, 5)
    r = T.RandomRotation((90, 90))(x)
    np.testing.assert_allclose(r.numpy()[0], np.rot90(x.numpy()[0], 1), atol=1e-6)  # counter-clockwise
    r = T.RandomRotation((-90, -90))(x)
    np.testing.assert_allclose(r.numpy()[0], np.rot90(x.numpy()[0], -1), atol=1e-6)
    assert T.RandomRotation(0)(x).tolist() == x.tolist()


def test_affine_translation_and_fill():
    x = _img(1, 3, 4) + 1
    t = T.RandomAffine(0, translate=(0.5, 0.0), fill=-1)
    t.get_params = lambda hw: (0.0, (1, 0), 1.0, (0.0, 0.0))
    out = t(x).numpy()[0]
    assert out[:, 0].tolist() == [-1, -1, -1] and out[:, 1:].tolist() == x.numpy()[0, :, :3].tolist()
    s = T.RandomAffine(0, scale=(2.0, 2.0))
    out = s(_img(1, 5, 5)).numpy()[0]
    assert out[2, 2] == 12.0  # the centre stays put under scaling
    with pytest.raises(ValueError, match="translation"):
        T.RandomAffine(0, translate=(2, 0))


def test_color_jitter_brightness_contrast():
    x = tocha.tensor([[[0.2, 0.4], [0.6, 0.8]]])
    t = T.ColorJitter(brightness=(2.0, 2.0))
    assert np.allclose(t(x).numpy(), np.clip(x.numpy() * 2, 0, 1))
    c = T.ColorJitter(contrast=(0.0, 0.0))
    assert np.allclose(c(x).numpy(), 0.5)  # zero contrast -> the mean grey everywhere
    u8 = np.array([[100, 200]], dtype=np.uint8)
    assert T.ColorJitter(brightness=(2.0, 2.0))(u8).tolist() == [[200, 255]]
    with pytest.raises(ValueError, match="non negative"):
        T.ColorJitter(brightness=-1)


def test_gaussian_noise_and_erasing():
    x = tocha.full((1, 8, 8), 0.5)
    tocha.manual_seed(0)
    n = T.GaussianNoise(sigma=0.1)(x)
    assert 0.05 < float((n - x).std()) < 0.15 and float(n.max()) <= 1.0
    with pytest.raises(TypeError, match="float tensor"):
        T.GaussianNoise()(np.zeros((2, 2)))
    e = T.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0)(x)
    zero = (e.numpy()[0] == 0)
    assert zero.sum() == 16 and zero.any(0).sum() == 4 and zero.any(1).sum() == 4  # one 4x4 square
    assert T.RandomErasing(p=0.0)(x) is x


def test_compose_lambda_pipeline_on_dataset_image():
    a = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    tocha.manual_seed(0)
    pipe = T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize((0.1307,), (0.3081,)), T.Lambda(lambda t: t * 1)])
    out = pipe(a)
    assert tuple(out.shape) == (1, 28, 28) and out.dtype == tocha.float32
    assert "RandomCrop" in repr(pipe)


# ------------------------------------------------------------------ SMOTE
def _on_segment(p, a, b, tol=1e-9):
    ab, ap = b - a, p - a
    t = ap @ ab / max(ab @ ab, 1e-300)
    return -tol <= t <= 1 + tol and np.linalg.norm(ap - t * ab) < 1e-7


def test_smote_balances_and_interpolates_between_neighbours():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(5, 1, (8, 2))])
    y = np.array([0] * 40 + [1] * 8)
    Xr, yr = T.SMOTE(k_neighbors=3, random_state=0).fit_resample(X, y)
    assert np.bincount(yr).tolist() == [40, 40]
    assert np.array_equal(Xr[:48], X)  # originals first, unchanged
    minority = X[y == 1]
    d2 = ((minority[:, None] - minority[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nn = np.argsort(d2, axis=1)[:, :3]
    for p in Xr[48:]:
        assert any(_on_segment(p, minority[i], minority[j]) for i in range(8) for j in nn[i])
    Xr2, _ = T.SMOTE(k_neighbors=3, random_state=0).fit_resample(X, y)
    assert np.array_equal(Xr, Xr2)


def test_smote_strategies_tensors_and_errors():
    X = tocha.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [10.0, 10.0], [11.0, 10.0]])
    y = tocha.tensor([0, 0, 0, 0, 1, 1])
    Xr, yr = T.SMOTE(sampling_strategy={1: 3}, random_state=1).fit_resample(X, y)
    assert isinstance(Xr, tocha.Tensor) and yr.tolist().count(1) == 3 and Xr.dtype == tocha.float32
    Xr, yr = T.SMOTE(sampling_strategy=0.75, random_state=1).fit_resample(X, y)
    assert yr.tolist().count(1) == 3
    with pytest.raises(ValueError, match="at least 2 samples"):
        T.SMOTE().fit_resample(X[:5], y[:5])
    with pytest.raises(ValueError, match="over-samples only"):
        T.SMOTE(sampling_strategy={0: 1}).fit_resample(X, y)
