"""The normalization family as torch.nn twins: BN and its variants, LN, GN, IN, RMSNorm, WS, WN, Batch Renorm, DyT.

One file per family; shared code lives in ``base`` (argument checks and ``_NormBase``, which owns
``weight``/``bias`` and the running buffers as torch's ``_NormBase`` does).
"""
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction
from .ghost import GhostBatchNorm1d, GhostBatchNorm2d
from .lpnorm import LpNorm1d, LpNorm2d
from .noisy import NoisyBatchNorm1d, NoisyBatchNorm2d

__all__ = [
    "BatchNormFunction", "BatchNorm1d", "BatchNorm2d",
    "NoisyBatchNorm1d", "NoisyBatchNorm2d", "GhostBatchNorm1d", "GhostBatchNorm2d", "LpNorm1d", "LpNorm2d",
]
