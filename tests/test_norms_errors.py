"""Bad arguments and bad input get a clear ValueError/TypeError: "expected X (got Y)"."""
import warnings

import pytest
import torch

from bnlib import norms

BAD_INPUT = [  # (layer, input, message)
    (norms.LayerNorm(4), torch.randn(2, 3), r"expected input of shape \(\*, 4\) \(got input of shape \(2, 3\)\)"),
    (norms.LayerNorm((3, 4)), torch.randn(4), r"expected input of shape \(\*, 3, 4\) \(got input of shape \(4,\)\)"),
    (norms.RMSNorm(4), torch.randn(2, 5), r"expected input of shape \(\*, 4\) \(got input of shape \(2, 5\)\)"),
    (norms.GroupNorm(2, 4), torch.randn(2, 6, 3), r"expected input with 4 channels \(got 6 channels\)"),
    (norms.GroupNorm(2, 4), torch.randn(4), r"expected input of shape \(N, C, \*\) with at least 2 dims \(got 1D"),
    (norms.InstanceNorm1d(3), torch.randn(2, 3, 4, 4), r"expected 2D or 3D input \(got 4D input\)"),
    (norms.InstanceNorm2d(3), torch.randn(2, 3), r"expected 3D or 4D input \(got 2D input\)"),
    (norms.InstanceNorm1d(3), torch.randn(2, 3, 1), r"expected more than 1 spatial element per channel"),
    (norms.InstanceNorm2d(3, affine=True), torch.randn(2, 5, 4, 4), r"expected input with 3 channels \(got 5"),
    (norms.InstanceNorm1d(3, track_running_stats=True), torch.randn(2, 5, 4), r"expected input with 3 channels"),
    (norms.BatchRenorm1d(3), torch.randn(2, 3, 4, 4), r"expected 2D or 3D input \(got 4D input\)"),
    (norms.BatchRenorm2d(3), torch.randn(1, 3, 1, 1), r"expected more than 1 value per channel when training"),
    (norms.WSConv2d(3, 4, 3), torch.randn(2, 5, 8, 8), r"expected input with 3 channels \(got 5 channels\)"),
    (norms.WSConv2d(3, 4, 3), torch.randn(3, 8), r"expected 3D or 4D input \(got 2D input\)"),
    (norms.WNLinear(5, 2), torch.randn(3, 4), r"expected input of shape \(\*, 5\) \(got \(3, 4\)\)"),
    (norms.WNConv2d(3, 2, 3), torch.randn(2, 4, 5, 5), r"expected input with 3 channels \(got 4 channels\)"),
    (norms.MeanOnlyBatchNorm2d(3), torch.randn(2, 3, 4), r"expected 4D input \(got 3D input\)"),
    (norms.MeanOnlyBatchNorm1d(3), torch.randn(2, 4), r"expected input with 3 channels \(got 4 channels\)"),
    (norms.DyT(4), torch.randn(2, 3), r"expected input of shape \(\*, C\) with C = 4 \(got input of shape \(2, 3\)\)"),
    (norms.DyT(4, channels_last=False), torch.randn(2, 3, 4), r"expected input of shape \(N, C, \*\) with C = 4"),
]


@pytest.mark.parametrize("layer, x, message", BAD_INPUT, ids=[f"{type(m).__name__}-{i}" for i, (m, _, _) in
                                                              enumerate(BAD_INPUT)])
def test_bad_input_says_what_was_expected(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


@pytest.mark.parametrize("layer", [norms.LayerNorm(3), norms.GroupNorm(1, 3), norms.InstanceNorm1d(3),
                                   norms.RMSNorm(3), norms.BatchRenorm1d(3), norms.MeanOnlyBatchNorm1d(3),
                                   norms.DyT(3)])
def test_integer_input_is_rejected(layer):
    with pytest.raises(TypeError, match=r"expected floating-point input \(got torch.int64 input\)"):
        layer(torch.ones(2, 3, 4, dtype=torch.long) if isinstance(layer, norms.InstanceNorm1d)
              else torch.ones(2, 3, dtype=torch.long))


BAD_ARGUMENTS = [  # (constructor, message)
    (lambda: norms.GroupNorm(3, 4),
     r"expected num_channels divisible by num_groups \(got num_channels=4, num_groups=3\)"),
    (lambda: norms.GroupNorm(0, 4), r"expected num_groups to be a positive int \(got 0\)"),
    (lambda: norms.GroupNorm(2, 4.0), r"expected num_channels to be a positive int \(got 4.0\)"),
    (lambda: norms.LayerNorm(0), r"expected normalized_shape to be a positive int or a non-empty sequence"),
    (lambda: norms.LayerNorm(()), r"expected normalized_shape .* \(got \(\)\)"),
    (lambda: norms.RMSNorm((3, -1)), r"expected normalized_shape .* \(got \(3, -1\)\)"),
    (lambda: norms.LayerNorm(4, eps=-1.0), r"expected eps >= 0 \(got -1.0\)"),
    (lambda: norms.RMSNorm(4, eps=-1e-6), r"expected eps >= 0 \(got -1e-06\)"),
    (lambda: norms.InstanceNorm2d(0), r"expected num_features to be a positive int \(got 0\)"),
    (lambda: norms.InstanceNorm1d(3, momentum=2.0), r"expected momentum in \[0, 1\] or None \(got 2.0\)"),
    (lambda: norms.MeanOnlyBatchNorm1d(True), r"expected num_features to be a positive int \(got True\)"),
    (lambda: norms.DyT(-2), r"expected num_features to be a positive int \(got -2\)"),
    (lambda: norms.WSConv2d(3, 4, 3, eps=-1.0), r"expected eps >= 0 \(got -1.0\)"),
]


@pytest.mark.parametrize("make, message", BAD_ARGUMENTS, ids=[str(i) for i in range(len(BAD_ARGUMENTS))])
def test_bad_arguments_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_instance_norm_without_affine_warns_on_a_channel_mismatch_as_torch():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = norms.InstanceNorm1d(3)(torch.randn(2, 5, 4))  # num_features is unused: torch warns, not raises
    assert out.shape == (2, 5, 4) and any("num_features is not used" in str(w.message) for w in caught)


def test_weight_norm_init_needs_two_values_per_unit():
    with pytest.raises(ValueError, match=r"expected more than 1 value per unit to initialize from"):
        norms.WNLinear(3, 2).init_from_data(torch.randn(1, 3))
