"""Training workflow helpers (slide 003): early stopping with best-model checkpoints, grid and
random hyper-parameter search, an optional ``fit()`` loop with progress bars and ``plot_history``.

Plain PyTorch-style loops stay first-class: every helper here also works on its own, e.g.

    stopper = EarlyStopping(monitor="val_acc", mode="max", patience=5, checkpoint_path="best.safetensors")
    for epoch in range(100):
        train_one_epoch(...)
        if stopper.step(evaluate(...), model):
            break
    stopper.restore(model)
"""

import copy
import csv
import itertools
import math
import os
import time

import numpy as np

from . import _ops
from ._tensor import Tensor
from .autograd import no_grad

__all__ = [
    "Callback",
    "EarlyStopping",
    "GridSearch",
    "History",
    "RandomSearch",
    "SearchResults",
    "choice",
    "evaluate",
    "fit",
    "loguniform",
    "plot_history",
    "randint",
    "uniform",
]


# ----------------------------------------------------------------------------------------- callbacks
class Callback:
    """Hooks called by ``fit``: ``on_train_begin(model)``, ``on_epoch_end(epoch, logs, model) -> stop?``,
    ``on_train_end(model)``."""

    def on_train_begin(self, model):
        pass

    def on_epoch_end(self, epoch, logs, model):
        return False

    def on_train_end(self, model):
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; keep the best model.

    Args:
        monitor: metric name read from ``fit``'s logs (e.g. 'val_loss', 'val_accuracy').
        mode: 'min' (lower is better) or 'max'.
        patience: epochs without improvement before stopping.
        min_delta: an improvement must beat the best by more than this.
        checkpoint_path: where the best ``state_dict`` is saved (``tocha.save``, atomic) on every
            improvement; ``None`` keeps the best weights in memory only.
        restore_best: at the end of ``fit`` (or on ``restore(model)``) load the best weights back.
        verbose: print a line on improvement and on stopping.

    Attributes:
        best, best_epoch, wait, stopped_epoch, should_stop.
    """

    def __init__(self, monitor="val_loss", mode="min", patience=5, min_delta=0.0, checkpoint_path=None,
                 restore_best=True, verbose=False):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 0:
            raise ValueError("patience must be >= 0")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, int(patience), abs(float(min_delta))
        self.checkpoint_path, self.restore_best, self.verbose = checkpoint_path, restore_best, verbose
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self.should_stop = False
        self._epoch = -1
        self._best_state = None

    def is_improvement(self, value):
        if value is None or math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value, model=None, epoch=None):
        """Record this epoch's metric; returns True when training should stop.

        On improvement the model's ``state_dict`` is copied (and saved to ``checkpoint_path``).
        """
        if isinstance(value, Tensor):
            value = value.item()
        value = float(value)
        self._epoch = self._epoch + 1 if epoch is None else int(epoch)
        if self.is_improvement(value):
            self.best, self.best_epoch, self.wait = value, self._epoch, 0
            if model is not None:
                self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if self.checkpoint_path is not None:
                    from .serialization import save
                    save(model.state_dict(), self.checkpoint_path)
            if self.verbose:
                print(f"EarlyStopping: {self.monitor} improved to {value:.6g} at epoch {self._epoch}")
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.should_stop = True
                self.stopped_epoch = self._epoch
                if self.verbose:
                    print(f"EarlyStopping: no improvement in {self.patience} epochs; best {self.monitor}="
                          f"{self.best:.6g} at epoch {self.best_epoch}")
        return self.should_stop

    __call__ = step

    def restore(self, model):
        """Load the best weights into ``model`` (from memory, else from ``checkpoint_path``)."""
        if self._best_state is not None:
            model.load_state_dict(self._best_state)
        elif self.checkpoint_path is not None and os.path.exists(self.checkpoint_path):
            from .serialization import load
            model.load_state_dict(load(self.checkpoint_path))
        else:
            raise RuntimeError("EarlyStopping.restore: no best model recorded yet")
        return model

    def on_train_begin(self, model):
        self.reset()

    def on_epoch_end(self, epoch, logs, model):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: metric {self.monitor!r} not in logs {sorted(logs)}; "
                           "pass val_loader to fit() for val_* metrics")
        return self.step(logs[self.monitor], model, epoch)

    def on_train_end(self, model):
        if self.restore_best and self.best_epoch is not None:
            self.restore(model)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "epoch": self._epoch,
                "should_stop": self.should_stop}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self._epoch, self.should_stop = state["epoch"], state["should_stop"]


# ----------------------------------------------------------------------------------------- fit
class History:
    """Per-epoch metrics recorded by ``fit``: ``history.history['val_loss'][epoch]``."""

    def __init__(self):
        self.history = {}
        self.epochs = []

    def append(self, epoch, logs):
        self.epochs.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def plot(self, path, **kwargs):
        return plot_history(self, path, **kwargs)

    def __repr__(self):
        return f"History(epochs={len(self.epochs)}, metrics={list(self.history)})"


def _classification_kind(loss_fn):
    name = type(loss_fn).__name__ if loss_fn is not None else ""
    if name in ("CrossEntropyLoss", "NLLLoss"):
        return "multiclass"
    if name == "BCEWithLogitsLoss":
        return "binary_logits"
    if name == "BCELoss":
        return "binary_probs"
    return None


def _correct(out, y, kind):
    if kind == "multiclass":
        return int((out.argmax(1) == y).sum().item())
    thr = 0.0 if kind == "binary_logits" else 0.5
    pred = (out.reshape(-1) > thr).to(_ops.int64)
    return int((pred == y.reshape(-1).to(_ops.int64)).sum().item())


def evaluate(model, loader, loss_fn, accuracy="auto"):
    """Mean loss (and accuracy for classification losses) of ``model`` over ``loader`` (eval mode,
    no grad). Returns a dict ``{'loss': ..., 'accuracy': ...}``."""
    kind = _classification_kind(loss_fn) if accuracy == "auto" else (accuracy or None)
    was = model.training
    model.eval()
    total, n, correct = 0.0, 0, 0
    with no_grad():
        for x, y in loader:
            out = model(x)
            b = len(y)
            total += float(loss_fn(out, y).item()) * b
            n += b
            if kind:
                correct += _correct(out, y, kind)
    model.train(was)
    logs = {"loss": total / max(n, 1)}
    if kind:
        logs["accuracy"] = correct / max(n, 1)
    return logs


def fit(model, train_loader, loss_fn, optimizer, epochs=10, val_loader=None, callbacks=(), scheduler=None,
        accuracy="auto", progress=True, verbose=True, clip_grad_norm=None):
    """Train ``model`` for ``epochs`` with per-epoch metrics (an optional helper; a plain loop works too).

    Args:
        model: ``nn.Module``.
        train_loader: iterable of ``(x, y)`` batches (e.g. a ``DataLoader`` with ``shuffle=True``).
        loss_fn: e.g. ``nn.CrossEntropyLoss()``; accuracy is reported for CrossEntropy/NLL (argmax)
            and BCE/BCEWithLogits (threshold 0.5 on probabilities / 0 on logits).
        optimizer: an ``optim.Optimizer``.
        epochs: maximum number of epochs.
        val_loader: optional validation batches, giving ``val_loss``/``val_accuracy``.
        callbacks: objects with ``on_epoch_end(epoch, logs, model) -> stop?`` (e.g. ``EarlyStopping``).
        scheduler: an LR scheduler stepped once per epoch (``step(val_loss)`` for ReduceLROnPlateau).
        accuracy: 'auto', False, or one of 'multiclass', 'binary_logits', 'binary_probs'.
        progress: show a tqdm bar per epoch.
        verbose: print one line of metrics per epoch.
        clip_grad_norm: clip the global gradient norm to this value before each step.

    Returns:
        ``History`` with 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr', 'time' lists.
    """
    kind = _classification_kind(loss_fn) if accuracy == "auto" else (accuracy or None)
    history = History()
    for cb in callbacks:
        cb.on_train_begin(model)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress bars are optional
        tqdm = None
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        total, n, correct = 0.0, 0, 0
        it = train_loader
        bar = None
        if progress and tqdm is not None:
            bar = it = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, dynamic_ncols=True)
        for x, y in it:
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            if clip_grad_norm is not None:
                from .nn.utils import clip_grad_norm_
                clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            b = len(y)
            lv = float(loss.item())
            total += lv * b
            n += b
            if kind:
                with no_grad():
                    correct += _correct(out.detach(), y, kind)
            if bar is not None:
                bar.set_postfix(loss=f"{lv:.4f}")
        if bar is not None:
            bar.close()
        logs = {"loss": total / max(n, 1)}
        if kind:
            logs["accuracy"] = correct / max(n, 1)
        if val_loader is not None:
            for k, v in evaluate(model, val_loader, loss_fn, kind or False).items():
                logs["val_" + k] = v
        logs["lr"] = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            if type(scheduler).__name__ == "ReduceLROnPlateau":
                scheduler.step(logs.get("val_loss", logs["loss"]))
            else:
                scheduler.step()
        logs["time"] = time.perf_counter() - t0
        history.append(epoch, logs)
        if verbose:
            print(f"epoch {epoch + 1:3d}/{epochs}  " + "  ".join(
                f"{k}={v:.4f}" for k, v in logs.items() if k not in ("lr", "time")) + f"  ({logs['time']:.1f}s)")
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(epoch, logs, model)) or stop
        if stop:
            if verbose:
                print(f"early stop after epoch {epoch + 1}")
            break
    for cb in callbacks:
        cb.on_train_end(model)
    return history


def plot_history(history, path, metrics=None, title=None, mark_epoch=None):
    """Save a PNG of the training curves (train vs val per metric) with matplotlib (Agg backend).

    Args:
        history: a ``History`` or a dict of lists.
        path: output file (.png).
        metrics: base names to plot (default: 'loss' and 'accuracy' when present).
        title: figure title.
        mark_epoch: 0-based epoch to mark with a dashed line (e.g. ``EarlyStopping.best_epoch``).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False) if matplotlib.get_backend().lower() != "agg" else None
    import matplotlib.pyplot as plt

    h = history.history if isinstance(history, History) else dict(history)
    if metrics is None:
        metrics = [m for m in ("loss", "accuracy") if m in h or "val_" + m in h]
    if not metrics:
        raise ValueError(f"plot_history: nothing to plot in {sorted(h)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for key, style in ((m, "-o"), ("val_" + m, "-s")):
            if key in h:
                ax.plot(range(1, len(h[key]) + 1), h[key], style, markersize=3, label=key)
        if mark_epoch is not None:
            ax.axvline(mark_epoch + 1, color="grey", linestyle="--", linewidth=1, label="best")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------- search
class uniform:
    """Uniform real in [low, high)."""

    def __init__(self, low, high):
        if not low < high:
            raise ValueError(f"uniform: need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def __repr__(self):
        return f"uniform({self.low}, {self.high})"


class loguniform(uniform):
    """Log-uniform real in [low, high) (e.g. learning rates 1e-5..1e-1)."""

    def __init__(self, low, high):
        if low <= 0:
            raise ValueError("loguniform: low must be > 0")
        super().__init__(low, high)

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def __repr__(self):
        return f"loguniform({self.low}, {self.high})"


class randint:
    """Integer uniform in [low, high] (inclusive)."""

    def __init__(self, low, high):
        if not low <= high:
            raise ValueError(f"randint: need low <= high, got {low}, {high}")
        self.low, self.high = int(low), int(high)

    def sample(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def __repr__(self):
        return f"randint({self.low}, {self.high})"


class choice:
    """One of ``options`` (a plain list in a search space means the same)."""

    def __init__(self, options):
        self.options = list(options)
        if not self.options:
            raise ValueError("choice: empty options")

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def __repr__(self):
        return f"choice({self.options})"


def _sample(dist, rng):
    if isinstance(dist, (list, tuple)):
        return choice(dist).sample(rng)
    if hasattr(dist, "sample"):
        return dist.sample(rng)
    if hasattr(dist, "rvs"):  # scipy.stats frozen distributions
        v = dist.rvs(random_state=rng)
        return v.item() if hasattr(v, "item") else v
    return dist  # a constant


class SearchResults:
    """Trials sorted best-first: ``rows`` (dicts with the config, 'score', 'time_s', 'trial')."""

    def __init__(self, rows, mode, metric):
        self.mode, self.metric = mode, metric
        bad = math.inf if mode == "min" else -math.inf

        def key(r):
            s = r["score"]
            s = bad if s is None or (isinstance(s, float) and math.isnan(s)) else s
            return s if mode == "min" else -s
        self.rows = sorted(rows, key=key)
        for i, r in enumerate(self.rows):
            r["rank"] = i + 1

    @property
    def best(self):
        return self.rows[0]

    @property
    def best_config(self):
        return self.rows[0]["config"]

    @property
    def best_score(self):
        return self.rows[0]["score"]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def __iter__(self):
        return iter(self.rows)

    def _columns(self):
        params = []
        for r in self.rows:
            for k in r["config"]:
                if k not in params:
                    params.append(k)
        extra = []
        for r in self.rows:
            for k in r.get("metrics", {}):
                if k not in extra and k != self.metric:
                    extra.append(k)
        return params, extra

    def to_csv(self, path):
        """Write rank, params, score, other metrics and time (one row per trial)."""
        params, extra = self._columns()
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["rank", "trial"] + params + [self.metric] + extra + ["time_s"])
            for r in self.rows:
                w.writerow([r["rank"], r["trial"]] + [r["config"].get(p, "") for p in params] + [r["score"]]
                           + [r.get("metrics", {}).get(k, "") for k in extra] + [f"{r['time_s']:.3f}"])
        return path

    def to_string(self, max_rows=20):
        params, _ = self._columns()
        head = ["rank"] + params + [self.metric]
        body = [[str(r["rank"])] + [_fmt(r["config"].get(p, "")) for p in params] + [_fmt(r["score"])]
                for r in self.rows[:max_rows]]
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
        if len(self.rows) > max_rows:
            lines.append(f"... ({len(self.rows) - max_rows} more)")
        return "\n".join(lines)

    __str__ = to_string

    def __repr__(self):
        return f"SearchResults({len(self.rows)} trials, best {self.metric}={self.best_score!r})"


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class _Search:
    def __init__(self, train_fn, mode="max", metric="score", progress=True, verbose=False):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.train_fn, self.mode, self.metric, self.progress, self.verbose = train_fn, mode, metric, progress, verbose

    def _run(self, configs):
        rows = []
        it = configs
        bar = None
        if self.progress:
            try:
                from tqdm.auto import tqdm
                bar = it = tqdm(configs, desc=type(self).__name__, leave=False)
            except ImportError:
                pass
        best = None
        for i, cfg in enumerate(it):
            t0 = time.perf_counter()
            out = self.train_fn(dict(cfg))
            metrics = dict(out) if isinstance(out, dict) else {self.metric: out}
            if self.metric not in metrics:
                raise KeyError(f"train_fn returned {sorted(metrics)}, which lacks the metric {self.metric!r}")
            score = metrics[self.metric]
            score = float(score.item() if isinstance(score, Tensor) else score)
            rows.append({"trial": i, "config": dict(cfg), "score": score, "metrics": metrics,
                         "time_s": time.perf_counter() - t0})
            if not math.isnan(score) and (best is None or (score < best if self.mode == "min" else score > best)):
                best = score
            if bar is not None:
                bar.set_postfix(best=_fmt(best))
            if self.verbose:
                print(f"trial {i}: {cfg} -> {self.metric}={score:.4g}")
        if bar is not None:
            bar.close()
        self.results_ = SearchResults(rows, self.mode, self.metric)
        return self.results_


class GridSearch(_Search):
    """Try every combination of ``param_grid`` (slide 003: "treinar uma rede para cada combinação").

    Args:
        train_fn: ``train_fn(config) -> metric`` (a number, or a dict holding ``metric``).
        param_grid: dict name -> list of values, or a list of such dicts (their grids are chained).
        mode: 'max' if a larger metric is better (accuracy), 'min' for losses.
        metric: the key to rank by when ``train_fn`` returns a dict.
        progress: tqdm bar over trials.

    Example:
        >>> res = GridSearch(train, {"lr": [0.1, 0.01], "hidden": [16, 64]}).run()
        >>> res.best_config, res.to_csv("grid.csv")
    """

    def __init__(self, train_fn, param_grid, mode="max", metric="score", progress=True, verbose=False):
        super().__init__(train_fn, mode, metric, progress, verbose)
        grids = param_grid if isinstance(param_grid, (list, tuple)) else [param_grid]
        for g in grids:
            for k, v in g.items():
                if not isinstance(v, (list, tuple)) or not v:
                    raise ValueError(f"GridSearch: values for {k!r} must be a non-empty list, got {v!r}")
        self.param_grid = grids

    def configs(self):
        out = []
        for g in self.param_grid:
            keys = list(g)
            for combo in itertools.product(*(g[k] for k in keys)):
                out.append(dict(zip(keys, combo)))
        return out

    def __len__(self):
        return len(self.configs())

    def run(self):
        """Train every configuration; returns ``SearchResults`` sorted best-first."""
        return self._run(self.configs())


class RandomSearch(_Search):
    """Sample ``n_trials`` configurations from ``param_distributions`` (slide 003's random search).

    Args:
        train_fn: ``train_fn(config) -> metric``.
        param_distributions: dict name -> list (uniform choice), ``uniform(a, b)``,
            ``loguniform(a, b)``, ``randint(a, b)`` (inclusive), a scipy.stats distribution, or a constant.
        n_trials: the budget (number of trainings).
        seed: makes the sampled configurations reproducible.
        mode, metric, progress: as in ``GridSearch``.
    """

    def __init__(self, train_fn, param_distributions, n_trials=10, seed=None, mode="max", metric="score",
                 progress=True, verbose=False):
        super().__init__(train_fn, mode, metric, progress, verbose)
        if n_trials < 1:
            raise ValueError("n_trials (the budget) must be >= 1")
        self.param_distributions, self.n_trials, self.seed = dict(param_distributions), int(n_trials), seed

    def configs(self):
        rng = np.random.default_rng(self.seed)
        return [{k: _sample(d, rng) for k, d in self.param_distributions.items()} for _ in range(self.n_trials)]

    def run(self):
        """Train ``n_trials`` sampled configurations; returns ``SearchResults`` sorted best-first."""
        return self._run(self.configs())


def copy_state(model):
    """A detached copy of ``model.state_dict()`` (for keeping the best weights in memory)."""
    return copy.deepcopy({k: v.detach() for k, v in model.state_dict().items()})
