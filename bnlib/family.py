"""The normalization family chapters' testbed: one small CNN, its normalization swapped, runs over batch and map size.

What each layer averages over is read off the layers themselves (``shared_with``: the non-zero
pattern of the Jacobian of one output of a normalization layer), and each experiment is a call to
``run`` with a different setting, so every number in the chapter comes from the same code.

    cfg = FamilyConfig()                                  # every hyperparameter, in one place
    data = fashion14(cfg)                                 # Fashion-MNIST at 14x14, as tensors
    run(data, cfg, norm="bn", batch_size=2, size=1, seed=0)   # -> {"test_acc": ..., ...}
    run_many(data, cfg, [dict(norm="gn", batch_size=2, size=7, seed=s) for s in range(3)], workers=2)

The network (``family_cnn``) puts every normalization layer at one spatial size ``size``, so a BN
layer's statistics sample is m = N * size**2 values per channel and a sweep over (N, size) sweeps m.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import norms
from .data import load_fashion_mnist
from .train import TrainConfig, evaluate, fit
from .utils import worker_pool

__all__ = ["FamilyConfig", "NORMS", "make_norm2d", "family_cnn", "fashion14", "shared_with",
           "TwoClassBatches", "contrast", "wn_init", "run", "run_many"]


@dataclass(frozen=True)
class FamilyConfig:
    train_size: int = 12000     # training images (Fashion-MNIST train, the first ones)
    test_size: int = 2000       # test images (Fashion-MNIST test, the first ones)
    image_size: int = 14        # 28x28 averaged down 2x2
    width: int = 16             # channels of every conv layer
    groups: int = 4             # GroupNorm's G (LN is G = 1, IN is G = C)
    examples: int = 4096        # training examples per run (a third of an epoch), whatever the batch
    lr: float = 0.05            # at batch 32; scaled linearly with the batch (Goyal et al. 2017)
    momentum: float = 0.9
    renorm: tuple = (0.1, 0.8, 0.5, 3.0, 5.0)  # BRN schedule: warmup, r_max and d_max reached (shares of the run), r_max, d_max

    def to_dict(self) -> dict:
        return asdict(self)


NORMS = ("none", "bn", "brn", "gn", "ln", "in", "mobn", "dyt")


def make_norm2d(norm: str, channels: int, groups: int = 4) -> nn.Module:
    """A normalization layer for (N, C, H, W) maps: "none" (identity), "bn" (BatchNorm2d), "brn"
    (BatchRenorm2d), "gn" (GroupNorm(groups, C)), "ln" (GroupNorm(1, C): LN over C, H, W with one
    gamma per channel, as Wu & He use it in conv nets), "in" (InstanceNorm2d, affine), "mobn"
    (MeanOnlyBatchNorm2d, Salimans & Kingma), "dyt" (DyT over channels: no statistics at all)."""
    if norm not in NORMS:
        raise ValueError(f"expected norm in {NORMS} (got {norm!r})")
    if norm in ("gn", "ln", "in") and channels % groups:
        raise ValueError(f"expected channels divisible by groups={groups} (got {channels})")
    return {"none": lambda: nn.Identity(), "bn": lambda: norms.BatchNorm2d(channels),
            "brn": lambda: norms.BatchRenorm2d(channels, r_max=1.0, d_max=0.0),
            "gn": lambda: norms.GroupNorm(groups, channels), "ln": lambda: norms.GroupNorm(1, channels),
            "in": lambda: norms.InstanceNorm2d(channels, affine=True),
            "mobn": lambda: norms.MeanOnlyBatchNorm2d(channels),
            "dyt": lambda: norms.DyT(channels, channels_last=False)}[norm]()


def family_cnn(norm: str = "bn", size: int = 7, width: int = 16, groups: int = 4, ws: bool = False,
               num_classes: int = 10, generator: torch.Generator | None = None, wn: bool = False) -> nn.Sequential:
    """(N, 1, 14, 14) -> logits (N, num_classes).

    stem: conv3x3(1 -> width) at 14 x 14, average-pool to size x size, norm, ReLU; then two blocks
    of conv3x3(width -> width) -> norm -> ReLU at size x size; global average pool; Linear.
    All three normalization layers see (N, width, size, size): BN's sample is m = N * size**2
    per channel. ``ws``: the two block convolutions standardize their weights (``norms.WSConv2d``);
    ``wn``: they are weight-normalized (``norms.WNConv2d``; initialize with ``wn_init``).
    Convolutions carry a bias only where no norm layer removes it ("none", "dyt"); with replicate padding, a per-image
    contrast change a * x + b (a > 0) reaches the first norm layer as a per-channel a * z + b',
    which instance normalization removes.
    """
    if size < 1:
        raise ValueError(f"expected size >= 1 (got {size})")
    if norm == "in" and size == 1:
        raise ValueError("expected size >= 2 for instance normalization (got 1: it would normalize one "
                         "value per channel to 0)")
    if ws and wn:
        raise ValueError("expected at most one of ws and wn (got both)")
    conv = norms.WSConv2d if ws else norms.WNConv2d if wn else nn.Conv2d
    bias = norm in ("none", "dyt")
    layers = [nn.Conv2d(1, width, 3, padding=1, padding_mode="replicate", bias=bias),
              nn.AdaptiveAvgPool2d(size), make_norm2d(norm, width, groups), nn.ReLU()]
    for _ in range(2):
        layers += [conv(width, width, 3, padding=1, padding_mode="replicate", bias=bias),
                   make_norm2d(norm, width, groups), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]  # (N, C, 1, 1) -> (N, C)
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, norms.WNConv2d):
                nn.init.kaiming_normal_(m.weight_v, nonlinearity="relu", generator=generator)
                m.weight_g.copy_(norms.weightnorm.norm_except_dim0(m.weight_v))  # w = v at first
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
    return model


@torch.no_grad()
def wn_init(model: nn.Sequential, x: torch.Tensor) -> None:
    """Salimans & Kingma's data-dependent initialization, layer by layer on the batch x: each
    weight-normalized layer sets g and b so that its output on x has zero mean and unit variance."""
    for layer in model:
        x = layer.init_from_data(x) if isinstance(layer, norms.WNConv2d) else layer(x)


def fashion14(cfg: FamilyConfig = FamilyConfig()) -> dict:
    """{"train": (x, y), "test": (x, y)}: standardized Fashion-MNIST, 2x2-averaged to 14x14."""
    fm = load_fashion_mnist()
    out = {}
    for split, n in (("train", cfg.train_size), ("test", cfg.test_size)):
        x, y = fm.tensors(split)
        x = F.avg_pool2d(x[:n], 28 // cfg.image_size)  # (n, 1, 28, 28) -> (n, 1, 14, 14)
        out[split] = (x.contiguous(), y[:n].clone())
    return out


def shared_with(layer: nn.Module, shape: tuple, index: tuple) -> torch.Tensor:
    """Which inputs enter the statistics of one output: a bool mask of ``shape`` (N, C, H, W), True
    where d out[index] / d x is non-zero for random x (float64). For a normalization layer that is
    exactly the set of values its mean and variance for ``index`` are computed over."""
    if len(shape) != 4 or len(index) != 4:
        raise ValueError(f"expected a 4-D shape and index (got shape {shape}, index {index})")
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    layer = layer.to(torch.float64)
    (grad,) = torch.autograd.grad(layer(x)[index], x)
    return grad.abs() > 1e-12


class TwoClassBatches:
    """A non-i.i.d. batch sampler for ``train.fit``: each batch holds batch_size/2 examples of each of
    two classes drawn at random (Ioffe 2017, Sec. 4.3, there 16 classes x 2 images)."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels
        self.by_class = [torch.nonzero(labels == c).flatten() for c in range(int(labels.max()) + 1)]

    def __call__(self, n: int, batch_size: int, steps: int, generator: torch.Generator):
        if n != len(self.labels) or batch_size % 2:
            raise ValueError(f"expected {len(self.labels)} examples and an even batch (got n={n}, batch_size={batch_size})")
        half = batch_size // 2
        for _ in range(steps):
            a, b = torch.randperm(len(self.by_class), generator=generator)[:2].tolist()
            pick = [c[torch.randint(len(c), (half,), generator=generator)] for c in (self.by_class[a], self.by_class[b])]
            yield torch.cat(pick)


