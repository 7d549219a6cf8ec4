"""Chapter setup, seeding, progress bars and small numeric helpers."""
from __future__ import annotations

import multiprocessing
import os
import random
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

FALSY = {"", "0", "false", "no", "off"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in FALSY


def quiet() -> bool:
    """True when progress bars should stay silent: under CI, or BNLIB_PROGRESS=0."""
    if _env_flag("CI"):
        return True
    return os.environ.get("BNLIB_PROGRESS", "1").strip().lower() in FALSY


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh ``torch.Generator`` seeded with ``seed``.

    Library code never reads global random state it did not receive: pass the returned
    generator (or one derived from it) to whatever needs randomness.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def setup(seed: int = 0, threads: int = 1, precision: int = 4) -> torch.Generator:
    """The one call at the top of every chapter. Returns a seeded ``torch.Generator``.

    - seeds Python, NumPy and torch (``seed_everything``);
    - fixes the thread count: float32 reductions change with it, so stored outputs would too;
    - turns on deterministic algorithms;
    - sets NumPy and torch print precision;
    - draws figures inline (immune to MPLBACKEND=Agg) with a Hangul-capable font;
    - progress bars (``bnlib.progress``) are quiet under CI.
    """
    os.environ.setdefault("PYTHONHASHSEED", "0")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    np.set_printoptions(precision=precision, suppress=True)
    torch.set_printoptions(precision=precision, sci_mode=False)
    from . import plot  # late import: matplotlib is only needed by chapters

    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        ip = None
    if ip is not None:
        ip.run_line_magic("matplotlib", "inline")
    plot.set_style()
    return seed_everything(seed)


def progress(iterable=None, total: int | None = None, desc: str | None = None, **kwargs):
    """A tqdm progress bar that is silent under CI (``CI=true``) or with ``BNLIB_PROGRESS=0``.

    Stored notebook outputs are produced with CI=true, so bars never end up in them.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", quiet())
    kwargs.setdefault("leave", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "IProgress not found" when ipywidgets is missing
        return tqdm(iterable, total=total, desc=desc, **kwargs)


def rel_error(x, y, eps: float = 1e-12) -> float:
    """CS231n's relative error: max |x - y| / max(eps, |x| + |y|), elementwise, then max."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"expected arrays of the same shape (got {tuple(x.shape)} and {tuple(y.shape)})")
    return float(((x - y).abs() / (x.abs() + y.abs()).clamp_min(eps)).max()) if x.numel() else 0.0


def below(value, bound: float) -> str:
    """A rounding-level quantity printed as the bound its magnitude stays under, and checked:
    "< 1e-12".

    Values at rounding level (a float64 difference of 4e-16 here, 9e-16 on another CPU) change
    from machine to machine; the bound does not. Raises AssertionError when ``|value|`` is not
    below ``bound``, so the printed claim is always true.
    """
    v = float(value.detach()) if torch.is_tensor(value) else float(value)
    if not abs(v) < bound:  # also catches nan
        raise AssertionError(f"expected a value below {bound:.0e} (got {v:.3g})")
    return f"< {bound:.0e}"


def _one_thread() -> None:
    """A worker process computes as a chapter kernel does: one thread, deterministic algorithms."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Fresh (spawned) worker processes of one thread each, deterministic algorithms on: for
    independent runs that seed their own generators, so results equal those of one process."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)


def map_jobs(fn, jobs: list, workers: int = 1) -> list:
    """``[fn(job) for job in jobs]``, over ``workers`` one-thread processes when workers > 1 (``fn``
    must be importable); jobs that seed their own generators give the results of ``workers=1``."""
    if workers <= 1:
        return [fn(job) for job in jobs]
    with worker_pool(workers) as pool:
        return list(pool.map(fn, jobs))

