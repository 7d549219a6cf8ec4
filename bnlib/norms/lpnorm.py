"""l_p normalization layers (Santurkar et al. 2018, Sec. 3.3): centre like BN, divide by an l_p norm.

The paper's one sentence: these schemes "fix the first order moment of the activations, as
BatchNorm does, and then normalize them by the average of their l_p-norm (before shifting the
mean), for p = 1, 2, inf". Per channel, over the m values of the batch (N, or N*L, or N*H*W):

    out = gamma * (x - mu) / n_p + beta,   mu = (1/m) sum_b x_b,
    n_p = ((1/m) sum_b |x_b|^p + eps)^(1/p)  for p = 1, 2;   n_inf = max_b |x_b| + eps,

with the norm taken on the *uncentred* x. Our choices where the paper is silent:

- eps goes inside the p-th power mean, where BN puts it inside the variance (for p = inf, which
  has no power mean, it is added to the max). So p = 2 on an input whose batch mean is already 0
  is exactly BN: the only difference from BN is that the mean is not subtracted before the norm.
- The gradient flows through mu and n_p (no detached statistics), with plain autograd. For
  p = inf it reaches only the entry (or entries, shared equally on a tie) that attain the max;
  at x_b = 0 the derivative of |x_b| is taken as 0.
- Eval mode: running averages of mu (``running_mean``) and of the normalizer n_p, eps included
  (``running_norm``), updated in training under ``torch.no_grad()`` with BN's convention
  running = (1 - momentum) * running + momentum * batch, and used in eval mode as
  out = gamma * (x - running_mean) / running_norm + beta. No Bessel-like correction: n_p is
  averaged as measured. ``track_running_stats=False``: batch values in eval mode too.

The layer does not make the output Gaussian-like, or even unit-variance (x_hat has mean 0 but
an l_p "size" of at most 1): that is the point of the experiment (Fig 6).
"""
from __future__ import annotations

import math

import torch

from .base import LOW_PRECISION  # float32 statistics for half input
from .base import _NormBase, check_channels, check_eps, check_floating, check_positive_int, check_rank
from .base import dims_and_shape as _dims_and_shape  # reduction dims

PS = (1.0, 2.0, math.inf)


def lp_stats(x: torch.Tensor, p: float, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, n_p) per channel, each (C,), over every dim but 1 of x (N, C, *); differentiable."""
    dims, _ = _dims_and_shape(x)
    mu = x.mean(dims)
    if p == math.inf:
        norm = x.abs().amax(dims) + eps  # max_b |x_b| + eps
    elif p == 1:
        norm = x.abs().mean(dims) + eps  # (1/m) sum |x_b| + eps
    else:
        norm = (x.square().mean(dims) + eps).sqrt()  # ((1/m) sum x_b^2 + eps)^(1/2)
    return mu, norm


class _LpNormBase(_NormBase):
    r"""The one ``forward`` of l_p normalization; subclasses check the input rank.

    Args:
        num_features: C, the number of channels
        p: 1, 2 or ``math.inf`` (``float('inf')``). Default 2
        eps: added to the p-th power mean (p = 1, 2) or to the max (p = inf). Default 1e-5
        momentum: weight of the new batch value in the running averages, or None for a
            cumulative average (factor 1 / num_batches_tracked), as in BN. Default 0.1
        affine: learn gamma (``weight``, init 1) and beta (``bias``, init 0). Default True
        track_running_stats: keep ``running_mean``, ``running_norm``, ``num_batches_tracked``
            and use them in eval mode. Default True
        device, dtype: where and in which dtype parameters and buffers are created
    """

    _running_stats = (("running_mean", 0.0), ("running_norm", 1.0))  # (buffer, value after a reset)

    def __init__(self, num_features: int, p: float = 2, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None) -> None:
        check_positive_int("num_features", num_features)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or p not in PS:
            raise ValueError(f"expected p in (1, 2, inf) (got {p!r})")
        check_eps(eps, strict=True)
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.p = float(p)

    def extra_repr(self) -> str:
        p = "inf" if self.p == math.inf else f"{self.p:g}"
        return (f"{self.num_features}, p={p}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def batch_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, n_p) of this batch per channel, each (C,), eps included in n_p; differentiable."""
        return lp_stats(x, self.p, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        check_floating(x)
        check_channels(x, self.num_features)
        batch_stats = self.training or self.running_mean is None
        if batch_stats and x.numel() // x.shape[1] < 2:
            raise ValueError(f"expected more than 1 value per channel when training (got input of shape "
                             f"{tuple(x.shape)}): x - mu is 0 for one value; use a larger batch, or call .eval() "
                             "to normalize with the running statistics")
        compute_dtype = torch.float32 if x.dtype in LOW_PRECISION else x.dtype
        xc = x.to(compute_dtype)
        _, shape = _dims_and_shape(x)  # (C,) -> (1, C, 1, ...)
        if batch_stats:
            mu, norm = self.batch_stats(xc)  # (C,), (C,)
            if self.training and self.running_mean is not None:
                factor = self._step_factor()
                self._update_running(factor, running_mean=mu, running_norm=norm)
        else:
            mu, norm = self.running_mean.to(compute_dtype), self.running_norm.to(compute_dtype)
        out = (xc - mu.view(shape)) / norm.view(shape)  # x_hat, (N, C, *)
        if self.affine:
            gamma, beta = self.weight.to(compute_dtype), self.bias.to(compute_dtype)
            out = out * gamma.view(shape) + beta.view(shape)  # gamma x_hat + beta; (C,) -> (1, C, 1, ...)
        return out.to(x.dtype)


class LpNorm1d(_LpNormBase):
    """l_p normalization of (N, C) or (N, C, L) input, per channel over N (and L).

    See the module docstring for the formula and ``_LpNormBase`` for the arguments.

    Shape: input (N, C) or (N, C, L); output the same shape.

    Examples::

        >>> LpNorm1d(4, p=1)(torch.randn(8, 4)).shape
        torch.Size([8, 4])
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (2, 3))


class LpNorm2d(_LpNormBase):
    """l_p normalization of (N, C, H, W) input, per channel over N, H and W.

    See the module docstring for the formula and ``_LpNormBase`` for the arguments.

    Shape: input (N, C, H, W); output the same shape.

    Examples::

        >>> LpNorm2d(3, p=math.inf)(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 3, 5, 5])
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (4,))
