"""What the checkers share: the failure, the comparison, and naming the usual mistake that fits."""
from __future__ import annotations

import torch

__all__ = ["CheckFailed", "NO_MATCH", "NOT_DIFFERENTIABLE", "as_tensors", "same", "explain"]


class CheckFailed(AssertionError):
    """The reader's function does not match the reference; the message says how."""


NO_MATCH = ("알려진 실수와도 맞지 않습니다. 한 줄씩 기준 구현과 비교해 보세요. · "
            "it matches none of the usual mistakes either: compare line by line with the reference.")
NOT_DIFFERENTIABLE = ("출력에 grad_fn이 없습니다. autograd 밖(NumPy, detach, torch.no_grad)에서 계산했습니다. "
                      "네트워크 안의 층은 미분할 수 있어야 합니다. · the output has no grad_fn: it was computed "
                      "outside autograd (NumPy, detach, torch.no_grad); a layer inside a network must be differentiable.")


def as_tensors(result) -> tuple[torch.Tensor, ...]:
    """The reader's result as a tuple of tensors (a single value becomes a 1-tuple; Python floats float64)."""
    items = result if isinstance(result, (tuple, list)) else (result,)
    return tuple(r if torch.is_tensor(r) else
                 torch.as_tensor(r, dtype=torch.float64 if isinstance(r, float) else None) for r in items)


def same(a, b, tol: float = 1e-7) -> bool:
    """Tuples of tensors with equal shapes and max |a - b| <= tol * max(1, max |b|), element by element."""
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if u.shape != v.shape:
            return False
        u, v = u.detach().double(), v.detach().double()
        if not torch.isfinite(u).all() or (u - v).abs().max() > tol * max(1.0, v.abs().max().item()):
            return False
    return True


def explain(mistakes: dict, reader: tuple, run, matchers: dict | None = None) -> str:
    """The explanation of the first usual mistake that reproduces the reader's outputs, or NO_MATCH.

    mistakes: {name: (wrong function, "한국어 · English")}; run(wrong) -> that wrong answer's outputs on
    the failing case; matchers: {name: reader -> bool} for mistakes recognized by a property instead.
    """
    for name, (wrong, why) in mistakes.items():
        try:
            hit = matchers[name](reader) if matchers and name in matchers else same(reader, run(wrong))
        except (RuntimeError, ValueError, IndexError):  # this wrong answer does not even run on the case
            hit = False
        if hit:
            return why
    return NO_MATCH
