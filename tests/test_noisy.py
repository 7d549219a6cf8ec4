"""bnlib.layers.NoisyBatchNorm1d/2d: Santurkar et al.'s Algorithm 1 noise on top of BN."""
import pytest
import torch

from bnlib.layers import BatchNorm2d, NoisyBatchNorm1d, NoisyBatchNorm2d


def test_eval_mode_is_plain_bn_and_state_dicts_match():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5) * 2 + 1
    noisy, plain = NoisyBatchNorm2d(3), BatchNorm2d(3)
    plain.load_state_dict(noisy.state_dict())  # same parameter and buffer names
    for m in (noisy, plain):
        m(x)  # one training step for the running statistics
        m.eval()
    assert torch.equal(noisy(x), plain(x))
    assert torch.equal(noisy.running_var, plain.running_var)


def test_noise_follows_algorithm_1():
    """Per channel, out = s * bn + m with E[s] = sigma_j in [1, 1.25], E[m] = mu_j in [-0.5, 0.5]."""
    g = torch.Generator().manual_seed(0)
    noisy = NoisyBatchNorm1d(4, generator=g)
    x = torch.randn(20000, 4, generator=torch.Generator().manual_seed(1))
    out = noisy(x)
    bn = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    # regress out on bn per channel: slope ~ sigma_j, intercept ~ mu_j
    slope = ((out - out.mean(0)) * bn).mean(0) / (bn * bn).mean(0)
    intercept = out.mean(0)
    assert ((slope > 1 - 0.02) & (slope < 1.25 + 0.02)).all(), slope
    assert (intercept.abs() < 0.5 + 0.02).all(), intercept
    resid = out - slope * bn - intercept  # (s - sigma) * bn + (m - mu): std about sqrt(0.1^2 + 0.1^2/3)
    assert resid.std(0).sub(0.1155).abs().max() < 0.01, resid.std(0)


def test_generator_makes_noise_reproducible_and_different_each_step():
    x = torch.randn(16, 3, 4, 4)
    a = NoisyBatchNorm2d(3, generator=torch.Generator().manual_seed(7))
    b = NoisyBatchNorm2d(3, generator=torch.Generator().manual_seed(7))
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, a(x))  # redrawn every step


def test_bad_noise_std():
    with pytest.raises(ValueError, match="expected noise_std >= 1"):
        NoisyBatchNorm1d(3, noise_std=0.5)
