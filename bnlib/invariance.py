"""The invariance table of Zhang & Sennrich (2019, Table 1), measured on bnlib's layers.

A layer a = W x (W: D_out x D_in, a batch of N examples x) followed by the normalization; a
property holds (✓) when the normalized output does not change under the transformation:

    weight matrix re-scaling      W -> delta W
    weight matrix re-centering    W -> W + 1 gamma^T     (the same vector added to every row)
    weight vector re-scaling      w_i -> delta w_i       (one row)
    dataset re-scaling            x_n -> delta x_n       (every example)
    dataset re-centering          x_n -> x_n + gamma     (every example)
    single training case re-scaling   x_1 -> delta x_1   (one example)

    measured_row("LayerNorm")   # -> "✓✓✗✓✗✓", as TABLE_1["LayerNorm"]
    measured_row("DyT")         # -> "✗✗✗✗✗✗": not in the paper; DyT computes no statistics
"""
from __future__ import annotations

import torch

from . import norms

__all__ = ["PROPERTIES", "TABLE_1", "transform", "normalized", "measured_row"]

F64 = torch.float64
PROPERTIES = ["weight matrix re-scaling", "weight matrix re-centering", "weight vector re-scaling",
              "dataset re-scaling", "dataset re-centering", "single training case re-scaling"]
TABLE_1 = {  # Zhang & Sennrich (2019), Table 1
    "BatchNorm": "✓✗✓✓✓✗",
    "WeightNorm": "✓✗✓✗✗✗",
    "LayerNorm": "✓✓✗✓✗✓",
    "RMSNorm": "✓✗✗✓✗✓",
}
N, D_IN, D_OUT = 16, 5, 7


def transform(name: str, W: torch.Tensor, x: torch.Tensor, gen: torch.Generator):
    """(W, x) -> the transformed (W, x); delta > 0 and gamma random."""
    delta = 2.7
    W, x = W.clone(), x.clone()
    if name == "weight matrix re-scaling":
        W = delta * W
    elif name == "weight matrix re-centering":
        W = W + torch.randn(1, D_IN, generator=gen, dtype=F64)  # (1, D_in) broadcast to every row
    elif name == "weight vector re-scaling":
        W[2] = delta * W[2]
    elif name == "dataset re-scaling":
        x = delta * x
    elif name == "dataset re-centering":
        x = x + torch.randn(1, D_IN, generator=gen, dtype=F64)  # (1, D_in) added to every example
    elif name == "single training case re-scaling":
        x[0] = delta * x[0]
    return W, x


def normalized(method: str, W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The method's output for the layer W on the batch x: (N, D_out)."""
    a = x @ W.T  # (N, D_in) @ (D_in, D_out) -> (N, D_out)
    if method == "BatchNorm":
        return norms.BatchNorm1d(D_OUT, eps=1e-14, affine=False, dtype=F64)(a)  # training mode: batch stats
    if method == "LayerNorm":
        return norms.LayerNorm(D_OUT, eps=0.0, elementwise_affine=False, dtype=F64)(a)
    if method == "RMSNorm":
        return norms.RMSNorm(D_OUT, eps=0.0, elementwise_affine=False, dtype=F64)(a)
    if method == "DyT":  # no statistics at all: tanh(alpha a), alpha = 0.5
        return norms.DyT(D_OUT, dtype=F64)(a)
    layer = norms.WNLinear(D_IN, D_OUT, bias=False, dtype=F64)  # WeightNorm: W is v, g = 1
    with torch.no_grad():
        layer.weight_v.copy_(W), layer.weight_g.fill_(1.0)
    return layer(x)


def measured_row(method: str, seed: int = 0) -> str:
    """One row of the table, measured: a ✓ or ✗ per property, in the order of PROPERTIES."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(D_OUT, D_IN, generator=gen, dtype=F64)
    x = torch.randn(N, D_IN, generator=gen, dtype=F64) + 1
    out = normalized(method, W, x)
    row = ""
    for name in PROPERTIES:
        change = (normalized(method, *transform(name, W, x, gen)) - out).abs().max().item()
        if not (change < 1e-9 or change > 1e-3):  # clearly one or the other, never in between
            raise AssertionError(f"expected a change below 1e-9 or above 1e-3 (got {change:.2g} for {method}, {name})")
        row += "✓" if change < 1e-9 else "✗"
    return row
