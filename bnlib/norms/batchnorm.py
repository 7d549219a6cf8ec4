"""Batch normalization written from scratch: ``BatchNormFunction`` (a closed-form backward) and
the layers ``BatchNorm1d`` and ``BatchNorm2d``.

They are drop-in twins of ``torch.nn.BatchNorm1d/2d``: the same constructor arguments and
defaults, the same parameter and buffer names (so ``load_state_dict`` works both ways), and
the same train/eval behaviour. The backward pass is the closed form derived in
``bnlib.manual``, plugged into autograd by ``BatchNormFunction``.

Names follow the math: x, mu, var, inv_std = 1/sqrt(var + eps), x_hat, gamma (``weight``),
beta (``bias``), dout = dL/dout.
"""
from __future__ import annotations

import math

import torch

from .base import _NormBase, check_channels, check_floating, check_rank, compute_dtype
from .base import dims_and_shape as _dims_and_shape

__all__ = ["BatchNormFunction", "BatchNorm1d", "BatchNorm2d"]


def _channel_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) over every dim but 1, as one batched matmul: no (N, C, *)-sized temporary."""
    N, C, L = a.shape[0], a.shape[1], math.prod(a.shape[2:])  # L = 1, L or H*W
    dot = a.reshape(N, C, 1, L) @ b.reshape(N, C, L, 1)  # (N, C, 1, L) @ (N, C, L, 1) -> (N, C, 1, 1)
    return dot.sum(0).view([1, C] + [1] * (a.dim() - 2))  # (C, 1, 1) -> (1, C, 1, 1)


def _batch_stats(x: torch.Tensor):
    """Per-channel mean and biased variance, var = mean((x - mu)**2), never E[x**2] - E[x]**2.

    Returns mu, x_mu = x - mu, r, var; mu, r, var have the broadcast shape (1, C, 1, ...).
    r = mean(x - mu) is 0 in exact arithmetic; in float32 it is the rounding error of mu (about
    one ulp of mu), and subtracting it (Chan, Golub & LeVeque's corrected two-pass algorithm)
    keeps large-mean, small-spread channels accurate. clamp_min(0) guards the last bit of
    rounding (r**2 <= mean(x_mu**2) in exact arithmetic); max(n, 1) keeps an empty batch finite.
    """
    dims, _ = _dims_and_shape(x)
    n = max(x.numel() // x.shape[1], 1)  # values per channel: N, N*L or N*H*W
    mu = x.sum(dims, keepdim=True) / n  # (1, C, 1, ...)
    x_mu = x - mu  # (N, C, *)
    r = x_mu.sum(dims, keepdim=True) / n  # (1, C, 1, ...)
    var = (_channel_dot(x_mu, x_mu) / n - r * r).clamp_min(0)  # (1, C, 1, ...) mean of squared deviations
    return mu, x_mu, r, var


class BatchNormFunction(torch.autograd.Function):
    r"""out = gamma * (x - mu) / sqrt(var + eps) + beta, per channel, with a closed-form backward.

    Call as ``out, mu, var = BatchNormFunction.apply(x, gamma, beta, mean, var, eps)``.

    Inputs:
    - x: input of shape (N, C) or (N, C, *); statistics are per channel (dim 1)
    - gamma, beta: scale and shift of shape (C,), or None (gamma = 1, beta = 0)
    - mean, var: statistics of shape (C,) to normalize with (eval mode), or both None to use
      the batch's own mean and *biased* variance over every dim but 1 (training mode)
    - eps: small constant added to the variance

    Returns a tuple of:
    - out: same shape as x
    - mu, var: (C,) the statistics used; not differentiable (they feed the running averages)

    Backward (training mode, n values per channel; see bnlib.manual.batchnorm_backward_fused):
        dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat))
    In eval mode mu and var are constants, so dx = gamma * inv_std * dout.
    Double backward works: with create_graph=True the statistics are rebuilt from x with
    differentiable ops, so ``torch.autograd.gradgradcheck`` passes.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, var, eps):
        _, shape = _dims_and_shape(x)
        batch_stats = mean is None
        if batch_stats:
            mu, x_mu, r, var = _batch_stats(x)  # (1, C, 1, ...) except x_mu: (N, C, *)
        else:
            mu, var = mean.view(shape), var.view(shape)  # (C,) -> (1, C, 1, ...)
            x_mu, r = x - mu, torch.zeros_like(mu)
        inv_std = torch.rsqrt(var + eps)  # (1, C, 1, ...)
        scale = inv_std if gamma is None else gamma.view(shape) * inv_std  # gamma / sqrt(var + eps)
        shift = -r * scale if beta is None else beta.view(shape) - r * scale  # beta - r * scale; (C,) -> (1, C, 1, ...)
        out = x_mu.mul_(scale).add_(shift)  # = gamma * x_hat + beta, in place: x_mu is not needed any more
        ctx.save_for_backward(x, gamma, mu, r, inv_std)
        ctx.batch_stats, ctx.eps = batch_stats, eps
        mu, var = (mu + r).view(-1), var.view(-1)  # (C,), (C,)
        ctx.mark_non_differentiable(mu, var)
        return out, mu, var

    @staticmethod
    def backward(ctx, dout, _dmu, _dvar):
        x, gamma, mu, r, inv_std = ctx.saved_tensors
        dims, shape = _dims_and_shape(x)
        if ctx.batch_stats and torch.is_grad_enabled():
            # Grad mode is on inside backward only under create_graph=True (double backward):
            # rebuild the statistics from x so that their dependence on x is differentiated too.
            mu, x_mu, r, var = _batch_stats(x)
            inv_std = torch.rsqrt(var + ctx.eps)
        else:
            x_mu = x - mu  # (N, C, *) recomputed rather than stored: saves memory
        n = max(x.numel() // x.shape[1], 1)  # values per channel
        # out = gamma * x_hat + beta, with x_hat = (x_mu - r) * inv_std
        dbeta = dout.sum(dims, keepdim=True)  # (1, C, 1, ...) sum(dout)
        dgamma = (_channel_dot(dout, x_mu) - r * dbeta) * inv_std  # (1, C, 1, ...) sum(dout * x_hat)
        scale = inv_std if gamma is None else gamma.view(shape) * inv_std  # (1, C, 1, ...)
        if ctx.batch_stats:
            # dx = scale * (dout - dbeta / n - x_hat * dgamma / n), expanded into one
            # per-channel coefficient for each of dout, x_mu and 1:
            c_x_mu = -scale * inv_std * dgamma / n
            c_one = -scale * dbeta / n - c_x_mu * r
            dx = torch.addcmul(c_one, dout, scale).addcmul_(x_mu, c_x_mu)  # (N, C, *)
        else:
            dx = dout * scale  # mu and var are constants in eval mode
        need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
        dgamma, dbeta = dgamma.view(-1), dbeta.view(-1)  # (1, C, 1, ...) -> (C,)
        return (dx if need_x else None, dgamma if need_gamma else None, dbeta if need_beta else None,
                None, None, None)


class _BatchNormBase(_NormBase):
    r"""The one ``forward`` of batch normalization; subclasses check the input rank.

    Training mode normalizes each channel with the batch mean and the *biased* batch variance,

        out = gamma * (x - mu) / sqrt(var + eps) + beta,     gamma = ``weight``, beta = ``bias``,

    and updates the running statistics (under ``torch.no_grad()``; they never get a grad_fn)
    with the PyTorch convention, where ``momentum`` weighs the *new* batch statistic:

        running = (1 - momentum) * running + momentum * batch

    ``running_var`` stores the *unbiased* batch variance, var * n / (n - 1), n = values per
    channel. ``momentum=None`` gives the cumulative average: factor 1 / num_batches_tracked.
    Eval mode (``self.training`` False; grad mode does not matter) normalizes with the running
    statistics, or with the batch statistics when ``track_running_stats=False``, as torch does.

    Args (those of ``bnlib.norms.base._NormBase``):
        num_features: C, the number of channels
        eps: added to the variance for numerical stability. Default 1e-5
        momentum: weight of the new batch statistic, or None for a cumulative average. Default 0.1
        affine: learn gamma (``weight``, init 1) and beta (``bias``, init 0). Default True
        track_running_stats: keep ``running_mean``, ``running_var``, ``num_batches_tracked``. Default True
        device, dtype: where and in which dtype parameters and buffers are created
        bias: keyword-only; with affine=True, False drops beta (as torch >= 2.x). Default True
    """

    def _check_batch(self, x: torch.Tensor) -> None:
        """Batch statistics need two values per channel and eps > 0."""
        values_per_channel = x.numel() // x.shape[1]
        if values_per_channel == 1:
            raise ValueError(
                f"expected more than 1 value per channel when training (got input of shape {tuple(x.shape)}): "
                "the batch variance of one value is 0; use a larger batch, or call .eval() "
                "to normalize with the running statistics")
        if not self.eps > 0:
            raise ValueError(f"expected eps > 0 when normalizing with batch statistics (got {self.eps})")

    def _scale_shift(self, x, gamma, beta, batch_stats: bool):
        """The gamma and beta handed to BatchNormFunction; Batch Renorm folds its r and d in here."""
        return gamma, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *) -> (N, C, *): gamma * (x - mu) / sqrt(var + eps) + beta, per channel."""
        self._check_input_dim(x)
        check_floating(x)
        check_channels(x, self.num_features)
        # Batch statistics in training mode, and in eval mode when there are no running buffers.
        batch_stats = self.training or self.running_mean is None
        # Running statistics are updated only when training and tracking.
        update = self.training and self.track_running_stats and self.running_mean is not None
        if batch_stats:
            self._check_batch(x)
        factor = self._step_factor() if update else 0.0
        dtype = compute_dtype(x)  # float16/bfloat16: compute in float32, cast back at the end

        def cast(t):
            return None if t is None else t.to(dtype)

        xc = cast(x)
        mean, var = (None, None) if batch_stats else (cast(self.running_mean), cast(self.running_var))
        gamma, beta = self._scale_shift(xc, cast(self.weight), cast(self.bias), batch_stats)
        out, mu, var = BatchNormFunction.apply(xc, gamma, beta, mean, var, self.eps)
        if update and x.numel() > 0:  # an empty batch leaves the statistics alone, as in torch
            n = x.numel() // x.shape[1]
            unbiased_var = var * (n / (n - 1))  # (C,) Bessel's correction
            self._update_running(factor, running_mean=mu, running_var=unbiased_var)
        return out.to(x.dtype)


class BatchNorm1d(_BatchNormBase):
    """Batch normalization over (N, C) or (N, C, L) input; statistics per channel over N (and L).

    See ``_BatchNormBase`` for the formula, arguments and the running-statistics update.

    Shape: input (N, C) or (N, C, L); output the same shape.

    Examples::

        >>> bn = BatchNorm1d(4)
        >>> bn(torch.randn(8, 4)).shape
        torch.Size([8, 4])
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (2, 3))


class BatchNorm2d(_BatchNormBase):
    """Batch normalization over (N, C, H, W) input; statistics per channel over N, H and W.

    See ``_BatchNormBase`` for the formula, arguments and the running-statistics update.

    Shape: input (N, C, H, W); output the same shape.

    Examples::

        >>> bn = BatchNorm2d(3)
        >>> bn(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 3, 5, 5])
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_rank(x, (4,))
