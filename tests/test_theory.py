"""bnlib.theory: Santurkar et al. Sec. 4 on real BN layers, with autograd as the oracle.

Toy checks: the random tensors below are unit-test inputs, not data; float64 throughout.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import theory
from bnlib.layers import BatchNorm1d, BatchNorm2d

D = torch.float64


def mlp_with_bn(seed=0, m=16, C=5, eps=1e-5):
    """x -> Linear -> bnlib BN -> tanh -> Linear -> cross-entropy; returns y, z with their gradients."""
    gen = torch.Generator().manual_seed(seed)
    x, labels = torch.randn(m, 4, generator=gen, dtype=D), torch.randint(0, 3, (m,), generator=gen)
    fc, bn, head = nn.Linear(4, C).double(), BatchNorm1d(C, eps=eps).double(), nn.Linear(C, 3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.rand(C, generator=gen, dtype=D) + 0.5)  # gamma in [0.5, 1.5)
        bn.bias.copy_(torch.randn(C, generator=gen, dtype=D))
    y = fc(x) * 3 + 1  # (m, C) pre-BN outputs, not centred
    y.retain_grad()
    z = bn(y)
    z.retain_grad()
    F.cross_entropy(head(torch.tanh(z)), labels).backward()
    return y, z, bn


def stats(y, eps):
    sigma = (y.detach().var(0, unbiased=False) + eps).sqrt()  # (C,)
    return (y.detach() - y.detach().mean(0)) / sigma, sigma


def test_fact_c1_is_the_gradient_through_bnlib_batchnorm1d():
    y, z, bn = mlp_with_bn()
    y_hat, sigma = stats(y, bn.eps)
    got = theory.bn_gradient(z.grad, y_hat, sigma, bn.weight.detach())
    torch.testing.assert_close(got, y.grad, rtol=1e-10, atol=1e-13)


def test_fact_c1_on_bnlib_batchnorm2d_over_n_h_w():
    gen = torch.Generator().manual_seed(1)
    y = (torch.randn(3, 4, 5, 5, generator=gen, dtype=D) * 2 + 1).requires_grad_()
    bn = BatchNorm2d(4).double()
    z = bn(y)
    w = torch.randn(z.shape, generator=gen, dtype=D)
    (torch.sin(z) * w).sum().backward()
    to_units = lambda t: t.detach().transpose(0, 1).reshape(4, -1).T  # (N, C, H, W) -> (C, N*H*W) -> (m, C)
    grad_z = to_units(torch.cos(bn(y)) * w)  # dL/dz for L = sum(sin(z) * w)
    y_hat, sigma = stats(to_units(y), bn.eps)
    torch.testing.assert_close(theory.bn_gradient(grad_z, y_hat, sigma, 1.0), to_units(y.grad), rtol=1e-10,
                               atol=1e-13)


def test_theorem41_is_an_equality_with_1_over_m_and_eps_0():
    gen = torch.Generator().manual_seed(2)
    y, g = torch.randn(32, 6, generator=gen, dtype=D) * 2 + 1, torch.randn(32, 6, generator=gen, dtype=D) + 0.3
    gamma = torch.rand(6, generator=gen, dtype=D) + 0.5
    _, y_hat, sigma = theory.bn_unit(y, gamma, 0.0, eps=0.0)
    r = theory.theorem41(g, y_hat, sigma, gamma)
    torch.testing.assert_close(r["lhs"], r["rhs"], rtol=1e-12, atol=0)
    torch.testing.assert_close(r["rho"], torch.ones(6, dtype=D), rtol=1e-12, atol=0)
    printed = theory.theorem41(g, y_hat, sigma, gamma, last="1/sqrt(m)")
    assert (printed["lhs"] > printed["rhs"]).all()  # the bound as printed is violated in every unit
    one = theory.theorem41(g[:, 0], y_hat[:, 0], sigma[0], gamma[0])  # one unit: floats
    assert isinstance(one["lhs"], float) and one["lhs"] == pytest.approx(r["lhs"][0].item(), rel=1e-12)


def test_theorem41_on_a_real_layer_holds_with_the_eps_gap():
    """bnlib's BN needs eps > 0: then lhs = rhs - scale (1 - rho)/m <g, y_hat>^2 < rhs."""
    eps = 1e-2  # large enough to see the gap
    y, z, bn = mlp_with_bn(seed=3, eps=eps)
    y_hat, sigma = stats(y, eps)
    r = theory.theorem41(z.grad, y_hat, sigma, bn.weight.detach())
    torch.testing.assert_close(r["lhs"], y.grad.square().sum(0), rtol=1e-10, atol=0)  # ||grad_y L_hat||^2
    m = y.shape[0]
    corr = (z.grad * y_hat).sum(0) ** 2  # <g, y_hat>^2
    torch.testing.assert_close(r["lhs"], r["rhs"] - r["scale"] * (1 - r["rho"]) / m * corr, rtol=1e-10, atol=1e-16)
    assert (r["lhs"] < r["rhs"]).all() and (r["rho"] < 1).all()
    printed = theory.theorem41(z.grad, y_hat, sigma, bn.weight.detach(), last="1/sqrt(m)")
    assert (printed["lhs"] > printed["rhs"]).all()


