r"""Whitening: decorrelate the features of a mini-batch and give each unit variance (PCA and ZCA).

For a mini-batch x of shape (m, d) with mean μ and (biased, BN-style) covariance

$$\Sigma = \tfrac{1}{m}(x-\mu)^\top(x-\mu) + \epsilon I = D\,\Lambda\,D^\top$$

(eigendecomposition by ``torch.linalg.eigh``), a whitening matrix W makes y = (x − μ) Wᵀ have
covariance I (exactly when ε = 0):

- PCA whitening: W = Λ^{-1/2} Dᵀ, rows ordered by decreasing eigenvalue (rotate, then scale);
- ZCA whitening: W = D Λ^{-1/2} Dᵀ = Σ^{-1/2} (rotate back): the symmetric whitening matrix,
  the one that keeps y closest to x (Decorrelated BN, Huang et al. 2018).

Stateless: ``batch_cov``, ``inv_sqrtm``, ``pca_matrix``, ``zca_matrix``, ``whitening_matrix``, ``whiten``.
Module: ``Whitening(num_features, method="zca", eps=1e-5, momentum=0.1, affine=True)``.

Backward. ZCA goes through ``inv_sqrtm``, whose backward is the Daleckii–Krein formula with the
divided differences of f(λ) = λ^{-1/2} in closed form, −1/(√λᵢ√λⱼ(√λᵢ+√λⱼ)): it never divides
by λᵢ − λⱼ, so it stays finite when eigenvalues coincide (autograd through ``eigh`` gives NaN there).
PCA needs the eigenvectors themselves; their gradient has 1/(λᵢ − λⱼ) terms and blows up when two
eigenvalues are close.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["METHODS", "batch_cov", "inv_sqrtm", "pca_matrix", "zca_matrix", "whitening_matrix",
           "whiten", "Whitening"]

METHODS = ("pca", "zca")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"expected method 'pca' or 'zca' (got {method!r})")


def _check_eps(eps: float) -> None:
    if not eps >= 0:
        raise ValueError(f"expected eps >= 0 (got {eps})")


def batch_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(μ, Σ) of the rows of x: μ = mean, Σ = (1/m)(x − μ)ᵀ(x − μ), the biased estimate BN uses.

    Shape: x (m, d) with m ≥ 2 → μ (d,), Σ (d, d). Its rank is at most m − 1.
    """
    if x.dim() != 2:
        raise ValueError(f"expected a 2D batch of shape (m, d) (got {x.dim()}D, shape {tuple(x.shape)})")
    m = x.shape[0]
    if m < 2:
        raise ValueError(f"expected at least 2 samples to estimate a covariance (got m={m})")
    mean = x.mean(0)
    xc = x - mean
    return mean, xc.T @ xc / m


