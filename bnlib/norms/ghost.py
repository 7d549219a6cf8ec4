"""Ghost batch normalization (Hoffer, Hubara & Soudry, 2017): statistics over virtual batches.

A batch of N examples is cut, in order, into N / v consecutive *virtual batches* of
``virtual_batch_size`` v examples. Whenever batch statistics are used (training mode, or
eval mode without running statistics) each virtual batch is normalized with its own mean
and biased variance, exactly as ``bnlib.layers.BatchNorm1d/2d`` would normalize it alone:

    out = cat([BN(x[0:v]), BN(x[v:2v]), ..., BN(x[N-v:N])])

The gradient batch (N, what the optimizer averages over) and the normalization batch (v,
what sets the noise of the statistics) become two separate knobs.

All virtual batches are normalized in one call of ``bnlib.layers.BatchNormFunction``: the
input is viewed as (v, N/v * C, *), so virtual batch j's channel c is channel j*C + c, and
gamma, beta are repeated N/v times (their gradients add up over the virtual batches).

Running statistics: ``running_mean``, ``running_var`` (the unbiased variance of each virtual
batch) and ``num_batches_tracked`` end up as torch's BatchNorm would leave them had each
virtual batch been a separate call, in order: one training step with N / v virtual batches
applies the momentum update N / v times (computed in closed form, equal up to rounding; see
``_update_running_virtual``) and adds N / v to ``num_batches_tracked`` (``momentum=None``: the
cumulative average over virtual batches). A batch of exactly one virtual batch is plain
BatchNorm, bit for bit. Eval mode with running statistics is BatchNorm's, unchanged, and
accepts any batch size.

    bn = GhostBatchNorm1d(64, virtual_batch_size=16)
    bn(torch.randn(128, 64))                     # 8 virtual batches of 16
"""
from __future__ import annotations

import math

import torch

from .base import LOW_PRECISION, check_channels, check_floating
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction

__all__ = ["GhostBatchNorm1d", "GhostBatchNorm2d"]


class _Ghost:
    """The shared part: the ``virtual_batch_size`` argument and the per-virtual-batch forward."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, virtual_batch_size: int, bias: bool = True) -> None:
        v = virtual_batch_size
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"expected virtual_batch_size to be a positive int (got {v!r})")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)
        self.virtual_batch_size = v

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, virtual_batch_size={self.virtual_batch_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_stats = self.training or self.running_mean is None
        if not batch_stats or x.dim() == 0 or x.shape[0] == 0:
            return super().forward(x)  # running statistics (or an empty batch): plain BN
        self._check_input_dim(x)
        check_floating(x)
        check_channels(x, self.num_features)
        n, C, rest, v = x.shape[0], self.num_features, tuple(x.shape[2:]), self.virtual_batch_size
        if n % v:
            raise ValueError(
                f"expected a batch size divisible by virtual_batch_size={v} (got a batch of {n}): "
                "use batches of a multiple of it (drop the last partial batch)")
        per_channel = v * math.prod(rest)  # values per channel in one virtual batch
        if per_channel == 1:
            raise ValueError(
                f"expected more than 1 value per channel in each virtual batch (got virtual batches "
                f"of shape {(v, C, *rest)}): the variance of one value is 0; "
                "use virtual_batch_size >= 2")
        if not self.eps > 0:
            raise ValueError(f"expected eps > 0 when normalizing with batch statistics (got {self.eps})")
        k = n // v  # number of virtual batches
        if k == 1:
            return super().forward(x)  # one virtual batch: plain BN, bit for bit
        # One call for all virtual batches: virtual batch j's channel c becomes channel j*C + c.
        xv = x.reshape(k, v, C, *rest).transpose(0, 1).reshape(v, k * C, *rest)
        # (N, C, *) -> (k, v, C, *) -> (v, k, C, *) -> (v, k*C, *)
        dtype = torch.float32 if x.dtype in LOW_PRECISION else x.dtype  # as BatchNorm does
        gamma = None if self.weight is None else self.weight.to(dtype).repeat(k)  # (k*C,)
        beta = None if self.bias is None else self.bias.to(dtype).repeat(k)  # (k*C,)
        out, mu, var = BatchNormFunction.apply(xv.to(dtype), gamma, beta, None, None, self.eps)
        out = out.reshape(v, k, C, *rest).transpose(0, 1).reshape(n, C, *rest)
        # (v, k*C, *) -> (v, k, C, *) -> (k, v, C, *) -> (N, C, *)
        if self.training and self.track_running_stats and self.running_mean is not None:
            unbiased = var * (per_channel / (per_channel - 1))  # (k*C,) Bessel's correction
            self._update_running_virtual(mu.view(k, C), unbiased.view(k, C))  # (k*C,) -> (k, C)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_virtual(self, mu: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """The k sequential BatchNorm updates with the (k, C) per-virtual-batch statistics, in
        closed form (equal to feeding them one by one, up to rounding):

            momentum f:     r_k = (1 - f)**k r_0 + sum_j f (1 - f)**(k-1-j) stat_j
            momentum None:  r_k = (t r_0 + sum_j stat_j) / (t + k),  t = num_batches_tracked
        """
        k, t = mu.shape[0], int(self.num_batches_tracked)
        self.num_batches_tracked.add_(k)
        if self.momentum is None:  # cumulative average over all virtual batches so far
            keep, w = t / (t + k), torch.full((k,), 1.0 / (t + k), dtype=torch.float64)
        else:
            f = float(self.momentum)
            keep = (1 - f) ** k
            w = f * (1 - f) ** torch.arange(k - 1, -1, -1, dtype=torch.float64)  # (k,) oldest first
        for buf, stat in ((self.running_mean, mu), (self.running_var, unbiased_var)):
            new = w.to(stat) @ stat  # (k,) @ (k, C) -> (C,)
            buf.mul_(keep).add_(new.to(buf.dtype))


class GhostBatchNorm1d(_Ghost, BatchNorm1d):
    """``bnlib.layers.BatchNorm1d`` with statistics per virtual batch of ``virtual_batch_size``.

    Input (N, C) or (N, C, L) with N divisible by ``virtual_batch_size`` when batch statistics
    are used. Other arguments as ``BatchNorm1d``; see the module docstring for the running
    statistics.

    Shape: input (N, C) or (N, C, L); output the same shape.

        >>> GhostBatchNorm1d(4, virtual_batch_size=2)(torch.randn(6, 4)).shape
        torch.Size([6, 4])
    """


class GhostBatchNorm2d(_Ghost, BatchNorm2d):
    """``bnlib.layers.BatchNorm2d`` with statistics per virtual batch of ``virtual_batch_size``.

    Input (N, C, H, W) with N divisible by ``virtual_batch_size`` when batch statistics are
    used; ``virtual_batch_size=1`` is allowed when H * W > 1 (one image's statistics).

    Shape: input (N, C, H, W); output the same shape.

        >>> GhostBatchNorm2d(3, virtual_batch_size=2)(torch.randn(4, 3, 5, 5)).shape
        torch.Size([4, 3, 5, 5])
    """