def test_hvp_both_methods_match_the_full_hessian():
    gen = torch.Generator().manual_seed(4)
    A = torch.randn(5, 5, generator=gen, dtype=D)
    A = A @ A.T  # (5, 5) symmetric

    def f(x):
        return 0.5 * x @ A @ x + x.pow(3).sum()

    x, v = torch.randn(5, generator=gen, dtype=D), torch.randn(5, generator=gen, dtype=D)
    H = torch.autograd.functional.hessian(f, x)
    for method in ("autograd", "func"):
        torch.testing.assert_close(theory.hvp(f, x, v, method), H @ v, rtol=1e-12, atol=1e-12)
    a, b = torch.randn(3, generator=gen, dtype=D), torch.randn(2, generator=gen, dtype=D)
    ones, zeros = torch.ones(3, dtype=D), torch.zeros(2, dtype=D)
    pair = theory.hvp(lambda a, b: (a.sum() * b).pow(2).sum(), (a, b), (ones, zeros))  # f = sum(a)^2 ||b||^2
    torch.testing.assert_close(pair[0], 6 * b.square().sum() * ones)  # d2f/da2 = 2||b||^2 11^T, times 1
    torch.testing.assert_close(pair[1], 12 * a.sum() * b)  # d2f/db da = 4 sum(a) b 1^T, times 1
    torch.testing.assert_close(theory.hvp(lambda x: 3 * x.sum(), x, v), torch.zeros(5, dtype=D))  # linear f


