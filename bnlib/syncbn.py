"""Synchronized BN across processes: whole-batch statistics and gradients (gloo, CPU).

Each of W data-parallel processes sees a slice of the batch; ``SyncBatchNorm`` normalizes every slice with
the whole batch's statistics, and its backward makes each process's dx its slice of the whole-batch dx.

    spawn(fn, 2, *args)               # fn(rank, world_size, *args) in 2 gloo processes -> [rank 0's, rank 1's]
    bn = SyncBatchNorm2d(8)           # inside fn: a drop-in for torch.nn.BatchNorm2d (same state dict)
    mean, var, count = sync_batch_stats(x)    # (C,), (C,) biased, values per channel over all processes
    compare(seed=0)                   # the chapter's numbers: local BN and SyncBN vs whole-batch BN
    torch_sync_bn_runs_on_cpu()       # (False, why) in torch 2.x: why bnlib has its own

Communication per layer and step, C channels (``count_collectives`` records it):
- forward: ONE all_gather: each process sends 2C + 1 float64 numbers, its count n_p, means mu_p and sums of
  squared deviations M2_p, and combines the W (2C + 1) it gets exactly, in rank order (the same bits on all):
      n = sum n_p,   mu = sum n_p mu_p / n,   var = (sum M2_p + sum n_p (mu_p - mu)^2) / n  (Chan et al.).
  Not one all_reduce of (n, sum x, sum x^2): E[x^2] - E[x]^2 cancels when |mean| >> std (float32 keeps
  no digit at mean/std ~ 1e4), and a shift shared by all processes would cost a second round trip.
- backward: ONE all_reduce of 2C numbers, sum(dout) and sum(dout * x_hat) per channel, as torch's.

Why not torch.nn.SyncBatchNorm: in torch 2.x it refuses CPU input when training ("SyncBatchNorm expected input
tensor to be on GPU or XPU or privateuseone"; ``torch_sync_bn_runs_on_cpu``), so bnlib has its own, in tensor ops.
"""
from __future__ import annotations

import contextlib, io, math, os, queue, socket, statistics, sys, time, timeit, traceback
from datetime import timedelta
from functools import partial

import torch
import torch.distributed as dist
from torch import nn
from torch.autograd.function import once_differentiable

from .norms.base import check_channels, check_floating, check_positive_int, check_rank, compute_dtype, dims_and_shape
from .norms.batchnorm import _BatchNormBase, _batch_stats, _channel_dot
from .utils import _one_thread

__all__ = ["sync_batch_stats", "SyncBatchNormFunction", "SyncBatchNorm", "SyncBatchNorm2d", "count_collectives",
           "torch_sync_bn_runs_on_cpu", "spawn", "compare", "allreduce_cost"]
RANKS = (2, 3, 4, 5)  # (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W), as torch.nn.SyncBatchNorm


def _group_size(group=None) -> int:
    """Processes in ``group`` (default: the whole world); 1 when torch.distributed is not initialized."""
    return dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1


def sync_batch_stats(x: torch.Tensor, group=None):
    """Per-channel mean (C,) and biased variance (C,) of x (N, C, *) over the batches of every process in
    ``group``, in x's compute dtype, and count (int): values per channel of all processes together (unequal,
    even empty, local batches are fine). One all_gather of 2C + 1 float64 numbers per process; none without
    torch.distributed or with one process. Not differentiable (``SyncBatchNormFunction`` is)."""
    check_rank(x, RANKS)
    with torch.no_grad():
        C, n_p, W = x.shape[1], x.numel() // x.shape[1], _group_size(group)  # n_p: values per channel here
        mu, _, r, var = _batch_stats(x)  # (1, C, 1, ...) corrected two-pass mean (mu + r) and biased variance
        row = torch.cat([torch.full((1,), float(n_p), dtype=torch.float64, device=x.device),
                         (mu + r).reshape(-1).double(), (var * n_p).reshape(-1).double()])  # (1, C, 1, ...) -> (2C+1,)
        rows = [row] if W == 1 else [torch.empty_like(row) for _ in range(W)]
        if W > 1:
            dist.all_gather(rows, row, group=group)
        row = torch.stack(rows)  # W x (2C+1,) -> (W, 2C+1): [n_p, mu_p (C), M2_p (C)] per rank
        n_p, mu_p, m2_p = row[:, :1], row[:, 1:C + 1], row[:, C + 1:]  # (W, 1), (W, C), (W, C)
        mean = (n_p * mu_p).sum(0) / (n := n_p.sum()).clamp_min(1)  # (C,)
        m2 = m2_p.sum(0) + (n_p * (mu_p - mean) ** 2).sum(0)  # (C,) Chan et al.: exact, no cancellation
        return mean.to(compute_dtype(x)), (m2 / n.clamp_min(1)).to(compute_dtype(x)), int(n)


