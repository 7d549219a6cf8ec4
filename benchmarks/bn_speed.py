"""How fast is the from-scratch batch norm? Forward + backward on CPU, against torch.nn.

    python benchmarks/bn_speed.py [--threads 2] [--repeats 20] [--no-compile]

1. eager: bnlib.layers.BatchNorm2d vs torch.nn.BatchNorm2d on (128, 64, 32, 32) float32;
2. the same bnlib module under torch.compile (compile time reported separately);
3. NumPy: bnlib.manual staged backward vs the fused closed form.

From Python (repository root on sys.path): ``from benchmarks.bn_speed import run; run()``
returns the numbers as a dict.
Timings are medians over repeats after warm-up; they vary from machine to machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

if __name__ == "__main__":  # run as a script: time the bnlib of this checkout, not another install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bnlib import layers, manual  # noqa: E402


def median_ms(fns: dict, repeats: int, warmup: int = 3) -> dict:
    """Median wall time in milliseconds of each fn in ``fns``, after ``warmup`` untimed calls.

    The functions take turns within each repeat, so a busy machine slows them all alike
    and the ratios stay meaningful even when the absolute times drift.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def forward_backward(module, x, dout):
    """One training step's worth of batch norm: forward, then backward into x, gamma and beta."""
    def fn():
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x).backward(dout)
    return fn


def run(shape=(128, 64, 32, 32), threads: int = 2, repeats: int = 20, compile: bool = True,
        numpy_shape=(1024, 512), seed: int = 0, verbose: bool = True) -> dict:
    """Time the three comparisons; returns a dict of milliseconds and ratios (and prints them)."""
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(shape, threads, repeats, compile, numpy_shape, seed, print if verbose else (lambda *args: None))
    finally:
        torch.set_num_threads(threads_before)  # leave the caller's setting alone


def _run(shape, threads, repeats, compile, numpy_shape, seed, say) -> dict:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen).requires_grad_()
    dout = torch.randn(shape, generator=gen)
    C = shape[1]
    result = {"shape": tuple(shape), "threads": threads, "repeats": repeats, "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    say(f"torch {result['torch']}, {result['cpu_capability']}, {threads} threads, input {tuple(shape)} float32, "
        f"median of {repeats}")

    # 1. eager, and 2. the same from-scratch module under torch.compile
    steps = {"torch_eager": forward_backward(nn.BatchNorm2d(C), x, dout),
             "bnlib_eager": forward_backward(layers.BatchNorm2d(C), x, dout)}
    result["compile_error"] = None
    if compile:
        try:
            compiled = torch.compile(layers.BatchNorm2d(C))
            start = time.perf_counter()
            forward_backward(compiled, x, dout)()  # the first call compiles forward and backward
            result["compile_s"] = time.perf_counter() - start
            steps["bnlib_compiled"] = forward_backward(compiled, x, dout)
        except Exception as error:  # no C++ compiler, unsupported platform, ...
            message = str(error).splitlines()[0] if str(error) else ""
            result["compile_error"] = f"{type(error).__name__}: {message}"
    for name, ms in median_ms(steps, repeats).items():
        result[f"{name}_ms"] = ms
    result["eager_ratio"] = result["bnlib_eager_ms"] / result["torch_eager_ms"]
    say(f"eager     forward+backward: torch.nn {result['torch_eager_ms']:7.1f} ms | bnlib "
        f"{result['bnlib_eager_ms']:7.1f} ms | bnlib/torch = {result['eager_ratio']:.2f}x")
    if "bnlib_compiled_ms" in result:
        result["compiled_ratio"] = result["bnlib_compiled_ms"] / result["torch_eager_ms"]
        say(f"compiled  forward+backward: bnlib {result['bnlib_compiled_ms']:7.1f} ms | bnlib compiled/torch "
            f"eager = {result['compiled_ratio']:.2f}x | compile time {result['compile_s']:.1f} s "
            "(first call; inductor caches compiled code on disk)")
    elif compile:
        say(f"compiled  skipped: torch.compile failed here ({result['compile_error']})")

    # 3. NumPy: staged vs fused backward
    rng = np.random.default_rng(seed)
    x_np = 5 * rng.standard_normal(numpy_shape) + 12
    gamma, beta = rng.standard_normal(numpy_shape[1]), rng.standard_normal(numpy_shape[1])
    dout_np = rng.standard_normal(numpy_shape)
    _, cache = manual.batchnorm_forward(x_np, gamma, beta)
    result["numpy_shape"] = tuple(numpy_shape)
    numpy_ms = median_ms({"staged": lambda: manual.batchnorm_backward(dout_np, cache),
                          "fused": lambda: manual.batchnorm_backward_fused(dout_np, cache)}, repeats)
    result["numpy_staged_ms"], result["numpy_fused_ms"] = numpy_ms["staged"], numpy_ms["fused"]
    result["numpy_speedup"] = result["numpy_staged_ms"] / result["numpy_fused_ms"]
    say(f"numpy     backward {tuple(numpy_shape)} float64: staged {result['numpy_staged_ms']:6.2f} ms | fused "
        f"{result['numpy_fused_ms']:6.2f} ms | speed-up {result['numpy_speedup']:.2f}x")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile timing")
    args = parser.parse_args()
    run(threads=args.threads, repeats=args.repeats, compile=not args.no_compile)
