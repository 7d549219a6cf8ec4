"""ZCA whitening (whitening, exercise 4): the reader's whitening against bnlib.whitening's, values and gradient.

    check.whitening(my_zca)   # my_zca(x, eps) -> (x_white, W), x (m, d), rows are examples

With μ the mean and Σ = (x − μ)ᵀ(x − μ)/m = D Λ Dᵀ the biased covariance, ZCA whitening is
W = D (Λ + εI)^{-1/2} Dᵀ, symmetric, and x_white = (x − μ) Wᵀ: W (Σ + εI) Wᵀ = I.
"""
from __future__ import annotations

import torch

from .. import whitening as wh
from ._common import NO_MATCH, NOT_DIFFERENTIABLE, CheckFailed, as_tensors, explain, same

__all__ = ["WHITENING_MISTAKES", "whitening"]


def _whiten(x, eps, centre=True, unbiased=False, eps_inside=True, correlation=False, rotate_back=True,
            detach=False):
    """ZCA by default; each keyword makes one of the usual mistakes."""
    s = x.detach() if detach else x
    m = x.shape[0]
    mu = s.mean(0) if centre else torch.zeros_like(s[0])  # (d,)
    sc = s - mu  # (m, d)
    cov = sc.T @ sc / (m - 1 if unbiased else m)  # (d, d)
    if correlation:
        std = cov.diagonal().sqrt()  # (d,)
        cov = cov / std[:, None] / std[None, :]  # (d, d), unit diagonal
    lam, vec = torch.linalg.eigh(cov)
    scale = (lam + eps).rsqrt() if eps_inside else 1 / (lam.sqrt() + eps)  # (d,)
    w = (vec * scale) @ vec.T if rotate_back else (vec * scale).T  # ZCA: D S Dᵀ; PCA: S Dᵀ
    return (x - mu) @ w.T, w


def _columns(x, eps):
    """Columns taken as examples: each example centred over its features, an (m, m) 'covariance'."""
    xc = x - x.mean(1, keepdim=True)  # (m, d) - (m, 1)
    lam, vec = torch.linalg.eigh(xc @ xc.T / x.shape[1])  # (m, m)
    w = (vec * (lam + eps).rsqrt()) @ vec.T  # (m, m)
    return w @ xc, w


def _transposed(x, eps):
    y, w = _whiten(x, eps)
    return w @ (x - x.mean(0)).T, w  # (d, d) @ (d, m) -> (d, m)


WHITENING_MISTAKES = {  # name: (wrong whitening, the explanation: Korean · English)
    "pca": (lambda x, eps: _whiten(x, eps, rotate_back=False),
            "출력은 백색화되었지만 W가 대칭이 아닙니다. 주성분 축으로 회전하고 크기만 맞춘 PCA 백색화 "
            "W = Λ^(-1/2) Dᵀ 입니다. ZCA는 원래 축으로 되돌립니다: W = D (Λ + εI)^(-1/2) Dᵀ. · the output is "
            "white but W is not symmetric: this is PCA whitening, W = Λ^(-1/2) Dᵀ (rotated onto the principal "
            "axes and scaled); ZCA rotates back: W = D (Λ + εI)^(-1/2) Dᵀ."),
    "no_centre": (lambda x, eps: _whiten(x, eps, centre=False),
                  "평균을 빼지 않았습니다. 공분산도 출력도 x − μ 로 구합니다. · the mean was not subtracted: "
                  "the covariance and the output both use x − μ."),
    "unbiased": (lambda x, eps: _whiten(x, eps, unbiased=True),
                 "공분산을 m−1로 나눴습니다(불편 추정). BN의 분산처럼 m으로 나눈 공분산을 씁니다. · the covariance "
                 "was divided by m−1 (unbiased); use the one divided by m, as BN does with the variance."),
    "eps_outside": (lambda x, eps: _whiten(x, eps, eps_inside=False),
                    "ε을 제곱근 밖에 더했습니다. 고윳값마다 1/sqrt(λ + ε) 여야 합니다. · eps was added outside "
                    "the square root; each eigenvalue needs 1/sqrt(λ + eps)."),
    "correlation": (lambda x, eps: _whiten(x, eps, correlation=True),
                    "공분산 대신 상관 행렬로 W를 구했습니다. 상관 행렬은 특성마다 표준편차로 나눈 뒤의 공분산이라, "
                    "나누지 않은 x − μ 에 곱하면 출력의 공분산이 단위 행렬이 되지 않습니다. · W was computed from "
                    "the correlation matrix instead of the covariance: that is the covariance after dividing "
                    "each feature by its standard deviation, so applied to x − μ it does not give the identity."),
    "columns": (_columns,
                "열을 예시로 보았습니다(W가 (m, m)입니다). 여기서는 x의 행이 예시입니다: x는 (m, d)이고 "
                "Σ = (x − μ)ᵀ(x − μ)/m 은 (d, d)입니다. · the columns were taken as examples (W is (m, m)); "
                "here the rows of x are the examples: x is (m, d) and Σ = (x − μ)ᵀ(x − μ)/m is (d, d)."),
    "transposed": (_transposed,
                   "출력이 (d, m)입니다. W @ (x − μ)ᵀ 로 곱했습니다. 행이 예시이므로 x_white = (x − μ) Wᵀ 입니다. · "
                   "the output is (d, m), W @ (x − μ)ᵀ; rows are examples, so x_white = (x − μ) Wᵀ."),
    "detached": (lambda x, eps: _whiten(x, eps, detach=True),
                 "순전파는 맞지만 기울기가 다릅니다. μ와 W를 기울기가 흐르지 않게(detach, no_grad) 구했습니다. "
                 "백색화도 BN처럼 통계를 거치는 경로까지 미분해야 합니다. · the forward pass is right but the "
                 "gradient is not: μ and W were computed without gradient (detach, no_grad); like BN, whitening "
                 "must be differentiated through its statistics."),
}


