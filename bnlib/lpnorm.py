"""l_p normalization layers (Santurkar et al. 2018, Sec. 3.3): centre like BN, divide by an l_p norm.

The paper's one sentence: these schemes "fix the first order moment of the activations, as
BatchNorm does, and then normalize them by the average of their l_p-norm (before shifting the
mean), for p = 1, 2, inf". Per channel, over the batch (and the spatial positions):

    out = gamma * (x - mu) / n_p + beta,   mu = mean_b x_b,
    n_p = ((1/m) sum_b |x_b|^p + eps)^(1/p)  for p = 1, 2;   n_inf = max_b |x_b| + eps,

with the norm taken on the uncentred x. Where eps goes is our choice (the paper does not say). For
p = 2 the only difference from BN is that the mean is not subtracted before the norm. The layer
does not make the output Gaussian-like, or even unit-variance: that is the point of the experiment.

Eval mode, also our choice: running averages of mu and n_p, updated in training without autograd
(``momentum`` weighs the new batch value, as in BN), used instead of the batch values.
"""
from __future__ import annotations

import math

import torch
from torch import nn

PS = (1, 2, math.inf)


class _LpNormBase(nn.Module):
    def __init__(self, num_features: int, p: float = 2, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"expected num_features to be a positive int (got {num_features!r})")
        if p not in PS:
            raise ValueError(f"expected p in (1, 2, inf) (got {p!r})")
        if not eps > 0:
            raise ValueError(f"expected eps > 0 (got {eps})")
        if not 0 <= momentum <= 1:
            raise ValueError(f"expected momentum in [0, 1] (got {momentum})")
        super().__init__()
        self.num_features, self.p, self.eps, self.momentum, self.affine = num_features, p, eps, momentum, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))  # gamma
            self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_norm", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _check_input_dim(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.num_features}, p={self.p}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"

    def batch_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, n_p) per channel, each (C,), over every dimension but the channel."""
        dims = [0] + list(range(2, x.dim()))
        mu = x.mean(dims)
        if self.p == math.inf:
            norm = x.abs().amax(dims) + self.eps
        else:
            norm = (x.abs().pow(self.p).mean(dims) + self.eps).pow(1 / self.p)
        return mu, norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"expected input with {self.num_features} channels (got {x.shape[1]} channels)")
        shape = [1, -1] + [1] * (x.dim() - 2)  # (C,) -> (1, C, 1, ...)
        if self.training:
            if x.numel() // x.shape[1] < 2:
                raise ValueError(f"expected more than 1 value per channel when training (got input of shape "
                                 f"{tuple(x.shape)}): use a larger batch, or call .eval()")
            mu, norm = self.batch_stats(x)
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                self.running_mean.lerp_(mu.detach(), self.momentum)
                self.running_norm.lerp_(norm.detach(), self.momentum)
        else:
            mu, norm = self.running_mean, self.running_norm
        out = (x - mu.view(shape)) / norm.view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


class LpNorm1d(_LpNormBase):
    """l_p normalization of (N, C) or (N, C, L) input, per channel."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")


class LpNorm2d(_LpNormBase):
    """l_p normalization of (N, C, H, W) input, per channel over N, H and W."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")
