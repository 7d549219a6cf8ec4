"""Ghost batch normalization (Hoffer, Hubara & Soudry, 2017): statistics over virtual batches.

The code lives in ``bnlib.norms.ghost``; this module keeps the old import path and re-exports
the same classes.
"""
from .norms.ghost import GhostBatchNorm1d, GhostBatchNorm2d, _Ghost  # noqa: F401

__all__ = ["GhostBatchNorm1d", "GhostBatchNorm2d"]
