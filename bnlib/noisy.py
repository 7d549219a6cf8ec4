""""Noisy" batch normalization (Santurkar et al. 2018, Appendix A.2.1, Algorithm 1).

The code lives in ``bnlib.norms.noisy``; this module keeps the old import path and re-exports
the same classes (also reachable as ``bnlib.layers.NoisyBatchNorm1d/2d``).
"""
from .norms.noisy import NoisyBatchNorm1d, NoisyBatchNorm2d, _NoisyMixin  # noqa: F401

__all__ = ["NoisyBatchNorm1d", "NoisyBatchNorm2d"]
