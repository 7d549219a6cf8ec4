"""bnlib.lpnorm: the l_p normalization of Santurkar et al. Sec. 3.3 against a hand-written formula.

Random tensors here are toy inputs for unit tests, not data.
"""
import math

import pytest
import torch

from bnlib.layers import BatchNorm1d, BatchNorm2d
from bnlib.lpnorm import LpNorm1d, LpNorm2d

INF = float("inf")


def by_hand(x: torch.Tensor, p: float, eps: float = 1e-5) -> torch.Tensor:
    """One channel at a time, in plain Python loops over the m = N*H*W values."""
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        values = x[:, c].flatten().tolist()  # (N, *) -> (m,)
        m = len(values)
        mu = sum(values) / m
        if p == INF:
            norm = max(abs(v) for v in values) + eps
        else:
            norm = (sum(abs(v) ** p for v in values) / m + eps) ** (1 / p)
        out[:, c] = (x[:, c] - mu) / norm
    return out


@pytest.mark.parametrize("p", [1, 2, INF])
def test_matches_the_formula_in_1d_and_2d(p):
    gen = torch.Generator().manual_seed(0)
    x2 = torch.randn(8, 3, generator=gen, dtype=torch.float64) * 2 + 1
    x3 = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64) - 0.5
    x4 = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64) * 3 + 2  # statistics over N*H*W = 32
    for layer, x in [(LpNorm1d(3, p=p), x2), (LpNorm1d(3, p=p), x3), (LpNorm2d(3, p=p), x4)]:
        torch.testing.assert_close(layer.double()(x), by_hand(x, p), rtol=1e-12, atol=1e-12)


def test_gamma_and_beta_act_per_channel():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 2, 2, generator=gen, dtype=torch.float64)
    layer = LpNorm2d(3, p=1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, -3.0]))
        layer.bias.copy_(torch.tensor([0.0, 0.5, 1.0]))
    expected = by_hand(x, 1) * layer.weight.view(1, 3, 1, 1) + layer.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x), expected.detach(), rtol=1e-12, atol=1e-12)


def test_l2_differs_from_bn_unless_the_mean_is_zero():
    """n_2 = sqrt(mean x^2 + eps) = sqrt(var + mu^2 + eps): BN exactly when mu = 0, smaller output otherwise."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(32, 4, 3, 3, generator=gen, dtype=torch.float64) + 2
    lp, bn = LpNorm2d(4, p=2).double(), BatchNorm2d(4).double()
    assert (lp(x) - bn(x)).abs().max() > 0.1
    assert lp(x).square().mean() < 0.5 * bn(x).square().mean()  # mean^2 = 4 inflates the norm
    centred = x - x.mean((0, 2, 3), keepdim=True)  # (N, C, H, W) minus (1, C, 1, 1)
    torch.testing.assert_close(lp(centred), bn(centred), rtol=1e-10, atol=1e-10)
    y = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    y = y - y.mean(0)  # (N, C) minus (C,)
    torch.testing.assert_close(LpNorm1d(5, p=2).double()(y), BatchNorm1d(5).double()(y), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("p", [1, 2, INF])
def test_gradcheck_in_float64(p):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(5, 2, 3, 3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    layer = LpNorm2d(2, p=p).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.5, -0.5]))
        layer.bias.copy_(torch.tensor([0.1, 0.2]))
    assert torch.autograd.gradcheck(layer, (x,))
    x1 = torch.randn(6, 3, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(LpNorm1d(3, p=p).double(), (x1,))


def test_running_statistics_and_eval_mode():
    layer = LpNorm1d(2, p=INF, momentum=0.25)
    x = torch.tensor([[1.0, -4.0], [3.0, 2.0]])
    out = layer(x)
    mu, norm = torch.tensor([2.0, -1.0]), torch.tensor([3.0, 4.0]) + 1e-5  # mean, max |x| + eps
    torch.testing.assert_close(layer.running_mean, 0.25 * mu)
    torch.testing.assert_close(layer.running_norm, 0.75 + 0.25 * norm)
    assert layer.num_batches_tracked.item() == 1 and layer.running_mean.grad_fn is None
    assert not layer.running_norm.requires_grad and out.requires_grad
    layer.eval()
    one = torch.tensor([[0.5, 1.0]])  # a batch of one is fine in eval mode
    torch.testing.assert_close(layer(one), (one - layer.running_mean) / layer.running_norm)
    layer(torch.randn(4, 2))
    assert layer.num_batches_tracked.item() == 1  # eval mode does not update


def test_cumulative_average_and_no_tracking():
    gen = torch.Generator().manual_seed(4)
    batches = [torch.randn(8, 3, generator=gen) * s for s in (1.0, 2.0, 3.0)]
    layer = LpNorm1d(3, p=1, momentum=None)
    for x in batches:
        layer(x)
    torch.testing.assert_close(layer.running_mean, torch.stack([x.mean(0) for x in batches]).mean(0))
    torch.testing.assert_close(layer.running_norm, torch.stack([x.abs().mean(0) + 1e-5 for x in batches]).mean(0))
    free = LpNorm1d(3, track_running_stats=False).eval()
    assert free.running_mean is None and "running_norm" not in free.state_dict()
    torch.testing.assert_close(free(batches[0]), by_hand(batches[0].double(), 2).float(), rtol=1e-5, atol=1e-6)


def test_state_dict_names_and_low_precision():
    layer = LpNorm2d(3, p=2)
    assert set(layer.state_dict()) == {"weight", "bias", "running_mean", "running_norm", "num_batches_tracked"}
    x = torch.randn(4, 3, 2, 2) * 300  # x^2 ~ 1e5 overflows float16; statistics are taken in float32
    out = LpNorm2d(3, p=2).half()(x.half())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert "p=inf" in repr(LpNorm1d(2, p=math.inf))


def test_errors_say_what_was_expected():
    for p in (3, 0.5, True, "2", float("nan")):
        with pytest.raises(ValueError, match=r"expected p in \(1, 2, inf\)"):
            LpNorm1d(3, p=p)
    with pytest.raises(ValueError, match="expected num_features to be a positive int"):
        LpNorm1d(0)
    with pytest.raises(ValueError, match="expected eps > 0"):
        LpNorm1d(3, eps=0)
    with pytest.raises(ValueError, match="expected momentum in"):
        LpNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        LpNorm1d(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        LpNorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"expected input with 3 channels \(got 2 channels\)"):
        LpNorm1d(3)(torch.randn(4, 2))
    with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
        LpNorm1d(3)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
        LpNorm2d(3)(torch.randn(1, 3, 1, 1))
    with pytest.raises(TypeError, match="expected floating-point input"):
        LpNorm1d(3)(torch.ones(4, 3, dtype=torch.long))
