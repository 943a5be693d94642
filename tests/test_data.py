"""tocha.utils.data: datasets, samplers, collation, DataLoader (single- and multi-process)."""

import collections

import numpy as np
import pytest
import tocha
from tocha.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)


def _ds(n=10):
    X = tocha.arange(n * 2).reshape(n, 2).float()
    y = tocha.arange(n)
    return TensorDataset(X, y)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full((2,), i, dtype=np.float32), "y": i, "name": f"s{i}"}


class NoisySquares(Dataset):
    """Draws randomness in __getitem__: tests per-worker seeding."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return tocha.rand(1).item() + i


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


def test_tensor_dataset_indexing_and_errors():
    ds = _ds()
    x, y = ds[3]
    assert x.tolist() == [6.0, 7.0] and y.item() == 3 and len(ds) == 10
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(tocha.zeros(3, 2), tocha.zeros(4))


def test_shuffle_is_a_permutation_each_epoch_and_changes():
    loader = DataLoader(_ds(23), batch_size=5, shuffle=True, generator=tocha.Generator().manual_seed(1))
    epochs = []
    for _ in range(3):
        ys = [yb.tolist() for _, yb in loader]
        assert [len(b) for b in ys] == [5, 5, 5, 5, 3]
        flat = sum(ys, [])
        assert sorted(flat) == list(range(23))  # without replacement: each sample exactly once
        epochs.append(flat)
    assert epochs[0] != epochs[1] != epochs[2]
    assert len(loader) == 5


def test_shuffle_reproducible_with_generator_and_global_seed():
    a = [yb.tolist() for _, yb in DataLoader(_ds(), 4, shuffle=True, generator=tocha.Generator().manual_seed(7))]
    b = [yb.tolist() for _, yb in DataLoader(_ds(), 4, shuffle=True, generator=tocha.Generator().manual_seed(7))]
    assert a == b
    tocha.manual_seed(3)
    c = [yb.tolist() for _, yb in DataLoader(_ds(), 4, shuffle=True)]
    tocha.manual_seed(3)
    d = [yb.tolist() for _, yb in DataLoader(_ds(), 4, shuffle=True)]
    assert c == d


def test_drop_last_and_sequential_batches():
    loader = DataLoader(_ds(10), batch_size=4, drop_last=True)
    ys = [yb.tolist() for _, yb in loader]
    assert ys == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(loader) == 2
    xb, _ = next(iter(loader))
    assert xb.dtype == tocha.float32 and tuple(xb.shape) == (4, 2)


def test_fast_gather_path_equals_per_sample_collate():
    ds = _ds(9)
    idx = [4, 0, 8, 2]
    fast = ds._gather(idx)
    slow = default_collate([ds[i] for i in idx])
    for f, s in zip(fast, slow):
        assert f.tolist() == s.tolist() and f.dtype == s.dtype
    sub = Subset(ds, [8, 7, 6])
    assert [yb.tolist() for _, yb in DataLoader(sub, batch_size=2)] == [[8, 7], [6]]


def test_fast_path_uses_one_index_select_per_tensor(monkeypatch):
    ds = _ds(50)
    calls = []
    monkeypatch.setattr(TensorDataset, "__getitem__", lambda self, i: calls.append(i))
    batches = list(DataLoader(ds, batch_size=16, shuffle=True))
    assert not calls and sum(len(b[1]) for b in batches) == 50


def test_default_collate_structures():
    batch = default_collate([Squares(3)[i] for i in range(3)])
    assert batch["x"].dtype == tocha.float32 and tuple(batch["x"].shape) == (3, 2)
    assert batch["y"].dtype == tocha.int64 and batch["y"].tolist() == [0, 1, 2]
    assert batch["name"] == ["s0", "s1", "s2"]
    out = default_collate([(1.5, [1, 2]), (2.5, [3, 4])])
    assert out[0].dtype == tocha.float64 and out[0].tolist() == [1.5, 2.5]
    assert [t.tolist() for t in out[1]] == [[1, 3], [2, 4]]
    P = collections.namedtuple("P", "a b")
    p = default_collate([P(1, 2.0), P(3, 4.0)])
    assert isinstance(p, P) and p.a.tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="found NoneType"):
        default_collate([None, None])


def test_batch_size_none_and_custom_collate():
    loader = DataLoader(_ds(3), batch_size=None)
    items = list(loader)
    assert len(items) == 3 and items[2][1].item() == 2
    loader = DataLoader(_ds(4), batch_size=2, collate_fn=lambda b: len(b))
    assert list(loader) == [2, 2]


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = tocha.Generator().manual_seed(0)
    r = list(RandomSampler(range(6), generator=g))
    assert sorted(r) == list(range(6))
    r2 = list(RandomSampler(range(3), num_samples=7, generator=g))
    assert len(r2) == 7 and sorted(r2[:3]) == [0, 1, 2] and sorted(r2[3:6]) == [0, 1, 2]
    rep = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(rep) == 50 and set(rep) <= {0, 1, 2}
    sub = list(SubsetRandomSampler([10, 20, 30], generator=g))
    assert sorted(sub) == [10, 20, 30]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 400, generator=g))
    assert set(w) <= {1, 3} and 0.6 < w.count(3) / 400 < 0.9
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, True)) == 2
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(_ds(), sampler=SequentialSampler(range(10)), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(_ds(), batch_size=4, batch_sampler=BatchSampler(range(10), 2, False))
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(_ds(), num_workers=-1)
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(4), shuffle=True)


def test_batch_sampler_argument():
    loader = DataLoader(_ds(), batch_sampler=[[1, 2], [9]])
    assert [yb.tolist() for _, yb in loader] == [[1, 2], [9]]


def test_random_split_lengths_fractions_seeded():
    ds = _ds(10)
    a, b = random_split(ds, [7, 3], generator=tocha.Generator().manual_seed(42))
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=tocha.Generator().manual_seed(42))
    assert a.indices == a2.indices
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=tocha.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])


def test_concat_dataset():
    c = ConcatDataset([_ds(3), _ds(2)])
    assert len(c) == 5 and c[3][1].item() == 0 and c[-1][1].item() == 1
    with pytest.raises(IndexError):
        c[5]
    assert len(_ds(2) + _ds(2)) == 4


def test_iterable_dataset_batches_and_drop_last():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]


def test_generator_does_not_disturb_global_stream():
    tocha.manual_seed(5)
    ref = tocha.rand(3).tolist()
    tocha.manual_seed(5)
    list(DataLoader(_ds(), batch_size=3, shuffle=True, generator=tocha.Generator().manual_seed(1)))
    assert tocha.rand(3).tolist() == ref


# ------------------------------------------------------------------ multiprocessing
def test_workers_match_single_process_order():
    g = lambda: tocha.Generator().manual_seed(123)
    ds = _ds(37)
    ref = [(x.tolist(), y.tolist()) for x, y in DataLoader(ds, batch_size=5, shuffle=True, generator=g())]
    got = [(x.tolist(), y.tolist()) for x, y in DataLoader(ds, batch_size=5, shuffle=True, generator=g(),
                                                            num_workers=2)]
    assert got == ref
    d = [b["y"].tolist() for b in DataLoader(Squares(9), batch_size=4, num_workers=2)]
    assert d == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


def test_workers_seeded_deterministically():
    def run():
        return [b.tolist() for b in DataLoader(NoisySquares(), batch_size=2, num_workers=2,
                                               generator=tocha.Generator().manual_seed(9))]
    a, b = run(), run()
    assert a == b
    assert len({round(v % 1, 6) for v in sum(a, [])}) == 8  # workers do not share one random stream


def test_persistent_workers_multiple_epochs_and_early_break():
    loader = DataLoader(_ds(12), batch_size=4, shuffle=True, num_workers=2, persistent_workers=True,
                        generator=tocha.Generator().manual_seed(0))
    first = next(iter(loader))  # abandoned epoch
    assert len(first[1]) == 4
    for _ in range(2):
        flat = sum((yb.tolist() for _, yb in loader), [])
        assert sorted(flat) == list(range(12))
    pids = [w.pid for w in loader._iterator._workers]
    list(loader)
    assert [w.pid for w in loader._iterator._workers] == pids


def test_iterable_dataset_with_workers():
    out = sorted(sum((b.tolist() for b in DataLoader(Stream(10), batch_size=2, num_workers=2)), []))
    assert out == list(range(10))


class Broken(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise KeyError("bad sample 2")
        return i


def test_worker_error_propagates():
    with pytest.raises(KeyError, match="bad sample 2"):
        list(DataLoader(Broken(), batch_size=1, num_workers=2))


def test_worker_init_fn_and_worker_info():
    seen = DataLoader(WorkerIds(), batch_size=2, num_workers=2, worker_init_fn=_init)
    vals = sum((b.tolist() for b in seen), [])
    assert set(vals) == {100, 101}
    assert get_worker_info() is None


class WorkerIds(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return get_worker_info().id + np.random.randint(0, 1) + _STATE.get("offset", 0)


_STATE = {}


def _init(worker_id):
    _STATE["offset"] = 100


class Doubled(TensorDataset):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x * 2, y


def test_subclass_with_own_getitem_skips_fast_path():
    X = tocha.ones(4, 2)
    xb, _ = next(iter(DataLoader(Doubled(X, tocha.arange(4)), batch_size=4)))
    assert xb.tolist() == [[2.0, 2.0]] * 4


def test_spawn_context_workers():
    ds = _ds(9)
    got = [yb.tolist() for _, yb in DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="spawn")]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]
