"""Santurkar et al. (2018) Sec. 4, checked with numbers: both sides of each statement, per unit.

One BN unit j sees a batch y in R^m (m values: the batch, times positions for a convolution),
with mean mu and standard deviation sigma (biased, with eps); y_hat = (y - mu) / sigma and
z = gamma * y_hat + beta. f(z) is the rest of the network (its loss), so the loss without BN is
L(y) = f(y) and with BN L_hat(y) = f(z(y)); g = grad f at z (the paper's grad_y L = dL_hat/dz).

    fact_c1(g, y_hat, sigma, gamma)          # grad_y L_hat, the gradient through BN
    theorem41(g, y_hat, sigma, gamma)        # ||grad_y L_hat||^2 and the bound's right side
    theorem42(f, y, gamma, beta)             # the quadratic form along the gradient, both sides
    lemma45(W0, W_star)                      # the initialization distance, both sides
    hvp(f, x, v)                             # Hessian-vector product by double backward
"""
from __future__ import annotations

import math
from typing import Callable

import torch


def bn_unit(y: torch.Tensor, gamma: float, beta: float, eps: float = 1e-5):
    """(z, y_hat, sigma) of one unit; y: (m,). sigma = sqrt(biased variance + eps)."""
    mu = y.mean()
    sigma = (y.var(unbiased=False) + eps).sqrt()
    y_hat = (y - mu) / sigma
    return gamma * y_hat + beta, y_hat, sigma


def fact_c1(g: torch.Tensor, y_hat: torch.Tensor, sigma, gamma) -> torch.Tensor:
    """Fact C.1: dL_hat/dy = gamma / (m sigma) * (m g - sum(g) - y_hat <g, y_hat>); all (m,)."""
    m = g.numel()
    return gamma / (m * sigma) * (m * g - g.sum() - y_hat * (g @ y_hat))


def theorem41(g: torch.Tensor, y_hat: torch.Tensor, sigma, gamma, last: str = "1/m") -> dict:
    """Theorem 4.1: ||grad_y L_hat||^2 <= gamma^2/sigma^2 (||g||^2 - <1,g>^2/m - c <g, y_hat>^2).

    ``last``: the coefficient c, "1/m" (what the proof gives) or "1/sqrt(m)" (as printed).
    Returns {"lhs", "rhs", "plain": ||g||^2, "mean_term": <1,g>^2/m, "corr_term": c <g,y_hat>^2,
    "scale": gamma^2/sigma^2}.
    """
    if last not in ("1/m", "1/sqrt(m)"):
        raise ValueError(f"expected last '1/m' or '1/sqrt(m)' (got {last!r})")
    m = g.numel()
    c = 1 / m if last == "1/m" else 1 / math.sqrt(m)
    scale = float(gamma) ** 2 / float(sigma) ** 2
    plain, mean_term, corr_term = (g @ g).item(), g.sum().item() ** 2 / m, c * (g @ y_hat).item() ** 2
    lhs = fact_c1(g, y_hat, sigma, gamma).pow(2).sum().item()
    return {"lhs": lhs, "rhs": scale * (plain - mean_term - corr_term), "plain": plain, "mean_term": mean_term,
            "corr_term": corr_term, "scale": scale}


def hvp(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(d^2 f / dx^2) v at x by double backward (works through custom autograd Functions with a
    differentiable backward, such as bnlib's BN)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x, create_graph=True)
    (out,) = torch.autograd.grad(grad, x, grad_outputs=v)
    return out.detach()


def grad(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(f(x), x)[0].detach()


def theorem42(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, gamma: float, beta: float,
              eps: float = 1e-5) -> dict:
    """Theorem 4.2 along v = grad_y L_hat: lhs = v^T (d^2 L_hat/dy^2) v and
    rhs = gamma^2/sigma^2 v^T H v - gamma/(m sigma^2) <g, y_hat> ||v||^2, with H = d^2 f/dz^2 at z.

    f: the loss as a function of the unit's BN output z (m,) -> scalar.
    Returns {"lhs", "rhs", "curvature": gamma^2/sigma^2 v^T H v, "correction", "g_dot_yhat"}.
    """
    m = y.numel()
    z, y_hat, sigma = bn_unit(y, gamma, beta, eps)

    def L_hat(t):
        return f(bn_unit(t, gamma, beta, eps)[0])

    v = grad(L_hat, y)
    g = grad(f, z)
    lhs = (v @ hvp(L_hat, y, v)).item()
    curvature = gamma ** 2 / sigma.item() ** 2 * (v @ hvp(f, z, v)).item()
    correction = gamma / (m * sigma.item() ** 2) * (g @ y_hat).item() * (v @ v).item()
    return {"lhs": lhs, "rhs": curvature - correction, "curvature": curvature, "correction": correction,
            "g_dot_yhat": (g @ y_hat).item()}


def lemma45(W0: torch.Tensor, W_star: torch.Tensor) -> dict:
    """Lemma 4.5: with k = <W*, W0>/||W*||^2 (k W* is an optimum of the scale-invariant BN network),
    lhs = ||W0 - k W*||^2 and rhs = ||W0 - W*||^2 - (||W*||^2 - <W*, W0>)^2 / ||W*||^2."""
    W0, W_star = W0.double().flatten(), W_star.double().flatten()
    n2, dot = (W_star @ W_star).item(), (W_star @ W0).item()
    k = dot / n2
    return {"k": k, "lhs": (W0 - k * W_star).pow(2).sum().item(), "plain": (W0 - W_star).pow(2).sum().item(),
            "rhs": (W0 - W_star).pow(2).sum().item() - (n2 - dot) ** 2 / n2}
