"""``DataLoader``: batching, shuffling (without replacement, new order every epoch), collation and
multiprocess loading.

Workers (``num_workers > 0``) are ``multiprocessing`` processes fed with batches of indices over one
queue each; they send collated batches back over a shared queue (tensors pickle through NumPy) and
the main process re-orders them, so the batch sequence equals the ``num_workers=0`` one for
deterministic datasets. Each worker seeds tocha, ``random`` and NumPy with ``base_seed + worker_id``
where ``base_seed`` is drawn from the loader's generator, so runs are reproducible given the seed.
"""

import collections.abc
import itertools
import multiprocessing as mp
import queue
import random
import traceback

import numpy as np

from ... import _C, _ops
from ..._tensor import Tensor
from .dataset import IterableDataset, _can_gather
from .sampler import BatchSampler, RandomSampler, SequentialSampler


def _contig(a):
    """C-contiguous, writable array (keeps 0-d arrays 0-d, unlike np.ascontiguousarray)."""
    return np.require(a, requirements=["C", "W"])


_NP_STRING_KINDS = "USO"


# ----------------------------------------------------------------------------------------- collate
def default_convert(data):
    """Convert NumPy arrays (recursively inside mappings/sequences) to tensors; no batching."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in _NP_STRING_KINDS else _ops.as_tensor(_contig(data))
    if isinstance(data, np.generic) and data.dtype.kind not in _NP_STRING_KINDS:
        return _ops.tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Merge a list of samples into a batch (PyTorch's rules).

    Tensors, NumPy arrays and NumPy scalars are stacked along a new first dimension; Python floats
    become a float64 tensor, ints an int64 tensor, bools a bool tensor; strings stay a list;
    mappings, named tuples and sequences are collated field by field (sequences give lists).

    Raises:
        RuntimeError: when a sequence field has different lengths across samples.
        TypeError: for element types it cannot batch (e.g. ``None`` or arbitrary objects).
    """
    if not isinstance(batch, (list, tuple)):
        raise TypeError(f"default_collate: batch must be a list of samples, got {type(batch).__name__}")
    if len(batch) == 0:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _ops.stack([b if isinstance(b, Tensor) else _ops.as_tensor(b) for b in batch], 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in _NP_STRING_KINDS:
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                            f"found numpy array of dtype {elem.dtype}")
        return _ops.as_tensor(_contig(np.stack(batch)))
    if isinstance(elem, np.generic):
        return _ops.tensor(np.array(batch))
    if isinstance(elem, bool):
        return _ops.tensor(list(batch), dtype=_ops.bool)
    if isinstance(elem, float):
        return _ops.tensor(list(batch), dtype=_ops.float64)
    if isinstance(elem, int):
        return _ops.tensor(list(batch), dtype=_ops.int64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


# ----------------------------------------------------------------------------------------- fetchers
class _MapFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        # one index_select per tensor instead of len(batch) __getitem__ calls + stack
        self.gather = auto_collation and collate_fn is default_collate and _can_gather(dataset)

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.gather:
            return self.dataset._gather(index)
        getitems = getattr(self.dataset, "__getitems__", None)
        data = getitems(index) if getitems is not None else [self.dataset[i] for i in index]
        return self.collate_fn(data)


class _IterFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last, batch_size):
        self.it = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.batch_size = batch_size
        self.ended = False

    def fetch(self, _index=None):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            try:
                return self.collate_fn(next(self.it))
            except StopIteration:
                self.ended = True
                raise
        data = list(itertools.islice(self.it, self.batch_size))
        if len(data) < self.batch_size:
            self.ended = True
        if not data or (self.drop_last and len(data) < self.batch_size):
            self.ended = True
            raise StopIteration
        return self.collate_fn(data)


def _make_fetcher(loader_cfg):
    kind, dataset, auto, collate_fn, drop_last, batch_size = loader_cfg
    if kind == "iterable":
        return _IterFetcher(dataset, auto, collate_fn, drop_last, batch_size)
    return _MapFetcher(dataset, auto, collate_fn, drop_last)


