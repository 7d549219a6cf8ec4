"""Hessian and Fisher spectra by Lanczos, and Jacobian singular values, never forming the matrices.

    hessian_eigenvalues(model, loss_fn, x, y, k=5)       # (k,) the top of the loss's Hessian, descending
    hessian_eigenvalues(..., return_vectors=True)         # ((k,), (P, k) orthonormal eigenvector columns)
    gradient_share(model, loss_fn, x, y, k=10)            # ||V^T g||^2 / ||g||^2: g in the top-k eigenspace
    hessian_density(model, loss_fn, x, y, probes=4)       # stochastic Lanczos quadrature: nodes, weights
    smoothed_density(nodes, weights, t, sigma)            # the SLQ density on a grid t
    fisher_eigenvalues(model, x, k=1)                     # (k,) the top of the softmax's exact Fisher
    jacobian_singular_values(f, x)                        # (min(out, in),) of df/dx at one input, descending
    lanczos(hessian_operator(model, loss_fn, x, y), k)    # the engine: residuals, every Ritz value

P counts the parameters that require grad; a (P,) vector is all of them flattened and concatenated
in the order of ``model.parameters()`` (``as_parameters`` splits one back). Results are float64 on
the CPU, whatever the model's dtype.

What is computed, and what it costs (N examples in x):
- Hessian of loss_fn(model(x), y) in the model's current mode (train mode: BN uses the batch's
  statistics and the Hessian includes that coupling; eval mode: the running statistics, constant).
  One forward and one backward with create_graph, then one backward of that graph per product
  (double backward, as ``theory.hvp``, which rebuilds the graph per product; torch.func cannot
  differentiate bnlib's BN, nor a BN layer that updates its running statistics).
- Fisher of the softmax's predictive distribution, exact, as the expectation over labels drawn
  from it (no sampling): F = (1/N) sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n, J_n = dz_n/dtheta
  (C, P), p_n = softmax(z_n). In train mode z_n depends on the whole batch through BN, and J_n
  includes it. F v is two backward passes: J v by the double-backward trick (J^T r is linear in
  r), then J^T (Lambda J v). likelihood="gaussian": F = (1/N) sum_n J_n^T J_n, the FIM of a
  regression with linear outputs (Karakida et al.).
- Lanczos: full reorthogonalization in float64 on the Krylov basis, from a start block drawn
  from ``generator`` (None: seed 0), so results are deterministic. One start vector (block=1)
  sees one copy of an exactly repeated eigenvalue (a linear map with C outputs has the Hessian
  I_C (x) X^T X / n) until rounding brings in the next, some steps later, and small residuals do
  not show that a copy is missing; block=b finds up to b copies.
- Nothing changes: every tool works on a deep copy of the model (parameters, .grad, BN running
  statistics, training flags and a layer's own torch.Generator stay as they were), runs its
  forward once (dropout or noisy BN draw one noise: the operator is one fixed symmetric matrix),
  and restores the global RNG state.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, NamedTuple

import torch
from torch import nn

from .measure import _rng_state, _set_rng_state

__all__ = ["Operator", "hessian_operator", "fisher_operator", "lanczos", "hessian_eigenvalues",
           "fisher_eigenvalues", "gradient_share", "hessian_density", "smoothed_density",
           "jacobian_singular_values", "as_parameters"]

D = torch.float64
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Operator(NamedTuple):
    """A symmetric (dim, dim) matrix by its products, matvec((dim,) float64) -> (dim,); grad (dim,), loss."""
    matvec: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    grad: torch.Tensor | None = None
    loss: float | None = None


def _flat(tensors, params) -> torch.Tensor:
    """(P,) float64 on the CPU: tensors shaped like params (None: zeros), flattened, concatenated."""
    return torch.cat([(torch.zeros_like(p) if t is None else t).detach().reshape(-1).to("cpu", D)  # -> (p.numel(),)
                      for t, p in zip(tensors, params)])


def _split(v: torch.Tensor, params, cast: bool = True) -> list[torch.Tensor]:
    """(P,) -> one tensor shaped like each parameter (in its dtype and device when cast)."""
    out, offset = [], 0
    for p in params:
        piece = v[offset:offset + p.numel()].view(p.shape)  # (p.numel(),) -> p.shape
        out.append(piece.to(p.device, p.dtype) if cast else piece)
        offset += p.numel()
    return out


def as_parameters(model: nn.Module, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """{name: the entries of v (P,) that belong to that parameter, shaped like it}."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    P = sum(p.numel() for _, p in named)
    if v.shape != (P,):
        raise ValueError(f"expected a vector of shape ({P},), one entry per parameter (got {tuple(v.shape)})")
    return dict(zip([n for n, _ in named], _split(v, [p for _, p in named], cast=False)))


