"""A small residual CNN with BN, BN-free residual inits (SkipInit, Fixup), and signal propagation over depth.

The "BN in practice" chapters train this one network family; every number there comes from ``run``
with a different setting, on Fashion-MNIST held in memory as tensors.

    cfg = ResNetConfig()                                    # every hyperparameter, in one place
    data = fashion(cfg)                                     # {"train": (x, y), "test": (x, y)}
    model = resnet(cfg, norm="bn", init="zero_gamma")       # (N, 1, s, s) -> (N, 10)
    run(data, cfg, norm="bn", seed=0)                       # -> {"test_acc": ..., "loss": [...], ...}
    run_many(data, cfg, [dict(norm="none", seed=s) for s in range(3)], workers=2)
    residual_stream_variance(model, x)                      # Var of the stream after each block

Blocks are ResNet v1 ("post": conv-BN-ReLU-conv-BN, add, ReLU; He et al. 2016a) or pre-activation
("pre": BN-ReLU-conv-BN-ReLU-conv, add; He et al. 2016b). ``init`` sets how a block starts:
"default" (Kaiming, gamma = 1), "zero_gamma" (the last BN of each branch starts at gamma = 0;
Goyal et al. 2017), "skipinit" (no BN; each branch times a scalar alpha = 0; De & Smith 2020),
"fixup" (no BN; last conv of each branch 0, the others scaled by L^(-1/2), scalar biases and a
multiplier; Zhang, Dauphin & Ma 2019).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import load_fashion_mnist
from .train import TrainConfig, evaluate, fit
from .utils import map_jobs

__all__ = ["ResNetConfig", "INITS", "Block", "resnet", "fashion", "residual_stream_variance", "run", "run_many"]

INITS = ("default", "zero_gamma", "skipinit", "fixup")


@dataclass(frozen=True)
class ResNetConfig:
    widths: tuple = (16, 32, 64)   # channels per stage; every stage after the first halves the map
    blocks: int = 1                # residual blocks per stage (depth = 2 * blocks * stages + 2 layers)
    block: str = "post"            # "post" (ResNet v1) or "pre" (pre-activation)
    image_size: int = 14           # Fashion-MNIST 28x28 averaged down to 14x14 (or 7x7, 28x28)
    train_size: int = 60000        # training images (all of Fashion-MNIST train)
    test_size: int = 10000         # test images (all of Fashion-MNIST test)
    epochs: float = 1.0            # passes over the training images
    batch_size: int = 128
    lr: float = 0.2                # peak learning rate: linear warm-up over 10%, then linear decay to 0
    momentum: float = 0.9          # Nesterov momentum
    weight_decay: float = 5e-4     # on conv and linear weights only (not on gamma, beta, biases)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def steps(self) -> int:
        return max(1, round(self.epochs * self.train_size / self.batch_size))


class Block(nn.Module):
    """One residual block, (N, C_in, s, s) -> (N, C_out, s / stride, s / stride).

    post: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x)    pre: x' + conv2(relu(bn2(conv1(relu(bn1 x)))))
    With norm="none" the BN layers are identities and the convolutions carry biases; "skipinit"
    multiplies the branch by a learned scalar ``alpha`` (0 at init), "fixup" adds Fixup's scalar
    biases ``b1..b4`` and multiplier ``scale`` (1 at init). A shortcut that changes shape is a 1x1
    convolution with stride (with BN when the block has BN)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "bn", block: str = "post",
                 init: str = "default") -> None:
        super().__init__()
        if block not in ("post", "pre"):
            raise ValueError(f"expected block 'post' or 'pre' (got {block!r})")
        self.block, self.init = block, init
        bn = norm == "bn"
        bn_out = bn and block == "post"  # a pre-activation block normalizes its input, not its output
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not bn)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(c_in if block == "pre" else c_out) if bn else nn.Identity()
        self.bn2 = nn.BatchNorm2d(c_out) if bn else nn.Identity()
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            conv = nn.Conv2d(c_in, c_out, 1, stride, bias=not bn_out)
            self.shortcut = nn.Sequential(conv, nn.BatchNorm2d(c_out)) if bn_out else conv
        if init == "skipinit":
            self.alpha = nn.Parameter(torch.zeros(()))
        if init == "fixup":
            self.bias1, self.bias2, self.bias3, self.bias4 = (nn.Parameter(torch.zeros(())) for _ in range(4))
            self.scale = nn.Parameter(torch.ones(()))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        if self.init == "fixup":  # Zhang et al. 2019, Fig. 1: scalar biases before each conv and activation
            h = F.relu(self.conv1(x + self.bias1) + self.bias2)
            return self.conv2(h + self.bias3) * self.scale + self.bias4
        if self.block == "pre":
            h = self.conv1(F.relu(self.bn1(x)))
            return self.conv2(F.relu(self.bn2(h)))
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.branch(x)
        if self.init == "skipinit":
            r = self.alpha * r
        out = r + self.shortcut(x)
        return F.relu(out) if self.block == "post" else out


