"""Map-style and iterable datasets, ``Subset``/``ConcatDataset`` and ``random_split``."""

import bisect
import math
import warnings

import numpy as np

from ... import _ops
from ..._tensor import Tensor


class Dataset:
    """Map-style dataset: subclasses implement ``__getitem__(index)`` and ``__len__()``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Stream-style dataset: subclasses implement ``__iter__()``.

    With ``num_workers > 0`` every worker iterates its own copy; split the work with
    ``tocha.utils.data.get_worker_info()`` (as in PyTorch).
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are ``tuple(t[i] for t in tensors)``; all tensors share their first dimension.

    A ``DataLoader`` with the default collate gathers a whole batch with one ``index_select`` per
    tensor (see ``_gather``) instead of stacking per-sample views.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        n = tensors[0].shape[0] if tensors[0].ndim else None
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset expects tensors, got {type(t).__name__}")
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError("Size mismatch between tensors: every tensor needs the same first dimension, got "
                                 + str([tuple(t.shape) for t in tensors]))
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _gather(self, indices):
        idx = np.asarray(indices.tolist() if isinstance(indices, Tensor) else indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for TensorDataset of length {len(self)}")
        # one gather per tensor; NumPy's take runs single-threaded, which on a busy machine beats
        # waking an OpenMP team for a ~100 KB copy. Tensors that need grad keep the autograd op.
        return tuple(_ops.index_select(t, 0, _ops.from_numpy(idx)) if t.requires_grad
                     else _ops.from_numpy(np.take(t.detach().numpy(), idx, axis=0)) for t in self.tensors)


class StackDataset(Dataset):
    """Zip datasets of equal length: samples are tuples (positional) or dicts (keyword)."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset takes positional or keyword datasets, not both")
        self.datasets = args or kwargs
        items = list(args) if args else list(kwargs.values())
        if not items:
            raise ValueError("StackDataset needs at least one dataset")
        self._length = len(items[0])
        if any(len(d) != self._length for d in items):
            raise ValueError("Size mismatch between datasets")

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self):
        return self._length


class ConcatDataset(Dataset):
    """Concatenation of map-style datasets (index ``i`` walks them in order)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        idx = int(idx)
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        if idx >= len(self):
            raise IndexError(f"index {idx} is out of range for ConcatDataset of length {len(self)}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][idx - start]


class ChainDataset(IterableDataset):
    """Chain iterable datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (a view: nothing is copied)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in (indices.tolist() if isinstance(indices, Tensor) else indices)]

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)

    def _gather(self, indices):
        return self.dataset._gather([self.indices[i] for i in indices])


def _index_tensor(indices):
    if isinstance(indices, Tensor):
        return indices.to(_ops.int64) if indices.dtype is not _ops.int64 else indices
    return _ops.tensor(list(indices), dtype=_ops.int64)


def _can_gather(dataset):
    """True when ``dataset._gather(indices)`` builds the same batch as collating samples."""
    if isinstance(dataset, TensorDataset):
        # a subclass with its own __getitem__ must see every index
        return type(dataset).__getitem__ is TensorDataset.__getitem__
    if isinstance(dataset, Subset):
        return type(dataset).__getitem__ is Subset.__getitem__ and _can_gather(dataset.dataset)
    return callable(getattr(dataset, "_gather", None)) and getattr(dataset, "_gather_ok", lambda: False)()


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping ``Subset``s of the given lengths.

    Args:
        dataset: a map-style dataset.
        lengths: integer lengths summing to ``len(dataset)``, or fractions summing to 1 (the
            remainder after flooring is spread round-robin over the splits, as in PyTorch).
        generator: a ``tocha.Generator`` for a reproducible split (default: the global stream).

    Returns:
        list of ``Subset``.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not all(
            isinstance(x, int) for x in lengths):
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, s in enumerate(sizes):
            if s == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.")
        lengths = sizes
    if any(int(x) != x or x < 0 for x in lengths):
        raise ValueError(f"random_split lengths must be non-negative integers or fractions, got {lengths}")
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = _ops.randperm(n, generator=generator).tolist()
    out, start = [], 0
    for ln in lengths:
        out.append(Subset(dataset, perm[start:start + int(ln)]))
        start += int(ln)
    return out
