"""``tocha.save`` / ``tocha.load``: checkpoints as safetensors files — never pickle.

File layout: one ``.safetensors`` file. Every tensor (and NumPy array) in the saved object becomes
a safetensors entry; the object's structure (nested dicts/lists/tuples, ints, floats, strings,
bools, ``None``) is a JSON tree in the safetensors metadata under ``"tocha.tree"``, with tensors
referenced by entry name, plus a SHA-256 of the tensor bytes under ``"tocha.sha256"`` so bit flips
are caught on load. A flat ``{str: Tensor}`` state_dict is stored under its own keys, so
``safetensors.torch.load_file`` reads a tocha checkpoint and ``tocha.load`` reads PyTorch's
``safetensors.torch.save_file`` output (returned as a flat dict of tensors).

Writes are atomic: temp file in the same directory, ``fsync``, ``os.replace``.
"""

import hashlib
import json
import math
import os

import numpy as np

from . import _ops
from ._io import atomic_write
from ._tensor import Tensor


def _contig(a):
    """C-contiguous, writable array (keeps 0-d arrays 0-d, unlike np.ascontiguousarray)."""
    return np.require(a, requirements=["C", "W"])


_TREE = "tocha.tree"
_SHA = "tocha.sha256"
_FORMAT = "tocha.format"


class _Encoder:
    def __init__(self):
        self.arrays = {}

    def _name(self, path):
        name = ".".join(path) or "tensor"
        base, k = name, 1
        while name in self.arrays:
            name = f"{base}#{k}"
            k += 1
        return name

    def key(self, k):
        if isinstance(k, bool) or k is None:
            return {"k": k}
        if isinstance(k, (int, np.integer)):
            return {"i": int(k)}
        if isinstance(k, str):
            return k
        if isinstance(k, float):
            return {"f": repr(k)}
        if isinstance(k, tuple):
            return {"t": [self.key(x) for x in k]}
        raise TypeError(f"tocha.save: dict key of type {type(k).__name__} is not supported")

    def enc(self, obj, path):
        if isinstance(obj, Tensor):
            name = self._name(path)
            self.arrays[name] = _contig(obj.detach().cpu().numpy())
            return {"T": name, "rg": bool(obj.requires_grad)} if obj.requires_grad else {"T": name}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                raise TypeError(f"tocha.save: NumPy arrays of dtype {obj.dtype} are not supported")
            name = self._name(path)
            self.arrays[name] = _contig(obj)
            return {"N": name}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            obj = float(obj)
            return obj if math.isfinite(obj) else {"F": repr(obj)}
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, dict):
            items = [[self.key(k), self.enc(v, path + [str(k)])] for k, v in obj.items()]
            return {"D": items, "od": True} if type(obj).__name__ == "OrderedDict" else {"D": items}
        if isinstance(obj, (list, tuple)):
            out = [self.enc(v, path + [str(i)]) for i, v in enumerate(obj)]
            return {"L": out} if isinstance(obj, list) else {"U": out}
        if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
            raise TypeError("tocha.save cannot store a whole Module (that needs pickle, which tocha never uses); "
                            "save model.state_dict() and rebuild the model before load_state_dict()")
        raise TypeError(f"tocha.save: cannot store an object of type {type(obj).__name__}; supported: tensors, "
                        "NumPy arrays, numbers, strings, bools, None, and lists/tuples/dicts of them")


def _decode_key(k):
    if isinstance(k, str):
        return k
    if "i" in k:
        return k["i"]
    if "f" in k:
        return float(k["f"])
    if "t" in k:
        return tuple(_decode_key(x) for x in k["t"])
    return k["k"]


def _decode(node, arrays):
    from collections import OrderedDict

    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict):
        if "T" in node:
            t = _ops.from_numpy(arrays[node["T"]])
            if node.get("rg"):
                t.requires_grad_(True)
            return t
        if "N" in node:
            return arrays[node["N"]]
        if "F" in node:
            return float(node["F"])
        if "D" in node:
            cls = OrderedDict if node.get("od") else dict
            return cls((_decode_key(k), _decode(v, arrays)) for k, v in node["D"])
        if "L" in node:
            return [_decode(v, arrays) for v in node["L"]]
        if "U" in node:
            return tuple(_decode(v, arrays) for v in node["U"])
    raise RuntimeError(f"tocha.load: corrupted structure metadata (unexpected node {str(node)[:80]})")


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(_contig(a).tobytes())
    return h.hexdigest()


def _is_flat_state_dict(obj):
    return isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, Tensor)
                                                 for k, v in obj.items())


