"""A tiny transformer that reads an image row by row: LayerNorm, RMSNorm and DyT side by side.

Each 14x14 Fashion-MNIST image becomes a sequence of 14 tokens (its rows, 14 pixels each), so the
same data as ``bnlib.family`` serves a transformer. Pre-norm blocks as in GPT-2 / ViT:

    x = x + Attention(norm1(x));  x = x + MLP(norm2(x))      x: (N, T, D)

and ``norm`` is the only thing that changes between runs ("ln", "rms", "dyt"; Zhu et al. 2025
replace every LayerNorm by DyT in just this way).

    model = row_transformer("dyt")
    run_rows(data, "ln", seed=0)   # -> {"test_acc": ..., "state": ...}
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from . import norms
from .train import TrainConfig, evaluate, fit
from .utils import worker_pool

__all__ = ["RowConfig", "TOKEN_NORMS", "make_token_norm", "Block", "row_transformer", "run_rows"]

TOKEN_NORMS = ("ln", "rms", "dyt")


@dataclass(frozen=True)
class RowConfig:
    dim: int = 32             # D, the token width
    heads: int = 2
    depth: int = 2            # transformer blocks
    mlp_ratio: int = 2        # the MLP's hidden width is mlp_ratio * D
    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3          # AdamW
    weight_decay: float = 0.01
    alpha_init: float = 0.5   # DyT's starting alpha (Zhu et al.'s default for non-LLM models)

    def to_dict(self) -> dict:
        return asdict(self)


def make_token_norm(norm: str, dim: int, alpha_init: float = 0.5) -> nn.Module:
    """A normalization layer over the last dim of (N, T, D) tokens."""
    if norm not in TOKEN_NORMS:
        raise ValueError(f"expected norm in {TOKEN_NORMS} (got {norm!r})")
    if norm == "ln":
        return norms.LayerNorm(dim)
    if norm == "rms":
        return norms.RMSNorm(dim)
    return norms.DyT(dim, alpha_init=alpha_init)


class Block(nn.Module):
    """Pre-norm transformer block: (N, T, D) -> (N, T, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, norm: str, alpha_init: float = 0.5) -> None:
        super().__init__()
        self.norm1 = make_token_norm(norm, dim, alpha_init)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = make_token_norm(norm, dim, alpha_init)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]  # (N, T, D)
        return x + self.mlp(self.norm2(x))


class RowTransformer(nn.Module):
    """(N, 1, T, P) images -> logits (N, classes): rows as tokens, learned positions, mean pooling."""

    def __init__(self, norm: str, cfg: RowConfig, rows: int = 14, pixels: int = 14, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(pixels, cfg.dim)
        self.pos = nn.Parameter(torch.zeros(1, rows, cfg.dim))
        self.blocks = nn.Sequential(*[Block(cfg.dim, cfg.heads, cfg.mlp_ratio, norm, cfg.alpha_init)
                                      for _ in range(cfg.depth)])
        self.norm = make_token_norm(norm, cfg.dim, cfg.alpha_init)  # the final norm, before the head
        self.head = nn.Linear(cfg.dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected images of shape (N, 1, rows, pixels) (got {tuple(x.shape)})")
        tokens = self.embed(x.squeeze(1)) + self.pos  # (N, 1, T, P) -> (N, T, P) -> (N, T, D)
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))  # (N, T, D) -> (N, D) -> (N, classes)


def row_transformer(norm: str = "ln", cfg: RowConfig = RowConfig(), seed: int = 0) -> RowTransformer:
    torch.manual_seed(seed)
    return RowTransformer(norm, cfg)


def run_rows(data: dict, norm: str, seed: int, cfg: RowConfig = RowConfig()) -> dict:
    """Train ``row_transformer(norm)`` with AdamW -> {"test_acc", "state"}."""
    x, y = data["train"]
    model = row_transformer(norm, cfg, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, eval_every=cfg.steps, seed=seed)
    fit(model, (x, y), None, tc, optimizer=opt)
    xt, yt = data["test"]
    return {"test_acc": evaluate(model, xt, yt)[1], "state": model.state_dict()}


def _job(args):
    data, norm, seed, cfg = args
    return run_rows(data, norm, seed, cfg)


def run_rows_many(data: dict, jobs: list[tuple[str, int]], cfg: RowConfig = RowConfig(), workers: int = 1) -> list[dict]:
    """``run_rows(data, norm, seed, cfg)`` for each (norm, seed), over ``workers`` one-thread processes;
    every run seeds itself, so the results are those of ``workers=1``."""
    if workers <= 1:
        return [run_rows(data, norm, seed, cfg) for norm, seed in jobs]
    with worker_pool(workers) as pool:
        return list(pool.map(_job, [(data, norm, seed, cfg) for norm, seed in jobs]))