class SyncBatchNormFunction(torch.autograd.Function):
    r"""``out, mu, var, count = apply(x, gamma, beta, eps, group)``: x (N, C, *), gamma, beta (C,) or None;
    out = gamma * (x - mu) / sqrt(var + eps) + beta, mu, var (C,) and count global, not differentiable. Every
    process calls it and its backward, dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)),
    means over ALL processes (one all_reduce): this process's slice of the whole-batch dx. dgamma, dbeta are
    LOCAL sums (DDP's gradient all-reduce adds them up)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps, group):
        mu, var, n = sync_batch_stats(x, group)  # (C,), (C,), int
        if n <= 1 or not eps > 0:  # n is the same on every process: all raise together, none hangs
            raise ValueError(f"expected more than 1 value per channel over all processes and eps > 0 when training "
                             f"(got {n} values, eps={eps}): use larger batches, or .eval() for the running statistics")
        _, shape = dims_and_shape(x)
        inv_std = torch.rsqrt(var + eps)  # (C,)
        scale = inv_std if gamma is None else gamma * inv_std  # (C,)
        out = (x - mu.view(shape)) * scale.view(shape)  # (N, C, *); (C,) -> (1, C, 1, ...)
        out = out if beta is None else out + beta.view(shape)  # (C,) -> (1, C, 1, ...)
        ctx.save_for_backward(x, gamma, mu, inv_std)
        ctx.n, ctx.group, count = n, group, torch.tensor(n, device=x.device)
        ctx.mark_non_differentiable(mu, var, count)
        return out, mu, var, count

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, _dmu, _dvar, _dcount):
        x, gamma, mu, inv_std = ctx.saved_tensors
        dims, shape = dims_and_shape(x)
        x_mu = x - mu.view(shape)  # (N, C, *); (C,) -> (1, C, 1, ...)
        dbeta = dout.sum(dims)  # (C,) this process's sum(dout)
        dgamma = _channel_dot(dout, x_mu).view(-1) * inv_std  # (1, C, 1, ...) -> (C,): its sum(dout * x_hat)
        total = torch.cat([dbeta, dgamma])  # (2C,) the numbers all processes add up
        if _group_size(ctx.group) > 1:
            dist.all_reduce(total, group=ctx.group)
        mean_dout, mean_dout_x_hat = (total / ctx.n).chunk(2)  # (C,), (C,) over the whole batch
        scale = inv_std if gamma is None else gamma * inv_std  # (C,)
        dx = dout - mean_dout.view(shape) - x_mu * (inv_std * mean_dout_x_hat).view(shape)  # (C,) -> (1, C, 1, ...)
        dx = dx * scale.view(shape)  # (N, C, *); (C,) -> (1, C, 1, ...)
        return tuple(g if need else None for g, need in zip((dx, dgamma, dbeta, None, None), ctx.needs_input_grad))


class SyncBatchNorm(_BatchNormBase):
    """Batch normalization over (N, C) or (N, C, *) with the statistics of every process's batch.

    torch.nn.SyncBatchNorm's arguments, parameters and buffers (its state dict loads into torch.nn.BatchNorm2d and
    back). Training in a group of W > 1: ``SyncBatchNormFunction``; the running statistics (no_grad) get the global
    mean and unbiased variance var * n / (n - 1), n the GLOBAL count. Else exactly BatchNorm, no communication."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, RANKS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *) -> (N, C, *): gamma * (x - mu) / sqrt(var + eps) + beta, mu and var global."""
        if not self.training or _group_size(self.process_group) == 1:
            return super().forward(x)  # plain BN, no communication
        self._check_input_dim(x)  # local checks, before any communication
        check_floating(x)
        check_channels(x, self.num_features)
        dtype = compute_dtype(x)  # float16/bfloat16: compute in float32
        gamma, beta = (None if t is None else t.to(dtype) for t in (self.weight, self.bias))
        out, mu, var, n = SyncBatchNormFunction.apply(x.to(dtype), gamma, beta, self.eps, self.process_group)
        if self.track_running_stats and self.running_mean is not None:
            n = int(n)
            self._update_running(self._step_factor(), running_mean=mu, running_var=var * (n / (n - 1)))
        return out.to(x.dtype)


