"""The environment every chapter kernel runs in, for nbval, for refreshing stored outputs and
for measuring how much a chapter's numbers move between CPUs.

What is and is not bit-reproducible
- Same machine type, same environment, one thread: a chapter prints the same digits run after
  run (seeds, deterministic algorithms, 1 thread from bnlib.setup).
- Another CPU model: not bit-identical, and no setting makes it so. PyTorch, MKL and oneDNN pick
  kernels by instruction set and block their loops by the CPU's caches; NumPy's OpenBLAS picks
  its kernel by CPU. Capping all of them at AVX2 (this project's first attempt) still left
  Intel and AMD machines printing different digits, so the cap is gone.
- What holds instead: nbval compares numbers within a tolerance (tools/nbval_numeric.py) that
  is measured across the numeric environments below (tools/numeric_spread.py), and CI runs
  every chapter twice, natively and in the "perturbed" environment, against the same outputs.

The environments only steer which kernels the libraries use; they must be set before torch
and NumPy load, so they go into the environment of the kernels, not into the notebooks.
Choose one with BNLIB_NUMERICS=<name> (default "native").
"""
from __future__ import annotations

import os
from pathlib import Path

KNOBS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE")

ENVIRONMENTS: dict[str, dict[str, str]] = {
    # what the CPU picks by itself
    "native": {},
    # rounds as an older CPU would: ATen's scalar kernels, MKL's compatible path, oneDNN at
    # SSE4.1, OpenBLAS's Sandy Bridge kernels. CI's second run.
    "perturbed": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                  "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Sandybridge"},
    # an AVX2 machine without AVX-512 (a common laptop)
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    # mixed: used only to measure spreads, never by CI
    "mixed": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AVX",
              "ONEDNN_MAX_CPU_ISA": "AVX", "OPENBLAS_CORETYPE": "Prescott"},
}


def numerics(name: str | None = None) -> dict[str, str]:
    """The knob settings of a named environment (BNLIB_NUMERICS when `name` is None)."""
    name = name or os.environ.get("BNLIB_NUMERICS") or "native"
    if name not in ENVIRONMENTS:
        raise ValueError(f"BNLIB_NUMERICS: expected one of {sorted(ENVIRONMENTS)} (got {name!r})")
    return ENVIRONMENTS[name]


def apply(root: Path, name: str | None = None) -> None:
    """Set the chapter-kernel environment in os.environ (inherited by kernels started later)."""
    chosen = numerics(name)
    os.environ["BNLIB_PROGRESS"] = "0"
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ.pop("MPLBACKEND", None)
    for key in KNOBS:
        os.environ.pop(key, None)
    os.environ.update(chosen)
    shared = root.parent / "shared" / "data"
    if not os.environ.get("BNLIB_DATA") and shared.is_dir():
        os.environ["BNLIB_DATA"] = str(shared.resolve())
