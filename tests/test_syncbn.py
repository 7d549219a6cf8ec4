"""bnlib.syncbn: SyncBatchNorm in 2 local gloo processes equals torch.nn.BatchNorm2d on the whole batch.

The multi-process checks run in one ``spawn`` (``_checks``, below; spawned processes import this module by
name), and the tests read its results. Float64 identities are claimed to 1e-12, as the chapter prints them.
"""
import time

import pytest
import torch
import torch.distributed as dist
from torch import nn

from bnlib import norms, syncbn
from bnlib.syncbn import (SyncBatchNorm, SyncBatchNorm2d, compare, count_collectives, spawn, sync_batch_stats,
                          torch_sync_bn_runs_on_cpu)

F64 = torch.float64
BOUND = 1e-12  # float64 identities


def _gap(a, b) -> float:
    return float((a - b).detach().abs().max()) if a.numel() else 0.0


def _seeded_affine(layers, C, gen):
    gamma, beta = 1 + 0.5 * torch.randn(C, generator=gen, dtype=F64), torch.randn(C, generator=gen, dtype=F64)
    for layer in layers:
        layer.load_state_dict({"weight": gamma, "bias": beta}, strict=False)


def _steps(sync, ref, x, dout, lo, hi, steps=2):
    """``steps`` training steps of sync on x[lo:hi] and of ref on x; the max errors and the last step's logs."""
    for _ in range(steps):
        x_whole, x_p = x.clone().requires_grad_(), x[lo:hi].clone().requires_grad_()
        (reference := ref(x_whole)).backward(dout)
        with count_collectives() as forward_log:
            out = sync(x_p)
        with count_collectives() as backward_log:
            out.backward(dout[lo:hi])
    errors = {"forward": _gap(out, reference[lo:hi]), "backward": _gap(x_p.grad, x_whole.grad[lo:hi]),
              "running": max(_gap(getattr(sync, k), getattr(ref, k)) for k in ("running_mean", "running_var")),
              "tracked": int(sync.num_batches_tracked) - int(ref.num_batches_tracked)}
    if sync.weight is not None:
        grads = torch.cat([sync.weight.grad, sync.bias.grad])  # (C,), (C,) -> (2C,) local sums
        dist.all_reduce(grads)
        errors["param_grads"] = _gap(grads, torch.cat([ref.weight.grad, ref.bias.grad]))  # (C,), (C,) -> (2C,)
    return errors, forward_log, backward_log


def _checks(rank, world_size):
    """Every multi-process check, in each of 2 gloo processes; returns numbers for the tests to judge."""
    gen, result = torch.Generator().manual_seed(0), {}
    # 4D, unequal local batches (2 and 5), a large mean, seeded gamma and beta, two steps
    x = 10 + 3 * torch.randn(7, 3, 4, 4, generator=gen, dtype=F64)
    dout = torch.randn(x.shape, generator=gen, dtype=F64)
    sync, ref = SyncBatchNorm2d(3, dtype=F64), nn.BatchNorm2d(3, dtype=F64)
    _seeded_affine((sync, ref), 3, gen)
    lo, hi = (0, 2) if rank == 0 else (2, 7)
    result["2d"], result["forward_log"], result["backward_log"] = _steps(sync, ref, x, dout, lo, hi)
    result["running_mean"] = sync.running_mean.clone()  # the same bits on every rank?
    mean, var, count = sync_batch_stats(x[lo:hi])
    var_ref, mean_ref = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    result["stats"] = (_gap(mean, mean_ref), _gap(var, var_ref), count)
    # (N, C) input, no affine, momentum=None (cumulative average), batches 3 and 4
    x1, dout1 = torch.randn(7, 5, generator=gen, dtype=F64), torch.randn(7, 5, generator=gen, dtype=F64)
    sync1 = SyncBatchNorm(5, momentum=None, affine=False, dtype=F64)
    ref1 = nn.BatchNorm1d(5, momentum=None, affine=False, dtype=F64)
    result["1d"] = _steps(sync1, ref1, x1, dout1, *((0, 3) if rank == 0 else (3, 7)), steps=3)[0]
    # an empty local batch on rank 1: rank 0's output is BN of its own 3 examples, rank 1 gets their statistics
    result["empty"] = _steps(SyncBatchNorm2d(3, dtype=F64), nn.BatchNorm2d(3, dtype=F64), x[:3], dout[:3],
                             *((0, 3) if rank == 0 else (0, 0)), steps=1)[0]
    # float32, mean/std = 1e4: E[x^2] - E[x]^2 would keep no digit
    x32 = 1e4 + torch.randn(64, 2, generator=gen, dtype=F64)
    _, var32, _ = sync_batch_stats(x32[:20].float() if rank == 0 else x32[20:].float())
    result["var32"] = float(((var32.double() - x32.var(0, correction=0)) / x32.var(0, correction=0)).abs().max())
    # one value per channel over all processes: every rank raises, none hangs
    errors = []
    for x_bad, layer in ((torch.ones(1 - rank, 3, dtype=F64), SyncBatchNorm(3, dtype=F64)),  # 1 value in all
                         (torch.ones(4, 2, 3, 3), SyncBatchNorm2d(3)),  # wrong channels, raised before any collective
                         (torch.ones(4, 3, 3), SyncBatchNorm2d(3))):  # wrong rank
        try:
            layer(x_bad)
        except ValueError as error:
            errors.append(str(error))
    result["errors"] = errors
    result["cost"] = syncbn._cost_worker(rank, world_size, (4, 64), 5)  # allreduce_cost's worker, in this spawn
    # eval mode: only rank 0 calls it; any collective would hang (the test would time out)
    if rank == 0:
        sync.eval(), ref.eval()
        with count_collectives() as eval_log, torch.no_grad():
            result["eval"] = (_gap(sync(x), ref(x)), eval_log)
    return result