class SyncBatchNorm2d(SyncBatchNorm):
    """``SyncBatchNorm`` for (N, C, H, W) input only: the synchronized twin of torch.nn.BatchNorm2d."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (4,))


@contextlib.contextmanager
def count_collectives():
    """Record ``(name, numbers this process sends)`` for each dist.all_gather / all_reduce in the block."""
    log, saved = [], (dist.all_gather, dist.all_reduce)

    def counted(name, collective):
        def call(*args, **kwargs):  # all_gather(tensor_list, tensor, ...), all_reduce(tensor, ...)
            log.append((name, args[name == "all_gather"].numel()))
            return collective(*args, **kwargs)
        return call
    try:
        dist.all_gather, dist.all_reduce = counted("all_gather", saved[0]), counted("all_reduce", saved[1])
        yield log
    finally:
        dist.all_gather, dist.all_reduce = saved


def torch_sync_bn_runs_on_cpu() -> tuple[bool, str]:
    """(runs, why): does torch.nn.SyncBatchNorm train on CPU? Tries its forward in a one-process gloo group (made
    here if none is) and aten::batch_norm_stats, its first kernel. Call it outside ``spawn``, or on every rank."""
    if created := not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    x = torch.linspace(-1.0, 1.0, 8).view(4, 2)  # (8,) -> (4, 2)
    try:
        nn.SyncBatchNorm(2).train()(x)
        torch.batch_norm_stats(x, 1e-5)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError) as error:
        why = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        return False, f"torch {torch.__version__}: torch.nn.SyncBatchNorm does not train on CPU ({why}); bnlib's does"
    finally:
        if created:
            dist.destroy_process_group()
    return True, f"torch {torch.__version__}: torch.nn.SyncBatchNorm trains on CPU in a gloo group"


def _worker(rank, world_size, port, timeout, fn, args, results) -> None:
    """One spawned process: one thread, a gloo group, fn(rank, world_size, *args); reports to ``results``."""
    _one_thread()
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # all processes are local: loopback
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout))
        buffer = io.BytesIO()
        torch.save(fn(rank, world_size, *args), buffer)  # bytes, not shared memory: safe once the process exits
        message = (rank, True, buffer.getvalue())
    except BaseException:  # noqa: BLE001 - the parent raises it, with this traceback
        message = (rank, False, traceback.format_exc())
    results.put(message)
    if dist.is_initialized():
        dist.destroy_process_group()


def spawn(fn, world_size: int = 2, *args, timeout: float = 120.0) -> list:
    """[fn(rank, world_size, *args) for each rank], run in ``world_size`` fresh (spawned) processes of one
    thread and deterministic algorithms, in a gloo group on 127.0.0.1 at a free port; results go back through
    torch.save. fn is pickled by reference: it must be importable by module and name, not a lambda, a nested
    function or one defined in a notebook (``__main__``); put it in a module. Raises RuntimeError with the
    worker's traceback if one fails, TimeoutError after ``timeout`` seconds (a collective some rank missed)."""
    check_positive_int("world_size", world_size)
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", repr(fn))
    if module in (None, "__main__") or "<" in name:
        raise ValueError(f"expected a function importable by module and name (got {module}.{name}): spawned "
                         "processes import fn by name; define it in a module and pass data as args")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # port 0: the OS picks a free one
        port = s.getsockname()[1]
    context = torch.multiprocessing.get_context("spawn")
    results, done, deadline = context.Queue(), {}, time.monotonic() + timeout
    workers = [context.Process(target=_worker, args=(r, world_size, port, timeout, fn, args, results), daemon=True)
               for r in range(world_size)]
    for worker in workers:
        worker.start()
    try:
        while len(done) < world_size:
            crashed = results.empty() and any(w.exitcode for r, w in enumerate(workers) if r not in done)  # None, 0: ok
            if crashed or time.monotonic() > deadline:  # a crashed worker, or a collective some rank never reached
                why = "a worker died: see its stderr" if crashed else "did every rank reach every collective?"
                raise (RuntimeError if crashed else TimeoutError)(
                    f"expected {world_size} workers of {name} to report within {timeout} s (got ranks {sorted(done)}, "
                    f"exit codes {[w.exitcode for w in workers]}): {why}")
            with contextlib.suppress(queue.Empty):
                rank, ok, payload = results.get(timeout=0.1)
                if not ok:
                    raise RuntimeError(f"worker {rank} of {world_size} failed in {module}.{name}:\n{payload}")
                done[rank] = torch.load(io.BytesIO(payload), weights_only=False)
    finally:
        for worker in workers:
            worker.join(timeout=10 if len(done) == world_size else 0)
            worker.terminate()  # a no-op for a worker that has exited
            worker.join()
        results.close()
    return [done[r] for r in range(world_size)]


