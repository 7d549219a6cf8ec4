"""RMSNorm (Zhang & Sennrich, 2019): layer normalization without re-centering.

Over the last D = len(normalized_shape) dims of each example, with H = prod(normalized_shape):

    rms = sqrt(mean(x**2) + eps)                    eps *inside* the square root
    out = gamma * x / rms = gamma * x * rsqrt(mean(x**2) + eps)      gamma = ``weight``

No mean is subtracted and there is no beta: the paper's hypothesis is that LayerNorm's success
comes from re-scaling, and re-centering can be dropped. Two bugs other implementations shipped,
each caught by a test: eps outside the root, x / (sqrt(mean(x**2)) + eps) (NVIDIA/TransformerEngine
PR #364, EleutherAI/gpt-neox PR #1342), and *dividing* by rsqrt, x / rsqrt(...) = x * rms
(mosaicml/llm-foundry #371: the loss diverged).

The twin of ``torch.nn.RMSNorm``: ``eps=None`` means ``torch.finfo(dtype).eps`` of the dtype the
statistics are computed in (float32 for float16/bfloat16 input), as torch does.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import affine_parameters, as_shape, check_eps, check_floating, check_trailing_shape, compute_dtype

__all__ = ["RMSNorm"]


class RMSNorm(nn.Module):
    r"""Root-mean-square normalization over the last ``len(normalized_shape)`` dims.

    Args:
        normalized_shape: H or (H1, H2, ...), the trailing shape normalized together
        eps: added to mean(x**2) inside the square root, or None for ``torch.finfo(dtype).eps``.
            Default None
        elementwise_affine: learn gamma (``weight``, init 1) of shape ``normalized_shape``. Default True
        device, dtype: where and in which dtype the parameter is created

    Shape: input (*, *normalized_shape); output the same shape.

    Examples::

        >>> RMSNorm(8)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = as_shape(normalized_shape)
        self.eps = None if eps is None else check_eps(eps)
        self.elementwise_affine = elementwise_affine
        affine_parameters(self, self.normalized_shape, elementwise_affine, False, {"device": device, "dtype": dtype})

    def reset_parameters(self) -> None:
        """gamma = 1."""
        if self.weight is not None:
            nn.init.ones_(self.weight)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, *normalized_shape) -> the same shape."""
        check_floating(x)
        check_trailing_shape(x, self.normalized_shape)
        dims = tuple(range(-len(self.normalized_shape), 0))  # the last D dims
        xc = x.to(compute_dtype(x))  # float16/bfloat16: statistics in float32
        eps = torch.finfo(xc.dtype).eps if self.eps is None else self.eps
        mean_square = xc.square().mean(dims, keepdim=True)  # (*, 1, ..., 1)  (1/H) sum_i x_i^2
        out = xc * torch.rsqrt(mean_square + eps)  # x / sqrt(mean(x^2) + eps): multiply by rsqrt
        if self.weight is not None:
            out = out * self.weight.to(xc.dtype)  # gamma, broadcast over the leading dims
        return out.to(x.dtype)
