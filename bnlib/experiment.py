"""Runs over several seeds, and their mean and spread.

A noisy claim ("dropout narrows the generalization gap") is checked over several seeds, never
one: run the same function once per seed, stack what it returns, summarize.

    def run(seed):
        ...                                      # train with this seed
        return {"train_acc": 0.98, "test_acc": 0.31}

    results = over_seeds(run, [0, 1, 2])         # {"train_acc": array(3,), "test_acc": array(3,)}
    mean, std, lo, hi = summarize(results["test_acc"])
    print(describe(results["test_acc"]))         # 0.312 ± 0.004 [0.308, 0.316] (n=3)
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np

__all__ = ["over_seeds", "summarize", "describe", "stack", "moving_average"]


def over_seeds(fn: Callable[[int], Mapping[str, Any]], seeds: Iterable[int]) -> dict[str, np.ndarray]:
    """Call ``fn(seed)`` for each seed; stack the returned dicts into {key: array}.

    ``fn`` returns a dict of numbers or array-likes of a fixed shape S; each key of the result
    is a float64 array of shape (len(seeds), *S), in the order of ``seeds``. Every call must
    return the same keys and shapes.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("expected at least one seed (got none)")
    runs = []
    for seed in seeds:
        out = fn(seed)
        if not isinstance(out, Mapping):
            raise TypeError(f"expected fn(seed) to return a dict (got {type(out).__name__} for seed {seed})")
        if runs and set(out) != set(runs[0]):
            raise ValueError(f"expected the same keys for every seed (got {sorted(out)} for seed "
                             f"{seed}, {sorted(runs[0])} before)")
        runs.append(out)
    stacked = {}
    for key in runs[0]:
        values = [np.asarray(r[key], dtype=np.float64) for r in runs]
        shapes = {v.shape for v in values}
        if len(shapes) != 1:
            raise ValueError(f"expected one shape for {key!r} across seeds (got {sorted(shapes)})")
        stacked[key] = np.stack(values)  # (len(seeds), *S)
    return stacked


def summarize(values, axis: int = 0) -> tuple:
    """(mean, std, min, max) over ``axis`` (the seeds).

    std is the sample standard deviation (ddof=1), the usual spread of a few seeds; with a
    single value it is 0. Returns floats for 1-D input, else arrays of the remaining shape.
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 0 or a.shape[axis] == 0:
        raise ValueError(f"expected at least one value along axis {axis} (got shape {a.shape})")
    n = a.shape[axis]
    std = a.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(a.mean(axis=axis))
    out = (a.mean(axis=axis), std, a.min(axis=axis), a.max(axis=axis))
    return tuple(float(v) for v in out) if a.ndim == 1 else out


def describe(values, digits: int = 3, scale: float = 1.0) -> str:
    """'mean ± std [min, max] (n=k)' of 1-D ``values`` times ``scale`` (100 for percent)."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"expected a 1-D array of per-seed values (got shape {a.shape})")
    mean, std, lo, hi = (scale * v for v in summarize(a))
    return f"{mean:.{digits}f} ± {std:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] (n={len(a)})"


def stack(runs: Mapping[int, Mapping[str, Any]], key: str) -> np.ndarray:
    """{seed: run} -> (seeds, T) float64 array of one per-step series ``run[key]``."""
    return np.array([np.asarray(r[key], dtype=np.float64) for r in runs.values()])


def moving_average(a, window: int = 20) -> np.ndarray:
    """Moving average along the last axis, with shorter windows at the start (no lag at step 1)."""
    a = np.asarray(a, dtype=np.float64)
    c = np.cumsum(np.pad(a, [(0, 0)] * (a.ndim - 1) + [(1, 0)]), axis=-1)
    idx = np.arange(1, a.shape[-1] + 1)
    lo = np.maximum(idx - window, 0)
    return (c[..., idx] - c[..., lo]) / (idx - lo)
