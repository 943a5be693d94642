"""Training workflow helpers (tocha.training): EarlyStopping, fit/evaluate, plot_history, Grid/RandomSearch, summary."""

import csv
import math

import pytest
import tocha
from tocha import nn
from tocha.datasets import make_blobs
from tocha.training import (
    EarlyStopping,
    GridSearch,
    RandomSearch,
    choice,
    evaluate,
    fit,
    loguniform,
    plot_history,
    randint,
    uniform,
)
from tocha.utils.data import DataLoader, TensorDataset


def _model():
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def _loaders(n=300):
    X, y = make_blobs(n, centers=[[-3, 0], [3, 0], [0, 4]], cluster_std=0.8, random_state=0)
    ds = TensorDataset(X, y)
    tr, va = tocha.utils.data.random_split(ds, [0.8, 0.2], generator=tocha.Generator().manual_seed(0))
    return DataLoader(tr, batch_size=32, shuffle=True), DataLoader(va, batch_size=64)


def test_early_stopping_patience_min_delta_and_mode():
    es = EarlyStopping(mode="min", patience=2, min_delta=0.1)
    stops = [es.step(v) for v in [1.0, 0.8, 0.75, 0.72]]
    # 0.75 and 0.72 do not beat 0.8 by more than 0.1 -> stop at the second of them
    assert stops == [False, False, False, True]
    assert es.best == 0.8 and es.best_epoch == 1 and es.stopped_epoch == 3
    es = EarlyStopping(monitor="val_acc", mode="max", patience=3)
    assert [es.step(v) for v in [0.5, 0.6, 0.6, 0.55, float("nan")]] == [False, False, False, False, True]
    assert es.best == 0.6
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


def test_early_stopping_checkpoint_and_restore(tmp_path):
    model = _model()
    path = tmp_path / "best.safetensors"
    es = EarlyStopping(mode="max", patience=1, checkpoint_path=str(path))
    es.step(0.9, model)
    best_w = model[0].weight.detach().clone()
    with tocha.no_grad():
        model[0].weight.add_(1.0)
    assert es.step(0.5, model)  # worse -> stop, checkpoint untouched
    assert tocha.equal(tocha.load(path)["0.weight"], best_w)
    es.restore(model)
    assert tocha.equal(model[0].weight, best_w)
    es2 = EarlyStopping(mode="max", checkpoint_path=str(path))  # fresh object: restore from the file
    m2 = _model()
    es2.restore(m2)
    assert tocha.equal(m2[0].weight, best_w)


def test_fit_learns_records_history_and_plots(tmp_path):
    tocha.manual_seed(0)
    train, val = _loaders()
    model = _model()
    opt = tocha.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    es = EarlyStopping(monitor="val_loss", patience=3, checkpoint_path=str(tmp_path / "b.safetensors"))
    h = fit(model, train, nn.CrossEntropyLoss(), opt, epochs=8, val_loader=val, callbacks=[es], progress=False,
            verbose=False)
    assert set(h.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert h["val_accuracy"][-1] > 0.9 and h["loss"][-1] < h["loss"][0]
    # after fit the best (lowest val_loss) weights are restored
    assert evaluate(model, val, nn.CrossEntropyLoss())["loss"] == pytest.approx(min(h["val_loss"]), rel=1e-5)
    png = plot_history(h, str(tmp_path / "curves.png"))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="val_loader"):
        fit(model, train, nn.CrossEntropyLoss(), opt, epochs=1, callbacks=[EarlyStopping("val_loss")],
            progress=False, verbose=False)


def test_fit_binary_accuracy_with_bce():
    X, y = make_blobs(200, centers=[[-2, -2], [2, 2]], cluster_std=0.5, random_state=1)
    ds = TensorDataset(X, y.float().unsqueeze(1))
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    opt = tocha.optim.SGD(model.parameters(), lr=0.5)
    h = fit(model, DataLoader(ds, batch_size=20, shuffle=True), nn.BCELoss(), opt, epochs=5, progress=True,
            verbose=False)
    assert h["accuracy"][-1] > 0.95


def test_grid_search_all_combinations_sorted_csv(tmp_path):
    seen = []

    def train(cfg):
        seen.append(cfg)
        return -(cfg["lr"] - 0.1) ** 2 - 0.001 * cfg["hidden"]
    gs = GridSearch(train, {"lr": [0.01, 0.1, 1.0], "hidden": [8, 32]}, mode="max", progress=False)
    assert len(gs) == 6
    res = gs.run()
    assert len(seen) == 6 and {(c["lr"], c["hidden"]) for c in seen} == {(a, b) for a in (0.01, 0.1, 1.0)
                                                                          for b in (8, 32)}
    assert res.best_config == {"lr": 0.1, "hidden": 8}
    scores = [r["score"] for r in res]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in res] == list(range(1, 7))
    path = res.to_csv(str(tmp_path / "grid.csv"))
    rows = list(csv.DictReader(open(path)))
    assert rows[0]["lr"] == "0.1" and rows[0]["hidden"] == "8" and rows[0]["rank"] == "1" and len(rows) == 6
    assert "lr" in str(res)
    with pytest.raises(ValueError, match="non-empty list"):
        GridSearch(train, {"lr": 0.1})


def test_random_search_distributions_budget_seed_min_mode():
    space = {"lr": loguniform(1e-4, 1e-1), "mom": uniform(0.0, 0.99), "hidden": randint(4, 8),
             "act": ["relu", "tanh"], "opt": choice(["sgd"]), "epochs": 3}
    rs = RandomSearch(lambda c: {"loss": abs(math.log10(c["lr"]) + 2), "acc": c["mom"]}, space, n_trials=25,
                      seed=0, mode="min", metric="loss", progress=False)
    res = rs.run()
    assert len(res) == 25
    for r in res:
        c = r["config"]
        assert 1e-4 <= c["lr"] < 1e-1 and 0 <= c["mom"] < 0.99 and 4 <= c["hidden"] <= 8
        assert c["act"] in ("relu", "tanh") and c["opt"] == "sgd" and c["epochs"] == 3
    assert {r["config"]["hidden"] for r in res} == {4, 5, 6, 7, 8}
    assert res.best_score == min(r["score"] for r in res)
    again = RandomSearch(lambda c: 0.0, space, n_trials=25, seed=0, progress=False).configs()
    assert again == [r["config"] for r in sorted(res.rows, key=lambda r: r["trial"])]
    with pytest.raises(KeyError, match="lacks the metric"):
        RandomSearch(lambda c: {"x": 1}, space, n_trials=1, metric="loss", progress=False).run()


def test_summary_table_shapes_and_params():
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 10)))
    model[0].requires_grad_(False)
    info = tocha.utils.summary(model, (2, 784), print_fn=None)
    names = [r[0] for r in info["rows"]]
    assert names == ["0", "1", "2.0"]
    assert info["rows"][0][2] == [2, 32] and info["rows"][2][2] == [2, 10]
    assert info["rows"][0][3] == 784 * 32 + 32 and info["total_params"] == 784 * 32 + 32 + 330
    assert info["trainable_params"] == 330
    assert "Total params: 25,450" in info["text"]
    assert not model[0]._forward_hooks  # hooks removed


def test_utils_reexports_training_helpers():
    assert tocha.utils.EarlyStopping is EarlyStopping and tocha.utils.fit is fit