@pytest.fixture(scope="module")
def checks():
    start = time.monotonic()
    results = spawn(_checks, 2, timeout=120)
    return results, time.monotonic() - start


@pytest.mark.slow
def test_forward_backward_and_running_stats_equal_whole_batch_bn_over_unequal_batches(checks):
    for r in checks[0]:
        for case in ("2d", "1d"):
            errors = r[case]
            assert max(errors["forward"], errors["backward"], errors["running"], errors["param_grads"]
                       if "param_grads" in errors else 0) < BOUND, (case, errors)
            assert errors["tracked"] == 0
    assert torch.equal(checks[0][0]["running_mean"], checks[0][1]["running_mean"])  # the same bits on both ranks


@pytest.mark.slow
def test_sync_batch_stats_is_the_whole_batch_mean_and_biased_variance(checks):
    for r in checks[0]:
        mean_gap, var_gap, count = r["stats"]
        assert mean_gap < BOUND and var_gap < BOUND and count == 7 * 4 * 4
        assert r["var32"] < 1e-3  # float32 at mean/std = 1e4: the combination keeps the variance


@pytest.mark.slow
def test_one_collective_of_2c_plus_1_numbers_forward_and_2c_backward(checks):
    for r in checks[0]:
        assert r["forward_log"] == [("all_gather", 2 * 3 + 1)]
        assert r["backward_log"] == [("all_reduce", 2 * 3)]


@pytest.mark.slow
def test_empty_local_batch_and_the_global_count(checks):
    rank0, rank1 = checks[0]
    assert rank0["empty"]["forward"] < BOUND and rank0["empty"]["backward"] < BOUND
    assert rank0["empty"]["running"] < BOUND and rank1["empty"]["running"] < BOUND  # rank 1 got the global stats
    for r in checks[0]:
        assert r["errors"][0].startswith("expected more than 1 value per channel over all processes")
        assert r["errors"][1] == "expected input with 3 channels (got 2 channels)"
        assert r["errors"][2] == "expected 4D input (got 3D input)"


@pytest.mark.slow
def test_eval_mode_uses_running_stats_without_communicating(checks):
    gap, log = checks[0][0]["eval"]
    assert gap < BOUND and log == []
    assert "eval" not in checks[0][1]


