"""Data augmentation as a layer: random crops and horizontal flips, in training mode only.

The standard CIFAR-10 augmentation (pad by 4 pixels, crop back to 32 × 32 at a random offset,
mirror with probability 1/2) applied to a whole mini-batch of tensors at once, so that it can sit
as the first module of a model and train with ``bnlib.train.fit`` unchanged. Like dropout, it acts
only in training mode; in eval mode (``model.eval()``, ``bnlib.train.evaluate``) the input passes
through untouched, so test and training accuracy are measured on the original images.

    aug = RandomCropFlip(padding=4, generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(aug, nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

Each image gets its own offset (dy, dx), uniform on {-padding, ..., padding}², and its own flip.
Padding is zeros: on images standardized per channel (``ImageData.tensors()``) that is the
dataset's mean colour. Randomness comes from ``generator`` when given (a model then carries its
own stream, independent of dropout's), else from torch's global generator, as ``nn.Dropout``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["random_crop_flip", "RandomCropFlip"]


def _check(x: torch.Tensor, padding: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W) (got shape {tuple(x.shape)})")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"expected padding to be an int >= 0 (got {padding!r})")


def random_crop_flip(x: torch.Tensor, padding: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W): each image shifted by a random offset of at most
    ``padding`` pixels per axis (zero-padded) and, if ``flip``, mirrored left-right with
    probability 1/2. Differentiable in x; a new tensor (x is not modified)."""
    _check(x, padding)
    n, c, h, w = x.shape
    out = x
    if padding > 0:
        p = padding
        padded = F.pad(x, (p, p, p, p))  # (N, C, H + 2p, W + 2p)
        windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (N, C, 2p+1, 2p+1, H, W), a view
        dy, dx = torch.randint(0, 2 * p + 1, (2, n), generator=generator)  # (N,) offsets + p
        out = windows[torch.arange(n), :, dy, dx]  # (N, C, H, W): image i at offset (dy_i, dx_i)
    if flip:
        mirrored = torch.rand(n, generator=generator) < 0.5  # (N,)
        out = torch.where(mirrored.view(n, 1, 1, 1), out.flip(3), out)  # flip(3): left-right
    return out.clone() if out is x else out


class RandomCropFlip(nn.Module):
    """``random_crop_flip`` in training mode, the identity in eval mode.

    padding: the largest shift in pixels (0: no crop); flip: mirror with probability 1/2;
    generator: the random stream (deep copies of the module copy its state).
    """

    def __init__(self, padding: int = 4, flip: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"expected padding to be an int >= 0 (got {padding!r})")
        self.padding, self.flip, self.generator = padding, flip, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            _check(x, self.padding)
            return x
        return random_crop_flip(x, self.padding, self.flip, self.generator)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip={self.flip}"
