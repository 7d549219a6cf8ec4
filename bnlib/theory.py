"""Santurkar et al. (2018) Sec. 4, checked with numbers: both sides of each statement, per unit.

One BN unit j sees a batch y in R^m (m values: the batch, times positions for a convolution),
with mean mu and standard deviation sigma (biased, with eps); y_hat = (y - mu) / sigma and
z = gamma * y_hat + beta. f(z) is the rest of the network (its loss), so the loss without BN is
L(y) = f(y) and with BN L_hat(y) = f(z(y)); g = grad f at z (the paper's grad_y L = dL_hat/dz).

    bn_gradient(g, y_hat, sigma, gamma)      # Fact C.1: grad_y L_hat, the gradient through BN
    theorem41(g, y_hat, sigma, gamma)        # ||grad_y L_hat||^2 and the bound's right side
    theorem42(f, y, gamma, beta)             # the quadratic form along the gradient, both sides
    lemma45(W0, W_star)                      # the initialization distance, both sides
    hvp(f, params, v)                        # Hessian-vector product (double backward or torch.func)
    hessian_eigenvalues(model, loss_fn, x, y, k)  # top-k of the loss's Hessian, by Lanczos (bnlib.spectra)
    fisher_eigenvalues(model, x, k)               # top-k of the softmax's exact Fisher (bnlib.spectra)
    jacobian_singular_values(f, x)                # singular values of df/dx at one input (bnlib.spectra)

What the numbers say (tests/test_theory.py):
- Thm 4.1 with the coefficient 1/m on the last term (what the proof's step (8)->(9) gives) is an
  *equality* when eps = 0: grad_y L_hat = (gamma/sigma) P g with P = I - 11^T/m - y_hat y_hat^T/m,
  the orthogonal projection off span{1, y_hat} (1/sqrt(m) and y_hat/sqrt(m) are orthonormal).
  With eps > 0, ||y_hat||^2 = m rho, rho = var/(var + eps) < 1, and
  lhs = rhs - (gamma^2/sigma^2) (1 - rho)/m <g, y_hat>^2 <= rhs. The printed 1/sqrt(m) makes
  the right side smaller than the left whenever m > 1 and <g, y_hat> != 0: as printed it is false.
- Thm 4.2 is an equality when eps = 0 (the gradient lies in P's range, so P H P acts as H on it).
- Lemma 4.5 is an equality (Pythagoras: k W* is the projection of W0 on the line through W*);
  the gap lhs - ||W0 - W*||^2 is -||W*||^2 (1 - k)^2.
- torch.func cannot differentiate bnlib's BN (``BatchNormFunction`` has no ``setup_context``),
  nor a BN layer that updates running statistics in place (torch's own included); double
  backward through bnlib's BN works.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .spectra import fisher_eigenvalues, hessian_eigenvalues, jacobian_singular_values  # noqa: F401

Tensors = torch.Tensor | tuple[torch.Tensor, ...]


def bn_unit(y: torch.Tensor, gamma=1.0, beta=0.0, eps: float = 1e-5):
    """(z, y_hat, sigma) of training-mode BN; y: (m,) one unit, or (m, C) C units (sigma: () or (C,)).
    sigma = sqrt(biased variance + eps), as in ``bnlib.layers``; differentiable."""
    mu = y.mean(0)
    sigma = (y.var(0, unbiased=False) + eps).sqrt()
    y_hat = (y - mu) / sigma
    return gamma * y_hat + beta, y_hat, sigma


def bn_gradient(grad_z: torch.Tensor, y_hat: torch.Tensor, sigma, gamma) -> torch.Tensor:
    """Fact C.1: dL_hat/dy = gamma / (m sigma) * (m g - sum_k g_k - y_hat <g, y_hat>), over dim 0.

    grad_z (= g = dL_hat/dz), y_hat: (m,) or (m, C); sigma, gamma: scalars or (C,). Returns the
    shape of grad_z. Exact for any eps when sigma = sqrt(var + eps) and y_hat = (y - mu)/sigma.
    """
    if grad_z.shape != y_hat.shape:
        raise ValueError(f"expected grad_z and y_hat of the same shape (got {tuple(grad_z.shape)} "
                         f"and {tuple(y_hat.shape)})")
    m = grad_z.shape[0]
    return gamma / (m * sigma) * (m * grad_z - grad_z.sum(0) - y_hat * (grad_z * y_hat).sum(0))


fact_c1 = bn_gradient  # the paper's name


def _item(t: torch.Tensor):
    """A float for one unit (0-d), the (C,) tensor for several."""
    return t.item() if t.dim() == 0 else t


def theorem41(grad_y: torch.Tensor, y_hat: torch.Tensor, sigma, gamma, last: str = "1/m") -> dict:
    """Theorem 4.1: ||grad_y L_hat||^2 <= gamma^2/sigma^2 (||g||^2 - <1,g>^2/m - c <g, y_hat>^2).

    grad_y: g = grad_{y_j} L of the network without BN, which is dL_hat/dz_j (what arrives at
    the BN output); y_hat: (m,) one unit or (m, C); sigma, gamma: scalars or (C,).
    ``last``: the coefficient c, "1/m" (what the proof gives) or "1/sqrt(m)" (as printed).
    The left side comes from Fact C.1 (``bn_gradient``).

    With c = 1/m it is an equality at eps = 0; with eps > 0 (see the module docstring)
        lhs = scale * (plain - mean_term - (2 - rho)/m <g, y_hat>^2),   rho = ||y_hat||^2 / m.

    Returns {"lhs", "rhs", "plain": ||g||^2, "mean_term": <1,g>^2/m, "corr_term": c <g,y_hat>^2,
    "scale": gamma^2/sigma^2, "rho"}: floats for one unit, (C,) tensors for C units.
    """
    if last not in ("1/m", "1/sqrt(m)"):
        raise ValueError(f"expected last '1/m' or '1/sqrt(m)' (got {last!r})")
    m = grad_y.shape[0]
    c = 1 / m if last == "1/m" else 1 / math.sqrt(m)
    scale = torch.as_tensor(gamma, dtype=grad_y.dtype) ** 2 / torch.as_tensor(sigma, dtype=grad_y.dtype) ** 2
    plain = grad_y.square().sum(0)
    mean_term = grad_y.sum(0) ** 2 / m
    corr_term = c * (grad_y * y_hat).sum(0) ** 2
    lhs = bn_gradient(grad_y, y_hat, sigma, gamma).square().sum(0)
    rhs = scale * (plain - mean_term - corr_term)
    rho = y_hat.square().sum(0) / m
    terms = {"lhs": lhs, "rhs": rhs, "plain": plain, "mean_term": mean_term, "corr_term": corr_term,
             "scale": scale * torch.ones_like(plain), "rho": rho}
    return {k: _item(v) for k, v in terms.items()}


def hvp(f: Callable[..., torch.Tensor], params: Tensors, v: Tensors, method: str = "autograd") -> Tensors:
    """(d^2 f / d params^2) v at ``params``: a tensor, or a tuple of tensors passed as f(*params).

    ``method="autograd"``: double backward (reverse over reverse); works through custom autograd
    Functions whose backward is differentiable, such as bnlib's BN. ``"func"``: torch.func's
    forward-over-reverse ``jvp(grad(f))``; fails on autograd Functions without
    ``setup_context`` (bnlib's BN) and on in-place updates of captured buffers (BN running
    statistics in training mode). Returns the structure of ``params``, detached.
    """
    if method not in ("autograd", "func"):
        raise ValueError(f"expected method 'autograd' or 'func' (got {method!r})")
    single = isinstance(params, torch.Tensor)
    params, v = ((params,), (v,)) if single else (tuple(params), tuple(v))
    if len(params) != len(v) or any(p.shape != w.shape for p, w in zip(params, v)):
        raise ValueError(f"expected v shaped like params (got {[tuple(w.shape) for w in v]} for "
                         f"{[tuple(p.shape) for p in params]})")
    if method == "func":
        argnums = tuple(range(len(params)))
        out = torch.func.jvp(torch.func.grad(f, argnums=argnums), params, v)[1]
    else:
        ps = tuple(p.detach().requires_grad_(True) for p in params)
        grads = torch.autograd.grad(f(*ps), ps, create_graph=True)
        dot = sum((g * w).sum() for g, w in zip(grads, v) if g.requires_grad)  # <grad f, v>
        if isinstance(dot, int):  # f is linear in params: the Hessian is 0
            out = tuple(torch.zeros_like(p) for p in ps)
        else:
            hv = torch.autograd.grad(dot, ps, allow_unused=True)
            out = tuple(torch.zeros_like(p) if h is None else h for p, h in zip(ps, hv))
    out = tuple(h.detach() for h in out)
    return out[0] if single else out


def grad(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """grad f at x, detached."""
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(f(x), x)[0].detach()


def theorem42(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, gamma: float, beta: float,
              eps: float = 1e-5, method: str = "autograd") -> dict:
    """Theorem 4.2 along v = grad_y L_hat, for one unit y (m,) and f: (m,) -> scalar, the loss as
    a function of the unit's outputs (the same f after BN, z, and without BN, y):

        lhs = v^T (d^2 L_hat / dy^2) v,
        rhs = gamma^2/sigma^2 v^T H v - gamma/(m sigma^2) <g, y_hat> ||v||^2,   H = d^2 f/dz^2 at z,

    g = grad f at z. Every gradient and Hessian-vector product comes from autograd (``hvp``).
    An equality when eps = 0 (see the module docstring); with eps > 0 the two differ slightly.

    Returns {"lhs", "rhs", "curvature": gamma^2/sigma^2 v^T H v, "correction":
    gamma/(m sigma^2) <g, y_hat> ||v||^2, "g_dot_yhat": <g, y_hat>} as floats.
    """
    if y.dim() != 1:
        raise ValueError(f"expected one unit's outputs of shape (m,) (got shape {tuple(y.shape)})")
    m = y.numel()
    z, y_hat, sigma = bn_unit(y, gamma, beta, eps)
    z, y_hat, sigma = z.detach(), y_hat.detach(), sigma.item()

    def L_hat(t):
        return f(bn_unit(t, gamma, beta, eps)[0])

    v = grad(L_hat, y)
    g = grad(f, z)
    lhs = (v @ hvp(L_hat, y, v, method)).item()
    curvature = gamma ** 2 / sigma ** 2 * (v @ hvp(f, z, v, method)).item()
    correction = gamma / (m * sigma ** 2) * (g @ y_hat).item() * (v @ v).item()
    return {"lhs": lhs, "rhs": curvature - correction, "curvature": curvature, "correction": correction,
            "g_dot_yhat": (g @ y_hat).item()}


def lemma45(W0: torch.Tensor, W_star: torch.Tensor) -> dict:
    """Lemma 4.5 on flattened weights: with k = <W*, W0>/||W*||^2 (k W* is an optimum of the
    scale-invariant BN network when k > 0),

        lhs = ||W0 - k W*||^2,   rhs = ||W0 - W*||^2 - (||W*||^2 - <W*, W0>)^2 / ||W*||^2.

    The two are equal: k W* is the orthogonal projection of W0 on the line through W*.
    Returns {"k", "lhs", "rhs", "plain": ||W0 - W*||^2, "gap": lhs - plain = -||W*||^2 (1 - k)^2}
    as floats (computed in float64). Requires the lemma's assumption <W0, W*> > 0.
    """
    if W0.shape != W_star.shape:
        raise ValueError(f"expected W0 and W_star of the same shape (got {tuple(W0.shape)} and "
                         f"{tuple(W_star.shape)})")
    W0, W_star = W0.double().flatten(), W_star.double().flatten()  # (*) -> (P,)
    n2, dot = (W_star @ W_star).item(), (W_star @ W0).item()
    if not dot > 0:
        raise ValueError(f"expected <W0, W_star> > 0, the lemma's assumption (got {dot:.4g})")
    k = dot / n2
    lhs, plain = (W0 - k * W_star).square().sum().item(), (W0 - W_star).square().sum().item()
    return {"k": k, "lhs": lhs, "rhs": plain - (n2 - dot) ** 2 / n2, "plain": plain, "gap": lhs - plain}
