"""The invariance table of Zhang & Sennrich (2019, Table 1), measured on bnlib's layers.

The measurement lives in ``bnlib.invariance`` (the chapter prints it); here it is checked against
the paper's table, over seeds, and beside two more invariances.
"""
import pytest
import torch

from bnlib import norms
from bnlib.invariance import TABLE_1, measured_row

F64 = torch.float64


@pytest.mark.parametrize("method", TABLE_1)
def test_invariance_table_of_zhang_and_sennrich(method):
    assert measured_row(method) == TABLE_1[method]


def test_dyt_has_none_of_the_invariances():
    assert measured_row("DyT") == "✗" * 6


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
