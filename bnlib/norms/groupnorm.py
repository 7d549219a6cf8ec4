"""Group normalization (Wu & He, 2018): each example's channels in G groups, normalized per group.

For input (N, C, *) the C channels are cut, in order, into G groups of C/G channels; each
example's group is normalized over its C/G * prod(*) values, then every channel gets its own
gamma and beta:

    mu_ng = mean over the group,  var_ng = mean((x - mu_ng)**2)   (biased: 1/m, m = C/G * prod(*))
    out = gamma_c * (x - mu_ng) / sqrt(var_ng + eps) + beta_c

G = 1 is layer normalization over (C, *); G = C is instance normalization. No running
statistics: training and eval mode compute the same thing, whatever the batch size. The twin of
``torch.nn.GroupNorm`` (same arguments, defaults, parameter names; outputs and gradients equal in
float64). ``torch.func``'s batch-norm page writes ``BatchNorm2d(C, G)`` where it means
``GroupNorm(G, C)``: the number of groups comes first.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import affine_parameters, check_eps, check_floating, check_positive_int, compute_dtype, reset_affine

__all__ = ["GroupNorm"]


class GroupNorm(nn.Module):
    r"""Group normalization of (N, C, *) input.

    Args:
        num_groups: G, the number of groups; must divide num_channels
        num_channels: C, the number of channels expected in the input
        eps: added to the variance inside the square root. Default 1e-5
        affine: learn per-channel gamma (``weight``, init 1) and beta (``bias``, init 0). Default True
        device, dtype: where and in which dtype the parameters are created
        bias: keyword-only; with affine=True, False drops beta. Default True

    Shape: input (N, C, *); output the same shape.

    Examples::

        >>> GroupNorm(2, 6)(torch.randn(4, 6, 5, 5)).shape   # 2 groups of 3 channels
        torch.Size([4, 6, 5, 5])
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        check_positive_int("num_groups", num_groups)
        check_positive_int("num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"expected num_channels divisible by num_groups "
                             f"(got num_channels={num_channels}, num_groups={num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, check_eps(eps), affine
        affine_parameters(self, (num_channels,), affine, affine and bias, {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        """gamma = 1, beta = 0."""
        reset_affine(self)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *) -> (N, C, *)."""
        check_floating(x)
        if x.dim() < 2:
            raise ValueError(f"expected input of shape (N, C, *) with at least 2 dims (got {x.dim()}D input)")
        N, C, G = x.shape[0], self.num_channels, self.num_groups
        if x.shape[1] != C:
            raise ValueError(f"expected input with {C} channels (got {x.shape[1]} channels)")
        xc = x.to(compute_dtype(x))  # float16/bfloat16: statistics in float32
        m = C // G * math.prod(x.shape[2:])  # values per group
        xg = xc.reshape(N, G, m)  # (N, C, *) -> (N, G, C/G * prod(*))
        mu = xg.mean(2, keepdim=True)  # (N, G, 1)  mu = (1/m) sum x
        x_mu = xg - mu  # (N, G, m)
        var = x_mu.square().mean(2, keepdim=True)  # (N, G, 1)  var = (1/m) sum (x - mu)^2
        x_hat = (x_mu * torch.rsqrt(var + self.eps)).reshape(x.shape)  # (N, G, m) -> (N, C, *)
        shape = [1, C] + [1] * (x.dim() - 2)  # per-channel gamma and beta: (1, C, 1, ...)
        out = x_hat
        if self.weight is not None:
            out = out * self.weight.to(xc.dtype).view(shape)  # (C,) -> (1, C, 1, ...)
        if self.bias is not None:
            out = out + self.bias.to(xc.dtype).view(shape)  # (C,) -> (1, C, 1, ...)
        return out.to(x.dtype)
