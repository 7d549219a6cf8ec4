"""Model builders. Normalization comes in as a factory (``norm=torch.nn.BatchNorm1d``, or bnlib's
own layers), placed before the activation as in Ioffe & Szegedy (2015, §3.2): z = g(BN(Wu)).

    model = mlp([784, 100, 100, 100, 10], "sigmoid", norm=nn.BatchNorm1d, init=0.1)
    model.fc3, model.norm3, model.act3        # the last hidden layer's pieces, by name
    preactivations(model)["3"]                # the module whose output feeds the 3rd activation
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import torch
from torch import nn
from torch.nn.utils import skip_init

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity,
}
INITS = ("default", "xavier", "he")


def make_activation(activation: str | Callable[[], nn.Module]) -> nn.Module:
    """An activation module from a name in ``ACTIVATIONS`` or a factory such as ``nn.ReLU``."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"expected an activation in {sorted(ACTIVATIONS)} (got {activation!r})")
        return ACTIVATIONS[activation]()
    if not callable(activation):
        raise ValueError(f"expected an activation name or factory (got {activation!r})")
    return activation()


def _default_init_(layer: nn.Linear, generator: torch.Generator | None) -> None:
    """PyTorch's own ``nn.Linear.reset_parameters``, drawing from ``generator``."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1 / math.sqrt(layer.in_features)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


@torch.no_grad()
def init_linear_(layer: nn.Linear, init: str | float, generator: torch.Generator | None = None) -> nn.Linear:
    """Initialize ``layer`` in place and return it.

    - ``"default"``: PyTorch's (uniform, bound 1/sqrt(fan_in) for weight and bias);
    - ``"xavier"``: Glorot & Bengio (2010), normal, std = sqrt(2 / (fan_in + fan_out)), bias 0;
    - ``"he"``: He et al. (2015), normal, std = sqrt(2 / fan_in) (made for ReLU), bias 0;
    - a float ``s``: every weight from N(0, s**2), bias 0 ("small random Gaussian values").
    """
    if isinstance(init, str) and init not in INITS:
        raise ValueError(f"expected init in {INITS} or a standard deviation (got {init!r})")
    if not isinstance(init, str) and not (isinstance(init, (int, float)) and init > 0):
        raise ValueError(f"expected init in {INITS} or a positive standard deviation (got {init!r})")
    if init == "default":
        _default_init_(layer, generator)
        return layer
    if init == "xavier":
        nn.init.xavier_normal_(layer.weight, generator=generator)
    elif init == "he":
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
    else:
        nn.init.normal_(layer.weight, 0.0, float(init), generator=generator)
    if layer.bias is not None:
        layer.bias.zero_()
    return layer


def mlp(sizes: list[int], activation: str | Callable[[], nn.Module] = "relu",
        norm: Callable[[int], nn.Module] | None = None, init: str | float = "default",
        generator: torch.Generator | None = None) -> nn.Sequential:
    """A fully connected network: flatten, then (Linear -> [norm] -> activation) per hidden layer,
    then a Linear output layer (no norm, no activation: it returns logits).

    sizes: [in_features, hidden_1, ..., hidden_k, out_features] (at least two entries).
    norm: a factory called with the layer width, e.g. ``nn.BatchNorm1d``; when given, the Linear
        before it has no bias (BN's shift beta replaces it) and BN sits before the activation.
    init: see ``init_linear_``; every Linear, the output layer included, gets the same scheme.
    generator: the random source of the initialization (None: torch's global generator). The
        Linear layers are created uninitialized (``skip_init``), so with a generator the global
        random state is left untouched.

    Modules are named ``flatten, fc1, norm1, act1, fc2, ..., out``.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"expected at least two positive integer sizes (got {sizes})")
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-2], sizes[1:-1]), start=1):
        layers[f"fc{i}"] = init_linear_(skip_init(nn.Linear, fan_in, fan_out, bias=norm is None), init, generator)
        if norm is not None:
            layers[f"norm{i}"] = norm(fan_out)
        layers[f"act{i}"] = make_activation(activation)
    layers["out"] = init_linear_(skip_init(nn.Linear, sizes[-2], sizes[-1]), init, generator)
    return nn.Sequential(layers)


def preactivations(model: nn.Sequential) -> dict[str, nn.Module]:
    """For an ``mlp``: {"1": module, "2": ...}, the module whose output is the input of each hidden
    activation (``norm{i}`` when present, else ``fc{i}``)."""
    names = dict(model.named_children())
    out = {}
    for name in names:
        if name.startswith("act"):
            i = name[3:]
            out[i] = names.get(f"norm{i}", names.get(f"fc{i}"))
            if out[i] is None:
                raise ValueError(f"expected fc{i} before {name} (got modules {list(names)})")
    return out


def hidden_layers(model: nn.Sequential, kind: str = "act") -> dict[str, nn.Module]:
    """For an ``mlp``: the hidden layers' modules of one ``kind`` ("fc", "norm" or "act"), keyed by
    layer number as a string."""
    if kind not in ("fc", "norm", "act"):
        raise ValueError(f"expected kind 'fc', 'norm' or 'act' (got {kind!r})")
    return {name[len(kind):]: m for name, m in model.named_children()
            if name.startswith(kind) and name[len(kind):].isdigit()}
