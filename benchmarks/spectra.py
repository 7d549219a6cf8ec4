"""How long do bnlib.spectra's tools take on a BN MLP? A budget for the Hessian and Fisher chapters.

    python benchmarks/spectra.py [--widths 128 128] [--batch 512] [--threads 1] [--repeats 3]

The model is ``models.mlp([784, *widths, 10], norm=layers.BatchNorm1d)`` in train mode, float32;
the data are RANDOM: N(0, 1) inputs of Fashion-MNIST's size (784 = 28 x 28) and uniform labels,
enough for timings (they do not depend on the values), not for the spectra themselves.
Timed: one Hessian-vector product (with and without rebuilding the graph, ``theory.hvp``-style),
one Fisher-vector product, hessian_eigenvalues(k=1) and (k=5), fisher_eigenvalues(k=1),
gradient_share(k=10) and hessian_density(probes=1), each at its default number of Lanczos steps;
the largest relative residual ||H v - lambda v|| / |lambda| says whether those steps were enough.

From Python (repository root on sys.path): ``from benchmarks.spectra import run; run()`` returns
the numbers as a dict. Medians over repeats after one warm-up; they vary from machine to machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if __name__ == "__main__":  # run as a script: time the bnlib of this checkout, not another install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bnlib import layers, models, spectra  # noqa: E402


def median_s(fn, repeats: int) -> tuple[float, object]:
    """(median wall time in seconds over ``repeats`` calls after one warm-up call, the last result)."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run(widths=(128, 128), batch: int = 512, threads: int = 1, repeats: int = 3, seed: int = 0,
        verbose: bool = True) -> dict:
    """Time each tool; returns {name: seconds, ...} with the model's size (and prints them)."""
    say = print if verbose else (lambda *args: None)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(seed)
        model = models.mlp([784, *widths, 10], norm=layers.BatchNorm1d, generator=gen)
        x = torch.randn(batch, 784, generator=gen)  # random, Fashion-MNIST-sized
        y = torch.randint(0, 10, (batch,), generator=gen)
        op = spectra.hessian_operator(model, F.cross_entropy, x, y)
        fop = spectra.fisher_operator(model, x)
        v = torch.randn(op.dim, generator=gen, dtype=torch.float64)
        result = {"P": op.dim, "batch": batch, "widths": list(widths), "threads": threads, "torch": torch.__version__}
        say(f"torch {torch.__version__}, {threads} thread(s); BN MLP 784-{'-'.join(map(str, widths))}-10 "
            f"(P = {op.dim} parameters), train mode, float32, {batch} RANDOM inputs; median of {repeats}")

        timed = {
            "hvp": lambda: op.matvec(v),
            "hvp_rebuilt": lambda: spectra.hessian_operator(model, F.cross_entropy, x, y).matvec(v),
            "fvp": lambda: fop.matvec(v),
            "hessian_k1": lambda: spectra.lanczos(spectra.hessian_operator(model, F.cross_entropy, x, y), 1),
            "hessian_k5": lambda: spectra.lanczos(spectra.hessian_operator(model, F.cross_entropy, x, y), 5),
            "fisher_k1": lambda: spectra.lanczos(spectra.fisher_operator(model, x), 1),
            "gradient_share_k10": lambda: spectra.gradient_share(model, F.cross_entropy, x, y, k=10),
            "density_1probe": lambda: spectra.hessian_density(model, F.cross_entropy, x, y, probes=1),
        }
        labels = {"hvp": "one Hessian-vector product (graph kept)",
                  "hvp_rebuilt": "one Hessian-vector product, graph rebuilt (forward + 2 backward)",
                  "fvp": "one Fisher-vector product (exact, 2 backward)",
                  "hessian_k1": "hessian_eigenvalues(k=1)", "hessian_k5": "hessian_eigenvalues(k=5)",
                  "fisher_k1": "fisher_eigenvalues(k=1)", "gradient_share_k10": "gradient_share(k=10)",
                  "density_1probe": "hessian_density(probes=1), 30 steps"}
        for name, fn in timed.items():
            seconds, out = median_s(fn, repeats)
            result[f"{name}_s"] = seconds
            line = f"{labels[name]:<66} {1e3 * seconds:8.1f} ms"
            if isinstance(out, dict) and "products" in out:
                line += f"   {out['products']:3d} products"
            if isinstance(out, dict) and "residuals" in out:
                worst = (out["residuals"] / out["values"].abs()).max().item()
                result[f"{name}_residual"] = worst
                line += f"   top {out['values'][0].item():.4g}, max residual/|lambda| {worst:.1e}"
            say(line)
        return result
    finally:
        torch.set_num_threads(threads_before)  # leave the caller's setting alone


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run(tuple(args.widths), args.batch, args.threads, args.repeats)
