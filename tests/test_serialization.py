"""tocha.save / tocha.load: safetensors checkpoints, atomic writes, corruption, PyTorch interop."""

import os
from collections import OrderedDict

import numpy as np
import pytest
import tocha


def _mlp(m):
    return m.nn.Sequential(m.nn.Linear(3, 5), m.nn.ReLU(), m.nn.Linear(5, 2))


def test_state_dict_round_trip(tmp_path):
    model = _mlp(tocha)
    p = tmp_path / "model.safetensors"
    tocha.save(model.state_dict(), p)
    sd = tocha.load(p)
    assert isinstance(sd, OrderedDict) and list(sd) == list(model.state_dict())
    fresh = _mlp(tocha)
    fresh.load_state_dict(sd)
    x = tocha.randn(4, 3)
    assert tocha.equal(fresh(x), model(x))


def test_nested_checkpoint_with_optimizer_and_python_values(tmp_path):
    model = _mlp(tocha)
    opt = tocha.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(tocha.randn(2, 3)).sum().backward()
    opt.step()
    ck = {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 7, "best": 0.25,
          "inf": float("-inf"), "name": "run-1", "flags": [True, None, (1, 2)], "hist": {"loss": [1.0, 0.5]},
          "np": np.arange(4, dtype=np.int32), "x": tocha.ones(2, requires_grad=True)}
    p = tmp_path / "ck.pth"
    tocha.save(ck, p)
    back = tocha.load(p)
    assert back["epoch"] == 7 and back["best"] == 0.25 and back["inf"] == float("-inf")
    assert back["name"] == "run-1" and back["flags"] == [True, None, (1, 2)] and back["hist"] == {"loss": [1.0, 0.5]}
    assert back["np"].dtype == np.int32 and back["np"].tolist() == [0, 1, 2, 3]
    assert back["x"].requires_grad
    assert set(back["optim"]["state"]) == {0, 1, 2, 3}  # int keys survive (JSON would make them str)
    opt2 = tocha.optim.SGD(_mlp(tocha).parameters(), lr=0.5)
    opt2.load_state_dict(back["optim"])
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["momentum"] == 0.9
    for k, v in ck["optim"]["state"].items():
        assert tocha.equal(back["optim"]["state"][k]["momentum_buffer"], v["momentum_buffer"])


def test_dtypes_and_scalars(tmp_path):
    obj = {n: tocha.tensor(v, dtype=d) for n, v, d in [("f32", [1.5], tocha.float32), ("f64", [2.5], tocha.float64),
                                                       ("i64", [3], tocha.int64), ("i32", [4], tocha.int32),
                                                       ("u8", [5], tocha.uint8), ("b", [True], tocha.bool)]}
    obj["scalar"] = tocha.tensor(3.0)
    obj["empty"] = tocha.zeros(0, 3)
    p = tmp_path / "d.safetensors"
    tocha.save(obj, p)
    back = tocha.load(p)
    for k, v in obj.items():
        assert back[k].dtype == v.dtype and tuple(back[k].shape) == tuple(v.shape) and back[k].tolist() == v.tolist()


def test_refuses_modules_and_unknown_objects(tmp_path):
    with pytest.raises(TypeError, match="state_dict"):
        tocha.save(_mlp(tocha), tmp_path / "m.pth")
    with pytest.raises(TypeError, match="cannot store an object of type object"):
        tocha.save({"a": object()}, tmp_path / "o.pth")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "ck.safetensors"
    tocha.save({"w": tocha.ones(3)}, p)

    def boom(*a):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        tocha.save({"w": tocha.zeros(3)}, p)
    monkeypatch.undo()
    assert tocha.load(p)["w"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors"]  # temp file cleaned up


def test_truncated_and_corrupted_files(tmp_path):
    p = tmp_path / "ck.safetensors"
    tocha.save({"w": tocha.arange(100).float(), "step": 3}, p)
    data = p.read_bytes()
    (tmp_path / "trunc").write_bytes(data[:-40])
    with pytest.raises(RuntimeError, match="truncated or not a valid safetensors"):
        tocha.load(tmp_path / "trunc")
    (tmp_path / "short").write_bytes(data[:5])
    with pytest.raises(RuntimeError, match="truncated"):
        tocha.load(tmp_path / "short")
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF
    (tmp_path / "flip").write_bytes(bytes(flipped))
    with pytest.raises(RuntimeError, match="SHA-256"):
        tocha.load(tmp_path / "flip")
    (tmp_path / "pickle").write_bytes(b"\x80\x04\x95" + b"\0" * 30)
    with pytest.raises(RuntimeError, match="pickle"):
        tocha.load(tmp_path / "pickle")
    with pytest.raises(FileNotFoundError):
        tocha.load(tmp_path / "missing")


def test_file_objects(tmp_path):
    import io
    buf = io.BytesIO()
    tocha.save({"a": tocha.ones(2)}, buf)
    buf.seek(0)
    assert tocha.load(buf)["a"].tolist() == [1.0, 1.0]


def test_pytorch_safetensors_state_dict_loads_into_tocha_model(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    tmodel = _mlp(torch)
    p = str(tmp_path / "torch.safetensors")
    st.save_file(tmodel.state_dict(), p)
    model = _mlp(tocha)
    model.load_state_dict(tocha.load(p))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    ref = tmodel(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(tocha.from_numpy(x)).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    # and the other way: a tocha state_dict file is a plain safetensors file for PyTorch
    q = str(tmp_path / "tocha.safetensors")
    tocha.save(model.state_dict(), q)
    tmodel2 = _mlp(torch)
    tmodel2.load_state_dict(st.load_file(q))
    np.testing.assert_allclose(tmodel2(torch.from_numpy(x)).detach().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_half_precision_torch_file_widens(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    p = str(tmp_path / "h.safetensors")
    st.save_file({"h": torch.ones(2, dtype=torch.float16), "bf": torch.ones(1, dtype=torch.bfloat16)}, p)
    back = tocha.load(p)
    assert back["h"].dtype == tocha.float32 and back["h"].tolist() == [1.0, 1.0]
    assert back["bf"].dtype == tocha.float32
