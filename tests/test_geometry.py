"""bnlib.geometry on closed forms: the FF^T = I argument on exactly whitened inputs, the deep stacks'
initializations, the secant rate of a quadratic, kink crossings of a one-unit ReLU, and Hessian runs
that give the same numbers in one process and in two."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import geometry, spectra, whitening


def _white(n=500, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64)
    return whitening.whiten(x, "zca", eps=0.0)                       # (n, d), cov = I to rounding


def test_layer_singular_values_closed_forms():
    x = _white()
    W = torch.randn(5, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sv = geometry.layer_singular_values(W, x)
    assert torch.allclose(sv["raw"], torch.linalg.svdvals(W), atol=1e-12)
    assert (sv["whitened"] - 1).abs().max() < 1e-9                   # FF^T = cov(z)^-1/2 W W^T cov(z)^-1/2 = I
    assert abs(sv["bn"].square().mean().item() - 1) < 1e-9           # trace of a correlation matrix / out
    assert sv["bn"][0] / sv["bn"][-1] > 1.01                         # correlated outputs: not all 1


def test_layer_singular_values_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected W \(out, in\) and x \(n, in\)"):
        geometry.layer_singular_values(torch.zeros(3, 4), torch.zeros(10, 5))


@pytest.mark.parametrize("width,fan_in", [(16, 16), (16, 24), (16, 8)])
def test_deep_stack_orthogonal_init_is_scaled_orthogonal(width, fan_in):
    stack = geometry.deep_stack(1, "tanh", "orthogonal", width=width, in_features=fan_in,
                                generator=torch.Generator().manual_seed(0))
    W = stack[0].weight.detach().double()                            # (width, fan_in)
    assert W.shape == (width, fan_in)
    gram = W @ W.T if width <= fan_in else W.T @ W                   # the smaller side's Gram matrix
    scale = max(width, fan_in) / fan_in
    assert torch.allclose(gram, scale * torch.eye(min(width, fan_in), dtype=torch.float64), atol=1e-6)


def test_deep_stack_layout_and_gains():
    g = torch.Generator().manual_seed(0)
    stack = geometry.deep_stack(3, "relu", "gaussian", bn=True, width=64, in_features=10, generator=g)
    kinds = [type(m).__name__ for m in stack]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 4
    assert all(not m.affine for m in stack if isinstance(m, nn.BatchNorm1d))
    w = stack[3].weight.detach()                                     # He: variance 2 / fan_in
    assert abs(w.var().item() * 64 / 2 - 1) < 0.1
    with pytest.raises(ValueError, match="expected activation"):
        geometry.deep_stack(2, "gelu")


def test_stack_jacobian_of_a_linear_stack_is_the_weight_product():
    stack = geometry.deep_stack(3, "linear", "gaussian", width=8, in_features=5,
                                generator=torch.Generator().manual_seed(2))
    h = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    product = stack[6].weight @ stack[4].weight @ stack[2].weight    # blocks after the first
    s = geometry.stack_jacobian(stack, h)
    assert torch.allclose(s.double(), torch.linalg.svdvals(product.detach().double()), rtol=1e-4, atol=1e-5)


def test_jacobian_summary_isometry():
    out = geometry.jacobian_summary(torch.ones(7))
    assert out == {"gain": 1.0, "anisotropy": 1.0}
    out = geometry.jacobian_summary(torch.tensor([2.0, 0.0]))       # sigma^2 = 4, 0: mean 2, max / mean 2
    assert out == {"gain": 2.0, "anisotropy": 2.0}


def _least_squares(seed=0, n=64, d=6):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, d, generator=g), torch.randn(n, 1, generator=g)
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, d, generator=g))
    return model, x, y


def test_secant_slopes_of_a_quadratic_are_hv_at_every_step():
    model, x, y = _least_squares()
    H = 2 * x.double().T @ x.double() / len(x)                       # the Hessian of the mean squared error
    lam, vec = torch.linalg.eigh(H)
    before = model.weight.detach().clone()
    rates = geometry.secant_slopes(model, F.mse_loss, x, y, vec[:, -1], [1e-4, 1e-1, 10.0])
    assert torch.allclose(rates, lam[-1].expand(3), rtol=1e-9)        # a quadratic: exact at every t
    v = torch.ones(6, dtype=torch.float64) / math.sqrt(6)
    rate = geometry.secant_slopes(model, F.mse_loss, x, y, v, [0.5])
    assert torch.allclose(rate, (H @ v).norm().expand(1), rtol=1e-9)
    assert torch.equal(model.weight.detach(), before) and model.weight.grad is None
    top = spectra.hessian_eigenvalues(model, F.mse_loss, x, y, k=1, steps=6)
    assert abs(top[0].item() / lam[-1].item() - 1) < 1e-4


def test_kink_crossings_of_one_relu_unit():
    model = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.fill_(-0.5)
    x = torch.tensor([[1.0], [2.0]])                                 # pre-activations 0.5 and 1.5
    v = torch.tensor([0.0, -1.0])                                    # (weight, bias): lower the bias
    assert geometry.kink_crossings(model, x, v, [0.4, 0.6, 1.6]).tolist() == [0, 1, 2]
    assert model[0].bias.item() == -0.5
    assert geometry.kink_crossings(nn.Linear(1, 1), x, torch.ones(2), [1.0]).tolist() == [0]


def test_hessian_runs_same_in_one_and_two_processes(one_thread):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 196, generator=g), torch.randint(0, 10, (96,), generator=g)
    data = {"train": (x, y), "test": (x[:32], y[:32])}
    cfg = geometry.GeometryConfig(hidden=(8,), batch_size=16, steps=4, checkpoints=(1, 4), hessian_examples=32,
                                  k=3, lanczos_steps=8, jacobian_examples=2)
    one = geometry.hessian_runs(("none", "bn"), (0, 1), cfg, data, workers=1)
    two = geometry.hessian_runs(("none", "bn"), (0, 1), cfg, data, workers=2)
    assert set(one) == {("none", 0), ("none", 1), ("bn", 0), ("bn", 1)}
    for key in one:
        assert one[key]["values"].shape == (2, 3) and one[key]["share"].shape == (2,)
        assert one[key]["gain"].shape == one[key]["anisotropy"].shape == (2, 2)     # (checkpoints, examples)
        assert ((1 - 1e-9 <= one[key]["anisotropy"]) & (one[key]["anisotropy"] <= 10 + 1e-9)).all()
        if key[0] == "bn":                                           # training mode: the batch's own statistics
            assert one[key]["values_batch"].shape == (2, 3) and one[key]["share_batch"].shape == (2,)
            assert not torch.equal(one[key]["values_batch"], one[key]["values"])
        else:
            assert "values_batch" not in one[key]
        assert torch.equal(one[key]["values"], two[key]["values"]) and torch.equal(one[key]["share"], two[key]["share"])
        assert ((0 <= one[key]["share"]) & (one[key]["share"] <= 1 + 1e-9)).all()
    with pytest.raises(ValueError, match="expected norm 'none' or 'bn'"):
        geometry.hessian_run("ln", 0, cfg, data)


@pytest.mark.parametrize("placement,kinds", [
    ("none", ["Linear", "ReLU"] * 2 + ["Linear"]),
    ("last", ["Linear", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]),
    ("middle", ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]),
    ("ln", ["Linear", "LayerNorm", "ReLU"] * 2 + ["Linear"]),
])
def test_fisher_net_placements(placement, kinds):
    net = geometry.fisher_net(8, placement, seed=0, in_features=5, depth=2, classes=3)
    assert [type(m).__name__ for m in net] == kinds and net.training
    out = net(torch.randn(16, 5, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (16, 3)
    if placement == "last":
        assert out.mean(0).abs().max() < 1e-6                          # BN over the batch on the outputs


def test_fisher_max_is_the_top_eigenvalue_of_the_explicit_fisher():
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(1))
    net = geometry.fisher_net(3, "none", seed=2, in_features=4)      # depth 3, 10 classes, as fisher_max builds it
    params = list(net.parameters())
    rows = []
    for n in range(len(x)):                                           # J_n (classes, P)
        for c in range(10):
            g = torch.autograd.grad(net(x[n:n + 1])[0, c], params)
            rows.append(torch.cat([t.reshape(-1) for t in g]))
    J = torch.stack(rows).double()                                    # (N * classes, P)
    F_exact = J.T @ J / len(x)
    top = torch.linalg.eigvalsh(F_exact)[-1].item()
    assert geometry.fisher_max((3, "none", 2, x)) == pytest.approx(top, rel=1e-4)
    with pytest.raises(ValueError, match="expected placement one of"):
        geometry.fisher_net(3, "first", 0)