def _eigh(cov: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of cov + eps·I; ValueError unless positive definite."""
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"expected a square covariance matrix (got shape {tuple(cov.shape)})")
    _check_eps(eps)
    d = cov.shape[0]
    a = cov + eps * torch.eye(d, dtype=cov.dtype, device=cov.device)
    lam, vec = torch.linalg.eigh(a)
    _check_positive(lam, strict=eps == 0)
    return lam, vec


def _check_positive(lam: torch.Tensor, strict: bool = True) -> None:
    """Smallest eigenvalue > 0, and above rounding noise (λ_max · d · machine epsilon) if strict."""
    tol = lam.detach().abs().max() * len(lam) * torch.finfo(lam.dtype).eps if strict else 0.0
    smallest = lam.detach().min()
    if not smallest > tol:
        raise ValueError("expected a positive definite covariance + eps·I (got smallest eigenvalue "
                         f"{smallest.item():.3g}): use a larger eps, or more samples than features")


class _InvSqrtm(torch.autograd.Function):
    """A^{-1/2} = D Λ^{-1/2} Dᵀ for symmetric positive definite A, with a gap-free backward."""

    @staticmethod
    def forward(ctx, a, strict=True):
        lam, vec = torch.linalg.eigh(a)
        _check_positive(lam, strict)
        ctx.save_for_backward(lam, vec)
        return (vec * lam.rsqrt()) @ vec.T  # D diag(λ^-1/2) Dᵀ

    @staticmethod
    def backward(ctx, grad):
        lam, vec = ctx.saved_tensors
        s = lam.sqrt()
        # divided differences (f(λi) − f(λj)) / (λi − λj) of f = λ^-1/2, and f'(λi) on the diagonal
        k = -1.0 / (s[:, None] * s[None, :] * (s[:, None] + s[None, :]))  # (d, d)
        g = vec.T @ ((grad + grad.T) / 2) @ vec  # the gradient in the eigenbasis, symmetrized
        return vec @ (g * k) @ vec.T, None


def inv_sqrtm(a: torch.Tensor) -> torch.Tensor:
    r"""$A^{-1/2}$ of a symmetric positive definite matrix (d, d), differentiable.

    The backward, $\bar A = D\,[(D^\top \bar W_{\rm sym} D) \circ K]\,D^\top$ with
    $K_{ij} = -1/(\sqrt{\lambda_i}\sqrt{\lambda_j}(\sqrt{\lambda_i}+\sqrt{\lambda_j}))$, has no
    1/(λᵢ − λⱼ) term: it is exact even for repeated eigenvalues.
    """
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square matrix (got shape {tuple(a.shape)})")
    return _InvSqrtm.apply(a)


def zca_matrix(cov: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """ZCA whitening matrix W = (Σ + εI)^{-1/2}, symmetric. Shape: (d, d) → (d, d)."""
    _check_eps(eps)
    d = cov.shape[-1]
    if cov.dim() != 2 or cov.shape[0] != d:
        raise ValueError(f"expected a square covariance matrix (got shape {tuple(cov.shape)})")
    return _InvSqrtm.apply(cov + eps * torch.eye(d, dtype=cov.dtype, device=cov.device), eps == 0)


def pca_matrix(cov: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """PCA whitening matrix W = Λ^{-1/2} Dᵀ, row k = k-th largest component. Shape: (d, d) → (d, d).

    Eigenvectors are defined only up to sign (and up to rotation within repeated eigenvalues):
    ``eigh`` picks one, and which one can change from batch to batch.
    """
    lam, vec = _eigh(cov, eps)
    lam, vec = lam.flip(0), vec.flip(1)  # descending: the first row is the top principal component
    return (vec * lam.rsqrt()).T  # Λ^-1/2 Dᵀ


def whitening_matrix(cov: torch.Tensor, method: str = "zca", eps: float = 1e-5) -> torch.Tensor:
    """``zca_matrix`` or ``pca_matrix`` by name."""
    _check_method(method)
    return zca_matrix(cov, eps) if method == "zca" else pca_matrix(cov, eps)


def whiten(x: torch.Tensor, method: str = "zca", eps: float = 1e-5) -> torch.Tensor:
    """Whiten a batch with its own statistics: y = (x − μ) Wᵀ. Shape: (m, d) → (m, d)."""
    _check_method(method)
    mean, cov = batch_cov(x)
    return (x - mean) @ whitening_matrix(cov, method, eps).T


class Whitening(nn.Module):
    r"""Batch whitening layer: BN's per-feature standardization replaced by PCA or ZCA whitening.

    Training mode: whitens each mini-batch with its own mean and covariance (gradients flow through
    both), and updates ``running_mean`` and ``running_cov`` (unbiased, ×m/(m−1), as BN's running_var)
    as exponential moving averages under ``torch.no_grad``. Eval mode: the whitening matrix comes
    from the running estimates, so the layer is a fixed affine map. ``affine``: per-feature γ
    (``weight``) and β (``bias``) after whitening, as in BN. The eigendecomposition runs in float64.

    Shape: (N, C) → (N, C), or (N, C, H, W) → (N, C, H, W) with statistics over N, H, W.
    """

    def __init__(self, num_features: int, method: str = "zca", eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True):
        super().__init__()
        _check_method(method)
        _check_eps(eps)
        if not 0 <= momentum <= 1:
            raise ValueError(f"expected 0 <= momentum <= 1 (got {momentum})")
        self.num_features, self.method, self.eps = num_features, method, eps
        self.momentum, self.affine = momentum, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_cov", torch.eye(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, method={self.method!r}, eps={self.eps}, "
                f"momentum={self.momentum}, affine={self.affine}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input (got {x.dim()}D input)")
        C = self.num_features
        if x.shape[1] != C:
            raise ValueError(f"expected {C} features in dim 1 (got input of shape {tuple(x.shape)})")
        flat = x if x.dim() == 2 else x.transpose(0, 1).reshape(C, -1).T  # (N, C, H, W) -> (N*H*W, C)
        if self.training:
            m = flat.shape[0]
            if m < 2:
                raise ValueError(f"expected more than 1 value per feature in training mode "
                                 f"(got input of shape {tuple(x.shape)})")
            if self.eps == 0 and m <= C:
                raise ValueError(f"expected more than {C} samples to whiten {C} features with eps=0 "
                                 f"(got {m}): the batch covariance has rank at most {m - 1}")
            mean, cov = batch_cov(flat)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_cov.lerp_(cov.detach() * (m / (m - 1)), self.momentum)
                self.num_batches_tracked += 1
        else:
            mean, cov = self.running_mean, self.running_cov
        w = whitening_matrix(cov.double(), self.method, self.eps).to(x.dtype)  # (C, C)
        y = (flat - mean) @ w.T
        if self.affine:
            y = y * self.weight + self.bias
        if x.dim() == 4:
            N, _, H, W = x.shape
            y = y.T.reshape(C, N, H, W).transpose(0, 1)  # (N*H*W, C) -> (N, C, H, W)
        return y
