"""bnlib.measure.landscape_probe and LandscapeTrace: closed forms on quadratics; the model is left alone.

L(w) = 1/2 w^T A w has gradient A w, so along -g with g = A w:
    L(w - eta g) = 1/2 (w - eta g)^T A (w - eta g),   grad L(w - eta g) = g - eta A g,
    grad_change(eta) = eta ||A g||,   beta = ||A g|| / ||g|| <= lambda_max(A).
Random tensors here are toy inputs for unit tests, not data.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import train
from bnlib.layers import BatchNorm1d, NoisyBatchNorm1d
from bnlib.measure import LandscapeTrace, landscape_probe


class Quadratic(nn.Module):
    """forward(x) = 1/2 w^T A w (x is ignored): with ``value`` as the loss, L(w) = 1/2 w^T A w."""

    def __init__(self, A: torch.Tensor, w: torch.Tensor):
        super().__init__()
        self.register_buffer("A", A)
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return 0.5 * self.w @ self.A @ self.w


def value(out, y):
    return out


def spd(d: int, seed: int = 0) -> torch.Tensor:
    """A random symmetric positive definite (d, d) matrix, float64."""
    gen = torch.Generator().manual_seed(seed)
    Q = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return Q @ Q.T + 0.5 * torch.eye(d, dtype=torch.float64)


def test_quadratic_has_the_closed_form():
    A = spd(5)
    w = torch.linspace(-1, 1, 5, dtype=torch.float64)
    model, etas = Quadratic(A, w), [0.0, 0.01, 0.03, 0.1]
    model.w.grad = torch.full_like(w, 7.0)  # a stale .grad: must survive the probe
    got = landscape_probe(model, torch.zeros(1), None, etas, loss_fn=value)
    g = A @ w
    Ag = A @ g
    assert got["eta"] == etas
    assert got["loss0"] == pytest.approx(0.5 * (w @ A @ w).item(), rel=1e-12)
    assert got["grad_norm"] == pytest.approx(g.norm().item(), rel=1e-12)
    for eta, loss, change in zip(etas, got["loss"], got["grad_change"]):
        w_eta = w - eta * g
        assert loss == pytest.approx(0.5 * (w_eta @ A @ w_eta).item(), rel=1e-12)
        assert change == pytest.approx(eta * Ag.norm().item(), rel=1e-10, abs=1e-12)
    assert got["grad_change"][0] == 0.0 and got["loss"][0] == got["loss0"]  # eta = 0: nothing moves
    beta = (Ag.norm() / g.norm()).item()
    assert got["beta"] == pytest.approx(beta, rel=1e-10)
    assert got["beta"] <= torch.linalg.eigvalsh(A).max().item() * (1 + 1e-12)
    assert torch.equal(model.w.detach(), w) and torch.equal(model.w.grad, torch.full_like(w, 7.0))


def test_scale_free_measures_have_the_closed_form():
    """grad_change_rel = eta ||A g|| / ||g||, cosine = <g, g - eta A g> / (||g|| ||g - eta A g||),
    beta_rel = beta ||w|| / ||g||."""
    A = spd(4, seed=1)
    w = torch.tensor([0.3, -1.0, 0.5, 2.0], dtype=torch.float64)
    etas = [0.0, 0.01, 0.05]
    got = landscape_probe(Quadratic(A, w), torch.zeros(1), None, etas, loss_fn=value)
    g = A @ w
    Ag = A @ g
    for eta, rel, cos in zip(etas, got["grad_change_rel"], got["cosine"]):
        g_eta = g - eta * Ag
        assert rel == pytest.approx((eta * Ag.norm() / g.norm()).item(), rel=1e-10, abs=1e-12)
        assert cos == pytest.approx((g @ g_eta / (g.norm() * g_eta.norm())).item(), rel=1e-12)
    assert got["cosine"][0] == pytest.approx(1.0, rel=1e-12)  # eta = 0: the same gradient
    assert got["weight_norm"] == pytest.approx(w.norm().item(), rel=1e-12)
    assert got["beta_rel"] == pytest.approx(got["beta"] * w.norm().item() / g.norm().item(), rel=1e-12)


def test_beta_rel_is_unchanged_by_scaling_the_weights_before_bn():
    """Linear (no bias) -> BN without affine -> mean of squares: scaling W by k leaves the loss as it
    is, divides the gradient by k and beta by k^2, and leaves beta_rel, grad_change_rel and cosine
    unchanged when the step sizes are scaled by k^2 (the same relative step)."""
    torch.manual_seed(0)
    x = torch.randn(32, 5, dtype=torch.float64)
    y = torch.randn(32, 3, dtype=torch.float64)
    out = {}
    for k in (1.0, 4.0):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(5, 3, bias=False), nn.BatchNorm1d(3, affine=False, eps=1e-14)).double()  # eps would break the invariance
        with torch.no_grad():
            model[0].weight.mul_(k)
        out[k] = landscape_probe(model, x, y, [0.1 * k**2, 0.4 * k**2], loss_fn=F.mse_loss)
    assert out[4.0]["loss0"] == pytest.approx(out[1.0]["loss0"], rel=1e-9)
    assert out[4.0]["grad_norm"] == pytest.approx(out[1.0]["grad_norm"] / 4, rel=1e-9)
    assert out[4.0]["beta"] == pytest.approx(out[1.0]["beta"] / 16, rel=1e-6)
    assert out[4.0]["beta_rel"] == pytest.approx(out[1.0]["beta_rel"], rel=1e-6)
    for key in ("grad_change_rel", "cosine"):
        assert out[4.0][key] == pytest.approx(out[1.0][key], rel=1e-6)


def test_beta_is_the_eigenvalue_along_an_eigenvector():
    """w on an eigenvector of A: g = lambda w and A g = lambda g, so beta = lambda exactly."""
    A = torch.diag(torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64))
    for i, lam in enumerate([1.0, 4.0, 9.0]):
        w = torch.zeros(3, dtype=torch.float64)
        w[i] = 2.0
        got = landscape_probe(Quadratic(A, w), torch.zeros(1), None, [0.05, 0.2], loss_fn=value)
        assert got["beta"] == pytest.approx(lam, rel=1e-12)
        # along an eigenvector the loss is 1/2 lam (1 - eta lam)^2 ||w||^2: it rises again past eta = 2 / lam
        for eta, loss in zip([0.05, 0.2], got["loss"]):
            assert loss == pytest.approx(0.5 * lam * (1 - eta * lam) ** 2 * 4.0, rel=1e-12)


def test_a_general_model_matches_a_hand_made_step():
    """BN model in train mode: L and grad at w - eta g, rebuilt by hand on a copy."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8, bias=False), BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = torch.randn(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    eta = 0.3
    got = landscape_probe(model, x, y, [eta])
    twin = copy.deepcopy(model)
    g = torch.autograd.grad(F.cross_entropy(twin(x), y), list(twin.parameters()))
    with torch.no_grad():
        for p, gp in zip(twin.parameters(), g):
            p.sub_(eta * gp)
    loss = F.cross_entropy(twin(x), y)
    g_eta = torch.autograd.grad(loss, list(twin.parameters()))
    change = torch.cat([(a - b).flatten() for a, b in zip(g, g_eta)]).norm().item()  # each -> (numel,)
    g_norm = torch.cat([a.flatten() for a in g]).norm().item()  # each -> (numel,)
    assert got["loss"][0] == pytest.approx(loss.item(), rel=1e-12)
    assert got["grad_change"][0] == pytest.approx(change, rel=1e-10)
    assert got["beta"] == pytest.approx(change / (eta * g_norm), rel=1e-10)


