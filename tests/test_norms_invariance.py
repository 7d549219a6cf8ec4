"""The invariance table of Zhang & Sennrich (2019, Table 1), measured on bnlib's layers.

A layer a = W x (W: D_out x D_in, a batch of N examples x) followed by the normalization; a
property holds (✓) when the normalized output does not change under the transformation:

    weight matrix re-scaling      W -> delta W
    weight matrix re-centering    W -> W + 1 gamma^T     (the same vector added to every row)
    weight vector re-scaling      w_i -> delta w_i       (one row)
    dataset re-scaling            x_n -> delta x_n       (every example)
    dataset re-centering          x_n -> x_n + gamma     (every example)
    single training case re-scaling   x_1 -> delta x_1   (one example)
"""
import pytest
import torch

from bnlib import norms

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


def transform(name, W, x, gen):
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


def normalized(method, W, x):
    """The method's output for the layer W on the batch x: (N, D_out)."""
    a = x @ W.T  # (N, D_in) @ (D_in, D_out) -> (N, D_out)
    if method == "BatchNorm":
        return norms.BatchNorm1d(D_OUT, eps=1e-14, affine=False, dtype=F64)(a)  # training mode: batch stats
    if method == "LayerNorm":
        return norms.LayerNorm(D_OUT, eps=0.0, elementwise_affine=False, dtype=F64)(a)
    if method == "RMSNorm":
        return norms.RMSNorm(D_OUT, eps=0.0, elementwise_affine=False, dtype=F64)(a)
    layer = norms.WNLinear(D_IN, D_OUT, bias=False, dtype=F64)  # WeightNorm: W is v, g = 1
    with torch.no_grad():
        layer.weight_v.copy_(W), layer.weight_g.fill_(1.0)
    return layer(x)


def measured_row(method, seed=0):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(D_OUT, D_IN, generator=gen, dtype=F64)
    x = torch.randn(N, D_IN, generator=gen, dtype=F64) + 1
    out = normalized(method, W, x)
    row = ""
    for name in PROPERTIES:
        change = (normalized(method, *transform(name, W, x, gen)) - out).abs().max().item()
        assert change < 1e-9 or change > 1e-3, (method, name, change)  # clearly one or the other
        row += "✓" if change < 1e-9 else "✗"
    return row


@pytest.mark.parametrize("method", TABLE_1)
def test_invariance_table_of_zhang_and_sennrich(method):
    assert measured_row(method) == TABLE_1[method]


def test_the_table_is_not_an_accident_of_one_seed():
    for seed in (1, 2):
        assert {m: measured_row(m, seed) for m in TABLE_1} == TABLE_1


def test_layer_norm_and_rms_norm_differ_only_by_centering():
    """On inputs with zero mean over the normalized dims, RMSNorm is LayerNorm (eps alike)."""
    x = torch.randn(4, 3, 8, dtype=F64)
    x = x - x.mean(-1, keepdim=True)
    ln = norms.LayerNorm(8, eps=1e-5, elementwise_affine=False, dtype=F64)
    torch.testing.assert_close(norms.RMSNorm(8, eps=1e-5, elementwise_affine=False, dtype=F64)(x), ln(x),
                               atol=1e-12, rtol=0)


def test_instance_norm_removes_each_images_contrast_and_brightness():
    """Ulyanov et al.: x_n -> a_nc x_n + b_nc per image and channel leaves InstanceNorm's output alone."""
    x = torch.rand(3, 2, 8, 8, dtype=F64)
    a, b = torch.rand(3, 2, 1, 1, dtype=F64) * 4 + 0.25, torch.randn(3, 2, 1, 1, dtype=F64)
    m = norms.InstanceNorm2d(2, eps=1e-12, dtype=F64)
    torch.testing.assert_close(m(a * x + b), m(x), atol=1e-9, rtol=0)
    bn = norms.BatchNorm2d(2, eps=1e-12, affine=False, dtype=F64)
    assert (bn(a * x + b) - bn(x)).abs().max() > 0.1  # BN keeps per-image contrast differences
