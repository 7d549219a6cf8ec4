"""A plain training loop that records a history. No callback framework: read it top to bottom.

Data are tensors held in memory (``ImageData.tensors()``); mini-batches are drawn by a seeded
``torch.Generator``, so a run is a function of its config.

    cfg = TrainConfig(steps=500, batch_size=60, lr=0.1)
    history = fit(model, (x_train, y_train), (x_test, y_test), cfg)
    history.test_acc[-1]
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .utils import progress


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000         # optimizer steps (mini-batches), not epochs
    batch_size: int = 60
    lr: float = 0.1
    momentum: float = 0.0     # SGD momentum (0: plain SGD)
    weight_decay: float = 0.0
    eval_every: int = 100     # evaluate on the test set every this many steps (and at the end)
    eval_batch_size: int = 1000
    seed: int = 0             # seeds the mini-batch order (model init is the caller's)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """What a run recorded. Per step: ``loss``, ``acc`` (the training mini-batch, train mode).
    Per evaluation: ``eval_step``, ``test_loss``, ``test_acc`` (eval mode)."""

    config: dict
    loss: list[float] = field(default_factory=list)
    acc: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    diverged_at: int | None = None  # the step whose loss was NaN/inf, with on_nonfinite="stop"

    def smoothed(self, key: str = "loss", window: int = 50) -> torch.Tensor:
        """Moving average of a per-step series (``window`` steps, shorter at the start)."""
        x = torch.tensor(getattr(self, key), dtype=torch.float64)
        c = torch.cat([torch.zeros(1, dtype=torch.float64), x.cumsum(0)])
        idx = torch.arange(1, len(x) + 1)
        lo = (idx - window).clamp_min(0)
        return (c[idx] - c[lo]) / (idx - lo)


def batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Indices of ``steps`` mini-batches: a fresh random permutation each epoch, the last partial
    batch of an epoch dropped (so every batch has exactly ``batch_size`` examples)."""
    if not 0 < batch_size <= n:
        raise ValueError(f"expected 0 < batch_size <= {n} examples (got batch_size={batch_size})")
    per_epoch = n // batch_size
    step = 0
    while step < steps:
        perm = torch.randperm(n, generator=generator)
        for i in range(min(per_epoch, steps - step)):
            yield perm[i * batch_size:(i + 1) * batch_size]
        step += min(per_epoch, steps - step)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        loss_sum += F.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum().item()
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


StepHook = Callable[[int, nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], None]


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor] | None, cfg: TrainConfig,
        on_step: Sequence[StepHook] = (), optimizer: torch.optim.Optimizer | None = None,
        desc: str | None = None, on_nonfinite: str = "raise", sampler: Callable | None = None) -> History:
    """Train ``model`` with SGD on cross-entropy for ``cfg.steps`` mini-batches.

    ``on_step``: callables ``f(step, model, x_batch, y_batch, loss)`` run after each backward
    pass and before the optimizer step (gradients are available), for measurements.
    ``optimizer``: defaults to ``torch.optim.SGD(lr, momentum, weight_decay)`` from ``cfg``.
    Returns a ``History``. If the loss becomes NaN or infinite: ``on_nonfinite="raise"`` stops
    with a ValueError; ``"stop"`` ends training there and sets ``history.diverged_at`` (for
    experiments where divergence at a large learning rate is itself a result).
    ``sampler``: ``f(n, batch_size, steps, generator)`` yielding index tensors, in place of
    ``batches`` (e.g. ``family.TwoClassBatches(y)`` for non-i.i.d. batches).
    """
    if on_nonfinite not in ("raise", "stop"):
        raise ValueError(f"expected on_nonfinite 'raise' or 'stop' (got {on_nonfinite!r})")
    x_train, y_train = train
    if len(x_train) != len(y_train):
        raise ValueError(f"expected as many labels as inputs (got {len(y_train)} labels for {len(x_train)} inputs)")
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = History(config=cfg.to_dict())
    model.train()
    for step, idx in enumerate(progress((sampler or batches)(len(x_train), cfg.batch_size, cfg.steps, gen),
                                        total=cfg.steps, desc=desc), start=1):
        xb, yb = x_train[idx], y_train[idx]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        if not torch.isfinite(loss):
            if on_nonfinite == "stop":
                history.diverged_at = step
                break
            raise ValueError(f"expected a finite loss (got {loss.item()} at step {step}): lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for hook in on_step:
            hook(step, model, xb, yb, loss.detach())
        opt.step()
        history.loss.append(loss.item())
        history.acc.append((logits.argmax(1) == yb).float().mean().item())
        if test is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
            test_loss, test_acc = evaluate(model, *test, batch_size=cfg.eval_batch_size)
            history.eval_step.append(step)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
    return history