def test_without_distributed_it_is_batchnorm2d():
    assert not dist.is_initialized()
    gen = torch.Generator().manual_seed(1)
    x, dout = torch.randn(4, 3, 5, 5, generator=gen, dtype=F64), torch.randn(4, 3, 5, 5, generator=gen, dtype=F64)
    layers = [SyncBatchNorm2d(3, dtype=F64), norms.BatchNorm2d(3, dtype=F64), nn.BatchNorm2d(3, dtype=F64)]
    _seeded_affine(layers, 3, gen)
    outs, grads = [], []
    for layer in layers:
        xi = x.clone().requires_grad_()
        outs.append(layer(xi))
        outs[-1].backward(dout)
        grads.append(xi.grad)
    assert torch.equal(outs[0], outs[1]) and torch.equal(grads[0], grads[1])  # bnlib's BatchNorm2d, bit for bit
    assert _gap(outs[0], outs[2]) < BOUND and _gap(grads[0], grads[2]) < BOUND  # torch's
    assert _gap(layers[0].running_var, layers[2].running_var) < BOUND


def test_in_a_one_process_group_it_is_batchnorm_and_does_not_communicate():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        x = torch.randn(6, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
        sync, ref = SyncBatchNorm(4, dtype=F64), nn.BatchNorm1d(4, dtype=F64)
        with count_collectives() as log:
            gap = _gap(sync(x), ref(x))
        assert gap < BOUND and log == [] and _gap(sync.running_var, ref.running_var) < BOUND
    finally:
        dist.destroy_process_group()


def test_state_dict_loads_into_torch_batchnorm2d_and_back():
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(3))
    sync, ref = SyncBatchNorm2d(3), nn.BatchNorm2d(3)
    sync(x)  # one step: running stats and num_batches_tracked move
    ref.load_state_dict(sync.state_dict())
    assert list(ref.state_dict()) == list(sync.state_dict())
    ref(2 * x)
    back = SyncBatchNorm2d(3)
    back.load_state_dict(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), ref.state_dict().values()))
    assert _gap(back.eval()(x), ref.eval()(x)) < 1e-6


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        SyncBatchNorm2d(3)(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D or 4D or 5D input \(got 1D input\)"):
        SyncBatchNorm(3)(torch.ones(3))
    with pytest.raises(ValueError, match=r"expected input with 3 channels \(got 2 channels\)"):
        SyncBatchNorm(3)(torch.ones(4, 2))
    with pytest.raises(ValueError, match=r"got 1D input"):
        sync_batch_stats(torch.ones(5))
    with pytest.raises(ValueError, match=r"expected a function importable by module and name"):
        spawn(lambda rank, world_size: rank, 2)
    with pytest.raises(ValueError, match=r"expected n_per_process to be a positive int or 2 of them"):
        compare(n_per_process=(1, 2, 3))


def _fails(rank, world_size):
    if rank == 1:
        raise ArithmeticError(f"boom from rank {rank} of {world_size}")
    return rank


def _sleeps(rank, world_size):
    time.sleep(60)


@pytest.mark.slow
def test_a_worker_exception_propagates_with_its_traceback():
    with pytest.raises(RuntimeError, match=r"worker 1 of 2 failed in test_syncbn\._fails") as info:
        spawn(_fails, 2, timeout=60)
    assert "ArithmeticError: boom from rank 1 of 2" in str(info.value) and "Traceback" in str(info.value)


@pytest.mark.slow
def test_a_hung_worker_times_out():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"expected 1 workers of _sleeps to report within 3 s"):
        spawn(_sleeps, 1, timeout=3)
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_compare_gives_the_chapter_its_numbers():
    r = compare(seed=0)  # equal slices (4, 4); unequal ones are checked by _checks
    assert max(r["forward"], r["backward"], r["param_grads"], r["running_stats"]) < BOUND
    assert r["local"] > 0.1  # plain per-process BN is far from whole-batch BN
    assert (r["floats_sent_forward"], r["floats_received_forward"], r["floats_allreduced_backward"]) == (17, 34, 16)
    assert r["collectives"] == (1, 1) and r["values_per_channel"][1] == 8 * 16
    assert 0.5 < r["mean_gap_rms"] / r["mean_gap_expected"] < 2


def test_torch_sync_bn_runs_on_cpu_answers_with_a_reason():
    runs, why = torch_sync_bn_runs_on_cpu()
    assert isinstance(runs, bool) and isinstance(why, str) and torch.__version__ in why
    assert runs or "SyncBatchNorm" in why
    assert not dist.is_initialized()  # the one-process group it made is gone


@pytest.mark.slow
def test_allreduce_cost_is_a_positive_time(checks):
    for r in checks[0]:
        assert list(r["cost"]) == [4, 64] and all(0 < t < 1e6 for t in r["cost"].values())  # microseconds
