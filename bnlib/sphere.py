"""Scale invariance of the weights before BN, and the motion on a sphere that SGD and weight decay give them.

A weight matrix W followed by BN (Linear -> BN) gives the same loss for every scale c > 0 of each row
(up to BN's eps), so the gradient g = dL/dW is orthogonal to W row by row and scales as 1/c. Plain
SGD then only grows ||W||:  ||W - eta g||^2 = ||W||^2 + eta^2 ||g||^2.  With weight decay lambda,

    ||W'||^2 = (1 - eta lambda)^2 ||W||^2 + eta^2 ||g||^2,

whose fixed point turns each step by tan(angle) = sqrt(2 eta lambda - (eta lambda)^2) / (1 - eta lambda),
about sqrt(2 eta lambda), whatever eta and lambda are separately (van Laarhoven 2017; Wan et al. 2021).

    invariant_weights(model)                      # {name: weight} of the layers a BN follows
    scale_check(model, x, y, cs)                  # loss, w.g and c ||g(cW)|| at each scale c (float64)
    sphere_run(SphereConfig(...), data)           # per-step ||W||^2, eta^2 ||g||^2, angle; test accuracy
    sphere_runs(cfgs, data, workers)              # the same over worker processes
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .models import mlp
from .train import TrainConfig, fit
from .utils import map_jobs

__all__ = ["SphereConfig", "invariant_weights", "scale_check", "sphere_run", "sphere_runs", "with_seeds",
           "equilibrium_angle"]


@dataclass(frozen=True)
class SphereConfig:
    norm: str = "bn"                 # "bn" (Linear -> BN -> ReLU) or "none"
    hidden: tuple = (64, 64)
    lr: float = 0.1
    weight_decay: float = 0.0        # on the weights a BN follows (fc1, fc2, ...) only; the rest without
    init_scale: float = 1.0          # the invariant weights start at this multiple of their init
    steps: int = 3000
    batch_size: int = 64
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def invariant_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """{name: weight} of every Linear/Conv directly followed by a BatchNorm in the model's module
    order (a bnlib.models.mlp with norm=nn.BatchNorm1d: fc1.weight, fc2.weight, ...)."""
    mods = list(model.named_modules())
    found = {}
    for (name, m), (_, nxt) in zip(mods, mods[1:]):
        if isinstance(m, (nn.Linear, nn.Conv2d)) and isinstance(nxt, nn.modules.batchnorm._BatchNorm):
            found[f"{name}.weight"] = m.weight
    return found


def _flat(ts) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in ts])


def scale_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cs) -> list[dict]:
    """Scale every invariant weight by c (each c in cs) on a float64 copy in training mode (BN with
    the batch's statistics) and report, per c: "loss" L(cW), "cos" = cos(W, dL/dW) (0 when the
    gradient is orthogonal to W), "grad_times_c" = c ||dL/dW at cW|| (constant when ||g|| ~ 1/c)."""
    twin = copy.deepcopy(model).double().train()
    weights = invariant_weights(twin)
    if not weights:
        raise ValueError("expected a model with a Linear or Conv2d directly followed by a BatchNorm (got none)")
    start = {k: w.detach().clone() for k, w in weights.items()}
    out = []
    for c in cs:
        with torch.no_grad():
            for k, w in weights.items():
                w.copy_(c * start[k])
        loss = F.cross_entropy(twin(x.double()), y)
        grads = torch.autograd.grad(loss, list(weights.values()))
        w, g = _flat([w.detach() for w in weights.values()]), _flat(grads)
        out.append({"c": c, "loss": loss.item(), "cos": (w @ g / (w.norm() * g.norm())).item(),
                    "grad_times_c": c * g.norm().item()})
    return out


def equilibrium_angle(lr: float, weight_decay: float) -> float:
    """The angle (radians) each step turns W by at the fixed point of the norm's recursion:
    atan(sqrt(2 eta lambda - (eta lambda)^2) / (1 - eta lambda)); about sqrt(2 eta lambda)."""
    a = lr * weight_decay
    if not 0 < a < 1:
        raise ValueError(f"expected 0 < lr * weight_decay < 1 (got {a})")
    return math.atan(math.sqrt(2 * a - a * a) / (1 - a))


def sphere_run(cfg: SphereConfig, data: dict) -> dict:
    """Train bnlib's MLP (cfg.norm) with SGD (cfg.lr; cfg.weight_decay on fc1.weight, fc2.weight, ...
    only: BN's gamma, a unit's only way out once decayed, stays free) and record per step, for all
    weights a BN follows taken together (for norm "none": the same layers, fc1.weight ...):
    "norm2" ||W||^2 before the step, "grad2" eta^2 ||g||^2, "cos" cos(W, g), "angle" between W before
    and after the step (radians). Also "test_acc", "logit_std" (eval mode, on the test images) and
    "weight_norms" {name: ||weight||} of every layer at the end."""
    if cfg.norm not in ("bn", "none"):
        raise ValueError(f"expected norm 'bn' or 'none' (got {cfg.norm!r})")
    (x, y), test = data["train"], data["test"]
    model = mlp([x.shape[1], *cfg.hidden, 10], norm=nn.BatchNorm1d if cfg.norm == "bn" else None,
                generator=torch.Generator().manual_seed(cfg.seed))
    names = [f"fc{i}.weight" for i in range(1, len(cfg.hidden) + 1)]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n in names:
            params[n].mul_(cfg.init_scale)
    rec = {"norm2": [], "grad2": [], "cos": [], "angle": []}
    prev = {}

    def watch(step, net, *_):
        w = _flat([params[n].detach() for n in names]).double()
        g = _flat([params[n].grad for n in names]).double()
        if "w" in prev:                                      # the angle of the previous step
            rec["angle"].append(math.acos(min(1.0, (prev["w"] @ w / (prev["w"].norm() * w.norm())).item())))
        prev["w"] = w
        rec["norm2"].append((w @ w).item())
        rec["grad2"].append(cfg.lr ** 2 * (g @ g).item())
        rec["cos"].append((w @ g / (w.norm() * g.norm())).item())

    decayed = [params[n] for n in names]
    rest = [p for n, p in params.items() if n not in names]
    opt = torch.optim.SGD([{"params": decayed, "weight_decay": cfg.weight_decay},
                           {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    hist = fit(model, (x, y), test, TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                                eval_every=cfg.steps, seed=cfg.seed), on_step=[watch], optimizer=opt)
    model.eval()
    with torch.no_grad():
        logits = model(test[0])
    out = {k: torch.tensor(v, dtype=torch.float64) for k, v in rec.items()}
    out.update(test_acc=hist.test_acc[-1], logit_std=logits.std().item(),
               weight_norms={n: p.detach().norm().item() for n, p in model.named_parameters() if n.endswith("weight")})
    return out


def _job(job):
    return sphere_run(*job)


def sphere_runs(cfgs, data: dict, workers: int = 1) -> list[dict]:
    """[sphere_run(cfg, data) for cfg in cfgs], over worker processes (same results as workers=1)."""
    return map_jobs(_job, [(cfg, data) for cfg in cfgs], workers)


def with_seeds(cfg: SphereConfig, seeds) -> list[SphereConfig]:
    """cfg once per seed."""
    return [replace(cfg, seed=s) for s in seeds]