def _compare_worker(rank, world_size, x, dout, gamma, beta, sizes):
    """One process of ``compare``: its slice through local BN and SyncBN vs BN on the whole batch (one step)."""
    lo, hi, C = sum(sizes[:rank]), sum(sizes[:rank + 1]), x.shape[1]
    whole, local, sync = (layer(C, dtype=x.dtype) for layer in (nn.BatchNorm2d, nn.BatchNorm2d, SyncBatchNorm2d))
    for layer in (whole, local, sync):
        layer.load_state_dict({"weight": gamma, "bias": beta}, strict=False)
    x_whole, x_p = x.clone().requires_grad_(), x[lo:hi].clone().requires_grad_()
    (reference := whole(x_whole)).backward(dout)
    with count_collectives() as forward_log:
        out = sync(x_p)
    with count_collectives() as backward_log:
        out.backward(dout[lo:hi])
    param_grads = torch.cat([sync.weight.grad, sync.bias.grad])  # (C,), (C,) -> (2C,)
    dist.all_reduce(param_grads)  # summed over processes, as DDP does (not counted: not SyncBN's)
    gap = partial(torch.dist, p=math.inf)  # max |a - b|
    mean, std = x.mean((0, 2, 3)), x.var((0, 2, 3), correction=0).sqrt()  # (C,), (C,) of the whole batch
    gaps = dict(local=gap(local(x[lo:hi]), reference[lo:hi]), forward=gap(out, reference[lo:hi]),
                backward=gap(x_p.grad, x_whole.grad[lo:hi]),
                param_grads=gap(param_grads, torch.cat([whole.weight.grad, whole.bias.grad])),  # (C,), (C,) -> (2C,)
                running_stats=max(gap(getattr(sync, k), getattr(whole, k)) for k in ("running_mean", "running_var")))
    return dict(gaps=gaps, z=(x[lo:hi].mean((0, 2, 3)) - mean) / std, forward=forward_log, backward=backward_log)


def compare(seed=0, n_per_process=4, channels=8, size=4, world_size=2, dtype=torch.float64, timeout=120.0) -> dict:
    """Local BN and SyncBN on a seeded x (sum n_p, C, size, size) split over ``world_size`` processes (n_per_process:
    an int or one per process) vs torch.nn.BatchNorm2d on the whole batch: max |difference| of "local" (plain BN
    per process) and SyncBN's "forward", "backward" (dx), "param_grads" (summed), "running_stats" (one step);
    numbers counted: "floats_sent_forward", "floats_received_forward", "floats_allreduced_backward", "collectives";
    local - global mean in stds, "mean_gap_max", "mean_gap_rms", "mean_gap_expected" = sqrt(mean_p (1/m_p - 1/M))."""
    sizes = [n_per_process] * world_size if isinstance(n_per_process, int) else list(n_per_process)
    if len(sizes) != world_size or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"expected n_per_process to be a positive int or {world_size} of them (got {n_per_process!r})")
    gen, C = torch.Generator().manual_seed(seed), channels
    center, spread = torch.randn(C, generator=gen, dtype=dtype), 0.5 + torch.rand(C, generator=gen, dtype=dtype)
    x = torch.randn(sum(sizes), C, size, size, generator=gen, dtype=dtype)
    x = x * spread.view(1, C, 1, 1) + center.view(1, C, 1, 1)  # (C,) -> (1, C, 1, 1)
    dout, gamma, beta = (torch.randn(shape, generator=gen, dtype=dtype) for shape in (x.shape, (C,), (C,)))
    parts = spawn(_compare_worker, world_size, x, dout, 1 + 0.5 * gamma, beta, sizes, timeout=timeout)
    result = {k: float(max(p["gaps"][k] for p in parts).detach()) for k in parts[0]["gaps"]}  # max over processes
    z = torch.stack([p["z"] for p in parts])  # W x (C,) -> (W, C): local mean - global mean, in stds
    m, M, sent = [s * size * size for s in sizes], x.numel() // C, sum(k for _, k in parts[0]["forward"])
    return {**result, "floats_sent_forward": sent, "floats_received_forward": world_size * sent,
            "floats_allreduced_backward": sum(k for _, k in parts[0]["backward"]),
            "collectives": (len(parts[0]["forward"]), len(parts[0]["backward"])),
            "mean_gap_max": float(z.abs().max()), "mean_gap_rms": float(z.pow(2).mean().sqrt()),
            "mean_gap_expected": (sum(1 / mp - 1 / M for mp in m) / world_size) ** 0.5, "values_per_channel": (m, M)}


def _cost_worker(rank, world_size, channels_list, repeats):
    """{C: median microseconds of one all_reduce of 2C float32 numbers}; the first 5 calls warm up."""
    return {C: 1e6 * statistics.median(timeit.repeat(lambda t=torch.zeros(2 * C): dist.all_reduce(t), number=1,
                                                     repeat=repeats + 5)[5:]) for C in channels_list}


def allreduce_cost(channels_list=(16, 64, 256, 1024), world_size: int = 2, repeats: int = 200) -> dict:
    """{C: microseconds} per gloo all_reduce of 2C float32 numbers (SyncBN's backward) on this machine: the
    median of ``repeats`` calls in rank 0 of ``world_size`` local processes. A timing: it varies."""
    return spawn(_cost_worker, world_size, tuple(channels_list), check_positive_int("repeats", repeats))[0]