# ----------------------------------------------------------------------------------------- workers
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: id, num_workers, seed, dataset."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_worker_info = None


def get_worker_info():
    """``WorkerInfo`` in a DataLoader worker process, ``None`` in the main process."""
    return _worker_info


class _ExceptionWrapper:
    def __init__(self, exc, where):
        self.exc_type = type(exc)
        self.msg = f"Caught {type(exc).__name__} {where}.\nOriginal " + "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self):
        try:
            err = self.exc_type(self.msg)
        except Exception:
            err = RuntimeError(self.msg)
        raise err


class _Stop:
    """Sent by an iterable-dataset worker whose iterator is exhausted."""


_RESET = "reset"


def _seed_all(seed):
    _ops.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (1 << 32))


def _worker_loop(cfg, index_queue, data_queue, base_seed, init_fn, worker_id, num_workers):
    global _worker_info
    try:
        _C.set_num_threads(1)  # N workers x OpenMP threads would oversubscribe the cores
        seed = base_seed + worker_id
        _seed_all(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, cfg[1])
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _make_fetcher(cfg)
        except Exception as e:  # reported with the first batch request
            init_error = _ExceptionWrapper(e, f"in DataLoader worker process {worker_id}")
        while True:
            task = index_queue.get()
            if task is None:
                break
            if task == _RESET:
                if init_error is None and cfg[0] == "iterable":
                    fetcher = _make_fetcher(cfg)
                data_queue.put((_RESET, worker_id))
                continue
            idx, index = task
            if init_error is not None:
                data_queue.put((idx, init_error))
                continue
            try:
                data = fetcher.fetch(index)
            except StopIteration:
                data = _Stop()
            except Exception as e:
                data = _ExceptionWrapper(e, f"in DataLoader worker process {worker_id}")
            data_queue.put((idx, data))
    except KeyboardInterrupt:
        pass


# ----------------------------------------------------------------------------------------- iterators
class _SingleProcessIter:
    def __init__(self, loader):
        self._loader = loader
        # drawn as in the multi-process iterator so that both consume the generator alike
        self._base_seed = loader._base_seed()
        self._cfg = loader._fetch_cfg()
        self._fetcher = _make_fetcher(self._cfg)
        self._sampler_iter = iter(loader._index_sampler) if self._cfg[0] == "map" else None

    def __iter__(self):
        return self

    def __next__(self):
        if self._sampler_iter is None:
            return self._fetcher.fetch()
        index = next(self._sampler_iter)
        return self._fetcher.fetch(index)

    def __len__(self):
        return len(self._loader)


