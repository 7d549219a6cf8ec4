"""bnlib.manual against autograd and finite differences, all in float64.

CS231n's yardstick for relative errors: > 1e-2 wrong, < 1e-7 good; in float64 the analytic
backward agrees with autograd to about 1e-12 and with central differences to about 1e-8.
"""
import numpy as np
import pytest
import torch

from bnlib import manual
from bnlib.layers import BatchNormFunction
from bnlib.utils import rel_error

SHAPES = [(2, 1), (4, 5), (16, 3), (64, 8)]


def make(shape, seed, scale=5.0, shift=12.0):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape) + shift  # non-centred, like PyTorch's own BN tests
    gamma = rng.standard_normal(shape[1])
    beta = rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    return x, gamma, beta, dout


def autograd_reference(x, gamma, beta, dout, eps):
    """dx, dgamma, dbeta of torch.nn.functional.batch_norm in training mode."""
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", [1e-5, 1e-4])
def test_forward_and_backward_match_autograd(shape, eps):
    """Forward, staged and fused backward agree with autograd to < 1e-8 relative error (seen: ~1e-12)."""
    x, gamma, beta, dout = make(shape, seed=231)
    out, cache = manual.batchnorm_forward(x, gamma, beta, eps)
    ref_out, ref_dx, ref_dgamma, ref_dbeta = autograd_reference(x, gamma, beta, dout, eps)
    assert rel_error(out, ref_out) < 1e-8
    for backward in (manual.batchnorm_backward, manual.batchnorm_backward_fused):
        dx, dgamma, dbeta = backward(dout, cache)
        assert rel_error(dx, ref_dx) < 1e-8, backward.__name__
        assert rel_error(dgamma, ref_dgamma) < 1e-8, backward.__name__
        assert rel_error(dbeta, ref_dbeta) < 1e-8, backward.__name__


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_staged_equals_fused(shape):
    x, gamma, beta, dout = make(shape, seed=0)
    _, cache = manual.batchnorm_forward(x, gamma, beta)
    staged, fused = manual.batchnorm_backward(dout, cache), manual.batchnorm_backward_fused(dout, cache)
    for a, b in zip(staged, fused):
        assert rel_error(a, b) < 1e-10


@pytest.mark.parametrize("backward", [manual.batchnorm_backward, manual.batchnorm_backward_fused])
def test_numerical_gradient(backward):
    """Central differences, h = 1e-5, float64: relative errors ~1e-9 here (CS231n: <= 1e-8 is a pass)."""
    x, gamma, beta, dout = make((4, 5), seed=231)
    _, cache = manual.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = backward(dout, cache)
    dx_num = manual.numerical_gradient(lambda a: manual.batchnorm_forward(a, gamma, beta)[0], x, dout)
    dgamma_num = manual.numerical_gradient(lambda a: manual.batchnorm_forward(x, a, beta)[0], gamma, dout)
    dbeta_num = manual.numerical_gradient(lambda a: manual.batchnorm_forward(x, gamma, a)[0], beta, dout)
    errors = {"dx": rel_error(dx, dx_num), "dgamma": rel_error(dgamma, dgamma_num),
              "dbeta": rel_error(dbeta, dbeta_num)}
    print(backward.__name__, {k: f"{v:.1e}" for k, v in errors.items()})
    assert max(errors.values()) < 1e-7, errors


def test_numerical_gradient_large_noncentred_input():
    """PyTorch's BN gradient input: arange values (large, not centred), eps = 1e-4."""
    x = np.arange(4 * 5, dtype=np.float64).reshape(4, 5) ** 1.5
    gamma, beta = np.arange(1.0, 6.0), np.arange(5.0)
    dout = np.random.default_rng(0).standard_normal((4, 5))
    _, cache = manual.batchnorm_forward(x, gamma, beta, eps=1e-4)
    dx, _, _ = manual.batchnorm_backward_fused(dout, cache)
    dx_num = manual.numerical_gradient(lambda a: manual.batchnorm_forward(a, gamma, beta, eps=1e-4)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-7
    assert np.array_equal(x, np.arange(4 * 5, dtype=np.float64).reshape(4, 5) ** 1.5)  # x restored


def test_numerical_gradient_refuses_float32():
    x = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="expected a float64 array"):
        manual.numerical_gradient(lambda a: a, x, np.ones((2, 3)))


def test_forward_normalizes():
    """gamma = 1, beta = 0: per-feature mean 0 and biased variance var / (var + eps)."""
    x, _, _, _ = make((64, 8), seed=1, scale=10.0, shift=5.0)
    eps = 1e-5
    out, _ = manual.batchnorm_forward(x, np.ones(8), np.zeros(8), eps)
    var = x.var(axis=0)
    assert np.abs(out.mean(axis=0)).max() < 1e-12
    assert rel_error(out.var(axis=0), var / (var + eps)) < 1e-12


def test_backward_invariants():
    """Per feature: sum(dx) = 0 and sum(dx * x_hat) = 0; dbeta = sum(dout); dgamma = sum(dout * x_hat).

    The second holds exactly only for eps = 0 (eps > 0 leaves a fraction eps / (var + eps)).
    """
    x, gamma, beta, dout = make((32, 6), seed=2)
    _, cache = manual.batchnorm_forward(x, gamma, beta, eps=0.0)
    x_hat = cache[-1]
    dx, dgamma, dbeta = manual.batchnorm_backward(dout, cache)
    scale = np.abs(dout).sum()
    assert np.abs(dx.sum(axis=0)).max() < 1e-10 * scale
    assert np.abs((dx * x_hat).sum(axis=0)).max() < 1e-10 * scale
    assert np.allclose(dbeta, dout.sum(axis=0)) and np.allclose(dgamma, (dout * x_hat).sum(axis=0))


def test_float32_large_mean_stays_finite():
    """Mean 1e4, spread 0.01, float32: the two-pass variance is right (E[x^2] - E[x]^2 gives 0)."""
    rng = np.random.default_rng(3)
    x = (1e4 + 0.01 * rng.standard_normal((256, 4))).astype(np.float32)
    out, cache = manual.batchnorm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32))
    var = cache[7]
    assert rel_error(var, x.astype(np.float64).var(axis=0)) < 1e-2
    assert np.isfinite(out).all() and np.abs(out.std(axis=0) - 1).max() < 0.05


def test_constant_feature_gives_beta():
    x = np.full((8, 3), 1e4 + 0.1)
    gamma, beta = np.array([2.0, 3.0, 4.0]), np.array([0.5, -1.0, 0.0])
    out, cache = manual.batchnorm_forward(x, gamma, beta)
    dx, _, _ = manual.batchnorm_backward_fused(np.ones_like(x), cache)
    assert np.allclose(out, beta) and np.isfinite(dx).all()


@pytest.mark.parametrize("shape", [(4, 5), (16, 3)])
def test_layers_function_matches_manual(shape):
    """bnlib.layers.BatchNormFunction (the torch twin) computes the same gradients as the NumPy code."""
    x, gamma, beta, dout = make(shape, seed=4)
    _, cache = manual.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = manual.batchnorm_backward_fused(dout, cache)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out, _, _ = BatchNormFunction.apply(xt, gt, bt, None, None, 1e-5)
    out.backward(torch.tensor(dout))
    assert rel_error(xt.grad, dx) < 1e-8
    assert rel_error(gt.grad, dgamma) < 1e-8
    assert rel_error(bt.grad, dbeta) < 1e-8
