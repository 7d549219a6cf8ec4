"""Measure how far each chapter cell's printed numbers move between numeric environments,
and declare the tolerances that nbval then uses (tools/nbval_numeric.py).

    python tools/numeric_spread.py chapters/bn_algorithm.ipynb            # report only
    python tools/numeric_spread.py --write                                # every chapter, write tolerances

Each notebook is executed top to bottom once per environment of tools/kernel_env.py (native,
perturbed, avx2, mixed by default; two at a time, one thread each) and every floating-point
number of every cell is compared with the stored output. A cell whose numbers all stay within
one unit of their last printed digit needs nothing. For the others the tool suggests

    rtol = margin * (largest relative move among the numbers that moved less than a third)
    atol = margin * (largest absolute move among the rest, i.e. values near zero)

rounded up to two significant digits, and with --write stores it in the cell's metadata
(`tolerance`, with the measurement it rests on; an existing tolerance is only ever widened, so
measurements from several machines add up, unless --reset drops it first: use that after
changing what a cell prints). Differences that are not numbers (a word, an
integer, the count of numbers) are listed: those cells must be fixed in the notebook, usually by
printing a rounding-level value as a bound.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools import kernel_env  # noqa: E402
from tools.book import toc_notebooks  # noqa: E402
from tools.nbval_numeric import Tolerance, flatten, numbers_match, pair_numbers  # noqa: E402

DEFAULT_ENVS = ("native", "perturbed", "avx2", "mixed")
# Moves larger than this fraction of the value are treated as absolute (values near zero, or a
# sign flip); with the default margin of 3 the largest rtol suggested is then 1.
RELATIVE_LIMIT = 1 / 3


def execute(path: Path, env: str, timeout: int = 1800) -> tuple[str, list, float]:
    """Run one notebook in a fresh kernel under environment `env` -> (env, outputs per code cell, s)."""
    from nbclient import NotebookClient

    kernel_env.apply(ROOT, env)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return env, [c.outputs for c in nb.cells if c.cell_type == "code"], time.time() - start


def _sanitizer():
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "nbval_sanitize.cfg").read_text(encoding="utf-8"))

    def sanitize(s):
        import re

        if isinstance(s, str):
            for regex, replace in patterns:
                s = re.sub(regex, replace, s)
        return s
    return sanitize


# what nbval never compares (IPyNbFile.skip_compare without --nbdime)
SKIP = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
        "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def compare_cell(stored_outputs, new_outputs, sanitize) -> tuple[list[tuple[float, float]], list[str]]:
    """-> ([(|stored|, |move|) for every number beyond its last digit], [structural differences])."""
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    def prepare(outputs):  # what nbval does before comparing: streams merged, keyed by name
        return transform_streams_for_comparison(coalesce_streams(copy.deepcopy(outputs)))

    s = flatten(prepare(stored_outputs), sanitize, SKIP)
    n = flatten(prepare(new_outputs), sanitize, SKIP)
    moves, problems = [], []
    if set(s) != set(n):
        return [], [f"output fields: stored {sorted(s)}, new {sorted(n)}"]
    for key in s:
        if len(s[key]) != len(n[key]):
            problems.append(f"{key}: {len(s[key])} stored outputs, {len(n[key])} new")
            continue
        for a, b in zip(s[key], n[key]):
            if not (isinstance(a, str) and isinstance(b, str)) or a == b:
                continue
            pairs, why = pair_numbers(a, b)
            if why:
                problems.append(f"{key}: {why}")
            for x, y in pairs:
                if not numbers_match(x, y, Tolerance())[0]:
                    fx, fy = float(x), float(y)
                    if not (math.isfinite(fx) and math.isfinite(fy)):
                        problems.append(f"{key}: a number moved to or from inf/nan: stored {x}, new {y}")
                        continue
                    moves.append((abs(fx), abs(fx - fy)))
    return moves, problems


def nice_ceil(x: float) -> float:
    """Round up to two significant digits (0.0123 -> 0.013), so a margin stays a margin."""
    if x <= 0:
        return 0.0
    unit = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / unit * (1 - 1e-12)) * unit:.2g}")


def suggest(moves: list[tuple[float, float]], margin: float) -> Tolerance:
    rel = [d / a for a, d in moves if a > 0 and d / a <= RELATIVE_LIMIT]
    rest = [d for a, d in moves if not (a > 0 and d / a <= RELATIVE_LIMIT)]
    return Tolerance(nice_ceil(margin * max(rel, default=0.0)), nice_ceil(margin * max(rest, default=0.0)))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def save_runs(path: Path, runs, folder: Path) -> None:
    """Each environment's executed notebook, to read what moved: FOLDER/<name>.<env>.ipynb."""
    folder.mkdir(parents=True, exist_ok=True)
    for env, outputs, _ in runs:
        nb = nbformat.read(path, as_version=4)
        for cell, out in zip((c for c in nb.cells if c.cell_type == "code"), outputs):
            cell.outputs = out
        nbformat.write(nb, folder / f"{path.stem}.{env}.ipynb")


