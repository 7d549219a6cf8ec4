"""bnlib.norms.BatchRenorm1d/2d (Ioffe, 2017): BN at r_max = 1, d_max = 0; r and d clipped and detached.

The other properties of Algorithm 1: when no clip is active, the training output is the eval-mode
output (x - mu) / sigma with the running statistics; eval mode is BN's; the schedule of Sec. 4.1.
"""
import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from bnlib import norms

F64 = torch.float64
KINDS = {"1d-NC": (norms.BatchRenorm1d, norms.BatchNorm1d, nn.BatchNorm1d, (6, 4)),
         "1d-NCL": (norms.BatchRenorm1d, norms.BatchNorm1d, nn.BatchNorm1d, (5, 4, 3)),
         "2d": (norms.BatchRenorm2d, norms.BatchNorm2d, nn.BatchNorm2d, (3, 4, 2, 5))}


def steps(module, gen, shape, modes="TTETTE"):
    """Forward/backward over train (T) and eval (E) steps; every output, gradient and buffer on the way."""
    seen = []
    for mode in modes:
        module.train(mode == "T")
        x = (3 * torch.randn(shape, generator=gen, dtype=F64) + 2).requires_grad_()
        out = module(x)
        out.backward(torch.randn(shape, generator=gen, dtype=F64))
        seen += [out.detach(), x.grad] + [p.grad.clone() for p in module.parameters()]
        seen += [b.clone() for b in module.buffers()]
        module.zero_grad()
    return seen


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"bias": False}, {"momentum": None}])
def test_r_max_1_d_max_0_is_batch_norm_bit_for_bit(kind, kwargs):
    renorm_cls, bn_cls, _, shape = KINDS[kind]
    brn, bn = renorm_cls(4, r_max=1.0, d_max=0.0, dtype=F64, **kwargs), bn_cls(4, dtype=F64, **kwargs)
    with torch.no_grad():
        for p in brn.parameters():
            p.normal_()
    bn.load_state_dict(brn.state_dict())
    a, b = steps(brn, torch.Generator().manual_seed(0), shape), steps(bn, torch.Generator().manual_seed(0), shape)
    assert len(a) == len(b)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_is_batch_norms_both_ways(kind):
    renorm_cls, _, torch_cls, shape = KINDS[kind]
    brn, ref = renorm_cls(4, dtype=F64), torch_cls(4, dtype=F64)
    ref(torch.randn(shape, dtype=F64))
    brn.load_state_dict(ref.state_dict(), strict=True)
    brn(torch.randn(shape, dtype=F64))
    ref.load_state_dict(brn.state_dict(), strict=True)
    brn.eval(), ref.eval()
    x = torch.randn(shape, dtype=F64)
    torch.testing.assert_close(brn(x), ref(x), atol=1e-12, rtol=0)  # eval mode: BN with running statistics


def reference(x, gamma, beta, running_mean, running_var, eps, r_max, d_max, detach=True):
    """Algorithm 1 written out in plain autograd ops, for (N, C) input."""
    mu_b, var_b = x.mean(0), x.var(0, correction=0)
    sigma_b, sigma = torch.sqrt(var_b + eps), torch.sqrt(running_var + eps)
    r = (sigma_b / sigma).clamp(1 / r_max, r_max)
    d = ((mu_b - running_mean) / sigma).clamp(-d_max, d_max)
    if detach:
        r, d = r.detach(), d.detach()
    return gamma * ((x - mu_b) / sigma_b * r + d) + beta


