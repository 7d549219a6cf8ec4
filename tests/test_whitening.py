"""bnlib.whitening: PCA and ZCA whitening, stateless functions and the Whitening layer (float64 unless stated)."""
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from bnlib import whitening as wh

F64 = torch.float64


def correlated(m=400, d=6, seed=0, dtype=F64):
    """Correlated Gaussian rows with distinct variances (a toy, labelled as one): (m, d)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=dtype) + 2 * torch.eye(d, dtype=dtype)
    return torch.randn(m, d, generator=g, dtype=dtype) @ mix + 3


def max_off_identity(y):
    _, cov = wh.batch_cov(y)
    return (cov - torch.eye(cov.shape[0], dtype=cov.dtype)).abs().max().item()


@pytest.mark.parametrize("method", wh.METHODS)
def test_whitened_batch_has_identity_covariance(method):
    x = correlated()
    assert max_off_identity(x) > 1  # strongly correlated before
    assert max_off_identity(wh.whiten(x, method, eps=0)) < 1e-10
    y = wh.whiten(x, method, eps=1e-5)  # eps biases the result by about eps / smallest eigenvalue
    lam_min = torch.linalg.eigvalsh(wh.batch_cov(x)[1]).min().item()
    assert max_off_identity(y) < 2 * 1e-5 / lam_min
    assert y.mean(0).abs().max() < 1e-12


def test_batch_cov_matches_torch():
    x = correlated()
    mean, cov = wh.batch_cov(x)
    torch.testing.assert_close(mean, x.mean(0))
    torch.testing.assert_close(cov, torch.cov(x.T, correction=0))


@pytest.mark.parametrize("method", wh.METHODS)
def test_gradcheck(method):
    x = correlated(m=12, d=4).requires_grad_()
    w = torch.randn(12, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    assert gradcheck(lambda x: (wh.whiten(x, method, eps=1e-3) * w).sum(), (x,))
    assert gradcheck(lambda x: wh.whiten(x, method, eps=0), (x,))


def test_inv_sqrtm_backward_matches_eigh_autograd_and_is_finite_at_ties():
    x = correlated(m=50, d=5)
    a = wh.batch_cov(x)[1].requires_grad_()
    g = torch.randn(5, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    (ours,) = torch.autograd.grad((wh.inv_sqrtm(a) * g).sum(), a)
    lam, vec = torch.linalg.eigh(a)
    (ref,) = torch.autograd.grad(((vec * lam.rsqrt()) @ vec.T * g).sum(), a)
    torch.testing.assert_close(ours, (ref + ref.T) / 2, atol=1e-10, rtol=1e-8)
    assert gradcheck(lambda a: wh.inv_sqrtm((a + a.T) / 2), (a.detach().clone().requires_grad_(),))
    # A = c I: every eigenvalue repeated. d(A^-1/2) = -1/2 c^-3/2 dA exactly; eigh's autograd gives NaN here
    c = 4.0
    a = (c * torch.eye(3, dtype=F64)).requires_grad_()
    g = torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    (ours,) = torch.autograd.grad((wh.inv_sqrtm(a) * g).sum(), a)
    torch.testing.assert_close(ours, -0.5 * c ** -1.5 * (g + g.T) / 2)


def test_zca_is_symmetric_and_the_inverse_square_root():
    _, cov = wh.batch_cov(correlated())
    w = wh.zca_matrix(cov, eps=0)
    torch.testing.assert_close(w, w.T)
    torch.testing.assert_close(w @ cov @ w, torch.eye(6, dtype=F64))
    torch.testing.assert_close(torch.linalg.eigvalsh(w), torch.linalg.eigvalsh(cov).rsqrt().flip(0))


def test_zca_is_the_whitening_closest_to_its_input():
    """Every whitening is Q·W_zca with Q orthogonal; ZCA minimizes the mean of ||y − (x − μ)||²."""
    x = correlated()
    xc = x - x.mean(0)
    dist = lambda y: ((y - xc) ** 2).sum(1).mean().item()
    zca, pca = dist(wh.whiten(x, "zca", 0)), dist(wh.whiten(x, "pca", 0))
    assert zca < pca
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        q = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=F64))[0]
        assert zca < dist(wh.whiten(x, "zca", 0) @ q.T)


def test_pca_rows_are_ordered_components():
    x = correlated()
    _, cov = wh.batch_cov(x)
    w = wh.pca_matrix(cov, eps=0)
    lam = torch.linalg.eigvalsh(cov).flip(0)
    direction = w / w.norm(dim=1, keepdim=True)  # unit principal directions, largest first
    torch.testing.assert_close(torch.einsum("ki,ij,kj->k", direction, cov, direction), lam)


def test_one_feature_is_standardization():
    """With d = 1 whitening is BN's standardization (torch's batch_norm is the oracle)."""
    x = correlated(m=30, d=1)
    for method in wh.METHODS:
        torch.testing.assert_close(wh.whiten(x, method, eps=1e-5),
                                   F.batch_norm(x, None, None, training=True, eps=1e-5))


@pytest.mark.parametrize("method", wh.METHODS)
def test_layer_trains_on_batch_statistics_and_updates_running_estimates(method):
    layer = wh.Whitening(4, method=method, eps=0, momentum=1.0, affine=False).double()
    x = correlated(m=50, d=4)
    y = layer(x)
    assert max_off_identity(y) < 1e-10
    torch.testing.assert_close(layer.running_mean, x.mean(0))
    torch.testing.assert_close(layer.running_cov, torch.cov(x.T))  # unbiased, like BN's running_var
    assert layer.num_batches_tracked.item() == 1


def test_eval_uses_running_estimates():
    layer = wh.Whitening(4, momentum=0.1).double()
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2)
        layer.bias.normal_()
    for seed in range(5):
        layer(correlated(m=40, d=4, seed=seed))
    assert layer.running_mean.grad_fn is None and layer.running_cov.grad_fn is None
    layer.eval()
    x = correlated(m=40, d=4, seed=9)
    w = wh.zca_matrix(layer.running_cov, layer.eps)
    expected = (x - layer.running_mean) @ w.T * layer.weight + layer.bias
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer(x[:1]), expected[:1])  # one sample is fine in eval
    before = layer.running_cov.clone()
    layer(x)
    assert torch.equal(layer.running_cov, before) and layer.num_batches_tracked.item() == 5


def test_state_dict_round_trip():
    a = wh.Whitening(3, method="pca").double()
    for seed in range(3):
        a(correlated(m=20, d=3, seed=seed))
    state = a.state_dict()
    assert set(state) == {"weight", "bias", "running_mean", "running_cov", "num_batches_tracked"}
    b = wh.Whitening(3, method="pca").double()
    b.load_state_dict(state)
    a.eval(), b.eval()
    x = correlated(m=10, d=3, seed=7)
    torch.testing.assert_close(a(x), b(x))


def test_4d_input_whitens_channels():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 3, 5, 5, generator=g, dtype=F64)
    x = x + 0.8 * x[:, :1]  # correlate the channels
    y = wh.Whitening(3, eps=0, affine=False).double()(x)
    assert y.shape == x.shape
    assert max_off_identity(y.transpose(0, 1).reshape(3, -1).T) < 1e-10  # (N, C, H, W) -> (N*H*W, C)


def test_float32_layer_keeps_dtype_and_gradients_flow():
    layer = wh.Whitening(4)
    x = correlated(m=32, d=4, dtype=torch.float32).requires_grad_()
    y = layer(x)
    assert y.dtype == torch.float32
    y.pow(3).sum().backward()
    assert torch.isfinite(x.grad).all() and layer.weight.grad is not None


def test_clear_errors():
    layer = wh.Whitening(4)
    with pytest.raises(ValueError, match=r"expected more than 1 value per feature.*\(got input of shape \(1, 4\)\)"):
        layer(torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"expected more than 4 samples .* eps=0 \(got 3\)"):
        wh.Whitening(4, eps=0)(torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 4D input \(got 3D input\)"):
        layer(torch.randn(5, 4, 2))
    with pytest.raises(ValueError, match=r"expected 4 features in dim 1 \(got input of shape \(5, 3\)\)"):
        layer(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"expected method 'pca' or 'zca' \(got 'cholesky'\)"):
        wh.Whitening(4, method="cholesky")
    with pytest.raises(ValueError, match=r"expected eps >= 0 \(got -1"):
        wh.whiten(torch.randn(5, 4), eps=-1.0)
    with pytest.raises(ValueError, match=r"expected at least 2 samples .* \(got m=1\)"):
        wh.whiten(torch.randn(1, 4))
    singular = torch.randn(3, 5, dtype=F64)  # 3 samples, 5 features: covariance of rank 2
    for method in wh.METHODS:
        with pytest.raises(ValueError, match=r"expected a positive definite covariance.*\(got smallest eigenvalue"):
            wh.whiten(singular, method, eps=0)
    assert torch.isfinite(wh.whiten(singular, "zca", eps=1e-3)).all()  # eps makes it invertible
