"""Weight Standardization (Qiao, Wang, Liu, Shen & Yuille, 2019): standardize each filter, then convolve.

For a convolution weight W of shape (O, C/groups, kH, kW), each output filter i is standardized
over its I = C/groups * kH * kW entries before the convolution:

    mu_i = (1/I) sum_j W_ij,   var_i = (1/I) sum_j (W_ij - mu_i)**2     (1/I: the biased variance)
    W_hat_ij = (W_ij - mu_i) / sqrt(var_i + eps)                         (eps inside the root)
    out = conv2d(x, W_hat) + b

The output is invariant to a per-filter scale a_i > 0 and shift c_i of the weight, W_i -> a_i W_i
+ c_i (exactly with eps = 0; up to eps otherwise). It pairs with GroupNorm at micro-batches. A bug
other code shipped, caught by a test: labml's implementation uses the unbiased ``torch.var_mean``
(1/(I-1)) where its formula says 1/I. The paper's own code adds eps to the (unbiased) standard
deviation; we follow the paper's formula.

``WSConv2d`` is an ``nn.Conv2d``: the same arguments and parameter names (``weight`` is the raw W,
so state dicts load both ways with ``nn.Conv2d``), plus ``eps``.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import check_eps, check_rank

__all__ = ["WSConv2d", "standardize_weight"]


def standardize_weight(weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """W (O, *) -> W_hat (O, *): each W[i] with mean 0 and biased variance var / (var + eps)."""
    dims = tuple(range(1, weight.dim()))  # every dim but the output channel: (C/groups, kH, kW)
    mu = weight.mean(dims, keepdim=True)  # (O, 1, 1, 1)  mu_i = (1/I) sum_j W_ij
    w_mu = weight - mu  # (O, C/groups, kH, kW)
    var = w_mu.square().mean(dims, keepdim=True)  # (O, 1, 1, 1)  var_i = (1/I) sum_j (W_ij - mu_i)^2
    return w_mu * torch.rsqrt(var + eps)  # (W - mu) / sqrt(var + eps)


class WSConv2d(nn.Conv2d):
    r"""A 2-D convolution with a standardized weight: conv2d(x, standardize_weight(W, eps), b).

    Args: those of ``nn.Conv2d`` (in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True, padding_mode="zeros", device=None, dtype=None), plus
        eps: keyword-only, added to each filter's variance inside the square root. Default 1e-5

    Shape: input (N, C_in, H, W) or (C_in, H, W); output (N, C_out, H_out, W_out), as nn.Conv2d.

    Examples::

        >>> WSConv2d(3, 8, 3, padding=1)(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(self, *args, eps: float = 1e-5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eps = check_eps(eps)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H_out, W_out)."""
        check_rank(x, (3, 4))
        if x.shape[-3] != self.in_channels:
            raise ValueError(f"expected input with {self.in_channels} channels (got {x.shape[-3]} channels)")
        return self._conv_forward(x, standardize_weight(self.weight, self.eps), self.bias)
