"""l_p normalization layers (Santurkar et al. 2018, Sec. 3.3): centre like BN, divide by an l_p norm.

The code lives in ``bnlib.norms.lpnorm``; this module keeps the old import path and re-exports
the same objects.
"""
from .norms.lpnorm import PS, LpNorm1d, LpNorm2d, _LpNormBase, lp_stats  # noqa: F401

__all__ = ["LpNorm1d", "LpNorm2d", "lp_stats"]