def resnet(cfg: ResNetConfig = ResNetConfig(), norm: str = "bn", init: str = "default",
           generator: torch.Generator | None = None, num_classes: int = 10) -> nn.Sequential:
    """(N, 1, s, s) -> logits (N, num_classes): stem conv3x3 (-> BN -> ReLU), ``cfg.blocks`` blocks
    per stage of ``cfg.widths`` channels, global average pool, Linear.

    ``norm``: "bn" or "none"; ``init``: one of ``INITS`` ("skipinit" and "fixup" need norm="none").
    A pre-activation net ends with BN -> ReLU before the pool, as He et al. (2016b)."""
    if norm not in ("bn", "none"):
        raise ValueError(f"expected norm 'bn' or 'none' (got {norm!r})")
    if init not in INITS:
        raise ValueError(f"expected init in {INITS} (got {init!r})")
    if init in ("skipinit", "fixup") and norm != "none":
        raise ValueError(f"expected norm='none' with init={init!r} (got norm={norm!r}): "
                         f"{init} is a way to train residual nets without normalization")
    if init == "zero_gamma" and norm != "bn":
        raise ValueError("expected norm='bn' with init='zero_gamma' (got norm='none'): there is no gamma")
    bn = norm == "bn"
    w0 = cfg.widths[0]
    layers = [nn.Conv2d(1, w0, 3, 1, 1, bias=not bn)]
    if cfg.block == "post":
        layers += [nn.BatchNorm2d(w0) if bn else nn.Identity(), nn.ReLU()]
    c_in = w0
    for stage, width in enumerate(cfg.widths):
        for b in range(cfg.blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(Block(c_in, width, stride, norm, cfg.block, init))
            c_in = width
    if cfg.block == "pre":
        layers += [nn.BatchNorm2d(c_in) if bn else nn.Identity(), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]  # (N, C, 1, 1) -> (N, C)
    model = nn.Sequential(*layers)
    _init_(model, init, generator)
    return model


@torch.no_grad()
def _init_(model: nn.Sequential, init: str, generator: torch.Generator | None) -> None:
    blocks = [m for m in model if isinstance(m, Block)]
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
            if m.bias is not None:
                m.bias.zero_()
    head = model[-1]
    nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=generator)  # torch's default
    head.bias.zero_()
    if init == "zero_gamma":
        for b in blocks:  # the BN that closes each branch starts at 0: every block is the identity
            b.bn2.weight.zero_()
    if init == "fixup":  # L residual branches of m = 2 layers: scale the first by L^(-1/(2m-2)) = L^(-1/2)
        for b in blocks:
            b.conv1.weight.mul_(len(blocks) ** -0.5)
            b.conv2.weight.zero_()
        head.weight.zero_()


