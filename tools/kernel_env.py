"""The environment every chapter kernel runs in, for nbval and for refreshing stored outputs.

Stored outputs are compared as text, so a chapter must print the same digits on every x86-64
machine CI may get. PyTorch, MKL and oneDNN pick their kernels by the CPU's instruction set
(AVX-512 on one machine, AVX2 on the next), and the rounding differs with the kernel: a gradient
check printed 9e-07 on one CPU and 1e-06 on another. Capping all three at AVX2 (which every
x86-64 machine here has) makes the arithmetic the same. They must be set before torch loads,
so they go into the environment of the kernels, not into the notebooks.
"""
from __future__ import annotations

import os
from pathlib import Path

NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorized kernels
    "MKL_CBWR": "AVX2",             # MKL's conditional numerical reproducibility (matmul)
    "ONEDNN_MAX_CPU_ISA": "AVX2",   # oneDNN (convolutions)
}


def apply(root: Path) -> None:
    """Set the chapter-kernel environment in os.environ (inherited by kernels started later)."""
    os.environ["BNLIB_PROGRESS"] = "0"
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ.pop("MPLBACKEND", None)
    for key, value in NUMERICS.items():
        os.environ[key] = value
    shared = root.parent / "shared" / "data"
    if not os.environ.get("BNLIB_DATA") and shared.is_dir():
        os.environ["BNLIB_DATA"] = str(shared.resolve())