def test_torch_func_fails_on_bnlib_bn_and_double_backward_works():
    """bnlib's BatchNormFunction has no setup_context; torch's BN updates its buffers in place."""
    gen = torch.Generator().manual_seed(5)
    x, v = torch.randn(8, 3, generator=gen, dtype=D), torch.randn(8, 3, generator=gen, dtype=D)
    ours = BatchNorm1d(3, track_running_stats=False).double()

    def reference(t):  # the same BN with plain torch ops
        return (F.batch_norm(t, None, None, training=True, eps=1e-5) ** 3).sum()

    expected = theory.hvp(reference, x, v, "func")
    torch.testing.assert_close(theory.hvp(reference, x, v, "autograd"), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(theory.hvp(lambda t: (ours(t) ** 3).sum(), x, v), expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="setup_context"):
        theory.hvp(lambda t: (ours(t) ** 3).sum(), x, v, "func")
    tracking = nn.BatchNorm1d(3).double()
    with pytest.raises(RuntimeError, match="in-place"):
        theory.hvp(lambda t: (tracking(t) ** 3).sum(), x, v, "func")


def unit_and_loss(seed, m=24):
    """One unit's outputs y (m,) and a non-convex loss f of them."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(m, generator=gen, dtype=D) * 2 + 0.5
    W = torch.randn(m, 4, generator=gen, dtype=D)
    return y, (lambda z: torch.tanh(z @ W).pow(2).sum() + 0.01 * z.pow(3).sum())


def test_bn_unit_is_bnlib_batchnorm():
    y, f = unit_and_loss(6)
    bn = BatchNorm1d(1, eps=1e-5).double()
    with torch.no_grad():
        bn.weight.fill_(1.5)
        bn.bias.fill_(0.2)
    torch.testing.assert_close(theory.bn_unit(y, 1.5, 0.2, eps=1e-5)[0], bn(y[:, None])[:, 0])  # (m,) -> (m, 1)
    ours = theory.grad(lambda t: f(bn(t[:, None])[:, 0]), y)
    torch.testing.assert_close(theory.grad(lambda t: f(theory.bn_unit(t, 1.5, 0.2, 1e-5)[0]), y), ours)


def test_theorem42_is_an_equality_at_eps_0_and_off_by_order_eps():
    for seed in range(3):
        y, f = unit_and_loss(seed)
        r = theory.theorem42(f, y, 1.5, 0.2, eps=0.0)
        assert r["lhs"] == pytest.approx(r["rhs"], rel=1e-10)
        assert r["rhs"] == pytest.approx(r["curvature"] - r["correction"], rel=1e-12)
        d_small, d_large = (abs(theory.theorem42(f, y, 1.5, 0.2, eps=e)["lhs"] - theory.theorem42(
            f, y, 1.5, 0.2, eps=e)["rhs"]) for e in (1e-8, 1e-5))
        assert 300 < d_large / d_small < 3000  # the gap is linear in eps
    y, f = unit_and_loss(0)
    a, b = theory.theorem42(f, y, 1.5, 0.2, eps=0.0), theory.theorem42(f, y, 1.5, 0.2, eps=0.0, method="func")
    assert a["lhs"] == pytest.approx(b["lhs"], rel=1e-10)


def test_lemma45_is_an_equality_with_the_stated_gap():
    gen = torch.Generator().manual_seed(7)
    for _ in range(5):
        W0, W_star = torch.randn(4, 6, generator=gen, dtype=D), torch.randn(4, 6, generator=gen, dtype=D)
        W_star = W_star if (W0 * W_star).sum() > 0 else -W_star  # the lemma assumes <W0, W*> > 0
        r = theory.lemma45(W0, W_star)
        k = (W0 * W_star).sum().item() / W_star.square().sum().item()
        assert r["k"] == pytest.approx(k, rel=1e-12)
        assert r["lhs"] == pytest.approx(r["rhs"], rel=1e-10) and r["lhs"] <= r["plain"]
        assert r["gap"] == pytest.approx(-W_star.square().sum().item() * (1 - k) ** 2, rel=1e-10)


def test_bn_is_scale_invariant_so_k_w_star_is_an_optimum_too():
    """The loss of Linear(no bias) -> bnlib BN at k W equals that at W for k > 0 (up to eps)."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(32, 4, generator=gen, dtype=D)
    fc, bn = nn.Linear(4, 3, bias=False).double(), BatchNorm1d(3, eps=1e-12).double()
    out = bn(fc(x))
    with torch.no_grad():
        fc.weight.mul_(0.37)
    torch.testing.assert_close(bn(fc(x)), out, rtol=1e-9, atol=1e-9)


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="expected last"):
        theory.theorem41(torch.ones(4), torch.ones(4), 1.0, 1.0, last="1/2")
    with pytest.raises(ValueError, match="expected grad_z and y_hat of the same shape"):
        theory.bn_gradient(torch.ones(4, 2), torch.ones(4), 1.0, 1.0)
    with pytest.raises(ValueError, match="expected method"):
        theory.hvp(lambda x: x.sum(), torch.ones(2), torch.ones(2), method="jax")
    with pytest.raises(ValueError, match="expected v shaped like params"):
        theory.hvp(lambda x: x.sum(), torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="expected one unit's outputs"):
        theory.theorem42(lambda z: z.sum(), torch.ones(4, 2), 1.0, 0.0)
    with pytest.raises(ValueError, match=r"expected <W0, W_star> > 0"):
        theory.lemma45(torch.ones(3), -torch.ones(3))
    with pytest.raises(ValueError, match="expected W0 and W_star of the same shape"):
        theory.lemma45(torch.ones(3), torch.ones(4))
    assert math.isfinite(theory.lemma45(torch.ones(3), torch.ones(3))["k"])
