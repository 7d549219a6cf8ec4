"""What every normalization layer shares: argument checks, the low-precision rule, the shapes of a
per-channel value, and ``_NormBase``, which owns the affine parameters and the running statistics.

``_NormBase`` is the twin of torch's ``torch.nn.modules.batchnorm._NormBase``: the parameters
``weight`` (gamma) and ``bias`` (beta), the buffers ``running_mean``, ``running_var`` and
``num_batches_tracked`` (their names, dtypes and order in the state dict as torch's), their
reset, and the momentum convention

    running = (1 - momentum) * running + momentum * batch,   momentum=None: factor 1 / num_batches_tracked.

Layers whose running statistics differ (l_p norm: ``running_norm``; mean-only BN: no variance)
say so with the class attribute ``_running_stats`` (buffer name, reset value).
"""
from __future__ import annotations

import torch
from torch import nn

LOW_PRECISION = (torch.float16, torch.bfloat16)  # statistics for these are computed in float32


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for float16/bfloat16 input (sums of squares overflow 65504), else x's own dtype."""
    return torch.float32 if x.dtype in LOW_PRECISION else x.dtype


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected {name} to be a positive int (got {value!r})")
    return value


def check_eps(eps, strict: bool = False) -> float:
    """eps >= 0 (construction of a BN layer: eps = 0 is allowed in eval mode), or eps > 0 (strict)."""
    if strict and not eps > 0:
        raise ValueError(f"expected eps > 0 (got {eps})")
    if not eps >= 0:
        raise ValueError(f"expected eps >= 0 (got {eps})")
    return eps


def check_momentum(momentum) -> float | None:
    if momentum is not None and not 0 <= momentum <= 1:
        raise ValueError(f"expected momentum in [0, 1] or None (got {momentum})")
    return momentum


def check_floating(x: torch.Tensor) -> None:
    if not x.is_floating_point():
        raise TypeError(f"expected floating-point input (got {x.dtype} input)")


def check_rank(x: torch.Tensor, ranks: tuple[int, ...]) -> None:
    """The one check a 1d/2d subclass makes: x.dim() in ranks, e.g. (2, 3) -> "2D or 3D"."""
    if x.dim() not in ranks:
        names = " or ".join(f"{r}D" for r in ranks)
        raise ValueError(f"expected {names} input (got {x.dim()}D input)")


def check_channels(x: torch.Tensor, num_features: int) -> None:
    if x.shape[1] != num_features:
        raise ValueError(f"expected input with {num_features} channels (got {x.shape[1]} channels)")


def as_shape(normalized_shape) -> tuple[int, ...]:
    """LayerNorm/RMSNorm's ``normalized_shape``: an int or a sequence of positive ints -> a tuple."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in shape):
        raise ValueError(f"expected normalized_shape to be a positive int or a non-empty sequence of them "
                         f"(got {normalized_shape!r})")
    return shape


def check_trailing_shape(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    """x's last len(shape) dims must be ``shape``: input (*, *shape)."""
    if tuple(x.shape[x.dim() - len(shape):]) != shape or x.dim() < len(shape):
        raise ValueError(f"expected input of shape (*, {', '.join(map(str, shape))}) "
                         f"(got input of shape {tuple(x.shape)})")


def dims_and_shape(x: torch.Tensor) -> tuple[list[int], list[int]]:
    """Reduction dims (every dim but the channel dim 1) and the broadcast shape of a per-channel value."""
    dims = [0, *range(2, x.dim())]  # (N, C) -> [0]; (N, C, L) -> [0, 2]; (N, C, H, W) -> [0, 2, 3]
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)  # (1, C) / (1, C, 1) / (1, C, 1, 1)
    return dims, shape


def affine_parameters(module: nn.Module, shape: tuple[int, ...], weight: bool, bias: bool,
                      factory_kwargs: dict) -> None:
    """Register ``weight`` (gamma, ones) and ``bias`` (beta, zeros) of ``shape``, or None for each left out."""
    for name, learned, fill in (("weight", weight, 1.0), ("bias", bias, 0.0)):
        if learned:
            setattr(module, name, nn.Parameter(torch.full(shape, fill, **factory_kwargs)))
        else:
            module.register_parameter(name, None)


def reset_affine(module: nn.Module) -> None:
    """gamma = 1 and beta = 0, for those of ``weight`` and ``bias`` the module has."""
    if module.weight is not None:
        nn.init.ones_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class _NormBase(nn.Module):
    r"""Owns ``weight``/``bias`` and the running buffers; subclasses own ``forward``.

    Args:
        num_features: C, the number of channels
        eps: a small constant added to the variance (checked here: eps >= 0). Default 1e-5
        momentum: weight of the new batch statistic, or None for a cumulative average. Default 0.1
        affine: learn gamma (``weight``, init 1) and beta (``bias``, init 0). Default True
        track_running_stats: keep the running buffers and ``num_batches_tracked``. Default True
        device, dtype: where and in which dtype parameters and buffers are created
        bias: keyword-only; with affine=True, False drops beta (as torch >= 2.x). Default True
    """

    _running_stats = (("running_mean", 0.0), ("running_var", 1.0))  # (buffer, value after a reset)
    _learns_scale = True  # False: affine means beta only (mean-only BN)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True) -> None:
        check_positive_int("num_features", num_features)
        check_eps(eps)
        check_momentum(momentum)
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        affine_parameters(self, (num_features,), affine and self._learns_scale, affine and bias, factory_kwargs)
        for name, value in self._running_stats:
            buf = torch.full((num_features,), value, **factory_kwargs) if track_running_stats else None
            self.register_buffer(name, buf)
        count = torch.tensor(0, dtype=torch.long, device=device) if track_running_stats else None
        self.register_buffer("num_batches_tracked", count)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Each running buffer back to its start value (mean 0, variance 1), num_batches_tracked = 0."""
        if self.track_running_stats:
            for name, value in self._running_stats:
                getattr(self, name).fill_(value)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics, then gamma = 1 and beta = 0."""
        self.reset_running_stats()
        reset_affine(self)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        running_var = state_dict.get(prefix + "running_var")
        if running_var is not None and bool((running_var < 0).any()):
            raise ValueError(f"expected a non-negative running_var (got min {running_var.min().item():.4g})")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _step_factor(self) -> float:
        """Count one more batch and return its weight in the running averages (momentum, or 1/t)."""
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative average over all batches seen so far
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    @torch.no_grad()  # buffers must never become part of the autograd graph
    def _update_running(self, factor: float, **batch: torch.Tensor) -> None:
        """running = (1 - factor) * running + factor * batch, for each buffer named in ``batch``."""
        for name, value in batch.items():
            running = getattr(self, name)
            running.mul_(1 - factor).add_(value.to(running.dtype), alpha=factor)

