""""Noisy" batch normalization (Santurkar et al. 2018, Appendix A.2.1, Algorithm 1).

BN followed by noise that changes the distribution of every unit at every step, to test
whether BN's benefit depends on stable layer-input distributions. At each training step t:

1. per unit j: mu_j ~ U(-n_mu, n_mu) and sigma_j ~ U(1, n_sigma);
2. per sample i and unit j: m_ij ~ U(mu_j - r_mu, mu_j + r_mu) and s_ij ~ N(sigma_j, r_sigma);
3. a_ij <- s_ij * a_ij + m_ij, where a is the BN layer's output (after gamma and beta).

For convolutions "sample i" runs over N x H x W positions and "unit j" is a channel. The
paper leaves open whether r_sigma is a standard deviation (we take it as one), whether the
noise comes before or after gamma/beta (we add it after), and test-time behaviour (the
noise is off in eval mode). Defaults: n_mu = 0.5, n_sigma = 1.25, r_mu = r_sigma = 0.1.
"""
from __future__ import annotations

import torch

from .batchnorm import BatchNorm1d, BatchNorm2d


class _NoisyMixin:
    def __init__(self, num_features: int, noise_mean: float = 0.5, noise_std: float = 1.25,
                 noise_mean_spread: float = 0.1, noise_std_spread: float = 0.1, *,
                 generator: torch.Generator | None = None, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if noise_std < 1:
            raise ValueError(f"expected noise_std >= 1, the upper end of U(1, n_sigma) (got {noise_std})")
        self.noise_mean, self.noise_std = noise_mean, noise_std  # n_mu, n_sigma
        self.noise_mean_spread, self.noise_std_spread = noise_mean_spread, noise_std_spread  # r_mu, r_sigma
        self.generator = generator  # torch.Generator or None (global RNG)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if not self.training:
            return out
        C, g = out.shape[1], self.generator
        shape = [1, C] + [1] * (out.dim() - 2)  # (1, C, 1, ...)
        opts = {"generator": g, "dtype": out.dtype, "device": out.device}
        mu = (torch.rand(C, **opts) * 2 - 1) * self.noise_mean  # U(-n_mu, n_mu)
        sigma = 1 + torch.rand(C, **opts) * (self.noise_std - 1)  # U(1, n_sigma)
        u = torch.rand(out.shape, **opts) * 2 - 1  # U(-1, 1), per element
        m = mu.view(shape) + u * self.noise_mean_spread  # U(mu - r_mu, mu + r_mu)
        s = sigma.view(shape) + torch.randn(out.shape, **opts) * self.noise_std_spread  # N(sigma, r_sigma)
        return s * out + m

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", noise_mean={self.noise_mean}, noise_std={self.noise_std}, "
                f"noise_mean_spread={self.noise_mean_spread}, noise_std_spread={self.noise_std_spread}")


class NoisyBatchNorm1d(_NoisyMixin, BatchNorm1d):
    """``BatchNorm1d`` plus the noise of Santurkar et al.'s Algorithm 1 in training mode.

    Shape: input (N, C) or (N, C, L); output the same shape.
    """


class NoisyBatchNorm2d(_NoisyMixin, BatchNorm2d):
    """``BatchNorm2d`` plus the noise of Santurkar et al.'s Algorithm 1 in training mode.

    Shape: input (N, C, H, W); output the same shape.
    """
