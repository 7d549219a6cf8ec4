"""l_p normalization, landscape probes and the Sec. 4 identities: checks with known answers.

Random tensors here are toy inputs for unit tests, not data.
"""
import copy
import math

import pytest
import torch
from torch import nn

from bnlib import layers, models, theory
from bnlib.lpnorm import LpNorm1d, LpNorm2d
from bnlib.measure import LandscapeTrace, landscape_probe


def reference_lp(x, p, eps=1e-5):
    C = x.shape[1]
    xc = x.transpose(0, 1).reshape(C, -1)  # (N, C, *) -> (C, N*L)
    norm = xc.abs().amax(1) + eps if p == math.inf else (xc.abs().pow(p).mean(1) + eps) ** (1 / p)
    shape = [1, C] + [1] * (x.dim() - 2)
    return (x - xc.mean(1).view(shape)) / norm.view(shape)


@pytest.mark.parametrize("p", [1, 2, math.inf])
def test_lpnorm_matches_the_formula_and_gradcheck(p):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 4, 4, generator=gen, dtype=torch.float64) * 2 + 1
    layer = LpNorm2d(3, p=p).double()
    assert torch.allclose(layer(x), reference_lp(x, p), atol=1e-12)
    x1 = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    assert torch.allclose(LpNorm1d(5, p=p).double()(x1), reference_lp(x1, p), atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: LpNorm2d(3, p=p).double()(t), (x.clone().requires_grad_(),))


def test_l2_norm_is_not_bn_unless_the_input_is_centred():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=gen, dtype=torch.float64) + 3
    bn = layers.BatchNorm1d(4).double()
    assert not torch.allclose(LpNorm1d(4, p=2).double()(x), bn(x), atol=1e-3)
    xc = x - x.mean(0)  # centred input: the uncentred norm is the standard deviation
    assert torch.allclose(LpNorm1d(4, p=2, eps=1e-5).double()(xc), bn(xc), atol=1e-9)


def test_lpnorm_running_stats_and_eval():
    layer = LpNorm1d(2, p=1, momentum=0.5)
    x = torch.tensor([[1.0, -2.0], [3.0, 2.0]])
    layer(x)
    assert torch.allclose(layer.running_mean, torch.tensor([1.0, 0.0]))
    assert torch.allclose(layer.running_norm, 0.5 + 0.5 * (torch.tensor([2.0, 2.0]) + 1e-5))
    assert layer.running_mean.grad_fn is None and layer.num_batches_tracked.item() == 1
    layer.eval()
    out = layer(torch.tensor([[1.0, 0.0]]))  # a batch of one is fine in eval mode
    assert torch.allclose(out, (torch.tensor([[1.0, 0.0]]) - layer.running_mean) / layer.running_norm)


def test_lpnorm_errors():
    with pytest.raises(ValueError, match="expected p in"):
        LpNorm1d(3, p=3)
    with pytest.raises(ValueError, match="expected 4D input"):
        LpNorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        LpNorm1d(3)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="expected input with 3 channels"):
        LpNorm1d(3)(torch.randn(4, 2))


@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_models_build_with_lp_norms(name):
    model = models.vgg("tiny", name, fc_width=16, image_size=16, generator=torch.Generator().manual_seed(0))
    assert sum(isinstance(m, (LpNorm1d, LpNorm2d)) for m in model.modules()) == 7
    assert model(torch.randn(4, 3, 16, 16)).shape == (4, 10)
    assert sum(isinstance(m, LpNorm1d) for m in models.deep_linear_network(25, 10, name).modules()) == 24


class Quadratic(nn.Module):
    """L(w) = 1/2 w^T A w: the gradient is A w, so every probe has a closed form."""

    def __init__(self, A, w):
        super().__init__()
        self.register_buffer("A", A)
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return 0.5 * self.w @ self.A @ self.w


def test_probe_on_a_quadratic_has_the_closed_form():
    A = torch.diag(torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64))
    w = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    model, etas = Quadratic(A, w), [0.01, 0.05, 0.1]
    r = landscape_probe(model, torch.zeros(1), None, etas, loss_fn=lambda out, y: out)
    g = A @ w
    for eta, loss, change in zip(etas, r["loss"], r["grad_change"]):
        w_eta = w - eta * g
        assert loss == pytest.approx(0.5 * (w_eta @ A @ w_eta).item(), rel=1e-12)
        assert change == pytest.approx(eta * (A @ g).norm().item(), rel=1e-12)  # grad changes by eta A g
    assert r["beta"] == pytest.approx(((A @ g).norm() / g.norm()).item(), rel=1e-12)
    assert r["beta"] <= 9.0  # at most the largest eigenvalue
    assert torch.equal(model.w.detach(), w)


def test_probe_leaves_a_bn_model_alone_and_trace_records():
    gen = torch.Generator().manual_seed(0)
    model = models.mlp([6, 8, 3], "relu", norm=layers.BatchNorm1d, generator=gen)
    x, y = torch.randn(16, 6, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    nn.functional.cross_entropy(model(x), y).backward()
    before = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    trace = LandscapeTrace((0.5, 1, 2), lr=0.1, every=2)
    for step in (1, 2, 3):
        trace(step, model, x, y)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert torch.equal(rng, torch.get_rng_state())
    r = trace.result()
    assert r["steps"] == [1, 2] and r["eta"] == pytest.approx([0.05, 0.1, 0.2])
    assert len(r["loss"][0]) == 3 and len(r["beta"]) == 2
    with pytest.raises(ValueError, match="at least one step size"):
        landscape_probe(model, x, y, [])


def _unit(seed=0, m=24):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(m, generator=gen, dtype=torch.float64) * 2 + 0.5
    W = torch.randn(m, 4, generator=gen, dtype=torch.float64)
    return y, (lambda z: torch.tanh(z @ W).pow(2).sum() + 0.01 * z.pow(3).sum())


def test_fact_c1_and_theorem41_with_the_1_over_m_coefficient_hold_with_equality():
    y, f = _unit()
    z, y_hat, sigma = theory.bn_unit(y, 1.5, 0.2, eps=0.0)
    g = theory.grad(f, z)
    autograd = theory.grad(lambda t: f(theory.bn_unit(t, 1.5, 0.2, eps=0.0)[0]), y)
    assert torch.allclose(theory.fact_c1(g, y_hat, sigma, 1.5), autograd, atol=1e-12)
    r = theory.theorem41(g, y_hat, sigma, 1.5)
    assert r["lhs"] == pytest.approx(r["rhs"], rel=1e-10)
    printed = theory.theorem41(g, y_hat, sigma, 1.5, last="1/sqrt(m)")
    assert printed["lhs"] > printed["rhs"]  # the printed 1/sqrt(m) version is violated


def test_theorem42_and_lemma45_are_identities():
    y, f = _unit(1)
    r = theory.theorem42(f, y, 1.5, 0.2, eps=0.0)
    assert r["lhs"] == pytest.approx(r["rhs"], rel=1e-9)
    gen = torch.Generator().manual_seed(2)
    W0, W_star = torch.randn(50, generator=gen), torch.randn(50, generator=gen) + 0.3
    r = theory.lemma45(W0, W_star)
    assert r["lhs"] == pytest.approx(r["rhs"], rel=1e-9) and r["lhs"] <= r["plain"]