def fashion(cfg: ResNetConfig = ResNetConfig()) -> dict:
    """{"train": (x, y), "test": (x, y)}: standardized Fashion-MNIST, averaged down to cfg.image_size."""
    if 28 % cfg.image_size:
        raise ValueError(f"expected image_size dividing 28: 28, 14, 7 or 4 (got {cfg.image_size})")
    fm = load_fashion_mnist()
    out = {}
    for split, n in (("train", cfg.train_size), ("test", cfg.test_size)):
        x, y = fm.tensors(split)
        x = F.avg_pool2d(x[:n], 28 // cfg.image_size)  # (n, 1, 28, 28) -> (n, 1, s, s)
        out[split] = (x.contiguous(), y[:n].clone())
    return out


@torch.no_grad()
def residual_stream_variance(model: nn.Sequential, x: torch.Tensor) -> list[float]:
    """Var of the activations entering the first block and leaving each block (over all of N, C,
    H, W), in the model's current mode; the model's BN buffers are restored afterwards."""
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    out = []
    for layer in model:
        if isinstance(layer, Block) and not out:
            out.append(x.var().item())
        x = layer(x)
        if isinstance(layer, Block):
            out.append(x.var().item())
    model.load_state_dict(buffers)
    return out


def _optimizer(model: nn.Module, cfg: ResNetConfig) -> torch.optim.SGD:
    decay = [p for p in model.parameters() if p.ndim > 1]  # conv and linear weights
    rest = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.SGD([dict(params=decay, weight_decay=cfg.weight_decay), dict(params=rest, weight_decay=0.0)],
                           lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


def lr_at(step: int, cfg: ResNetConfig) -> float:
    """Linear warm-up over the first 10% of the steps, then linear decay to 0 at the last step."""
    warm = max(1, cfg.steps // 10)
    return cfg.lr * (step / warm if step <= warm else max(0.0, (cfg.steps - step) / (cfg.steps - warm)))


def run(data: dict, cfg: ResNetConfig, norm: str = "bn", init: str = "default", seed: int = 0,
        lr: float | None = None) -> dict:
    """Train ``resnet(cfg, norm, init)`` for ``cfg.steps`` steps (``lr`` overrides ``cfg.lr``).

    Returns {"test_acc", "test_loss": eval-mode on the test images, "loss": per-step training loss
    (NaN after a divergence), "diverged": bool, "seconds_per_step", "state": the state dict}."""
    if lr is not None:
        cfg = ResNetConfig(**{**cfg.to_dict(), "lr": lr})
    x, y = data["train"]
    model = resnet(cfg, norm, init, generator=torch.Generator().manual_seed(seed))
    opt = _optimizer(model, cfg)

    def schedule(step, *_):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)

    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, eval_every=cfg.steps, seed=seed)
    t0 = time.perf_counter()
    hist = fit(model, (x, y), None, tc, on_step=[schedule], optimizer=opt, on_nonfinite="stop")
    seconds = (time.perf_counter() - t0) / max(1, len(hist.loss))
    diverged = hist.diverged_at is not None
    test_loss, test_acc = (float("nan"), 0.1) if diverged else evaluate(model, *data["test"])
    loss = hist.loss + [float("nan")] * (cfg.steps - len(hist.loss))
    return {"test_acc": test_acc, "test_loss": test_loss, "loss": loss, "diverged": diverged,
            "seconds_per_step": seconds, "state": model.state_dict()}


def _job(args):
    data, cfg, kwargs = args
    return run(data, cfg, **kwargs)


def run_many(data: dict, cfg: ResNetConfig, jobs: list[dict], workers: int = 1) -> list[dict]:
    """``run(data, cfg, **job)`` for each job over ``workers`` one-thread processes; every run seeds
    its own generators, so the results are those of ``workers=1``, in the order of ``jobs``."""
    return map_jobs(_job, [(data, cfg, job) for job in jobs], workers)