def contrast(x: torch.Tensor, scale: float, shift: float = 0.0) -> torch.Tensor:
    """Each image's contrast changed around its own mean: x -> mean + scale (x - mean) + shift."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return mean + scale * (x - mean) + shift


def run(data: dict, cfg: FamilyConfig, norm: str, batch_size: int, size: int, seed: int,
        sampler: str = "iid", ws: bool = False, contrasts: tuple = (), wn: bool = False) -> dict:
    """Train ``family_cnn(norm, size)`` on ``cfg.examples`` examples in batches of ``batch_size``
    (lr = cfg.lr * batch_size / 32, SGD with momentum); ``sampler`` "iid" or "two_class"; ``wn``:
    weight-normalized block convolutions, initialized from the first 256 training images.

    Returns {"test_acc": eval-mode accuracy on the test images, "train_acc": train-mode accuracy on
    the last 10% of the training batches, "eval_train_acc": eval-mode accuracy on 2000 training
    images, "contrast_acc": [eval-mode test accuracy after ``contrast(x, s)`` for s in contrasts],
    "seconds_per_step", "state": the trained model's state dict}. A "brn" run follows the
    schedule ``cfg.renorm``."""
    x, y = data["train"]
    steps = cfg.examples // batch_size
    tc = TrainConfig(steps=steps, batch_size=batch_size, lr=cfg.lr * batch_size / 32, momentum=cfg.momentum,
                     eval_every=steps, seed=seed)
    model = family_cnn(norm, size, cfg.width, cfg.groups, ws=ws, wn=wn, generator=torch.Generator().manual_seed(seed))
    if wn:
        wn_init(model, x[:256])
    hooks = []
    if norm == "brn":
        warm, r_end, d_end, r_max, d_max = cfg.renorm
        limits = dict(warmup=int(warm * steps), r_max=r_max, r_max_step=int(r_end * steps), d_max=d_max,
                      d_max_step=int(d_end * steps))
        hooks.append(lambda step, model, *_: norms.set_renorm_limits(model, *norms.renorm_limits(step, **limits)))
    t0 = time.perf_counter()
    hist = fit(model, (x, y), None, tc, on_step=hooks,
               sampler=TwoClassBatches(y) if sampler == "two_class" else None)
    seconds = (time.perf_counter() - t0) / steps
    xt, yt = data["test"]
    tail = max(1, steps // 10)
    return {"test_acc": evaluate(model, xt, yt)[1], "train_acc": sum(hist.acc[-tail:]) / tail,
            "eval_train_acc": evaluate(model, x[:2000], y[:2000])[1],
            "contrast_acc": [evaluate(model, contrast(xt, s), yt)[1] for s in contrasts],
            "seconds_per_step": seconds, "state": model.state_dict()}


def _job(args):
    data, cfg, kwargs = args
    return run(data, cfg, **kwargs)


def run_many(data: dict, cfg: FamilyConfig, jobs: list[dict], workers: int = 1) -> list[dict]:
    """``run(data, cfg, **job)`` for each job, over ``workers`` processes of one thread each; every run
    seeds its own generators, so the results are those of ``workers=1`` (in the order of ``jobs``)."""
    if workers <= 1:
        return [run(data, cfg, **job) for job in jobs]
    with worker_pool(workers) as pool:
        return list(pool.map(_job, [(data, cfg, job) for job in jobs]))
