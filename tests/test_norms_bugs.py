"""Bugs other implementations shipped, each as a check that bnlib passes and the buggy version fails.

Every check is a function of the layer under test; it is run on bnlib's layer (it must pass) and on
a deliberately buggy reference that reproduces the shipped code (it must fail), so the test is
known to be able to catch the bug. Sources: /work/shared/reference/family.md, section 2.
"""
import pytest
import torch
from torch import nn

from bnlib import norms

F64 = torch.float64


def catches(check, buggy):
    with pytest.raises(AssertionError):
        check(buggy)


# 1. Conv BN with per-activation statistics: the Korean forks of Deep Learning from Scratch reshape
#    (N, C, H, W) to (N, C*H*W), which normalizes every (c, h, w) position on its own, and start
#    running_var at 0.
class PerActivationBN(nn.Module):
    def __init__(self, C, H, W):
        super().__init__()
        self.bn = norms.BatchNorm1d(C * H * W, dtype=F64)
        with torch.no_grad():
            self.bn.running_var.zero_()  # the forks' running_var starts at 0

    def forward(self, x):
        return self.bn(x.reshape(x.shape[0], -1)).reshape(x.shape)  # (N, C, H, W) -> (N, C*H*W) and back


def check_per_channel(bn):
    """Each channel's output is ONE affine map of its input (shared by all positions); buffers are (C,)."""
    x = torch.randn(8, 3, 4, 4, dtype=F64) + torch.linspace(-3, 3, 16, dtype=F64).view(1, 1, 4, 4)  # position offsets
    out = bn.train()(x)
    for c in range(3):
        design = torch.stack([x[:, c].flatten(), torch.ones(8 * 16, dtype=F64)], 1)  # (N*H*W, 2)
        fit = torch.linalg.lstsq(design, out[:, c].flatten().unsqueeze(1)).solution  # (2, 1) slope, offset
        assert (design @ fit - out[:, c].flatten().unsqueeze(1)).abs().max() < 1e-8
    buffers = dict(bn.named_buffers())
    assert all(b.shape == (3,) for name, b in buffers.items() if name.endswith(("running_mean", "running_var")))


def check_fresh_eval_is_nearly_identity(bn):
    """A fresh layer in eval mode: running_var = 1, so out = x / sqrt(1 + eps), not x / sqrt(eps)."""
    x = torch.randn(2, 3, 4, 4, dtype=F64)
    torch.testing.assert_close(bn.eval()(x), x / (1 + 1e-5) ** 0.5, atol=1e-12, rtol=0)


def test_conv_batch_norm_statistics_are_per_channel():
    check_per_channel(norms.BatchNorm2d(3, dtype=F64))
    check_fresh_eval_is_nearly_identity(norms.BatchNorm2d(3, dtype=F64))
    catches(check_per_channel, PerActivationBN(3, 4, 4))
    catches(check_fresh_eval_is_nearly_identity, PerActivationBN(3, 4, 4))


# 2. The unbiased variance where the formula says 1/n: labml's Weight Standardization calls
#    torch.var_mean (unbiased by default); makemore normalizes with x.var(0).
def labml_standardize(w, eps=1e-5):
    var, mean = torch.var_mean(w.flatten(1), dim=1)  # unbiased: 1/(I-1)
    return (w - mean.view(-1, 1, 1, 1)) / torch.sqrt(var.view(-1, 1, 1, 1) + eps)


def check_biased_variance(standardize):
    """The standardized weight's mean square is var / (var + eps) with the 1/I variance."""
    w = torch.randn(4, 2, 3, 3, dtype=F64)
    var = ((w - w.mean((1, 2, 3), keepdim=True)) ** 2).sum((1, 2, 3)) / 18  # 1/I, I = 2*3*3
    torch.testing.assert_close(standardize(w, 1e-5).pow(2).mean((1, 2, 3)), var / (var + 1e-5), atol=1e-12, rtol=0)


