"""Look inside a network while it runs: hooks, per-layer statistics, traces over training.

Forward and backward hooks that are always removed, per-layer activation and gradient
statistics, percentile traces (Ioffe & Szegedy) and one-unit activation traces (Santurkar et al.).

    with hooks.Hooks({"fc3": model.fc3}, fn) as h:     # fn(name, module, inputs, output)
        model(x)                                       # hooks gone after the block, even on errors

    cap = hooks.capture(model, hidden_layers(model, "act"), x, y)   # one forward + backward
    hooks.layer_stats(cap, "tanh")                                 # mean, std, saturation, grad std

    trace = hooks.PercentileTrace(model.fc3, q=(15, 50, 85), every=10)
    with trace:
        train.fit(model, ...)                          # trace.steps, trace.values: (T, 3, units)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("forward", "backward")


def _named(modules) -> dict[str, nn.Module]:
    if isinstance(modules, nn.Module):
        return {"0": modules}
    if isinstance(modules, Mapping):
        return {str(k): m for k, m in modules.items()}
    return {str(i): m for i, m in enumerate(modules)}


class Hooks:
    """One hook per module, registered now and removed by ``remove()``, at the end of a ``with``
    block (even when the block raises), or when the object is garbage-collected.

    modules: a module, a list, or a dict {name: module} (names are passed to ``fn``).
    kind="forward": ``fn(name, module, inputs, output)`` after each forward pass;
    kind="backward": ``fn(name, module, grad_input, grad_output)`` (``register_full_backward_hook``),
        where grad_output[0] is dL/d(output).
    """

    def __init__(self, modules, fn: Callable, kind: str = "forward"):
        self.handles = []
        if kind not in KINDS:
            raise ValueError(f"expected kind in {KINDS} (got {kind!r})")
        self.modules = _named(modules)
        for name, module in self.modules.items():  # check everything before registering anything
            if not isinstance(module, nn.Module):
                raise ValueError(f"expected nn.Module instances (got {type(module).__name__} for {name!r})")
        for name, module in self.modules.items():
            hook = (lambda m, a, b, name=name: fn(name, m, a, b))
            register = module.register_forward_hook if kind == "forward" else module.register_full_backward_hook
            self.handles.append(register(hook))

    def remove(self) -> None:
        for handle in getattr(self, "handles", []):
            handle.remove()
        self.handles = []

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __del__(self):
        self.remove()

    def __len__(self) -> int:
        return len(self.handles)


@dataclass
class Capture:
    """What one forward (and backward) pass saw: outputs and dL/d(output) per named module."""

    acts: dict[str, torch.Tensor] = field(default_factory=dict)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    loss: float | None = None


def capture(model: nn.Module, modules, x: torch.Tensor, y: torch.Tensor | None = None,
            loss_fn: Callable = F.cross_entropy) -> Capture:
    """Run ``model(x)`` (and, when ``y`` is given, ``loss_fn(model(x), y).backward()``) with hooks on
    ``modules``; return their detached outputs and output gradients. The model's mode is not changed,
    its parameter gradients are left as the backward pass wrote them, and the hooks are removed."""
    cap = Capture()

    def keep_act(name, module, inputs, output):
        cap.acts[name] = output.detach().clone()

    def keep_grad(name, module, grad_input, grad_output):
        cap.grads[name] = grad_output[0].detach().clone()

    with contextlib.ExitStack() as stack:
        stack.enter_context(Hooks(modules, keep_act))
        if y is not None:
            stack.enter_context(Hooks(modules, keep_grad, kind="backward"))
        out = model(x)
        if y is not None:
            loss = loss_fn(out, y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            cap.loss = loss.item()
    return cap


def saturated(a: torch.Tensor, activation: str) -> torch.Tensor:
    """Boolean mask of activations in the flat part of their nonlinearity.

    tanh: |a| > 0.97 (slope < 0.06); sigmoid: a < 0.03 or a > 0.97 (slope < 0.03);
    relu: a == 0 (inactive: zero gradient), the ReLU analogue of saturation.
    """
    if activation == "tanh":
        return a.abs() > 0.97
    if activation == "sigmoid":
        return (a - 0.5).abs() > 0.47
    if activation == "relu":
        return a <= 0
    raise ValueError(f"expected activation 'tanh', 'sigmoid' or 'relu' (got {activation!r})")


def layer_stats(cap: Capture, activation: str | None = None) -> dict[str, dict[str, float]]:
    """Per module: mean and std of its output over every value of the batch, the saturated fraction
    (when ``activation`` is given), and the std of dL/d(output) when gradients were captured."""
    rows = {}
    for name, a in cap.acts.items():
        row = {"mean": a.mean().item(), "std": a.std(correction=0).item()}
        if activation is not None:
            row["saturated"] = saturated(a, activation).float().mean().item()
        if name in cap.grads:
            row["grad_std"] = cap.grads[name].std(correction=0).item()
        rows[name] = row
    return rows


def grad_data_ratio(layers) -> dict[str, float]:
    """std(dL/dW) / std(W) for each layer's ``weight`` (Karpathy's gradient-to-data ratio): how large
    one SGD step is relative to the weights, per unit learning rate."""
    out = {}
    for name, layer in _named(layers).items():
        w = layer.weight
        if w.grad is None:
            raise ValueError(f"expected a gradient on {name}.weight (got None): run backward first")
        out[name] = (w.grad.std(correction=0) / w.detach().std(correction=0)).item()
    return out


def percentiles(x: torch.Tensor, q: Sequence[float]) -> torch.Tensor:
    """The ``q`` percentiles (0..100) of each column of ``x`` (N, C), linear interpolation as in
    ``numpy.percentile``; returns (len(q), C)."""
    if x.dim() != 2:
        raise ValueError(f"expected a 2D (N, C) tensor (got {x.dim()}D)")
    qs = torch.as_tensor(q, dtype=torch.float64)
    if qs.numel() == 0 or (qs < 0).any() or (qs > 100).any():
        raise ValueError(f"expected percentiles between 0 and 100 (got {list(q)})")
    return torch.quantile(x.double(), qs / 100, dim=0).to(x.dtype)


def per_unit(x: torch.Tensor) -> torch.Tensor:
    """Values per unit as (samples, units): (N, C) stays; (N, C, *) -> (N * prod(*), C), every
    position of a channel counting as a sample (the batch-norm convention)."""
    if x.dim() < 2:
        raise ValueError(f"expected an (N, C) or (N, C, *) tensor (got {x.dim()}D)")
    if x.dim() == 2:
        return x
    return x.transpose(0, 1).reshape(x.shape[1], -1).T  # (N, C, *) -> (C, N, *) -> (C, N*L) -> (N*L, C)


class PercentileTrace:
    """Percentiles of each unit of ``module``'s output over training.

    A forward hook pools the outputs of ``every`` consecutive train-mode forward passes (eval-mode
    passes, such as ``train.evaluate``, are skipped) and then records the ``q`` percentiles of each
    unit over the pooled values. Use it as a context manager around training; the hook is removed
    when the block ends, even on errors.

    steps: the number of train-mode forward passes seen at each record (every, 2*every, ...).
    values: (T, len(q), units) tensor of the recorded percentiles.
    """

    def __init__(self, module: nn.Module, q: Iterable[float] = (15, 50, 85), every: int = 10):
        if every < 1:
            raise ValueError(f"expected every >= 1 (got {every})")
        self.module, self.q, self.every = module, tuple(q), every
        percentiles(torch.zeros(1, 1), self.q)  # validates q
        self.steps: list[int] = []
        self._records: list[torch.Tensor] = []
        self._pool: list[torch.Tensor] = []
        self._seen = 0
        self._hooks: Hooks | None = None

    def _hook(self, name, module, inputs, output):
        if not module.training:
            return
        self._seen += 1
        self._pool.append(per_unit(output.detach()))
        if len(self._pool) == self.every:
            self._records.append(percentiles(torch.cat(self._pool), self.q))
            self.steps.append(self._seen)
            self._pool = []

    def __enter__(self) -> "PercentileTrace":
        self._hooks = Hooks(self.module, self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._hooks is not None:
            self._hooks.remove()
        self._hooks, self._pool = None, []

    @property
    def values(self) -> torch.Tensor:
        if not self._records:
            return torch.empty(0, len(self.q), 0)
        return torch.stack(self._records)  # T x (len(q), C) -> (T, len(q), C)


class ActivationTrace:
    """One unit of each given module, followed over training (Santurkar et al., Figs 1c, 2, 8).

    At every train-mode forward pass of a module (not of its deep copies, not in eval mode) it
    records the unit's mean and variance over the batch (and positions), and every ``every``
    passes also ``samples`` of its values (evenly spread over the batch, for histograms).

    modules: {label: module}; units: {label: unit index}.
    steps[label]: pass numbers of the kept samples; mean/var[label]: one value per pass;
    values(label): (T, min(samples, values per pass)) tensor.
    """

    def __init__(self, modules: dict[str, nn.Module], units: dict[str, int], every: int = 10, samples: int = 256):
        if every < 1 or samples < 1:
            raise ValueError(f"expected every >= 1 and samples >= 1 (got every={every}, samples={samples})")
        if set(units) != set(modules):
            raise ValueError(f"expected one unit per module (got units for {sorted(units)}, modules {sorted(modules)})")
        self.modules, self.units, self.every, self.samples = dict(modules), dict(units), every, samples
        self.mean = {k: [] for k in modules}
        self.var = {k: [] for k in modules}
        self.steps = {k: [] for k in modules}
        self._values = {k: [] for k in modules}
        self._hooks: Hooks | None = None

    def _hook(self, name, module, inputs, output):
        if module is not self.modules[name] or not module.training:
            return
        v = per_unit(output.detach())[:, self.units[name]].double()  # (N*L,) values of one unit
        self.mean[name].append(v.mean().item())
        self.var[name].append(v.var(unbiased=False).item())
        n = len(self.mean[name])
        if n % self.every == 0 or n == 1:
            k = min(self.samples, len(v))
            idx = torch.arange(k) * len(v) // k  # k indices evenly spread over the len(v) values
            self.steps[name].append(n)
            self._values[name].append(v[idx].float())

    def values(self, label: str) -> torch.Tensor:
        return torch.stack(self._values[label]) if self._values[label] else torch.empty(0, self.samples)

    def __enter__(self) -> "ActivationTrace":
        self._hooks = Hooks(self.modules, self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._hooks is not None:
            self._hooks.remove()
        self._hooks = None