class _MultiProcessIter:
    def __init__(self, loader):
        self._loader = loader
        self._cfg = loader._fetch_cfg()
        self._n = loader.num_workers
        self._timeout = loader.timeout
        self._prefetch = loader.prefetch_factor * self._n
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = mp.get_context()
        elif isinstance(ctx, str):
            ctx = mp.get_context(ctx)
        base_seed = loader._base_seed()
        self._data_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        for wid in range(self._n):
            iq = ctx.Queue()
            w = ctx.Process(target=_worker_loop, args=(self._cfg, iq, self._data_queue, base_seed,
                                                       loader.worker_init_fn, wid, self._n), daemon=True)
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._shutdown = False
        self._start_epoch(first=True)

    def _start_epoch(self, first=False):
        self._sampler_iter = iter(self._loader._index_sampler) if self._cfg[0] == "map" else None
        if not first:
            self._loader._base_seed()  # keep the generator in step with num_workers=0 epochs
            # drop batches of an abandoned epoch: wait until every worker acknowledges the reset
            for iq in self._index_queues:
                iq.put(_RESET)
            acks = 0
            while acks < self._n:
                key, _ = self._get()
                acks += key == _RESET
        self._active = [True] * self._n
        self._send_idx = self._rcvd_idx = 0
        self._task_worker = {}
        self._buffer = {}
        self._next_worker = 0
        self._sampler_done = False
        for _ in range(self._prefetch):
            self._send()

    def _send(self):
        if self._sampler_done or not any(self._active):
            return
        if self._sampler_iter is not None:
            try:
                index = next(self._sampler_iter)
            except StopIteration:
                self._sampler_done = True
                return
        else:
            index = None
        for _ in range(self._n):  # round-robin over the workers still producing
            wid = self._next_worker
            self._next_worker = (self._next_worker + 1) % self._n
            if self._active[wid]:
                break
        self._index_queues[wid].put((self._send_idx, index))
        self._task_worker[self._send_idx] = wid
        self._send_idx += 1

    def _get(self):
        waited = 0.0
        while True:
            try:
                return self._data_queue.get(timeout=1.0)
            except queue.Empty:
                waited += 1.0
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader worker (pid(s) {dead}) exited unexpectedly")
                if self._timeout and waited >= self._timeout:
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._rcvd_idx >= self._send_idx:
                if self._loader.persistent_workers is False:
                    self._shutdown_workers()
                raise StopIteration
            if self._rcvd_idx in self._buffer:
                data = self._buffer.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                if isinstance(data, _Stop):
                    continue
                self._send()
                if isinstance(data, _ExceptionWrapper):
                    data.reraise()
                return data
            key, data = self._get()
            if key == _RESET:
                continue
            if isinstance(data, _Stop):
                self._active[self._task_worker[key]] = False
            self._buffer[key] = data

    def __len__(self):
        return len(self._loader)

    def _shutdown_workers(self):
        if self._shutdown:
            return
        self._shutdown = True
        for iq in self._index_queues:
            try:
                iq.put(None)
            except Exception:
                pass
        for w in self._workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
        for q in self._index_queues + [self._data_queue]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        try:
            self._shutdown_workers()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------- loader
class DataLoader:
    """Iterate over a dataset in (mini-)batches.

    Args:
        dataset: a map-style ``Dataset`` (``__getitem__``/``__len__``) or an ``IterableDataset``.
        batch_size: samples per batch (default 1); ``None`` disables automatic batching.
        shuffle: visit samples in a new random order each epoch, WITHOUT replacement (so an epoch
            sees every sample exactly once, ``ceil(m / B)`` mini-batches).
        sampler: a ``Sampler`` or iterable of indices (exclusive with ``shuffle``).
        batch_sampler: yields lists of indices (exclusive with batch_size/shuffle/sampler/drop_last).
        num_workers: worker processes (0 loads in the main process).
        collate_fn: merges a list of samples into a batch (default ``default_collate``).
        pin_memory: accepted for compatibility (no effect on CPU).
        drop_last: drop the final short batch.
        timeout: seconds to wait for a worker batch (0 = forever).
        worker_init_fn: called as ``fn(worker_id)`` in each worker after seeding.
        multiprocessing_context: a context or its name ('fork', 'spawn', 'forkserver').
        generator: a ``tocha.Generator`` for the shuffle order and worker seeds (default: global RNG).
        prefetch_factor: batches in flight per worker (default 2 when ``num_workers > 0``).
        persistent_workers: keep the worker processes alive between epochs.

    Example:
        >>> loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
        >>> for epoch in range(10):
        ...     for xb, yb in loader:
        ...         ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device=""):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers > 0 else prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = persistent_workers
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler option")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (self._iterable and batch_size is not None)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._iterator = None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _fetch_cfg(self):
        return ("iterable" if self._iterable else "map", self.dataset, self._auto_collation, self.collate_fn,
                self.drop_last, self.batch_size)

    def _base_seed(self):
        return int(_ops.randint(0, 1 << 62, (1,), generator=self.generator).item())

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None or self._iterator._shutdown:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._start_epoch()
            return self._iterator
        return _MultiProcessIter(self)

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    def __del__(self):
        it = self.__dict__.get("_iterator")
        if it is not None:
            it._shutdown_workers()
