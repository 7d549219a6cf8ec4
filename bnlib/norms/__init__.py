"""The normalization family as torch.nn twins: BN and its variants, LN, GN, IN, RMSNorm, WS, WN, DyT.

One file per family; what they share lives once, in ``base`` (argument checks and ``_NormBase``,
which owns ``weight``/``bias`` and the running buffers as torch's ``_NormBase`` does).

    file          layers                                   statistics over, for (N, C, *) input
    batchnorm     BatchNorm1d/2d, BatchNormFunction        per channel: N and *
    noisy         NoisyBatchNorm1d/2d (Santurkar et al.)   as BN, plus noise in training
    ghost         GhostBatchNorm1d/2d                      per channel, per virtual batch
    lpnorm        LpNorm1d/2d (Santurkar et al.)           per channel: mean, then an l_p norm
    renorm        BatchRenorm1d/2d, renorm_limits          as BN, corrected toward the running stats
    instancenorm  InstanceNorm1d/2d                        per example and channel: *
    groupnorm     GroupNorm                                per example and group of channels
    layernorm     LayerNorm                                per example: the last dims
    rmsnorm       RMSNorm                                  per example: the last dims, no centering
    weightstd     WSConv2d, standardize_weight             per filter of the weight
    weightnorm    WNLinear, WNConv2d, MeanOnlyBatchNorm1d/2d   per unit of the weight; BN's mean only
    dyt           DyT                                      none: gamma tanh(alpha x) + beta

Every layer takes torch's constructor arguments and parameter/buffer names where torch has the
layer (state dicts load both ways), and raises "expected X (got Y)" on bad input.
"""
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction
from .dyt import DyT
from .ghost import GhostBatchNorm1d, GhostBatchNorm2d
from .groupnorm import GroupNorm
from .instancenorm import InstanceNorm1d, InstanceNorm2d
from .layernorm import LayerNorm
from .lpnorm import LpNorm1d, LpNorm2d
from .noisy import NoisyBatchNorm1d, NoisyBatchNorm2d
from .renorm import BatchRenorm1d, BatchRenorm2d, renorm_limits, set_renorm_limits
from .rmsnorm import RMSNorm
from .weightnorm import MeanOnlyBatchNorm1d, MeanOnlyBatchNorm2d, WNConv2d, WNLinear
from .weightstd import WSConv2d, standardize_weight

__all__ = [
    "BatchNormFunction", "BatchNorm1d", "BatchNorm2d",
    "NoisyBatchNorm1d", "NoisyBatchNorm2d", "GhostBatchNorm1d", "GhostBatchNorm2d", "LpNorm1d", "LpNorm2d",
    "BatchRenorm1d", "BatchRenorm2d", "renorm_limits", "set_renorm_limits",
    "InstanceNorm1d", "InstanceNorm2d", "GroupNorm", "LayerNorm", "RMSNorm",
    "WSConv2d", "standardize_weight", "WNLinear", "WNConv2d", "MeanOnlyBatchNorm1d", "MeanOnlyBatchNorm2d",
    "DyT",
]
