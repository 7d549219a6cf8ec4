"""Instance normalization (Ulyanov, Vedaldi & Lempitsky, 2016): each example's channel on its own.

For input (N, C, *) every (example n, channel c) pair is normalized over its own prod(*) values:

    mu_nc = mean(x[n, c]),  var_nc = mean((x[n, c] - mu_nc)**2)     (biased: 1/L, L = prod(*))
    out = gamma_c * (x - mu_nc) / sqrt(var_nc + eps) + beta_c

This removes each image's per-channel contrast and brightness, which is why style transfer keeps
it on at test time. Computed as torch does: the input viewed as one batch of N*C channels,
(N, C, *) -> (1, N*C, *), through ``BatchNormFunction`` (the closed-form backward of BN).

The twin of ``torch.nn.InstanceNorm1d/2d``, with its defaults, which differ from BN's (pytorch
#22755): ``affine=False`` and ``track_running_stats=False``. With ``track_running_stats=True``
the running buffers are updated in training with the average over the batch of the per-instance
mean and *unbiased* variance, and eval mode then normalizes with them, i.e. behaves like BN in
eval mode (pytorch #58843). Quirks kept from torch: ``momentum=None`` leaves the running
statistics unchanged (torch passes momentum 0), and ``num_batches_tracked`` is never incremented.
Input without a batch dim, (C, *), is accepted and treated as N = 1.
"""
from __future__ import annotations

import math
import warnings

import torch

from .base import _NormBase, check_floating, check_rank, compute_dtype
from .batchnorm import BatchNormFunction

__all__ = ["InstanceNorm1d", "InstanceNorm2d"]


class _InstanceNorm(_NormBase):
    """The one ``forward``; subclasses check the input rank and name the rank without a batch dim.

    Args (those of ``_NormBase``, with torch's InstanceNorm defaults):
        num_features: C, the number of channels
        eps: added to the variance inside the square root. Default 1e-5
        momentum: weight of the new statistic in the running averages (None: no update, as
            torch). Default 0.1
        affine: learn gamma (``weight``) and beta (``bias``) per channel. Default **False**
        track_running_stats: keep running statistics and use them in eval mode. Default **False**
        device, dtype: where and in which dtype parameters and buffers are created
        bias: keyword-only; with affine=True, False drops beta. Default True
    """

    _no_batch_dim = 2  # rank of an input without its batch dim: (C, L)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None,
                 *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *) or (C, *) -> the same shape."""
        self._check_input_dim(x)
        check_floating(x)
        if x.dim() == self._no_batch_dim:
            return self.forward(x.unsqueeze(0)).squeeze(0)  # (C, *) -> (1, C, *) -> (C, *)
        N, C, rest = x.shape[0], x.shape[1], tuple(x.shape[2:])
        if C != self.num_features:
            if self.affine or self.track_running_stats:
                raise ValueError(f"expected input with {self.num_features} channels (got {C} channels)")
            warnings.warn(f"input has {C} channels, not num_features={self.num_features}: num_features is "
                          "not used because affine=False and track_running_stats=False", stacklevel=2)
        instance_stats = self.training or not self.track_running_stats
        dtype = compute_dtype(x)  # float16/bfloat16: compute in float32

        def cast(t):
            return None if t is None else t.to(dtype)

        if not instance_stats:  # eval mode with running statistics: BN in eval mode
            out, _, _ = BatchNormFunction.apply(cast(x), cast(self.weight), cast(self.bias),
                                                cast(self.running_mean), cast(self.running_var), self.eps)
            return out.to(x.dtype)
        L = math.prod(rest)  # values per instance and channel
        if L <= 1:
            raise ValueError(f"expected more than 1 spatial element per channel when using instance statistics "
                             f"(got input of shape {tuple(x.shape)})")
        if not self.eps > 0:
            raise ValueError(f"expected eps > 0 when normalizing with instance statistics (got {self.eps})")
        if N == 0:
            return x.clone()  # an empty batch: nothing to normalize
        gamma = None if self.weight is None else cast(self.weight).repeat(N)  # (C,) -> (N*C,)
        beta = None if self.bias is None else cast(self.bias).repeat(N)  # (C,) -> (N*C,)
        xv = cast(x).reshape(1, N * C, *rest)  # (N, C, *) -> (1, N*C, *): one "channel" per instance
        out, mu, var = BatchNormFunction.apply(xv, gamma, beta, None, None, self.eps)
        if self.training and self.track_running_stats:
            factor = 0.0 if self.momentum is None else self.momentum  # torch: momentum None -> 0
            unbiased_var = var * (L / (L - 1))  # (N*C,) Bessel's correction
            self._update_running(factor, running_mean=mu.view(N, C).mean(0),  # (N*C,) -> (N, C) -> (C,)
                                 running_var=unbiased_var.view(N, C).mean(0))  # (N*C,) -> (N, C) -> (C,)
        return out.reshape(x.shape).to(x.dtype)  # (1, N*C, *) -> (N, C, *)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of (N, C, L) or (C, L) input: each example's channel over its L values.

    See the module docstring for the formula and ``_InstanceNorm`` for the arguments.

    Shape: input (N, C, L) or (C, L); output the same shape.

    Examples::

        >>> InstanceNorm1d(4)(torch.randn(2, 4, 10)).shape
        torch.Size([2, 4, 10])
    """

    _no_batch_dim = 2

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (2, 3))


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of (N, C, H, W) or (C, H, W) input: each example's channel over H*W.

    See the module docstring for the formula and ``_InstanceNorm`` for the arguments.

    Shape: input (N, C, H, W) or (C, H, W); output the same shape.

    Examples::

        >>> InstanceNorm2d(3, affine=True)(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """

    _no_batch_dim = 3

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (3, 4))