def test_bn_model_params_grads_buffers_and_rng_are_left_untouched():
    """Running statistics, num_batches_tracked, .grad, the global RNG and a layer's own generator."""
    torch.manual_seed(0)
    noise = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 8), BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 8),
                          NoisyBatchNorm1d(8, generator=noise), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    F.cross_entropy(model(x), y).backward()
    state = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    rng, noise_state = torch.get_rng_state(), noise.get_state()
    got = landscape_probe(model, x, y, [0.0, 0.05, 0.4])
    assert torch.equal(torch.get_rng_state(), rng) and torch.equal(noise.get_state(), noise_state)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    # same dropout mask and same BN noise at every eta: at eta = 0 the probe reproduces w exactly
    assert got["grad_change"][0] == 0.0 and got["loss"][0] == got["loss0"]
    assert got["grad_change"][2] > got["grad_change"][1] > 0


def test_trace_in_fit_records_the_probes_and_leaves_training_unchanged():
    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    model = nn.Sequential(nn.Linear(6, 8, bias=False), BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    twin = copy.deepcopy(model)
    cfg = train.TrainConfig(steps=6, batch_size=16, lr=0.1, eval_every=100)
    trace = LandscapeTrace((0.5, 1, 4), lr=0.1, every=3)
    with_trace = train.fit(model, (x, y), None, cfg, on_step=[trace])
    without = train.fit(twin, (x, y), None, cfg)
    assert with_trace.loss == without.loss
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    r = trace.result()
    assert r["steps"] == [1, 3, 6] and r["eta"] == pytest.approx([0.05, 0.1, 0.4]) and r["lr"] == 0.1
    for i in range(3):
        assert r["loss_min"][i] == min(r["loss"][i]) and r["loss_max"][i] == max(r["loss"][i])
        assert r["grad_change_min"][i] <= r["grad_change_max"][i] == max(r["grad_change"][i])
        assert r["beta"][i] > 0 and len(r["loss"][i]) == 3
    assert r["loss0"][0] == pytest.approx(without.loss[0], rel=1e-6)  # step 1's loss, before any update


def test_errors_say_what_was_expected():
    model = Quadratic(torch.eye(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected at least one step size"):
        landscape_probe(model, torch.zeros(1), None, [], loss_fn=value)
    with pytest.raises(ValueError, match="expected finite step sizes"):
        landscape_probe(model, torch.zeros(1), None, [float("nan")], loss_fn=value)
    with pytest.raises(ValueError, match="expected a model with parameters"):
        landscape_probe(nn.ReLU(), torch.zeros(1), None, [0.1], loss_fn=value)
    with pytest.raises(ValueError, match="expected every >= 1"):
        LandscapeTrace([1.0], lr=0.1, every=0)
    with pytest.raises(ValueError, match="expected lr > 0"):
        LandscapeTrace([1.0], lr=0.0)
    with pytest.raises(ValueError, match="expected at least one step size"):
        LandscapeTrace([], lr=0.1)