def _twin(model: nn.Module, x: torch.Tensor):
    """(a deep copy of model, its parameters that require grad, the global RNG state to restore)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"expected x with a batch dimension, (N, ...) (got shape {tuple(getattr(x, 'shape', ()))});"
                         " for one example pass x[None]")
    twin = copy.deepcopy(model)
    params = [p for p in twin.parameters() if p.requires_grad]
    if not params:
        raise ValueError("expected a model with parameters that require grad (got none)")
    return twin, params, _rng_state(params[0].device)


def hessian_operator(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y) -> Operator:
    """The Hessian of loss_fn(model(x), y) w.r.t. the parameters, as an ``Operator`` with its grad."""
    twin, params, rng = _twin(model, x)
    try:
        loss = loss_fn(twin(x), y)
    finally:
        _set_rng_state(rng, params[0].device)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(f"expected loss_fn(model(x), y) to be a scalar, 0-d (got shape "
                         f"{tuple(getattr(loss, 'shape', ()))}); reduce it over the batch, e.g. with .mean()")
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]  # the rest: H rows 0

    def matvec(v: torch.Tensor) -> torch.Tensor:
        if not live:  # the loss is linear in every parameter
            return torch.zeros_like(v)
        vs = _split(v, params)
        Hv = torch.autograd.grad([grads[i] for i in live], params, [vs[i] for i in live],
                                 retain_graph=True, allow_unused=True)
        return _flat(Hv, params)

    return Operator(matvec, sum(p.numel() for p in params), _flat(grads, params), loss.item())


def fisher_operator(model: nn.Module, x: torch.Tensor, likelihood: str = "categorical") -> Operator:
    """The Fisher information of model(x)'s outputs (see the module docstring), as an ``Operator``.
    model(x): logits (N, C); likelihood: "categorical" (softmax) or "gaussian" (unit variance)."""
    if likelihood not in ("categorical", "gaussian"):
        raise ValueError(f"expected likelihood 'categorical' or 'gaussian' (got {likelihood!r})")
    twin, params, rng = _twin(model, x)
    try:
        z = twin(x)
    finally:
        _set_rng_state(rng, params[0].device)
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"expected model(x) to be logits of shape (N, C) (got shape "
                         f"{tuple(getattr(z, 'shape', ()))})")
    N = z.shape[0]
    r = torch.zeros_like(z, requires_grad=True)  # (N, C)
    Jt_r = torch.autograd.grad(z, params, r, create_graph=True, allow_unused=True)  # J^T r, linear in r
    live = [i for i, g in enumerate(Jt_r) if g is not None and g.requires_grad]  # the rest: J columns 0
    p = torch.softmax(z.detach(), dim=1)  # (N, C)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        if not live:
            return torch.zeros_like(v)
        vs = _split(v, params)
        Jv = torch.autograd.grad([Jt_r[i] for i in live], r, [vs[i] for i in live], retain_graph=True)[0]  # (N, C)
        if likelihood == "categorical":
            Jv = p * Jv - p * (p * Jv).sum(1, keepdim=True)  # (diag(p_n) - p_n p_n^T) J_n v, each n
        Fv = torch.autograd.grad(z, params, Jv / N, retain_graph=True, allow_unused=True)
        return _flat(Fv, params)

    return Operator(matvec, sum(p.numel() for p in params))


def _orthonormalize(Q: torch.Tensor, n: int, R: torch.Tensor, scale: float, gen: torch.Generator) -> None:
    """Write R's rows into Q[n:], orthonormal to Q[:n] and to each other (two Gram-Schmidt passes);
    a row that vanishes (an invariant subspace: Lanczos broke down) becomes a random one."""
    for j in range(R.shape[0]):
        u, basis = R[j], Q[:n + j]
        for _try in range(2):
            for _pass in range(2):
                u = u - (basis @ u) @ basis
            if u.norm() > 1e-12 * scale:
                break
            u, scale = torch.randn(Q.shape[1], generator=gen, dtype=D), 1.0
        Q[n + j] = u / u.norm()


def lanczos(op: Operator, k: int = 1, steps: int | None = None, block: int = 1, which: str = "largest",
            generator: torch.Generator | None = None) -> dict:
    """Ritz pairs of op: block Lanczos with full reorthogonalization, then Rayleigh-Ritz on the basis.

    steps: block steps (None: max(30, 4k + 20)); the Krylov dimension is m = min(steps * block, dim),
    and m products are made. Memory: two (m, dim) float64 matrices (the basis Q by rows, and A Q).
    which: "largest" (the k algebraically largest, descending) or "smallest" (ascending).
    Returns {"values": (k,), "vectors": (dim, k) orthonormal columns, "residuals": (k,)
    ||A v - lambda v|| (the products as made: a float32 model's rounding sets a floor near 1e-7
    ||A||), "nodes": (m,) every Ritz value ascending, "weights": (m,) their squared first
    components (the quadrature weights of the start vector, for block=1), "products": m}.
    """
    if which not in ("largest", "smallest"):
        raise ValueError(f"expected which 'largest' or 'smallest' (got {which!r})")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"expected k a positive int (got {k!r})")
    if k > op.dim:
        raise ValueError(f"expected k <= the number of parameters P = {op.dim} (got k={k})")
    steps = max(30, 4 * k + 20) if steps is None else steps
    if not isinstance(block, int) or block < 1 or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"expected steps and block positive ints (got steps={steps!r}, block={block!r})")
    m = min(steps * block, op.dim)
    if m < k:
        raise ValueError(f"expected steps * block >= k (got {steps} * {block} < {k}); raise steps")
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    Q, AQ = torch.zeros(m, op.dim, dtype=D), torch.zeros(m, op.dim, dtype=D)  # the basis and A times it
    _orthonormalize(Q, 0, torch.randn(min(block, m), op.dim, generator=gen, dtype=D), 1.0, gen)
    n = 0
    while n < m:
        b = min(block, m - n)
        for i in range(n, n + b):
            AQ[i] = op.matvec(Q[i])
        n += b
        if n < m:  # the next block: A times this one, orthogonal to the basis so far
            _orthonormalize(Q, n, AQ[n - b:n - b + min(block, m - n)], AQ[n - b:n].norm().item(), gen)
    T = AQ @ Q.T  # (m, m): block tridiagonal up to rounding
    theta, S = torch.linalg.eigh((T + T.T) / 2)  # ascending; S (m, m)
    pick = torch.arange(m - 1, m - 1 - k, -1) if which == "largest" else torch.arange(k)
    V = Q.T @ S[:, pick]  # (dim, k)
    residuals = (AQ.T @ S[:, pick] - V * theta[pick]).norm(dim=0)
    return {"values": theta[pick], "vectors": V, "residuals": residuals, "nodes": theta,
            "weights": S[0].square(), "products": m}


def hessian_eigenvalues(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y, k: int = 1,
                        steps: int | None = None, block: int = 1, which: str = "largest",
                        generator: torch.Generator | None = None, return_vectors: bool = False):
    """The top-k eigenvalues (k,) of the Hessian of loss_fn(model(x), y), descending (which="smallest":
    the bottom k, ascending), float64, by Lanczos on Hessian-vector products; with return_vectors,
    also the eigenvectors (P, k)."""
    out = lanczos(hessian_operator(model, loss_fn, x, y), k, steps, block, which, generator)
    return (out["values"], out["vectors"]) if return_vectors else out["values"]


def fisher_eigenvalues(model: nn.Module, x: torch.Tensor, k: int = 1, steps: int | None = None, block: int = 1,
                       likelihood: str = "categorical", generator: torch.Generator | None = None,
                       return_vectors: bool = False):
    """The top-k eigenvalues (k,) of the Fisher of model(x)'s softmax (logits (N, C); "gaussian": of
    unit-variance outputs), descending, float64, without forming it; return_vectors: also (P, k)."""
    out = lanczos(fisher_operator(model, x, likelihood), k, steps, block, "largest", generator)
    return (out["values"], out["vectors"]) if return_vectors else out["values"]


def gradient_share(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y, k: int = 1, steps: int | None = None,
                   block: int = 1, generator: torch.Generator | None = None) -> dict:
    """The share of the gradient's squared norm in the top-k Hessian eigenspace, ||V^T g||^2 / ||g||^2
    with V (P, k) the top-k eigenvectors (Gur-Ari, Roberts & Dyer 2018; Ghorbani et al. 2019).

    Returns {"share": float in [0, 1] (NaN when g = 0), "values": (k,), "residuals": (k,),
    "grad_norm": ||g||, "loss": float, "products": the Hessian-vector products made}.
    """
    op = hessian_operator(model, loss_fn, x, y)
    out = lanczos(op, k, steps, block, "largest", generator)
    g2 = (op.grad @ op.grad).item()
    share = (out["vectors"].T @ op.grad).square().sum().item() / g2 if g2 > 0 else math.nan
    return {"share": share, "values": out["values"], "residuals": out["residuals"], "grad_norm": math.sqrt(g2),
            "loss": op.loss, "products": out["products"]}


def hessian_density(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y, steps: int = 30, probes: int = 1,
                    generator: torch.Generator | None = None) -> dict:
    """Stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019): for each random unit start
    vector v, ``steps`` Lanczos steps give nodes theta_i and weights tau_i with
    sum_i tau_i f(theta_i) ~ v^T f(H) v; averaged over probes it estimates tr f(H) / P.

    Returns {"nodes": (probes, m), "weights": (probes, m)}, each probe's weights summing to 1;
    ``smoothed_density`` turns them into a density. Costs probes * steps products, one forward.
    """
    if not isinstance(probes, int) or probes < 1:
        raise ValueError(f"expected probes a positive int (got {probes!r})")
    op = hessian_operator(model, loss_fn, x, y)
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    runs = [lanczos(op, 1, steps, 1, "largest", gen) for _ in range(probes)]
    return {"nodes": torch.stack([r["nodes"] for r in runs]), "weights": torch.stack([r["weights"] for r in runs])}


def smoothed_density(nodes: torch.Tensor, weights: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
    """phi(t) = mean over probes of sum_i tau_i N(t; theta_i, sigma^2), (len(t),); nodes, weights
    (probes, m) from ``hessian_density``. It integrates to 1 over the real line."""
    if nodes.shape != weights.shape or nodes.dim() != 2:
        raise ValueError(f"expected nodes and weights of one shape (probes, m) (got {tuple(nodes.shape)} and "
                         f"{tuple(weights.shape)})")
    if not sigma > 0:
        raise ValueError(f"expected sigma > 0 (got {sigma})")
    gap = t.to(D)[None, None, :] - nodes.to(D)[:, :, None]  # (probes, m, len(t))
    kernel = torch.exp(-gap.square() / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    return (weights.to(D)[:, :, None] * kernel).sum(1).mean(0)


def jacobian_singular_values(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The singular values of J = d f(x) / dx at one input x, descending, float64 (min(out, in),).

    x: one input of any shape; J is (f(x).numel(), x.numel()), formed with one forward and one
    backward per output entry, then a dense SVD. For a network that takes batches, pass x[None]
    (1, ...) or f = lambda x: model(x[None])[0]. An nn.Module f runs on a deep copy; the global RNG
    is restored; a plain function runs as it is (a BN layer it calls in train mode updates its
    running statistics: put it in eval mode, or pass the module itself).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"expected x a floating-point tensor (got {type(x).__name__} {getattr(x, 'dtype', '')})")
    rng = _rng_state(x.device)
    f = copy.deepcopy(f) if isinstance(f, nn.Module) else f
    try:
        J = torch.autograd.functional.jacobian(lambda t: f(t).reshape(-1), x.detach())  # (out,); J (out, *x.shape)
    finally:
        _set_rng_state(rng, x.device)
    return torch.linalg.svdvals(J.reshape(J.shape[0], -1).to(D))  # (out, *x.shape) -> (out, in)
