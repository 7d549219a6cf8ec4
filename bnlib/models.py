"""Model builders: MLPs, VGG-style CIFAR networks and the deep linear network.

Normalization comes in as a factory (``norm=torch.nn.BatchNorm1d``, or bnlib's own layers),
placed before the activation as in Ioffe & Szegedy (2015, §3.2): z = g(BN(Wu)).

    model = mlp([784, 100, 100, 100, 10], "sigmoid", norm=nn.BatchNorm1d, init=0.1)
    model.fc3, model.norm3, model.act3        # the last hidden layer's pieces, by name
    preactivations(model)["3"]                # the module whose output feeds the 3rd activation

    vgg("small", norm="bn")                   # Santurkar et al.'s VGG-style CIFAR network
    deep_linear_network(25, 10, norm="bn")    # ... and their 25-layer deep linear network
    weight_layers(model)[k - 1]               # the paper's "Layer #k"
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


# --- Santurkar et al. 2018: VGG-style CIFAR networks and the deep linear network ---------------

VGG_CONFIGS = {  # conv widths, "M" = 2x2 max-pool; the classifier is FC 512 -> 512 -> 10 at paper scale
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "small": [16, 32, "M", 64, 64, "M", 128, 128, "M"],  # 6 conv layers
    "tiny": [8, 16, "M", 32, 32, "M", 64, "M"],  # quick scale (16x16 input): 5 conv layers, 8 in all
}


def make_norm(norm, num_features: int, ndim: int, generator: torch.Generator | None = None) -> nn.Module | None:
    """A normalization layer for ``num_features`` channels of ``ndim``-D feature maps (1 or 2).

    ``norm``: None; a name — "bn" (bnlib.layers), "noisy_bn" (bnlib's noisy BN, Santurkar
    Alg. 1), "torch_bn" (torch.nn), "l1"/"l2"/"linf" (bnlib.lpnorm, Santurkar Sec. 3.3); or a
    callable ``factory(num_features, ndim)``.
    """
    from . import layers

    if ndim not in (1, 2):
        raise ValueError(f"expected ndim 1 (features) or 2 (feature maps) (got {ndim})")
    if norm is None or norm == "none":
        return None
    if callable(norm):
        return norm(num_features, ndim)
    table = {
        "bn": (layers.BatchNorm1d, layers.BatchNorm2d),
        "torch_bn": (nn.BatchNorm1d, nn.BatchNorm2d),
        "noisy_bn": (layers.NoisyBatchNorm1d, layers.NoisyBatchNorm2d),
    }
    lp = {"l1": 1, "l2": 2, "linf": math.inf}  # Santurkar et al. Sec. 3.3
    if norm in lp:
        from .lpnorm import LpNorm1d, LpNorm2d

        return (LpNorm1d, LpNorm2d)[ndim - 1](num_features, p=lp[norm])
    if norm not in table:
        raise ValueError(f"expected norm None, a factory, or one of {sorted(table) + sorted(lp)} (got {norm!r})")
    cls = table[norm][ndim - 1]
    return cls(num_features, generator=generator) if norm == "noisy_bn" else cls(num_features)


def vgg(config: str | list = "vgg11", norm=None, num_classes: int = 10, fc_width: int = 512,
        init: str = "xavier", generator: torch.Generator | None = None,
        noise_generator: torch.Generator | None = None, image_size: int = 32) -> nn.Sequential:
    """A VGG-style network for ``image_size``-square RGB images: (conv3x3 -> [norm] -> ReLU |
    maxpool)* then (Linear -> [norm] -> ReLU) x 2 and a Linear output. With a norm, the layer
    before it has no bias. ``init="xavier"``: Glorot normal weights drawn from ``generator``
    (Santurkar et al. A.1), zero biases; ``"default"``: PyTorch's own, from the global RNG.
    ``noise_generator`` drives noisy BN.

    Layers are numbered like the paper's "Layer #k": ``weight_layers(model)[k - 1]`` is layer #k
    and ``relu_inputs(model)[k - 1]`` its (normalized) pre-activation.
    """
    if isinstance(config, str) and config not in VGG_CONFIGS:
        raise ValueError(f"expected config in {sorted(VGG_CONFIGS)} or a list of widths and 'M' (got {config!r})")
    if init not in ("xavier", "default"):
        raise ValueError(f"expected init 'xavier' or 'default' (got {init!r})")
    widths = VGG_CONFIGS[config] if isinstance(config, str) else list(config)
    if image_size % 2 ** widths.count("M"):
        raise ValueError(f"expected image_size divisible by 2**{widths.count('M')} for {widths.count('M')} "
                         f"max-pools (got {image_size})")
    blocks, c, size = [], 3, image_size
    for v in widths:
        if v == "M":
            blocks.append(nn.MaxPool2d(2))
            size //= 2
            continue
        n = make_norm(norm, v, 2, noise_generator)
        blocks.append(skip_init(nn.Conv2d, c, v, 3, padding=1, bias=n is None))
        blocks += [n] if n is not None else []
        blocks.append(nn.ReLU())
        c = v
    blocks.append(nn.Flatten())  # (N, C, s, s) -> (N, C*s*s)
    f = c * size * size
    for _ in range(2):
        n = make_norm(norm, fc_width, 1, noise_generator)
        blocks.append(skip_init(nn.Linear, f, fc_width, bias=n is None))
        blocks += [n] if n is not None else []
        blocks.append(nn.ReLU())
        f = fc_width
    blocks.append(skip_init(nn.Linear, f, num_classes))
    model = nn.Sequential(*blocks)
    with torch.no_grad():
        for layer in weight_layers(model):
            if init == "default":
                layer.reset_parameters()
                continue
            nn.init.xavier_normal_(layer.weight, generator=generator)
            if layer.bias is not None:
                layer.bias.zero_()
    return model


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers in forward order: entry k-1 is the paper's "Layer #k"."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def relu_inputs(model: nn.Sequential) -> list[nn.Module]:
    """The module feeding each ReLU, in order: for ``vgg``, entry k-1 is the output of layer #k
    after its normalization (the pre-activation whose distribution the paper plots)."""
    children = list(model.children())
    return [children[i - 1] for i, m in enumerate(children) if isinstance(m, nn.ReLU) and i > 0]


def deep_linear_network(depth: int = 25, width: int = 10, norm=None,
                        generator: torch.Generator | None = None) -> nn.Sequential:
    """Santurkar et al.'s DLN: ``depth`` bias-free width x width linear layers, Glorot init,
    no non-linearity; with ``norm``, a 1-D normalization after every layer but the last."""
    blocks = []
    if depth < 1 or width < 1:
        raise ValueError(f"expected depth >= 1 and width >= 1 (got depth={depth}, width={width})")
    for i in range(depth):
        blocks.append(skip_init(nn.Linear, width, width, bias=False))
        n = make_norm(norm, width, 1) if i < depth - 1 else None
        blocks += [n] if n is not None else []
    model = nn.Sequential(*blocks)
    with torch.no_grad():
        for layer in weight_layers(model):
            nn.init.xavier_normal_(layer.weight, generator=generator)
    return model
