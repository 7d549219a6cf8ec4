"""Dynamic Tanh (Zhu, Chen, He, LeCun & Liu, CVPR 2025): a normalization layer without statistics.

    out = gamma * tanh(alpha * x) + beta        gamma = ``weight``, beta = ``bias``, per feature

with one learnable scalar alpha (init ``alpha_init`` = 0.5). The paper's observation: trained
LayerNorms map inputs to outputs along tanh-like S-curves, so an element-wise tanh with a learned
input scale can replace them in transformers (ViT, wav2vec 2.0, DiT). It computes no mean and no
variance, so training and eval mode are the same and the batch size does not matter; replacing BN
in a CNN, the paper reports, degrades it. Parameter names (``alpha``, ``weight``, ``bias``) and
shapes are those of the authors' ``DynamicTanh`` (state dicts load both ways); torch has no twin.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import check_floating, check_positive_int

__all__ = ["DyT"]


class DyT(nn.Module):
    r"""weight * tanh(alpha * x) + bias, element-wise, with gamma and beta per feature.

    Args:
        num_features: C, the size of the feature dim
        alpha_init: the starting value of the scalar alpha. Default 0.5
        channels_last: True: the features are the last dim, (*, C), as LayerNorm in a transformer;
            False: they are dim 1, (N, C, *), as BatchNorm in a CNN. Default True
        device, dtype: where and in which dtype the parameters are created

    Shape: input (*, C) (channels_last) or (N, C, *); output the same shape.

    Examples::

        >>> DyT(8)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
        >>> DyT(3, channels_last=False)(torch.randn(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, num_features: int, alpha_init: float = 0.5, channels_last: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.alpha_init, self.channels_last = float(alpha_init), channels_last
        factory_kwargs = {"device": device, "dtype": dtype}
        self.alpha = nn.Parameter(torch.full((1,), self.alpha_init, **factory_kwargs))  # a scalar, shape (1,)
        self.weight = nn.Parameter(torch.ones(num_features, **factory_kwargs))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features, **factory_kwargs))  # beta

    def reset_parameters(self) -> None:
        """alpha = alpha_init, gamma = 1, beta = 0."""
        nn.init.constant_(self.alpha, self.alpha_init)
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"{self.num_features}, alpha_init={self.alpha_init}, channels_last={self.channels_last}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, C) or (N, C, *) -> the same shape."""
        check_floating(x)
        dim = -1 if self.channels_last else 1
        if x.dim() < (1 if self.channels_last else 2) or x.shape[dim] != self.num_features:
            where = "(*, C)" if self.channels_last else "(N, C, *)"
            raise ValueError(f"expected input of shape {where} with C = {self.num_features} "
                             f"(got input of shape {tuple(x.shape)})")
        shape = [-1] if self.channels_last else [1, -1] + [1] * (x.dim() - 2)  # (C,) or (1, C, 1, ...)
        gamma, beta = self.weight.view(shape), self.bias.view(shape)  # (C,) -> broadcastable shape
        return gamma * torch.tanh(self.alpha * x) + beta  # gamma tanh(alpha x) + beta