def check_layer_norm_variance(layer_norm):
    """LayerNorm's output over the normalized dims: mean square var / (var + eps), var with 1/H."""
    x = torch.randn(5, 6, dtype=F64)
    var = x.var(-1, correction=0)
    torch.testing.assert_close(layer_norm(x).pow(2).mean(-1), var / (var + 1e-5), atol=1e-12, rtol=0)


def test_variances_are_biased_where_the_formula_says_1_over_n():
    check_biased_variance(norms.standardize_weight)
    catches(check_biased_variance, labml_standardize)
    check_layer_norm_variance(norms.LayerNorm(6, elementwise_affine=False, dtype=F64))
    check_layer_norm_variance(norms.GroupNorm(1, 6, affine=False, dtype=F64))
    catches(check_layer_norm_variance, lambda x: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True)
                                                                                              + 1e-5))


# 3. eps outside the square root (NVIDIA/TransformerEngine PR #364, EleutherAI/gpt-neox PR #1342,
#    allenai/OLMo #281): x / (sqrt(mean(x^2)) + eps) instead of x / sqrt(mean(x^2) + eps).
def check_eps_inside_the_root(rms_norm):
    """At a tiny input scale eps dominates: out = x / sqrt(mean(x^2) + eps), as torch.nn.RMSNorm."""
    x = 1e-3 * torch.randn(4, 8, dtype=F64)  # mean(x^2) ~ 1e-6 < eps
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(rms_norm(x), expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(rms_norm(x), nn.RMSNorm(8, eps=1e-5, dtype=F64)(x), atol=1e-12, rtol=1e-10)


def test_rms_norm_puts_eps_inside_the_root():
    check_eps_inside_the_root(norms.RMSNorm(8, eps=1e-5, dtype=F64))
    catches(check_eps_inside_the_root, lambda x: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + 1e-5))


# 4. Dividing by rsqrt instead of multiplying (mosaicml/llm-foundry #371: the loss diverged).
def check_unit_rms_and_scale_invariance(rms_norm):
    """RMS of the output is ~1 (weight 1) and does not depend on the input's scale."""
    x = torch.randn(4, 8, dtype=F64)
    out = rms_norm(x)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(4, dtype=F64), atol=1e-4, rtol=0)
    torch.testing.assert_close(rms_norm(100 * x), out, atol=1e-6, rtol=0)


def test_rms_norm_multiplies_by_rsqrt():
    check_unit_rms_and_scale_invariance(norms.RMSNorm(8, eps=1e-8, dtype=F64))
    catches(check_unit_rms_and_scale_invariance, lambda x: x / torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-8))


# 5. Batch Renorm with gamma and beta applied before the correction (tensorpack #1065):
#    (gamma x_hat_B + beta) r + d instead of gamma (x_hat_B r + d) + beta.
def tensorpack_renorm(brn):
    def forward(x):
        r, d = brn.renorm_factors(x)
        x_hat = (x - x.mean(0)) / torch.sqrt(x.var(0, correction=0) + brn.eps)
        return (brn.weight * x_hat + brn.bias) * r + d
    return forward


def check_renorm_train_equals_eval(brn, forward=None):
    """Unclipped, Batch Renorm's training output is gamma (x - mu) / sigma + beta with the running stats."""
    x = torch.randn(6, 3, dtype=F64)
    expected = brn.weight * (x - brn.running_mean) / torch.sqrt(brn.running_var + brn.eps) + brn.bias
    torch.testing.assert_close((forward or brn.train())(x), expected, atol=1e-12, rtol=0)


def test_batch_renorm_corrects_before_gamma_and_beta():
    brn = norms.BatchRenorm1d(3, r_max=1e3, d_max=1e3, momentum=0.0, dtype=F64)
    with torch.no_grad():
        brn.weight.copy_(torch.tensor([2.0, 0.5, -1.0])), brn.bias.copy_(torch.tensor([1.0, -1.0, 3.0]))
        brn.running_mean.copy_(torch.tensor([0.3, -0.2, 1.0])), brn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
    check_renorm_train_equals_eval(brn)
    with pytest.raises(AssertionError):
        check_renorm_train_equals_eval(brn, tensorpack_renorm(brn))
