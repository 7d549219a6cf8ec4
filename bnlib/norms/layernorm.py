"""Layer normalization (Ba, Kiros & Hinton, 2016): each example normalized over its own features.

For input (*, *normalized_shape), the statistics are taken over the last D = len(normalized_shape)
dims, separately for every leading index (every example, every token):

    mu = mean(x),  var = mean((x - mu)**2)   (biased: 1/H, H = prod(normalized_shape))
    out = gamma * (x - mu) / sqrt(var + eps) + beta     gamma = ``weight``, beta = ``bias``

There are no running statistics: training and eval mode compute the same thing, and a batch of
one example is fine. The twin of ``torch.nn.LayerNorm``: same arguments, defaults, parameter
names (state dicts load both ways) and outputs and gradients equal in float64.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import affine_parameters, as_shape, check_eps, check_floating, check_trailing_shape, compute_dtype
from .base import reset_affine

__all__ = ["LayerNorm"]


class LayerNorm(nn.Module):
    r"""Layer normalization over the last ``len(normalized_shape)`` dims.

    Args:
        normalized_shape: H or (H1, H2, ...), the trailing shape normalized together
        eps: added to the variance inside the square root. Default 1e-5
        elementwise_affine: learn gamma (``weight``, init 1) and beta (``bias``, init 0), each
            of shape ``normalized_shape``. Default True
        bias: with elementwise_affine=True, False drops beta. Default True
        device, dtype: where and in which dtype the parameters are created

    Shape: input (*, *normalized_shape); output the same shape.

    Examples::

        >>> LayerNorm(8)(torch.randn(2, 5, 8)).shape     # (N, T, C): each token over its C features
        torch.Size([2, 5, 8])
        >>> LayerNorm((4, 6, 6))(torch.randn(2, 4, 6, 6)).shape   # each image over (C, H, W)
        torch.Size([2, 4, 6, 6])
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = as_shape(normalized_shape)
        self.eps = check_eps(eps)
        self.elementwise_affine = elementwise_affine
        affine_parameters(self, self.normalized_shape, elementwise_affine, elementwise_affine and bias,
                          {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        """gamma = 1, beta = 0."""
        reset_affine(self)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, " \
               f"bias={self.bias is not None}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, *normalized_shape) -> the same shape."""
        check_floating(x)
        check_trailing_shape(x, self.normalized_shape)
        dims = tuple(range(-len(self.normalized_shape), 0))  # the last D dims
        xc = x.to(compute_dtype(x))  # float16/bfloat16: statistics in float32
        mu = xc.mean(dims, keepdim=True)  # (*, 1, ..., 1)  mu = (1/H) sum_i x_i
        x_mu = xc - mu  # (*, *normalized_shape)
        var = x_mu.square().mean(dims, keepdim=True)  # (*, 1, ..., 1)  var = (1/H) sum_i (x_i - mu)^2
        x_hat = x_mu * torch.rsqrt(var + self.eps)  # (x - mu) / sqrt(var + eps): eps inside the root
        out = x_hat
        if self.weight is not None:
            out = out * self.weight.to(xc.dtype)  # gamma, broadcast over the leading dims
        if self.bias is not None:
            out = out + self.bias.to(xc.dtype)  # beta
        return out.to(x.dtype)
