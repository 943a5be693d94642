"""``Optimizer`` base: param groups, per-parameter state, zero_grad, state_dict, hooks.

Every optimiser in ``tocha.optim`` subclasses :class:`Optimizer` and implements ``step`` as a loop
over parameters that calls ONE fused C++ kernel per parameter (``tocha._C.<name>_step_``), so an
update is a single pass over memory instead of a chain of tensor ops.

State layout mirrors PyTorch: ``optimizer.state[param]`` is a dict such as
``{'step': 3.0, 'exp_avg': Tensor, 'exp_avg_sq': Tensor}``. Step counters are Python floats (PyTorch
keeps them in 0-d float tensors; the value is the same), so ``state_dict()`` is a plain dict of
floats and tensors that survives ``copy.deepcopy`` and ``load_state_dict``.
"""

from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain

from .. import _ops
from .._tensor import Tensor
from ..autograd import enable_grad

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marker for a hyper-parameter without a default (e.g. ``lr`` of old SGD)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _to_float(x, name="lr"):
    """Hyper-parameters may be given as 1-element tensors (PyTorch allows it); kernels take floats."""
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return float(x.item())
    return float(x)


def _check_lr(lr):
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if lr is not required and not 0.0 <= _to_float(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_betas(betas):
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


def _check_nonneg(value, what):
    if not 0.0 <= _to_float(value, what):
        raise ValueError(f"Invalid {what} value: {value}")


class _RemovableHandle:
    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


class Optimizer:
    """Base class of all optimisers (mirrors ``torch.optim.Optimizer``).

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts defining
            parameter groups (each dict has ``'params'`` and optional per-group hyper-parameters).
        defaults: default hyper-parameters for groups that do not set them.
    """

    _next_hook_id = 0

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        self._step_pre_hooks = OrderedDict()
        self._step_post_hooks = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {params.type()}")
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(dict(group))

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group of parameters (a dict with 'params' and optional hyper-parameters).

        Useful when fine-tuning: frozen layers can be unfrozen and handed to the optimiser later.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names
        param_group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            import warnings

            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ gradients
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimised tensors.

        Args:
            set_to_none: set ``.grad`` to None (default, saves memory and a pass) instead of zeroing it.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    # ------------------------------------------------------------------ step
    def step(self, closure=None):
        """Perform one optimisation step (re-evaluating the model via ``closure`` when given)."""
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs):
        # Wrap each subclass's step with the pre/post hooks and a call counter (read by lr schedulers).
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _with_hooks(cls.__dict__["step"])

    @staticmethod
    def _closure_loss(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs before every ``step``; returns a removable handle."""
        Optimizer._next_hook_id += 1
        self._step_pre_hooks[Optimizer._next_hook_id] = hook
        return _RemovableHandle(self._step_pre_hooks, Optimizer._next_hook_id)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs after every ``step``; returns a removable handle."""
        Optimizer._next_hook_id += 1
        self._step_post_hooks[Optimizer._next_hook_id] = hook
        return _RemovableHandle(self._step_post_hooks, Optimizer._next_hook_id)

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """Return ``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}`` like PyTorch.

        Parameters are replaced by their running index over the groups; state tensors are returned by
        reference (as in PyTorch), so deep-copy the dict to keep a snapshot.
        """
        mapping = {}
        start = 0
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            for i, p in enumerate(g["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in g["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by :meth:`state_dict`.

        The dict is deep-copied first, so the optimiser never shares buffers with it. Floating-point
        state tensors are cast to their parameter's dtype (``step`` stays as saved).
        """
        state_dict = deepcopy(state_dict)
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(sg["params"]) for g, sg in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            p = id_map.get(k)
            if p is None:
                state[k] = v
                continue
            state[p] = {key: _cast_state(key, val, p) for key, val in v.items()}
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            sg = dict(sg)
            sg["params"] = g["params"]
            if "param_names" in g and "param_names" not in sg:
                sg["param_names"] = g["param_names"]
            new_groups.append(sg)
        self.state = state
        self.param_groups = new_groups

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_step_post_hooks", OrderedDict())

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"

    # ------------------------------------------------------------------ helpers for subclasses
    @staticmethod
    def _zeros_like(p):
        # state buffers are contiguous, same dtype and device as the parameter (kernels require it)
        return _ops.zeros_like(p) if p._a.device_type else _ops.zeros(*p.shape, dtype=p.dtype)

    def _params_and_state(self, group, *buffers, **scalars):
        """Yield ``(param, state)`` for every parameter of ``group`` that has a gradient.

        A parameter seen for the first time gets PyTorch's lazy initial state: ``'step' = 0.0``, then
        the given scalars, then a zero buffer (parameter dtype, contiguous) per name in ``buffers``.
        """
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = 0.0
                state.update(scalars)
                for name in buffers:
                    state[name] = self._zeros_like(p)
            yield p, state

    @staticmethod
    def _grad_of(p):
        g = p.grad
        if g.shape != p.shape:
            raise RuntimeError(f"grad of shape {tuple(g.shape)} does not match parameter of shape {tuple(p.shape)}")
        return g


def _cast_state(key, value, param):
    # 'step' keeps its own type (float counter); other floating tensors follow the parameter's dtype
    if isinstance(value, Tensor) and key != "step":
        if value._a.device_type != param._a.device_type or value._a.device_index != param._a.device_index:
            value = value.to(param.device)  # state follows its parameter's device, as in PyTorch
        if value.is_floating_point() and value.dtype != param.dtype:
            return value.to(param.dtype)
    return value


def _with_hooks(step):
    import functools

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        for hook in list(self._step_pre_hooks.values()):
            res = hook(self, args, kwargs)
            if res is not None:
                if not (isinstance(res, tuple) and len(res) == 2):
                    raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), but got {res}.")
                args, kwargs = res
        out = step(self, *args, **kwargs)
        self._opt_called = True
        self._step_count = getattr(self, "_step_count", 0) + 1
        for hook in list(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    wrapper._wrapped_step = True
    return wrapper


def _scalar_mul(a, b):
    """``a * b`` at the precision of PyTorch's scalar state tensors (float32 unless default is float64).

    NAdam keeps ``mu_product`` in such a 0-d tensor and updates it with ``*=``; mirroring that
    rounding keeps trajectories identical to PyTorch's.
    """
    from .._dtype import float64, get_default_dtype

    if get_default_dtype() == float64:
        return float(a) * float(b)
    import numpy as np

    return float(np.float32(a) * np.float32(b))

