"""Re-execute chapters in place, top to bottom in a fresh kernel, to refresh their stored outputs.

    python tools/refresh_outputs.py                 # every notebook in _toc.yml
    python tools/refresh_outputs.py chapters/data.ipynb

Stored outputs are what `python -m pytest` (nbval) compares against, so produce them on the
machine type CI uses (2-core x86-64 CPU), with the environment nbval's kernels get: progress
bars off, PYTHONHASHSEED=0, CPU kernels capped at AVX2 (tools/kernel_env.py), the torch threads bnlib.setup sets (1 unless a chapter asks for 2), data from BNLIB_DATA or, when that
is unset, ../shared/data.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools import kernel_env  # noqa: E402
from tools.book import toc_notebooks  # noqa: E402

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def refresh(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    t0 = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return time.time() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    kernel_env.apply(ROOT)
    paths = [p.resolve() for p in args.notebooks] or toc_notebooks(ROOT)
    for path in paths:
        seconds = refresh(path)
        print(f"{seconds:7.1f} s  {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
