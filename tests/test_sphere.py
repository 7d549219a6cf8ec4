"""bnlib.sphere on closed forms: scale invariance of the weights before BN, Pythagoras for plain SGD,
the norm recursion with weight decay step by step, the equilibrium angle, one vs two processes."""
import math

import pytest
import torch
from torch import nn

from bnlib import models, sphere


def _data(n=128, d=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, d, generator=g), torch.randint(0, 10, (n,), generator=g)
    return {"train": (x, y), "test": (x[:32], y[:32])}


def _bn_mlp(d=20, seed=0):
    return models.mlp([d, 16, 16, 10], norm=nn.BatchNorm1d, generator=torch.Generator().manual_seed(seed))


def test_invariant_weights_are_the_layers_before_bn():
    assert list(sphere.invariant_weights(_bn_mlp())) == ["fc1.weight", "fc2.weight"]
    plain = models.mlp([20, 16, 10], generator=torch.Generator().manual_seed(0))
    assert sphere.invariant_weights(plain) == {}
    x, y = _data()["train"]
    with pytest.raises(ValueError, match="expected a model with a Linear or Conv2d directly followed by a BatchNorm"):
        sphere.scale_check(plain, x, y, [1.0])


def test_scale_check_invariance_orthogonality_and_one_over_c():
    net = _bn_mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = _data()["train"]
    rows = sphere.scale_check(net, x, y, [1.0, 10.0, 1000.0])
    ref = rows[0]
    for r in rows:
        assert abs(r["loss"] - ref["loss"]) < 1e-5                  # eps: exact only up to eps / var
        assert abs(r["cos"]) < 1e-5
        assert abs(r["grad_times_c"] / ref["grad_times_c"] - 1) < 1e-4
    assert abs(rows[-1]["cos"]) < 1e-9                               # eps negligible at large c
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())   # the model untouched


def test_equilibrium_angle_closed_form():
    a = 0.1 * 0.04
    assert sphere.equilibrium_angle(0.1, 0.04) == pytest.approx(math.atan(math.sqrt(2 * a - a * a) / (1 - a)), rel=1e-15)
    assert sphere.equilibrium_angle(0.1, 5e-4) == pytest.approx(math.sqrt(2 * 0.1 * 5e-4), rel=1e-4)
    assert sphere.equilibrium_angle(0.05, 0.08) == sphere.equilibrium_angle(0.2, 0.02)   # the product only
    with pytest.raises(ValueError, match=r"expected 0 < lr \* weight_decay < 1"):
        sphere.equilibrium_angle(0.1, 0.0)


def test_plain_sgd_only_grows_the_norm_by_pythagoras():
    cfg = sphere.SphereConfig(hidden=(16, 16), steps=40, batch_size=16)
    r = sphere.sphere_run(cfg, _data())
    n2, g2 = r["norm2"], r["grad2"]
    assert (n2[1:] >= n2[:-1]).all()                                 # only ever grows
    step = n2[1:] - n2[:-1]                                          # = eta^2 ||g||^2, step by step
    assert torch.allclose(step, g2[:-1], rtol=1e-3, atol=1e-6)
    assert r["cos"].abs().max() < 1e-4
    assert set(r["weight_norms"]) >= {"fc1.weight", "fc2.weight", "out.weight"}


def test_weight_decay_recursion_and_angle_step_by_step():
    cfg = sphere.SphereConfig(hidden=(16, 16), steps=40, batch_size=16, lr=0.1, weight_decay=0.05)
    r = sphere.sphere_run(cfg, _data())
    a = cfg.lr * cfg.weight_decay
    n2, g2 = r["norm2"], r["grad2"]
    assert torch.allclose(n2[1:], (1 - a) ** 2 * n2[:-1] + g2[:-1], rtol=1e-4)   # float32 weights
    predicted = torch.atan(g2[:-1].sqrt() / ((1 - a) * n2[:-1].sqrt()))           # g orthogonal to W
    assert torch.allclose(r["angle"], predicted, rtol=1e-2, atol=1e-4)


def test_sphere_runs_same_in_one_and_two_processes(one_thread):
    cfgs = sphere.with_seeds(sphere.SphereConfig(hidden=(8, 8), steps=5, batch_size=16), [0, 1])
    one = sphere.sphere_runs(cfgs, _data(), workers=1)
    two = sphere.sphere_runs(cfgs, _data(), workers=2)
    for a, b in zip(one, two):
        assert torch.equal(a["norm2"], b["norm2"]) and a["test_acc"] == b["test_acc"]
    with pytest.raises(ValueError, match="expected norm 'bn' or 'none'"):
        sphere.sphere_run(sphere.SphereConfig(norm="ln"), _data())