def measure(path: Path, envs, jobs: int, margin: float, write: bool, save: Path | None = None,
            reset: bool = False) -> int:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if reset:
        for cell in code:
            cell.metadata.pop("tolerance", None)
    sanitize = _sanitizer()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(execute, [path] * len(envs), envs))
    if save:
        save_runs(path, runs, save)
    print(f"\n{path.relative_to(ROOT)}: " + ", ".join(f"{e} {s:.0f} s" for e, _, s in runs))
    n_problems = 0
    for i, cell in enumerate(code):
        moves, problems = [], []
        for env, outputs, _ in runs:
            stored_error = any(o.output_type == "error" for o in cell.outputs)
            for o in outputs[i]:
                if o.output_type == "error" and not stored_error:
                    problems.append(f"[{env}] ERROR {o.ename}: {o.evalue[:200]}")
            m, p = compare_cell(cell.outputs, outputs[i], sanitize)
            moves += m
            problems += [f"[{env}] {x}" for x in p]
        if "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        for p in sorted(set(problems)):
            print(f"  cell {i}: NOT A NUMBER  {p[:300]}")
        n_problems += bool(problems)
        if not moves:
            continue
        tol = suggest(moves, margin)
        worst = max(moves, key=lambda ad: ad[1])
        max_rel = max((d / a for a, d in moves if a > 0), default=math.inf)
        basis = (f"measured {datetime.date.today()} on {cpu_name()}: {len(moves)} number moves beyond "
                 f"the last digit over environments {', '.join(envs)}; largest |move| {worst[1]:.2g} "
                 f"(at {worst[0]:.3g}), largest relative {max_rel:.2g}; tolerance = {margin:g} x measured")
        old = Tolerance.from_metadata(cell.metadata)
        new = Tolerance(max(old.rtol, tol.rtol), max(old.atol, tol.atol))
        print(f"  cell {i}: rtol {new.rtol:g}, atol {new.atol:g}  ({basis.split(': ', 1)[1]})")
        if write and new != old:
            spec = {k: v for k, v in (("rtol", new.rtol), ("atol", new.atol)) if v}
            cell.metadata["tolerance"] = {**spec, "basis": basis}
    if write:
        nbformat.write(nb, path)
    return n_problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), choices=sorted(kernel_env.ENVIRONMENTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--margin", type=float, default=3.0)
    parser.add_argument("--write", action="store_true", help="store the tolerances in the notebooks")
    parser.add_argument("--save", type=Path, metavar="FOLDER", help="also keep each executed notebook there")
    parser.add_argument("--reset", action="store_true",
                        help="drop the stored tolerances first (after changing what cells print)")
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or toc_notebooks(ROOT)
    problems = sum(measure(p, args.envs, args.jobs, args.margin, args.write, args.save, args.reset) for p in paths)
    if problems:
        print(f"\n{problems} cell(s) differ in more than numbers: fix them in the notebooks")
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
