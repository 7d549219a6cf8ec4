"""Weight normalization (Salimans & Kingma, 2016): w = g v / ||v||, and mean-only batch normalization.

Each output unit i of a Linear or Conv2d layer gets its weight vector from a direction v_i and a
length g_i, learned separately:

    w_i = g_i * v_i / ||v_i||       ||v_i|| = sqrt(sum_j v_ij^2) over everything but dim 0

so ||w_i|| = |g_i| whatever v is, and the output is invariant to a rescaling of v_i. Parameters
``weight_g`` (O, 1, ...) and ``weight_v`` (the shape of the weight), as torch's
``torch.nn.utils.weight_norm`` names them (state dicts load both ways); the keys of the newer
``torch.nn.utils.parametrizations.weight_norm`` (``parametrizations.weight.original0/1`` = g, v:
pytorch PR #103001) are accepted too. ``layer.weight`` is computed from g and v on every access.

Data-dependent initialization (Sec. 3): ``layer.init_from_data(x)`` sets, for t = v.x / ||v|| on
a batch x, g = init_scale / sigma[t] and b = -mu[t] * g, so that the layer's outputs on that
batch have mean 0 and standard deviation init_scale per unit (the paper draws v ~ N(0, 0.05^2)
first; only v's direction matters for the output, its length sets the effective step size).

Mean-only batch normalization (Sec. 4): out = x - mu_B + beta, per channel, with the batch mean in
training and the running mean in eval mode; no variance, no gamma (WN's g does the scaling).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import _NormBase, check_channels, check_floating, check_rank, dims_and_shape

__all__ = ["WNLinear", "WNConv2d", "MeanOnlyBatchNorm1d", "MeanOnlyBatchNorm2d"]

_TORCH_KEYS = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}


def norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    """||v_i|| for every i along dim 0, kept broadcastable: (O, *) -> (O, 1, ..., 1)."""
    return v.flatten(1).norm(dim=1).view(-1, *[1] * (v.dim() - 1))  # (O, *) -> (O, prod(*)) -> (O, 1, ...)


class _WeightNorm:
    """The shared part: g and v in place of the weight, ``weight`` computed from them."""

    @property
    def weight(self) -> torch.Tensor:
        """w = g v / ||v||, of the parent layer's weight shape (recomputed on each access)."""
        if "weight" in self._parameters:  # only inside the parent's __init__ / reset_parameters
            return self._parameters["weight"]
        return self.weight_g * self.weight_v / norm_except_dim0(self.weight_v)  # g v / ||v||

    def reset_parameters(self) -> None:
        """The parent's initialization of w and b, then v = w and g = ||w||: w unchanged at first."""
        fresh = "weight_v" not in self._parameters
        if not fresh:  # a later reset: draw a new w as the parent layer would
            self._parameters["weight"] = nn.Parameter(torch.empty_like(self.weight_v))
        super().reset_parameters()
        w = self._parameters.pop("weight").detach()
        if fresh:  # registered after ``bias``: the key order of torch's weight_norm
            self.weight_g = nn.Parameter(norm_except_dim0(w))  # (O, 1, ...)
            self.weight_v = nn.Parameter(w)  # (O, *)
        else:
            with torch.no_grad():
                self.weight_g.copy_(norm_except_dim0(w))
                self.weight_v.copy_(w)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for torch_key, key in _TORCH_KEYS.items():  # parametrizations.weight_norm's keys -> ours
            if prefix + torch_key in state_dict and prefix + key not in state_dict:
                state_dict[prefix + key] = state_dict.pop(prefix + torch_key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, init_scale: float = 1.0) -> torch.Tensor:
        """Salimans & Kingma's data-dependent init on a batch x; returns the layer's output on x.

        t = (v / ||v||) . x per unit; g = init_scale / sqrt(var[t] + 1e-10); b = -mean[t] * g, with
        mean and (biased) variance over every dim but 1 of t: (N,) for Linear, (N, H, W) for Conv2d.
        """
        self._check_input(x)
        start = {"weight_g": torch.ones_like(self.weight_g)}  # g = 1: w = v / ||v||
        if self.bias is not None:
            start["bias"] = torch.zeros_like(self.bias)  # b = 0
        t = torch.func.functional_call(self, start, (x,))  # (N, O) or (N, O, H, W): t = v.x / ||v||
        if isinstance(self, nn.Linear):
            t = t.reshape(-1, t.shape[-1], 1)  # (*, O) -> (M, O, 1): units in dim 1, as for Conv2d
        elif t.dim() == 3:
            t = t.unsqueeze(0)  # (O, H, W) -> (1, O, H, W)
        if t.numel() // t.shape[1] < 2:
            raise ValueError(f"expected more than 1 value per unit to initialize from (got a batch of shape "
                             f"{tuple(x.shape)})")
        dims, _ = dims_and_shape(t)
        mu, var = t.mean(dims), t.var(dims, correction=0)  # (O,), (O,)
        scale = init_scale / torch.sqrt(var + 1e-10)  # g = init_scale / sigma[t]
        self.weight_g.copy_(scale.view(self.weight_g.shape))  # (O,) -> (O, 1, ...)
        if self.bias is not None:
            self.bias.copy_(-mu * scale)  # b = -mu[t] * g
        return self(x)