def _reference(x, eps):
    mean, cov = wh.batch_cov(x)
    w = wh.zca_matrix(cov, eps)  # (d, d)
    return (x - mean) @ w.T, w


def _rotated(reader, x, eps) -> bool:
    """White but rotated (PCA, up to the signs and order of its rows): WᵀW = W_zca² and the same Gram matrix."""
    (y, w), (ref_y, ref_w) = reader, _reference(x, eps)
    if y.shape != ref_y.shape or w.shape != ref_w.shape:
        return False
    y, w = y.detach().double(), w.detach().double()
    return (not same((w,), (ref_w,), 1e-7) and same((w.T @ w,), (ref_w @ ref_w,), 1e-6)
            and same((y @ y.T,), (ref_y @ ref_y.T,), 1e-6))


def _cases(seed: int = 0):
    """(x (m, d), eps): correlated features with offsets; the second batch has an eigenvalue near eps."""
    g = torch.Generator().manual_seed(seed)
    for m, spectrum, eps in ((40, (4.0, 2.0, 1.0, 0.5), 1e-5), (30, (9.0, 3.0, 1.0, 0.3, 0.1, 1e-5), 1e-5),
                             (50, (2.0, 1.0, 0.5), 0.1)):
        d = len(spectrum)
        rotation = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0]  # (d, d)
        z = torch.randn(m, d, generator=g, dtype=torch.float64) * torch.tensor(spectrum, dtype=torch.float64).sqrt()
        yield z @ rotation.T + 3 * torch.randn(d, generator=g, dtype=torch.float64), eps


def _gradient(fn, x, eps, dout):
    leaf = x.clone().requires_grad_()
    y = as_tensors(fn(leaf, eps))[0]
    if not y.requires_grad:
        return None
    (grad,) = torch.autograd.grad((y * dout).sum(), leaf, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def whitening(fn, seed: int = 0) -> str:
    """Check ``fn(x, eps) -> (x_white, W)`` for x (m, d) in float64 against ``bnlib.whitening``'s ZCA."""
    cases = list(_cases(seed))
    for x, eps in cases:
        m, d = x.shape
        out = as_tensors(fn(x.clone(), eps))

        def why():
            return explain(WHITENING_MISTAKES, out, lambda wrong: wrong(x, eps),
                           {"pca": lambda reader: _rotated(reader, x, eps)})

        shapes = [tuple(t.shape) for t in out]
        if shapes != [(m, d), (d, d)]:
            raise CheckFailed(f"모양이 다릅니다 · expected (x_white, W) of shapes {(m, d)} and {(d, d)} for x of "
                              f"shape {(m, d)} (got {shapes}): " + why())
        ref = _reference(x, eps)
        if not same(out, ref, 1e-7):
            raise CheckFailed(f"x_white 또는 W가 bnlib.whitening과 다릅니다 · x_white or W differs from "
                              f"bnlib.whitening's ZCA (relative difference > 1e-7, eps={eps}): " + why())
        y, w = (t.detach().double() for t in out)
        cov_eps = wh.batch_cov(x)[1] + eps * torch.eye(d, dtype=torch.float64)
        assert same((w,), (w.T,), 1e-9) and same((w @ cov_eps @ w.T,), (torch.eye(d, dtype=torch.float64),), 1e-6)
    g = torch.Generator().manual_seed(seed + 1)
    for x, eps in (cases[0], cases[2]):  # well-separated eigenvalues: eigh's backward is accurate there
        dout = torch.randn(x.shape, generator=g, dtype=torch.float64)
        grad = _gradient(fn, x, eps, dout)
        if grad is None:
            raise CheckFailed(NOT_DIFFERENTIABLE)
        ref = _gradient(_reference, x, eps, dout)
        if not same((grad,), (ref,), 1e-6):
            hit = same((grad,), (_gradient(WHITENING_MISTAKES["detached"][0], x, eps, dout),), 1e-6)
            raise CheckFailed("x에 대한 기울기가 기준과 다릅니다 · the gradient with respect to x differs from the "
                              "reference (relative difference > 1e-6): "
                              + (WHITENING_MISTAKES["detached"][1] if hit else NO_MATCH))
    return (f"통과 · passed: {len(cases)} batches (one with an eigenvalue near eps): x_white and W within 1e-7 of "
            f"bnlib.whitening's ZCA, W = Wᵀ, W (Σ + εI) Wᵀ = I within 1e-6, and the gradient through the "
            f"statistics within 1e-6")
