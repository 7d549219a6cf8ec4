"""Batch normalization layers written from scratch: ``BatchNorm1d`` and ``BatchNorm2d``.

The code lives in ``bnlib.norms.batchnorm`` (with the rest of the normalization family in
``bnlib.norms``); this module keeps the import path the chapters use, ``bnlib.layers.BatchNorm1d``,
and re-exports the same objects (``bnlib.layers.BatchNorm1d is bnlib.norms.BatchNorm1d``).
"""
from .norms.base import LOW_PRECISION, _NormBase  # noqa: F401
from .norms.base import dims_and_shape as _dims_and_shape  # noqa: F401
from .norms.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction, _BatchNormBase  # noqa: F401
from .norms.batchnorm import _batch_stats, _channel_dot  # noqa: F401
from .norms.noisy import NoisyBatchNorm1d, NoisyBatchNorm2d  # noqa: F401

__all__ = ["BatchNormFunction", "BatchNorm1d", "BatchNorm2d", "NoisyBatchNorm1d", "NoisyBatchNorm2d"]