def test_matches_algorithm_1_and_r_d_carry_no_gradient():
    """Outputs and gradients equal the written-out algorithm with r, d detached; not without the detach."""
    gen = torch.Generator().manual_seed(1)
    brn = norms.BatchRenorm1d(5, r_max=1.5, d_max=0.5, dtype=F64)
    with torch.no_grad():
        brn.running_mean.copy_(torch.randn(5, generator=gen, dtype=F64))
        brn.running_var.copy_(torch.rand(5, generator=gen, dtype=F64) + 0.5)
        brn.weight.normal_(generator=gen), brn.bias.normal_(generator=gen)
    x = 2 * torch.randn(8, 5, generator=gen, dtype=F64) + 1
    dout = torch.randn(8, 5, generator=gen, dtype=F64)
    state = [t.clone() for t in (brn.running_mean, brn.running_var)]
    r, d = brn.renorm_factors(x)
    assert (r >= 1 / 1.5).all() and (r <= 1.5).all() and (d.abs() <= 0.5).all()
    results = {}
    for name, fn in [("ours", lambda x, g, b: brn(x)),
                     ("detached", lambda x, g, b: reference(x, g, b, *state, 1e-5, 1.5, 0.5)),
                     ("not detached", lambda x, g, b: reference(x, g, b, *state, 1e-5, 1.5, 0.5, detach=False))]:
        with torch.no_grad():
            brn.running_mean.copy_(state[0]), brn.running_var.copy_(state[1])
        inputs = [x.clone().requires_grad_(), brn.weight, brn.bias]
        out = fn(*inputs)
        results[name] = [out.detach()] + list(torch.autograd.grad(out, inputs, dout))
    for a, b in zip(results["ours"], results["detached"]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    dx_ours, dx_undetached = results["ours"][1], results["not detached"][1]
    assert (dx_ours - dx_undetached).abs().max() > 1e-3  # the test tells the two apart


def test_unclipped_training_output_is_the_eval_output():
    """With wide limits r and d are not clipped, and x_hat = (x - mu) / sigma: train = eval (the point of BRN)."""
    brn = norms.BatchRenorm2d(3, r_max=1e6, d_max=1e6, momentum=0.0, dtype=F64)  # momentum 0: buffers stay
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5])), brn.running_var.copy_(torch.tensor([4.0, 0.3, 2.0]))
    x = torch.randn(2, 3, 3, 3, dtype=F64)  # a batch whose statistics are far from the running ones
    train_out = brn.train()(x)
    torch.testing.assert_close(train_out, brn.eval()(x), atol=1e-12, rtol=0)
    bn = norms.BatchNorm2d(3, dtype=F64)
    assert (train_out - bn(x)).abs().max() > 0.5  # and differs from BN's batch-normalized output


def test_clipping_is_active_at_the_default_limits():
    brn = norms.BatchRenorm1d(2, dtype=F64)  # r_max = 3, d_max = 5; running stats (0, 1)
    x = torch.cat([100 * torch.randn(50, 1, dtype=F64) + 40, 0.01 * torch.randn(50, 1, dtype=F64)], 1)
    r, d = brn.renorm_factors(x)
    assert torch.equal(r, torch.tensor([3.0, 1 / 3], dtype=F64)) and d[0] == 5.0


def test_gradcheck_in_training_mode_where_the_clips_hold():
    """Where both clips are active r and d are locally constant, so the detached gradient is the true one."""
    brn = norms.BatchRenorm1d(3, r_max=2.0, d_max=1.0, momentum=0.0, dtype=F64)  # momentum 0: same buffers
    with torch.no_grad():
        brn.running_mean.fill_(50.0), brn.running_var.fill_(100.0)  # r = 1/r_max, d = -d_max
    x = torch.randn(6, 3, dtype=F64, requires_grad=True)
    r, d = brn.renorm_factors(x)
    assert torch.equal(r, torch.full((3,), 0.5, dtype=F64)) and torch.equal(d, torch.full((3,), -1.0, dtype=F64))
    assert gradcheck(lambda x: brn(x), (x,))


def test_schedule_of_the_paper():
    """r_max = 1, d_max = 0 for 5k steps, then r_max -> 3 by 40k and d_max -> 5 by 25k (Sec. 4.1)."""
    assert norms.renorm_limits(0) == norms.renorm_limits(5000) == (1.0, 0.0)
    assert norms.renorm_limits(22500) == (2.0, 4.375)
    assert norms.renorm_limits(25000)[1] == 5.0 and norms.renorm_limits(40000) == (3.0, 5.0)
    assert norms.renorm_limits(10**6) == (3.0, 5.0)
    r = [norms.renorm_limits(s)[0] for s in range(0, 50000, 1000)]
    assert r == sorted(r)
    model = nn.Sequential(nn.Linear(3, 4), norms.BatchRenorm1d(4), nn.ReLU(), norms.BatchRenorm1d(4))
    assert norms.set_renorm_limits(model, *norms.renorm_limits(22500)) == 2
    assert (model[1].r_max, model[3].d_max) == (2.0, 4.375)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"expected r_max >= 1.*\(got 0.5\)"):
        norms.BatchRenorm1d(3, r_max=0.5)
    with pytest.raises(ValueError, match=r"expected d_max >= 0.*\(got -1"):
        norms.BatchRenorm2d(3, d_max=-1)
    with pytest.raises(ValueError, match=r"expected track_running_stats=True \(got False\)"):
        norms.BatchRenorm1d(3, track_running_stats=False)
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        norms.BatchRenorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"expected 0 <= warmup < r_max_step, d_max_step"):
        norms.renorm_limits(10, warmup=30000)
    with pytest.raises(ValueError, match=r"expected r_max >= 1"):
        norms.set_renorm_limits(nn.Sequential(), 0.9, 0.0)