def _serialize(obj):
    from safetensors.numpy import save

    enc = _Encoder()
    if _is_flat_state_dict(obj):  # keys stay the tensor names: readable by safetensors.torch as-is
        tree = {"D": [[k, enc.enc(v, [k])] for k, v in obj.items()]}
        if type(obj).__name__ == "OrderedDict":
            tree["od"] = True
    else:
        tree = enc.enc(obj, [])
    meta = {_FORMAT: "tocha/1", _TREE: json.dumps(tree, allow_nan=False), _SHA: _digest(enc.arrays)}
    return save(enc.arrays, metadata=meta)


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True):
    """Save tensors and (nested) state dicts to ``f`` in the safetensors format.

    Args:
        obj: a tensor, or dicts/lists/tuples of tensors, NumPy arrays, numbers, strings, bools and
            ``None`` — e.g. ``model.state_dict()``, ``optimizer.state_dict()``,
            ``scheduler.state_dict()``, or ``{"model": ..., "optim": ..., "epoch": 3}``.
        f: a path (``str``/``os.PathLike``) or a writable binary file object.

    Raises:
        TypeError: for objects it cannot store without pickle (e.g. a whole ``nn.Module``).

    Paths are written atomically (a temp file in the same directory, fsync, rename), so a crash
    never leaves a half-written checkpoint under the final name. Tensors that share memory are
    stored once per reference (tied weights are duplicated in the file).
    """
    if pickle_module is not None:
        raise ValueError("tocha.save never uses pickle; pickle_module is not supported")
    data = _serialize(obj)
    if hasattr(f, "write"):
        f.write(data)
        return
    atomic_write(f, lambda fh: fh.write(data))


def _to_supported(a):
    if a.dtype in (np.float16,) or a.dtype.name == "bfloat16":
        return a.astype(np.float32)
    if a.dtype.kind == "i" and a.dtype not in (np.int32, np.int64):
        return a.astype(np.int64)
    if a.dtype.kind == "u" and a.dtype != np.uint8:
        return a.astype(np.int64)
    return a


def _load_with_bf16(data, header, header_len):
    out, base = {}, 8 + header_len
    for k, v in header.items():
        if k == "__metadata__":
            continue
        lo, hi = v["data_offsets"]
        raw = data[base + lo:base + hi]
        if v["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            out[k] = bits.view(np.float32).reshape(v["shape"])
        else:
            from safetensors.numpy import _TYPES
            out[k] = np.frombuffer(raw, dtype=_TYPES[v["dtype"]]).reshape(v["shape"])
    return out


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **kwargs):
    """Load an object saved by ``tocha.save`` (or any safetensors file, e.g. PyTorch's).

    Args:
        f: a path or a readable binary file object.
        map_location: accepted for compatibility; tensors are loaded on the CPU.

    Returns:
        the saved object; for a safetensors file without tocha metadata (PyTorch's
        ``safetensors.torch.save_file``), a ``dict`` of name -> tensor in file order. float16 and
        bfloat16 tensors are widened to float32.

    Raises:
        RuntimeError: for a truncated, corrupted or non-safetensors file (naming the file).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    if map_location not in (None, "cpu") and str(map_location) != "cpu":
        raise ValueError(f"tocha.load: only map_location='cpu' is supported (got {map_location!r})")
    if hasattr(f, "read"):
        data, where = f.read(), "file object"
    else:
        where = os.fspath(f)
        if not os.path.exists(where):
            raise FileNotFoundError(f"tocha.load: no such file: {where!r}")
        with open(where, "rb") as fh:
            data = fh.read()
    try:
        header_len = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
        if header_len < 0 or 8 + header_len > len(data):
            raise RuntimeError("header length exceeds file size")
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
        try:
            arrays = st_load(data)
        except KeyError:  # dtypes NumPy lacks (bfloat16): validated by safetensors, decoded here
            arrays = _load_with_bf16(data, header, header_len)
    except (SafetensorError, RuntimeError, ValueError, UnicodeDecodeError, KeyError) as e:
        if data[:2] == b"PK" or data[:1] == b"\x80":
            raise RuntimeError(f"tocha.load: {where!r} looks like a pickle/zip checkpoint (torch.save's default "
                               "format); tocha reads only safetensors. In PyTorch, re-save it with "
                               "safetensors.torch.save_file(model.state_dict(), path)") from None
        raise RuntimeError(f"tocha.load: {where!r} is truncated or not a valid safetensors file ({e})") from None
    meta = header.get("__metadata__") or {}
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    if _TREE not in meta:
        return {k: _ops.from_numpy(_contig(_to_supported(arrays[k]))) for k in order}
    if meta.get(_SHA) != _digest(arrays):
        raise RuntimeError(f"tocha.load: {where!r} is corrupted: the tensor data does not match its SHA-256 checksum")
    try:
        tree = json.loads(meta[_TREE])
    except ValueError as e:
        raise RuntimeError(f"tocha.load: {where!r} has corrupted structure metadata ({e})") from None
    arrays = {k: _contig(v) for k, v in arrays.items()}
    return _decode(tree, arrays)
