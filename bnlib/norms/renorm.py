"""Batch Renormalization (Ioffe, 2017): BN that corrects its batch statistics toward the running ones.

Training mode, per channel, with the batch statistics mu_B, sigma_B = sqrt(var_B + eps) and
the running ones mu, sigma = sqrt(running_var + eps) (Algorithm 1 of the paper):

    r = stop_gradient(clip(sigma_B / sigma, 1/r_max, r_max))
    d = stop_gradient(clip((mu_B - mu) / sigma, -d_max, d_max))
    x_hat = (x - mu_B) / sigma_B * r + d
    out = gamma * x_hat + beta

When neither clip is active, x_hat = (x - mu) / sigma: the training output is the eval output,
so the network trains on what it will be tested with, even with tiny or non-i.i.d. batches.
r and d are constants for the gradient (computed under ``torch.no_grad()``), so the backward is
BN's with gamma * r in place of gamma: ``out = (gamma r) x_hat_B + (gamma d + beta)`` goes
through ``BatchNormFunction`` unchanged. With r_max = 1 and d_max = 0, r = 1 and d = 0 exactly
and the layer *is* BatchNorm (outputs, gradients and buffers bit for bit). Eval mode normalizes
with the running statistics, as BN does.

One choice where we differ from the paper: the paper keeps a moving average of sigma_B; we keep
torch's ``running_var`` (the unbiased batch variance, momentum convention of BN) and use
sigma = sqrt(running_var + eps) both in r, d and in eval mode, so train and eval agree, state
dicts are BatchNorm's, and r_max = 1, d_max = 0 is BN buffers included.

The paper starts with r_max = 1, d_max = 0 and relaxes them: ``renorm_limits(step)`` gives its
schedule, ``set_renorm_limits(model, r_max, d_max)`` applies one to every layer of a model.
"""
from __future__ import annotations

import torch
from torch import nn

from .batchnorm import BatchNorm1d, BatchNorm2d, _batch_stats

__all__ = ["BatchRenorm1d", "BatchRenorm2d", "renorm_limits", "set_renorm_limits"]


def _check_limits(r_max: float, d_max: float) -> None:
    if not r_max >= 1:
        raise ValueError(f"expected r_max >= 1, the clip range of r being [1/r_max, r_max] (got {r_max})")
    if not d_max >= 0:
        raise ValueError(f"expected d_max >= 0, the clip range of d being [-d_max, d_max] (got {d_max})")


class _Renorm:
    """The shared part: r_max, d_max and r, d folded into gamma and beta in training mode."""

    def __init__(self, num_features: int, r_max: float = 3.0, d_max: float = 5.0, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        _check_limits(r_max, d_max)
        if not track_running_stats:
            raise ValueError("expected track_running_stats=True (got False): Batch Renorm corrects the batch "
                             "statistics toward the running ones")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.r_max, self.d_max = float(r_max), float(d_max)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r_max={self.r_max}, d_max={self.d_max}"

    @torch.no_grad()  # r and d carry no gradient: stop_gradient in the paper
    def renorm_factors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, d), each (C,), for the batch x (N, C, *) and the current running statistics."""
        mu, _, resid, var = _batch_stats(x)  # (1, C, 1, ...) each; the batch mean is mu + resid
        mu_b, var_b = (mu + resid).view(-1), var.view(-1)  # (1, C, 1, ...) -> (C,)
        sigma_b = torch.sqrt(var_b + self.eps)  # sigma_B = sqrt(var_B + eps)
        sigma = torch.sqrt(self.running_var.to(x.dtype) + self.eps)  # sigma = sqrt(running_var + eps)
        r = (sigma_b / sigma).clamp(1 / self.r_max, self.r_max)  # r = clip(sigma_B / sigma, 1/r_max, r_max)
        d = ((mu_b - self.running_mean.to(x.dtype)) / sigma).clamp(-self.d_max, self.d_max)  # clip((mu_B - mu)/sigma)
        return r, d

    def _scale_shift(self, x, gamma, beta, batch_stats: bool):
        """gamma * (r x_hat + d) + beta = (gamma r) x_hat + (gamma d + beta): BN with a new gamma and beta."""
        if not (self.training and batch_stats):
            return gamma, beta
        r, d = self.renorm_factors(x)
        scale = r if gamma is None else gamma * r  # gamma r
        shift = d if gamma is None else gamma * d  # gamma d
        return scale, shift if beta is None else shift + beta  # gamma d + beta


class BatchRenorm1d(_Renorm, BatchNorm1d):
    """Batch Renormalization of (N, C) or (N, C, L) input; per channel over N (and L).

    Args: num_features, r_max (default 3.0), d_max (default 5.0), then BatchNorm1d's eps,
    momentum, affine, track_running_stats (must be True), device, dtype and bias.

    Shape: input (N, C) or (N, C, L); output the same shape.

    Examples::

        >>> BatchRenorm1d(4, r_max=1.0, d_max=0.0)(torch.randn(8, 4)).shape   # = BatchNorm1d(4)
        torch.Size([8, 4])
    """


class BatchRenorm2d(_Renorm, BatchNorm2d):
    """Batch Renormalization of (N, C, H, W) input; per channel over N, H and W.

    Args: as ``BatchRenorm1d``. Shape: input (N, C, H, W); output the same shape.

        >>> BatchRenorm2d(3)(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 3, 5, 5])
    """


def renorm_limits(step: int, warmup: int = 5000, r_max: float = 3.0, r_max_step: int = 40000,
                  d_max: float = 5.0, d_max_step: int = 25000) -> tuple[float, float]:
    """(r_max, d_max) at a training step, as in Ioffe (2017) Sec. 4.1: r_max = 1 and d_max = 0 for
    the first ``warmup`` steps, then relaxed (linearly, here) to reach r_max = 3 at step 40k and
    d_max = 5 at step 25k, constant after that.

        >>> renorm_limits(0), renorm_limits(22500), renorm_limits(10**6)
        ((1.0, 0.0), (2.0, 4.375), (3.0, 5.0))
    """
    if not 0 <= warmup < min(r_max_step, d_max_step):
        raise ValueError(f"expected 0 <= warmup < r_max_step, d_max_step (got warmup={warmup}, "
                         f"r_max_step={r_max_step}, d_max_step={d_max_step})")
    _check_limits(r_max, d_max)

    def ramp(end_step):  # 0 until warmup, 1 from end_step on, linear in between
        return min(max((step - warmup) / (end_step - warmup), 0.0), 1.0)
    return 1.0 + (r_max - 1.0) * ramp(r_max_step), d_max * ramp(d_max_step)


def set_renorm_limits(model: nn.Module, r_max: float, d_max: float) -> int:
    """Set r_max and d_max of every Batch Renorm layer in ``model``; returns how many were set."""
    _check_limits(r_max, d_max)
    layers = [m for m in model.modules() if isinstance(m, _Renorm)]
    for m in layers:
        m.r_max, m.d_max = float(r_max), float(d_max)
    return len(layers)