class WNLinear(_WeightNorm, nn.Linear):
    """``nn.Linear`` with weight normalization: y = x (g v / ||v||)^T + b, ||v_i|| over in_features.

    Args: those of ``nn.Linear`` (in_features, out_features, bias=True, device=None, dtype=None).
    Parameters ``bias`` (O,), ``weight_g`` (O, 1), ``weight_v`` (O, in_features).

    Shape: input (*, in_features); output (*, out_features).

        >>> WNLinear(6, 4)(torch.randn(8, 6)).shape
        torch.Size([8, 4])
    """

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"expected input of shape (*, {self.in_features}) (got {tuple(x.shape)})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return super().forward(x)


class WNConv2d(_WeightNorm, nn.Conv2d):
    """``nn.Conv2d`` with weight normalization: each filter w_i = g_i v_i / ||v_i||.

    Args: those of ``nn.Conv2d``. Parameters ``bias`` (O,), ``weight_g`` (O, 1, 1, 1) and
    ``weight_v`` (O, C_in/groups, kH, kW).

    Shape: input (N, C_in, H, W) or (C_in, H, W); output (N, C_out, H_out, W_out).

        >>> WNConv2d(3, 8, 3, padding=1)(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def _check_input(self, x: torch.Tensor) -> None:
        check_rank(x, (3, 4))
        if x.shape[-3] != self.in_channels:
            raise ValueError(f"expected input with {self.in_channels} channels (got {x.shape[-3]} channels)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return super().forward(x)


class _MeanOnlyBatchNorm(_NormBase):
    """out = x - mu + beta per channel: batch mean in training (and updated running_mean), running
    mean in eval mode (or the batch mean when ``track_running_stats=False``).

    Args: num_features, momentum (default 0.1; None = cumulative average), affine (learn beta,
    ``bias``, init 0; default True), track_running_stats (default True), device, dtype.
    Buffers: ``running_mean`` and ``num_batches_tracked``; no variance, no ``weight``.
    """

    _running_stats = (("running_mean", 0.0),)
    _learns_scale = False  # affine: beta only

    def __init__(self, num_features: int, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:
        super().__init__(num_features, 0.0, momentum, affine, track_running_stats, device, dtype)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *) -> (N, C, *)."""
        self._check_input_dim(x)
        check_floating(x)
        check_channels(x, self.num_features)
        dims, shape = dims_and_shape(x)
        if self.training or self.running_mean is None:
            if x.shape[0] == 0:
                raise ValueError(f"expected a non-empty batch when using batch statistics (got {tuple(x.shape)})")
            mu = x.mean(dims)  # (C,) the batch mean; the gradient flows through it
            if self.training and self.running_mean is not None:
                self._update_running(self._step_factor(), running_mean=mu)
        else:
            mu = self.running_mean.to(x.dtype)  # (C,)
        out = x - mu.view(shape)  # (C,) -> (1, C, 1, ...)   x - mu
        return out if self.bias is None else out + self.bias.to(x.dtype).view(shape)  # + beta, (C,) -> (1, C, 1, ...)


class MeanOnlyBatchNorm1d(_MeanOnlyBatchNorm):
    """Mean-only batch normalization of (N, C) or (N, C, L) input. Shape: output as input.

        >>> MeanOnlyBatchNorm1d(4)(torch.randn(8, 4)).shape
        torch.Size([8, 4])
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (2, 3))


class MeanOnlyBatchNorm2d(_MeanOnlyBatchNorm):
    """Mean-only batch normalization of (N, C, H, W) input. Shape: output as input.

        >>> MeanOnlyBatchNorm2d(3)(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 3, 5, 5])
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (4,))
