"""Running statistics (bn_algorithm, exercise 6): the reader's update against torch.nn.BatchNorm1d's buffers.

    check.running_stats(my_update)   # my_update(running_mean, running_var, x, momentum) -> (mean, var)

PyTorch's convention: new = (1 - momentum) * old + momentum * batch, with the batch variance
stored unbiased (divided by N - 1), and the buffers updated outside autograd. x is (N, C) in
float64 and requires grad, as an activation inside a network does.
"""
from __future__ import annotations

import torch
from torch import nn

from ._common import CheckFailed, as_tensors, explain, same

__all__ = ["RUNNING_MISTAKES", "running_stats"]


def _rule(running_mean, running_var, x, momentum, unbiased=True, reverse=False, axis=0):
    with torch.no_grad():
        mean, var = x.mean(axis), x.var(axis, correction=1 if unbiased else 0)  # (C,), or (N,) for axis=1
        keep = momentum if reverse else 1 - momentum  # the weight of the old value
        return keep * running_mean + (1 - keep) * mean, keep * running_var + (1 - keep) * var


def _in_place_under_autograd(running_mean, running_var, x, momentum):
    running_mean.mul_(1 - momentum).add_(momentum * x.mean(0))  # the right values, in place as nn.BatchNorm
    running_var.mul_(1 - momentum).add_(momentum * x.var(0))  # does, but without torch.no_grad()
    return running_mean, running_var


RUNNING_MISTAKES = {  # name: (wrong update, the explanation: Korean · English)
    "biased": (lambda m, v, x, k: _rule(m, v, x, k, unbiased=False),
               "배치 분산을 N으로 나눠 저장했습니다(편향된 분산). 정규화에는 N으로 나눈 분산을 쓰지만, PyTorch의 "
               "실행 통계에는 N-1로 나눈 불편 분산을 저장합니다. · the batch variance was stored divided by N "
               "(biased); normalization uses that one, but PyTorch's running statistics store the unbiased "
               "variance, divided by N-1."),
    "momentum_reversed": (lambda m, v, x, k: _rule(m, v, x, k, reverse=True),
                          "momentum을 거꾸로 썼습니다. PyTorch의 momentum은 새 배치의 가중치입니다: "
                          "new = (1 - momentum) * old + momentum * batch. 이전 값의 가중치로 쓰는 것은 Keras와 "
                          "Flax의 약속입니다. · momentum was used the other way round: in PyTorch it is the weight "
                          "of the new batch, new = (1 - momentum) * old + momentum * batch; the weight of the old "
                          "value is the Keras and Flax convention."),
    "autograd": (_in_place_under_autograd,
                 "값은 맞지만 실행 통계가 autograd 그래프에 붙었습니다(결과에 grad_fn이 있습니다). 실행 통계는 기울기가 "
                 "흐르지 않는 버퍼이므로 torch.no_grad() 안에서(또는 x.detach()로) 갱신하세요. 그러지 않으면 스텝마다 "
                 "그래프가 이어져 메모리가 늘어납니다. · the values are right, but the running statistics joined the "
                 "autograd graph (the result has a grad_fn); they are buffers no gradient flows through: update "
                 "them under torch.no_grad() (or from x.detach()), or every step's graph stays attached and "
                 "memory grows."),
    "axis": (lambda m, v, x, k: _rule(m, v, x, k, axis=1),
             "통계를 특성 축(dim=1)으로 구했습니다. 실행 통계는 특성마다, 배치 축(dim=0)에 걸쳐 구한 통계의 이동 "
             "평균입니다. · the statistics were taken over the features (dim=1); running statistics average, "
             "per feature, the statistics over the batch (dim=0)."),
}


def _batchnorm1d(running_mean, running_var, x, momentum):
    """The reference: what torch.nn.BatchNorm1d stores after one forward pass in training mode."""
    bn = nn.BatchNorm1d(x.shape[1], momentum=momentum, affine=False, dtype=torch.float64).train()
    with torch.no_grad():
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
        bn(x)
    return bn.running_mean.clone(), bn.running_var.clone()


def _cases(seed: int = 0):
    """(running_mean, running_var, x, momentum): x (N, C) requires grad; the first batch is square, N = C."""
    g = torch.Generator().manual_seed(seed)
    for n, c, momentum in ((6, 6, 0.1), (10, 4, 0.3), (32, 3, 0.01)):
        leaf = (2 * torch.randn(n, c, generator=g, dtype=torch.float64)
                + torch.randn(c, generator=g, dtype=torch.float64)).requires_grad_()
        old_mean = torch.randn(c, generator=g, dtype=torch.float64)
        old_var = 0.5 + torch.rand(c, generator=g, dtype=torch.float64)
        yield old_mean, old_var, leaf * 1.0, momentum  # leaf * 1.0: a non-leaf, as an activation is


def _one_update(fn, running_mean, running_var, x, momentum) -> tuple[torch.Tensor, torch.Tensor]:
    """The reader's update on copies, checked against BatchNorm1d; raises CheckFailed with the mistake named."""
    ref = _batchnorm1d(running_mean, running_var, x, momentum)
    assert same(ref, _rule(running_mean, running_var, x, momentum), 1e-12)  # the convention, in code
    out = as_tensors(fn(running_mean.clone(), running_var.clone(), x, momentum))

    def why():
        return explain(RUNNING_MISTAKES, out,
                       lambda wrong: wrong(running_mean.clone(), running_var.clone(), x, momentum))

    c = x.shape[1]
    if len(out) != 2 or any(t.shape != (c,) for t in out):
        raise CheckFailed(f"모양이 다릅니다 · expected (new_mean, new_var) of shape ({c},) each for x of shape "
                          f"{tuple(x.shape)} (got {[tuple(t.shape) for t in out]}): " + why())
    if not same(out, ref, 1e-9):
        worst = max((o.detach() - r).abs().max().item() for o, r in zip(out, ref))
        raise CheckFailed(f"실행 통계가 기준과 다릅니다 · the running statistics differ from torch.nn.BatchNorm1d's "
                          f"(max |difference| {worst:.2g} > 1e-9, momentum={momentum}): " + why())
    if any(t.requires_grad or t.grad_fn is not None for t in out):
        raise CheckFailed(RUNNING_MISTAKES["autograd"][1])
    return out


def running_stats(fn, seed: int = 0, stream: int = 5) -> str:
    """Check ``fn(running_mean, running_var, x, momentum) -> (new_mean, new_var)``, torch tensors, x (N, C).

    One update from random old statistics on three batches (N = C among them, where statistics over
    the wrong axis still have shape (C,)), then ``stream`` updates chained from BatchNorm1d's initial
    zeros and ones; each is compared with the buffers torch.nn.BatchNorm1d holds after a forward pass
    in training mode from the same statistics.
    """
    cases = list(_cases(seed))
    for case in cases:
        _one_update(fn, *case)
    g = torch.Generator().manual_seed(seed + 1)
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)  # BatchNorm1d's start
    for _ in range(stream):  # each update fed the reader's previous one, and checked against BatchNorm1d's
        x = (torch.randn(16, 3, generator=g, dtype=torch.float64) * 3 + 1).requires_grad_() * 1.0  # (16, 3)
        mean, var = (t.detach() for t in _one_update(fn, mean, var, x, 0.1))
    return (f"통과 · passed: {len(cases)} updates and a stream of {stream} batches match torch.nn.BatchNorm1d's "
            f"running_mean and running_var within 1e-9, updated outside autograd")
