"""Measurements on a model at one training step. They never plot and never change the model.

internal_covariate_shift: Santurkar et al. 2018, Definition 2.1 — ICS as a gradient change.
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
