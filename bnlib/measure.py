"""Measurements at one training step (ICS, landscape probes); they never change the model.

internal_covariate_shift, ICSTrace: Santurkar et al. 2018, Definition 2.1 — ICS as a gradient change.
landscape_probe, LandscapeTrace: Santurkar et al. 2018, Fig 4 — the loss and its gradient along -g.
They never plot, and work on deep copies.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _grad_of(model: nn.Module, x, y, loss_fn: LossFn, params: Sequence[nn.Parameter]) -> list[torch.Tensor]:
    loss = loss_fn(model(x), y)
    return [g.detach() for g in torch.autograd.grad(loss, list(params))]


def internal_covariate_shift(model: nn.Module, layers: dict[str, nn.Module] | Sequence[str],
                             x: torch.Tensor, y: torch.Tensor, lr: float,
                             loss_fn: LossFn = F.cross_entropy) -> dict[str, dict[str, float]]:
    r"""ICS of each requested layer at the current step, as Santurkar et al. define it:

    .. math::
        G  = \nabla_{W_i} L(W_1^{t}, \dots, W_k^{t}; x, y), \qquad
        G' = \nabla_{W_i} L(W_1^{t+1}, \dots, W_{i-1}^{t+1}, W_i^{t}, \dots, W_k^{t}; x, y)

    where the earlier layers take the plain SGD step W <- W - lr * G on the same batch and
    layer i and everything after it stay put. "Earlier" is the order of
    ``model.named_parameters()`` (forward order for ``nn.Sequential``): every parameter
    registered before the layer's first parameter (BN's gamma and beta included).

    Args:
        model: in the mode the measurement should use (train mode for BN batch statistics)
        layers: names from ``model.named_modules()`` (or {label: module}); each module's
            ``weight`` is W_i
        x, y: the batch of this step
        lr: the SGD step size of the earlier layers
        loss_fn: loss(model(x), y); cross-entropy by default

    Returns:
        {label: {"l2": ||G - G'||_2, "cosine": <G, G'> / (||G|| ||G'||)}}; ideal: 0 and 1.

    Works on deep copies: the model's parameters, gradients, BN running statistics and any
    optimizer state are left exactly as they were. Both gradients are computed from the same
    global torch RNG state (restored afterwards), so dropout or noise driven by the global RNG
    draws the same values in G and G'; a layer's own ``torch.Generator`` is deep-copied too.
    """
    named = dict(model.named_modules())
    if not isinstance(layers, dict):
        missing = [n for n in layers if n not in named]
        if missing:
            raise ValueError(f"expected layer names from model.named_modules() (got unknown {missing})")
        layers = {n: named[n] for n in layers}
    module_name = {id(m): n for n, m in named.items()}
    order = [n for n, _ in model.named_parameters()]
    out = {}
    rng = torch.get_rng_state()
    for label, layer in layers.items():
        if getattr(layer, "weight", None) is None:
            raise ValueError(f"expected a layer with a weight (got {type(layer).__name__} for {label!r})")
        prefix = module_name[id(layer)]
        weight_name = f"{prefix}.weight" if prefix else "weight"
        first = min(i for i, n in enumerate(order) if n.startswith(prefix + ".") or not prefix)
        earlier = order[:first]

        torch.set_rng_state(rng)
        before = copy.deepcopy(model)  # G: gradient of every earlier parameter and of W_i
        params = dict(before.named_parameters())
        grads = _grad_of(before, x, y, loss_fn, [params[n] for n in earlier] + [params[weight_name]])
        G = grads[-1]

        after = copy.deepcopy(model)  # G': earlier layers stepped, W_i and later unchanged
        params_after = dict(after.named_parameters())
        with torch.no_grad():
            for n, g in zip(earlier, grads[:-1]):
                params_after[n].sub_(lr * g)
        torch.set_rng_state(rng)
        G2 = _grad_of(after, x, y, loss_fn, [params_after[weight_name]])[0]

        l2 = (G - G2).norm().item()
        cosine = F.cosine_similarity(G.flatten(), G2.flatten(), dim=0).item()
        out[label] = {"l2": l2, "cosine": cosine}
    torch.set_rng_state(rng)
    return out


class ICSTrace:
    """``internal_covariate_shift`` at step 1 and every ``every`` steps of training, as a
    ``train.fit`` on_step hook (it runs after backward and before the optimizer step).

    layers: {label: module} of the trained model; lr: the step size of training.
    steps: measured steps; l2[label], cosine[label]: one value per measured step.
    """

    def __init__(self, layers: dict[str, nn.Module], lr: float, every: int = 10, loss_fn: LossFn = F.cross_entropy):
        if every < 1:
            raise ValueError(f"expected every >= 1 (got {every})")
        self.layers, self.lr, self.every, self.loss_fn = dict(layers), lr, every, loss_fn
        self.steps: list[int] = []
        self.l2 = {k: [] for k in self.layers}
        self.cosine = {k: [] for k in self.layers}

    def __call__(self, step: int, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss=None) -> None:
        if step != 1 and step % self.every:
            return
        out = internal_covariate_shift(model, self.layers, x, y, self.lr, self.loss_fn)
        self.steps.append(step)
        for k, v in out.items():
            self.l2[k].append(v["l2"])
            self.cosine[k].append(v["cosine"])

    def result(self) -> dict:
        return {"steps": self.steps, "l2": self.l2, "cosine": self.cosine}


# --- Santurkar et al. 2018, §3.2 and App. A.2.2: the loss landscape along the gradient ----------

def _rng_state(device: torch.device) -> tuple:
    """The global CPU RNG state, and the CUDA one when ``device`` is a GPU."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _loss_and_grad(model: nn.Module, x, y, loss_fn: LossFn) -> tuple[float, torch.Tensor]:
    """L and the flattened gradient over every parameter that requires grad (zeros where unused)."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = loss_fn(model(x), y)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    return loss.item(), torch.cat([g.detach().reshape(-1) for g in flat])  # each (*p.shape) -> (p.numel(),)


def landscape_probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, etas: Sequence[float],
                    loss_fn: LossFn = F.cross_entropy) -> dict:
    r"""The loss and its gradient along the gradient direction, Santurkar et al.'s Fig. 4 probes.

    With g = \nabla L(w) (the mini-batch gradient on ``x, y``, over every parameter that
    requires grad, flattened to one vector of P entries), for each step size eta:

    .. math::
        L(w - \eta g), \qquad
        \text{grad\_change}(\eta) = \lVert \nabla L(w) - \nabla L(w - \eta g) \rVert_2, \qquad
        \beta = \max_\eta \frac{\text{grad\_change}(\eta)}{\lVert \eta g \rVert_2}

    ("variation of the loss", "gradient predictiveness", "effective beta-smoothness"), and three
    measures that do not scale with the gradient: the relative change ``grad_change_rel`` =
    ||grad L(w) - grad L(w - eta g)|| / ||g|| (about eta times the curvature along g), the
    ``cosine`` between g and grad L(w - eta g), and ``beta_rel`` = beta ||w|| / ||g||, the
    relative gradient change per relative distance moved, max over eta of
    (grad_change / ||g||) / (||eta g|| / ||w||). Multiplying the weights in front of a BN layer by
    k divides their gradient by k and beta by k^2, and leaves ``beta_rel`` unchanged.

    Args:
        model: in the mode the probe should use (train mode: BN normalizes with batch statistics)
        x, y: the batch of this step
        etas: step sizes (absolute, not times lr); eta = 0 gives L(w) and a grad_change of 0
        loss_fn: loss(model(x), y); cross-entropy by default

    Returns:
        {"eta": [float] (E,), "loss": [float] (E,), "loss0": L(w), "grad_change": [float] (E,),
        "grad_change_rel": [float] (E,), "cosine": [float] (E,),
        "beta": float (NaN when no eta has ||eta g|| > 0), "beta_rel": float, "grad_norm": ||g||_2,
        "weight_norm": ||w||_2 (over the same parameters)}

    Works on deep copies, one per evaluation, each from the same global RNG state (restored at
    the end): parameters, ``.grad``, BN running statistics and RNG are left exactly as they
    were, and dropout or noisy BN draws the same noise at every eta (a layer's own
    ``torch.Generator`` is deep-copied too).
    """
    etas = [float(eta) for eta in etas]
    if not etas:
        raise ValueError("expected at least one step size in etas (got an empty sequence)")
    if not all(torch.isfinite(torch.tensor(etas))):
        raise ValueError(f"expected finite step sizes (got {etas})")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("expected a model with parameters that require grad (got none)")
    device = trainable[0].device  # whose CUDA RNG to save and restore
    rng = _rng_state(device)
    loss0, g = _loss_and_grad(copy.deepcopy(model), x, y, loss_fn)  # g: (P,)
    grad_norm = g.norm().item()
    weight_norm = torch.cat([p.detach().reshape(-1) for p in trainable]).norm().item()  # each -> (p.numel(),)
    losses, grad_change, cosine, ratios = [], [], [], []
    for eta in etas:
        _set_rng_state(rng, device)
        moved = copy.deepcopy(model)
        with torch.no_grad():
            offset = 0
            for p in (p for p in moved.parameters() if p.requires_grad):
                p.sub_(eta * g[offset:offset + p.numel()].view_as(p))  # (p.numel(),) -> p.shape
                offset += p.numel()
        loss, g_eta = _loss_and_grad(moved, x, y, loss_fn)
        losses.append(loss)
        grad_change.append((g - g_eta).norm().item())
        cosine.append(F.cosine_similarity(g, g_eta, dim=0).item())  # <g, g_eta> / (||g|| ||g_eta||)
        distance = abs(eta) * grad_norm  # ||eta g||_2
        if distance > 0:
            ratios.append(grad_change[-1] / distance)
    _set_rng_state(rng, device)
    beta = max(ratios) if ratios else float("nan")
    rel = [c / grad_norm if grad_norm > 0 else float("nan") for c in grad_change]  # ||dg|| / ||g||
    return {"eta": etas, "loss": losses, "loss0": loss0, "grad_change": grad_change, "grad_change_rel": rel,
            "cosine": cosine, "beta": beta, "beta_rel": beta * weight_norm / grad_norm if grad_norm > 0
            else float("nan"), "grad_norm": grad_norm, "weight_norm": weight_norm}


class LandscapeTrace:
    """``landscape_probe`` at step 1 and every ``every`` steps of training, as a ``train.fit``
    on_step hook (it runs after backward and before the optimizer step).

    etas_rel: step sizes as multiples of ``lr`` (paper: VGG [1/2, 4], DLN [1/100, 30]);
    the probe uses etas = etas_rel * lr.

    Per measured step (lists of one value per step): ``steps``; ``loss_min``, ``loss_max``
    (the band of L(w - eta g) over eta); ``grad_change_min``, ``grad_change_max``; ``beta``;
    ``loss0``, ``grad_norm``; the scale-free ``grad_change_rel_max``, ``cosine_min``, ``beta_rel``
    and ``weight_norm``; and the full curves ``loss``, ``grad_change`` and ``cosine`` (one list of
    len(etas) per step, for plots against eta such as Fig. 11).
    """

    KEYS = ("loss0", "loss_min", "loss_max", "grad_change_min", "grad_change_max", "beta", "grad_norm",
            "grad_change_rel_max", "cosine_min", "beta_rel", "weight_norm", "loss", "grad_change", "cosine")

    def __init__(self, etas_rel: Sequence[float], lr: float, every: int = 10, loss_fn: LossFn = F.cross_entropy):
        if every < 1:
            raise ValueError(f"expected every >= 1 (got {every})")
        if not lr > 0:
            raise ValueError(f"expected lr > 0 (got {lr})")
        self.etas_rel, self.lr, self.every, self.loss_fn = [float(e) for e in etas_rel], lr, every, loss_fn
        if not self.etas_rel:
            raise ValueError("expected at least one step size in etas_rel (got an empty sequence)")
        self.etas = [e * lr for e in self.etas_rel]
        self.steps: list[int] = []
        self.history: dict[str, list] = {k: [] for k in self.KEYS}

    def __call__(self, step: int, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss=None) -> None:
        if step != 1 and step % self.every:
            return
        out = landscape_probe(model, x, y, self.etas, self.loss_fn)
        self.steps.append(step)
        summary = {"loss0": out["loss0"], "loss_min": min(out["loss"]), "loss_max": max(out["loss"]),
                   "grad_change_min": min(out["grad_change"]), "grad_change_max": max(out["grad_change"]),
                   "beta": out["beta"], "grad_norm": out["grad_norm"],
                   "grad_change_rel_max": max(out["grad_change_rel"]), "cosine_min": min(out["cosine"]),
                   "beta_rel": out["beta_rel"], "weight_norm": out["weight_norm"], "loss": out["loss"],
                   "grad_change": out["grad_change"], "cosine": out["cosine"]}
        for k in self.KEYS:
            self.history[k].append(summary[k])

    def result(self) -> dict:
        """{"steps", "eta", "eta_rel", "lr", and each of ``KEYS``: one entry per measured step}."""
        return {"steps": self.steps, "eta": self.etas, "eta_rel": self.etas_rel, "lr": self.lr, **self.history}
