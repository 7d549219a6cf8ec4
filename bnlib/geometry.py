"""The normalization theory chapter's experiments: smoothness along a direction, Jacobians, Hessian spectra.

Smoothness along a direction (secant rates, ReLU kinks), Jacobian singular values of one layer and
of deep stacks, Hessian spectra over training.

    cfg = GeometryConfig()                                  # every setting in one place
    data = fashion_flat(cfg)                                # {"train": (x (n, 196), y), "test": ...}
    secant_slopes(model, loss_fn, x, y, v, ts)              # ||grad(theta + t v) - grad(theta)|| / t
    kink_crossings(model, x, v, ts)                         # ReLU inputs that change sign on the way
    layer_singular_values(W, x)                             # z = Wx raw / BN / whitened: sigma of dz_hat/dx
    deep_stack(depth, "tanh", "orthogonal", bn=True, ...)   # Linear (-> BN) -> act, `depth` times
    stack_jacobian(stack, h)                                # sigma of dh_L / dh_1 for example 0 of h
    hessian_run(norm, seed, cfg, data)                      # top-k Hessian eigenvalues, gradient share
    fisher_net(width, "last", seed); fisher_max(...)         # Karakida et al.'s placements of BN, at init

The spectra come from ``bnlib.spectra`` (Lanczos on Hessian-vector products, exact SVD of small
Jacobians); this module only builds the networks and the measurements around them.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import family, spectra
from .models import mlp
from .train import TrainConfig, fit
from .utils import map_jobs
from .whitening import inv_sqrtm

__all__ = ["GeometryConfig", "fashion_flat", "secant_slopes", "kink_crossings", "layer_singular_values", "deep_stack",
           "stack_jacobian", "jacobian_summary", "hessian_run", "hessian_runs", "fisher_net", "fisher_max",
           "fisher_maxima", "PLACEMENTS"]


@dataclass
class GeometryConfig:
    train_size: int = 12000              # Fashion-MNIST training images (the first ones), 14x14
    test_size: int = 2000
    hidden: tuple = (64, 64)             # the MLP of the Hessian experiment: 196 -> 64 -> 64 -> 10
    batch_size: int = 64
    lr: float = 0.1                      # plain SGD
    steps: int = 600                     # 3.2 epochs of the 12000 images
    checkpoints: tuple = (1, 50, 200, 600)
    hessian_examples: int = 512          # the Hessian of the loss on these training examples
    k: int = 10                          # top-k eigenvalues (10 classes: Papyan's C outliers)
    lanczos_steps: int = 40
    width: int = 128                     # the deep stacks of the Jacobian experiment
    depths: tuple = (2, 8, 32)
    jacobian_batch: int = 128            # BN's statistics come from this batch
    jacobian_examples: int = 8           # the input -> logits Jacobian of the trained MLP at these images
    seeds: tuple = field(default_factory=lambda: tuple(range(8)))

    def to_dict(self) -> dict:
        return asdict(self)


def fashion_flat(cfg: GeometryConfig = GeometryConfig()) -> dict:
    """{"train": (x (n, 196), y), "test": ...}: standardized Fashion-MNIST at 14x14, flattened."""
    data = family.fashion14(family.FamilyConfig(train_size=cfg.train_size, test_size=cfg.test_size))
    return {split: (x.flatten(1).contiguous(), y) for split, (x, y) in data.items()}  # (n, 1, 14, 14) -> (n, 196)


def _flat_grad(model: nn.Module, loss_fn, x, y) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model(x), y), params)
    return torch.cat([g.reshape(-1) for g in grads]).double()


@torch.no_grad()
def _shift(model: nn.Module, v: torch.Tensor, t: float) -> None:
    for p, dv in zip([p for p in model.parameters() if p.requires_grad],
                     spectra._split(v, [p for p in model.parameters() if p.requires_grad])):
        p.add_(dv, alpha=t)


def secant_slopes(model: nn.Module, loss_fn, x, y, v: torch.Tensor, ts) -> torch.Tensor:
    """||grad L(theta + t v) - grad L(theta)|| / t for each step t along the unit direction v (P,):
    a lower bound on the beta-smoothness constant over that segment; as t -> 0 it tends to ||H v||,
    which is lambda_max when v is the top Hessian eigenvector. Works on a float64 copy (mode as given)."""
    v = v.double() / v.double().norm()
    twin, x = copy.deepcopy(model).double(), x.double()              # float64: t down to 1e-4 stays above rounding
    g0 = _flat_grad(twin, loss_fn, x, y)
    out = []
    for t in ts:
        _shift(twin, v, t)
        out.append((_flat_grad(twin, loss_fn, x, y) - g0).norm().item() / t)
        _shift(twin, v, -t)
    return torch.tensor(out, dtype=torch.float64)


def _relu_inputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every input to the model's nn.ReLU modules on the batch x, flattened into one vector."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().flatten()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(seen) if seen else torch.zeros(0, dtype=x.dtype)


def kink_crossings(model: nn.Module, x: torch.Tensor, v: torch.Tensor, ts) -> torch.Tensor:
    """For each step t, how many (example, unit) inputs of the model's ReLUs change sign between theta
    and theta + t v (v a unit direction (P,)): the kinks the segment crosses, where the gradient of a
    ReLU network jumps. Zero means the loss is twice differentiable along the whole segment.
    Works on a float64 copy, as secant_slopes does."""
    v = v.double() / v.double().norm()
    twin, x = copy.deepcopy(model).double(), x.double()
    before = _relu_inputs(twin, x) > 0
    out = []
    for t in ts:
        _shift(twin, v, t)
        out.append(int(((_relu_inputs(twin, x) > 0) != before).sum()))
        _shift(twin, v, -t)
    return torch.tensor(out)


def layer_singular_values(W: torch.Tensor, x: torch.Tensor) -> dict:
    """The seed's argument z = F x with cov(x) = I: the singular values (descending, float64) of the
    map x -> z_hat for z = W x (W (out, in), x (n, in) whitened inputs) followed by nothing ("raw"),
    by per-feature standardization as BN does ("bn": diag(std z)^-1 W), or by full whitening
    ("whitened": cov(z)^-1/2 W)."""
    if W.dim() != 2 or x.dim() != 2 or W.shape[1] != x.shape[1]:
        raise ValueError(f"expected W (out, in) and x (n, in) (got {tuple(W.shape)} and {tuple(x.shape)})")
    W, x = W.double(), x.double()
    z = x @ W.T                                                       # (n, out)
    cov = torch.cov(z.T, correction=0)                                # (out, out)
    maps = {"raw": W, "bn": W / cov.diagonal().sqrt()[:, None], "whitened": inv_sqrtm(cov) @ W}
    return {name: torch.linalg.svdvals(m) for name, m in maps.items()}


def deep_stack(depth: int, activation: str = "tanh", init: str = "gaussian", bn: bool = False,
               width: int = 128, in_features: int = 196, generator: torch.Generator | None = None) -> nn.Sequential:
    """1 + depth blocks Linear(no bias) -> [BatchNorm1d(affine=False)] -> activation ("tanh", "relu",
    "linear"); weights Gaussian with variance gain / fan_in or scaled orthogonal (init "orthogonal"),
    gain 2 for ReLU (He), 1 otherwise. The first block maps the input to the width."""
    if activation not in ("tanh", "relu", "linear") or init not in ("gaussian", "orthogonal"):
        raise ValueError(f"expected activation tanh/relu/linear and init gaussian/orthogonal "
                         f"(got {activation!r}, {init!r})")
    gain = 2.0 if activation == "relu" else 1.0
    mods = []
    for fan_in in [in_features] + [width] * depth:
        lin = nn.Linear(fan_in, width, bias=False)
        with torch.no_grad():
            a = torch.randn(max(width, fan_in), min(width, fan_in), generator=generator, dtype=torch.float64)
            if init == "orthogonal":
                q, r = torch.linalg.qr(a)                             # q (max, min) orthonormal columns
                a = q * torch.sign(torch.diagonal(r)) * math.sqrt(max(width, fan_in) / fan_in)
            else:
                a = a / math.sqrt(fan_in)
            w = a if width >= fan_in else a.T                         # -> (width, fan_in)
            lin.weight.copy_(w * math.sqrt(gain))
        mods += [lin] + ([nn.BatchNorm1d(width, affine=False)] if bn else [])
        mods.append({"tanh": nn.Tanh, "relu": nn.ReLU, "linear": nn.Identity}[activation]())
    return nn.Sequential(*mods)


def stack_jacobian(stack: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """Singular values (descending) of d h_L(example 0) / d h_1(example 0) for the blocks after the
    first, in training mode: BN normalizes with the statistics of the batch h (N, width), example 0's
    own share of them included; the other examples are held fixed."""
    first = 3 if isinstance(stack[1], nn.BatchNorm1d) else 2          # the first block's modules
    body = stack[first:]
    body.train()
    with torch.no_grad():
        rest = stack[:first](h)[1:]                                    # (N - 1, width)
        h1 = stack[:first](h)[0]                                       # (width,)
    return spectra.jacobian_singular_values(lambda t: body(torch.cat([t[None], rest]))[0], h1)


def jacobian_summary(s: torch.Tensor) -> dict:
    """gain: mean sigma^2 (||J||_F^2 / n, how much a random perturbation grows); anisotropy: max
    sigma^2 / mean sigma^2 (1 exactly when every singular value is equal: dynamical isometry)."""
    ms = s.square().mean().item()
    return {"gain": ms, "anisotropy": s[0].item() ** 2 / ms}


def _norm_layer(norm: str):
    if norm not in ("none", "bn"):
        raise ValueError(f"expected norm 'none' or 'bn' (got {norm!r})")
    return nn.BatchNorm1d if norm == "bn" else None


def hessian_run(norm: str, seed: int, cfg: GeometryConfig | None = None, data: dict | None = None) -> dict:
    """Train the MLP (norm "none" or "bn", seed) with SGD and, at each checkpoint (before that step's
    update), measure in eval mode (BN with its running statistics) the top-k Hessian eigenvalues of
    the loss on the first ``hessian_examples`` training examples and the share of the gradient in
    their eigenspace, and the gain and anisotropy (jacobian_summary) of the input -> logits Jacobian
    at each of the first ``jacobian_examples`` training images. ``data`` as fashion_flat returns it.
    For norm "bn" also "values_batch", "share_batch": the same in training mode, BN normalizing the
    examples with their own batch statistics (on a copy: the running statistics stay as they were).
    Returns {"values": (checkpoints, k), "share": (checkpoints,), "gain", "anisotropy":
    (checkpoints, jacobian_examples), "test_acc"}."""
    cfg = cfg or GeometryConfig()
    data = data or fashion_flat(cfg)
    (x, y), test = data["train"], data["test"]
    xh, yh = x[:cfg.hessian_examples], y[:cfg.hessian_examples]
    model = mlp([x.shape[1], *cfg.hidden, 10], norm=_norm_layer(norm), generator=torch.Generator().manual_seed(seed))
    values, share, jac, values_batch, share_batch = [], [], [], [], []

    def measure(step, net, *_):
        if step in cfg.checkpoints:
            if norm == "bn":                                  # BN with the batch's own statistics (a copy)
                out = spectra.gradient_share(net, F.cross_entropy, xh, yh, k=cfg.k, steps=cfg.lanczos_steps)
                values_batch.append(out["values"])
                share_batch.append(out["share"])
            net.eval()
            out = spectra.gradient_share(net, F.cross_entropy, xh, yh, k=cfg.k, steps=cfg.lanczos_steps)
            jac.append([jacobian_summary(spectra.jacobian_singular_values(lambda t: net(t[None])[0], xi))
                        for xi in x[:cfg.jacobian_examples]])       # input (196,) -> logits (10,)
            net.train()
            values.append(out["values"])
            share.append(out["share"])

    hist = fit(model, (x, y), test, TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                                eval_every=cfg.steps, seed=seed), on_step=[measure])
    summary = {key: torch.tensor([[j[key] for j in row] for row in jac], dtype=torch.float64)
               for key in ("gain", "anisotropy")}
    batch = {"values_batch": torch.stack(values_batch), "share_batch": torch.tensor(share_batch, dtype=torch.float64)
             } if values_batch else {}
    return {"values": torch.stack(values), "share": torch.tensor(share, dtype=torch.float64), **summary, **batch,
            "test_acc": hist.test_acc[-1]}


def _hessian_job(job):
    return hessian_run(*job)


def hessian_runs(norms, seeds, cfg: GeometryConfig, data: dict | None = None, workers: int = 1) -> dict:
    """{(norm, seed): hessian_run(...)} over workers one-thread processes (same results as workers=1)."""
    jobs = [(norm, seed, cfg, data) for norm in norms for seed in seeds]
    return {job[:2]: res for job, res in zip(jobs, map_jobs(_hessian_job, jobs, workers))}


PLACEMENTS = ("none", "last", "middle", "ln")


def fisher_net(width: int, placement: str, seed: int, in_features: int = 196, depth: int = 3,
               classes: int = 10) -> nn.Sequential:
    """Karakida, Akaho & Amari (2019)'s question in bnlib's terms: an MLP in -> width (x depth, ReLU)
    -> classes, He-initialized weights, zero biases, with normalization placed "none", "last" (BN
    over the batch on the outputs, no affine), "middle" (BN after every hidden linear layer) or "ln"
    (layer norm there); in training mode."""
    if placement not in PLACEMENTS:
        raise ValueError(f"expected placement one of {PLACEMENTS} (got {placement!r})")
    g = torch.Generator().manual_seed(seed)

    def linear(fan_in, fan_out, gain):                     # weights N(0, gain / fan_in), biases 0
        lin = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.normal_(0, math.sqrt(gain / fan_in), generator=g)
            lin.bias.zero_()
        return lin

    mods = []
    for fan_in in [in_features] + [width] * (depth - 1):
        mods.append(linear(fan_in, width, 2.0))             # He
        if placement == "middle":
            mods.append(nn.BatchNorm1d(width, affine=False))
        elif placement == "ln":
            mods.append(nn.LayerNorm(width, elementwise_affine=False))
        mods.append(nn.ReLU())
    mods.append(linear(width, classes, 1.0))
    if placement == "last":
        mods.append(nn.BatchNorm1d(classes, affine=False))
    return nn.Sequential(*mods).train()


def fisher_max(job: tuple) -> float:
    """(width, placement, seed, x): the largest eigenvalue of the Fisher information of fisher_net's
    outputs as unit-variance Gaussians, F = (1/N) sum_n J_n^T J_n over the N inputs x (Karakida et
    al.'s FIM), by 20 Lanczos steps."""
    width, placement, seed, x = job
    return spectra.fisher_eigenvalues(fisher_net(width, placement, seed, in_features=x.shape[1]), x, k=1,
                                      steps=20, likelihood="gaussian")[0].item()


def fisher_maxima(widths, placements, seeds, x: torch.Tensor, workers: int = 1) -> dict:
    """{(width, placement): tensor of fisher_max over seeds}, over worker processes."""
    jobs = [(w, p, s, x) for w in widths for p in placements for s in seeds]
    vals = map_jobs(fisher_max, jobs, workers)
    out = {}
    for (w, p, _, _), v in zip(jobs, vals):
        out.setdefault((w, p), []).append(v)
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
