"""Group normalization (normalization_family, exercise 4): the reader's GN against torch's, with gradients.

    check.group_norm(my_group_norm)   # my_group_norm(x, num_groups, gamma, beta, eps) -> out

x is (N, C, H, W); the C channels are cut, in order, into G groups of C/G neighbours; each
example's group is normalized over its C/G * H * W values (biased variance, eps inside the root),
then every channel gets its own gamma and beta (shape (C,)): ``torch.nn.functional.group_norm``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import NO_MATCH, NOT_DIFFERENTIABLE, CheckFailed, as_tensors, explain, same

__all__ = ["GROUP_NORM_MISTAKES", "group_norm"]


def _gn(x, G, gamma, beta, eps, dims="group", unbiased=False, eps_inside=True, affine="channel", detach=False):
    """GN by default; each keyword makes one of the usual mistakes."""
    N, C, H, W = x.shape
    views = {"group": (N, G, C // G, H, W), "interleaved": (N, C // G, G, H, W), "bn": (N, C, H, W),
             "ln": (N, 1, C, H, W)}
    axes = {"group": (2, 3, 4), "interleaved": (1, 3, 4), "bn": (0, 2, 3), "ln": (2, 3, 4)}
    xv = x.reshape(views[dims])  # (N, C, H, W) -> the grouped view of this variant
    s = xv.detach() if detach else xv
    mu = s.mean(axes[dims], keepdim=True)
    var = s.var(axes[dims], correction=1 if unbiased else 0, keepdim=True)
    x_hat = ((xv - mu) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)).reshape(N, C, H, W)
    if affine == "none":
        return x_hat
    if affine == "group":  # gamma[:G], beta[:G]: one per group, applied in the (N, G, C/G, H, W) view
        return (x_hat.reshape(N, G, C // G, H, W) * gamma[:G].view(1, G, 1, 1, 1)  # (G,) -> (1, G, 1, 1, 1)
                + beta[:G].view(1, G, 1, 1, 1)).reshape(N, C, H, W)  # (N, G, C/G, H, W) -> (N, C, H, W)
    return x_hat * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)  # (C,) -> (1, C, 1, 1)


GROUP_NORM_MISTAKES = {  # name: (wrong group norm, the explanation: Korean · English)
    "bn_axes": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, dims="bn"),
                "통계를 채널마다 (N, H, W)에 걸쳐 구했습니다. 그것은 BN입니다. GN은 예시마다, 그룹마다 (C/G, H, W)에 "
                "걸쳐 구합니다. · the statistics were taken per channel over (N, H, W): that is BN; GN takes them "
                "per example and per group, over (C/G, H, W)."),
    "layer_norm": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, dims="ln"),
                   "예시 하나의 채널 전체 (C, H, W)에 걸쳐 구했습니다. 그룹이 하나뿐인 층 정규화(G = 1)입니다. 채널을 "
                   "G개 그룹으로 나누세요. · the statistics were taken over all channels of an example (C, H, W): "
                   "layer normalization, G = 1; split the channels into G groups."),
    "interleaved": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, dims="interleaved"),
                    "채널을 (C/G, G)로 나눠, 그룹이 이웃한 채널이 아니라 G칸씩 건너뛴 채널로 묶였습니다. "
                    "x.view(N, G, C // G, H, W)로 나누면 채널 0..C/G−1이 첫 그룹입니다. · the channels were split "
                    "as (C/G, G), so each group collects every G-th channel instead of neighbours; split with "
                    "x.view(N, G, C // G, H, W): channels 0..C/G-1 form the first group."),
    "unbiased": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, unbiased=True),
                 "분산을 m−1로 나눴습니다(불편 분산). 정규화에는 m으로 나눈 분산을 씁니다(m = C/G·H·W). · the "
                 "variance was divided by m-1 (unbiased); normalization uses the one divided by m (m = C/G·H·W)."),
    "eps_outside": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, eps_inside=False),
                    "ε을 제곱근 밖에 더했습니다. sqrt(var + eps)여야 합니다. · eps was added outside the square "
                    "root; it must be sqrt(var + eps)."),
    "no_affine": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, affine="none"),
                  "γ와 β를 적용하지 않았습니다. out = gamma * x_hat + beta입니다. · gamma and beta were not "
                  "applied: out = gamma * x_hat + beta."),
    "affine_per_group": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, affine="group"),
                         "γ와 β를 그룹마다 하나씩 썼습니다. GN의 γ와 β는 채널마다 하나씩입니다(모양 (C,)). · gamma "
                         "and beta were applied one per group; GN has one gamma and one beta per channel "
                         "(shape (C,))."),
    "detached": (lambda x, G, g, b, eps: _gn(x, G, g, b, eps, detach=True),
                 "순전파는 맞지만 기울기가 다릅니다. 평균과 분산을 detach(또는 no_grad)로 구해 기울기가 통계를 거치지 "
                 "않습니다. · the forward pass is right but the gradient is not: the mean and the variance were "
                 "detached (or computed under no_grad), so no gradient flows through the statistics."),
}


def _per_group_affine(out, x, G, gamma, eps) -> bool:
    """Is out a per-channel affine map of GN's x_hat whose scale and shift are constant within each group?"""
    N, C, H, W = x.shape
    if out.shape != x.shape or bool((gamma.view(G, -1) == gamma.view(G, -1)[:, :1]).all()):  # (C,) -> (G, C/G)
        return False
    xh = F.group_norm(x, G, eps=eps).transpose(0, 1).reshape(C, -1)  # (N, C, H, W) -> (C, N*H*W)
    o = out.detach().double().transpose(0, 1).reshape(C, -1)  # (C, N*H*W)
    xc, oc = xh - xh.mean(1, keepdim=True), o - o.mean(1, keepdim=True)
    a = (xc * oc).sum(1) / xc.square().sum(1)  # (C,) least-squares scale per channel
    b = o.mean(1) - a * xh.mean(1)  # (C,)
    fits = same((o,), (a[:, None] * xh + b[:, None],), 1e-7)
    return fits and all(same((v.view(G, -1),), (v.view(G, -1)[:, :1].expand(G, C // G),), 1e-7) for v in (a, b))


def _cases(seed: int = 0):
    """(x (N, C, H, W), G, gamma (C,), beta (C,), eps) in float64; the last input has a variance near eps."""
    g = torch.Generator().manual_seed(seed)
    for shape, G, scale in (((2, 6, 3, 3), 3, 2.0), ((3, 8, 2, 4), 2, 1.0), ((2, 4, 5, 5), 2, 2e-3)):
        C = shape[1]
        x = scale * torch.randn(shape, generator=g, dtype=torch.float64) + torch.randn(
            C, 1, 1, generator=g, dtype=torch.float64)  # per-channel offsets: BN's and GN's statistics differ
        yield (x, G, torch.randn(C, generator=g, dtype=torch.float64) + 1.0,
               torch.randn(C, generator=g, dtype=torch.float64), 1e-5)


def _grads(fn, x, G, gamma, beta, eps, dout):
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    out = as_tensors(fn(leaves[0], G, leaves[1], leaves[2], eps))[0]
    if not out.requires_grad:
        return None
    grads = torch.autograd.grad((out * dout).sum(), leaves, allow_unused=True)
    return tuple(torch.zeros_like(t) if d is None else d for t, d in zip(leaves, grads))


def group_norm(fn, seed: int = 0) -> str:
    """Check ``fn(x, num_groups, gamma, beta, eps) -> out`` against ``torch.nn.functional.group_norm``:
    outputs, gradients with respect to x, gamma and beta, and ``torch.autograd.gradcheck`` on a small input."""
    rng = torch.Generator().manual_seed(seed + 1)
    cases = list(_cases(seed))
    for x, G, gamma, beta, eps in cases:
        out = as_tensors(fn(x.clone(), G, gamma.clone(), beta.clone(), eps))

        def why():
            return explain(GROUP_NORM_MISTAKES, out, lambda wrong: as_tensors(wrong(x, G, gamma, beta, eps)),
                           {"affine_per_group": lambda reader: _per_group_affine(reader[0], x, G, gamma, eps)})

        if len(out) != 1 or out[0].shape != x.shape:
            hint = (" (값의 개수는 맞습니다. (N, C, H, W)로 되돌리세요 · the right number of values: reshape back "
                    "to (N, C, H, W))") if out[0].numel() == x.numel() else ""
            raise CheckFailed(f"출력의 모양이 다릅니다 · expected an output of shape {tuple(x.shape)} (got "
                              f"{[tuple(t.shape) for t in out]}){hint}: " + why())
        ref = F.group_norm(x, G, gamma, beta, eps)
        if not same(out, (ref,), 1e-8):
            worst = (out[0].detach().double() - ref).abs().max().item()
            raise CheckFailed(f"출력이 기준과 다릅니다 · the output differs from torch.nn.functional.group_norm "
                              f"(max |difference| {worst:.2g} > 1e-8, G={G}): " + why())
        dout = torch.randn(x.shape, generator=rng, dtype=torch.float64)
        grads = _grads(fn, x, G, gamma, beta, eps, dout)
        if grads is None:
            raise CheckFailed(NOT_DIFFERENTIABLE)
        ref_grads = _grads(lambda *a: F.group_norm(a[0], a[1], a[2], a[3], a[4]), x, G, gamma, beta, eps, dout)
        for name, d, r in zip(("x", "gamma", "beta"), grads, ref_grads):
            if not same((d,), (r,), 1e-8):
                hit = same(grads, _grads(GROUP_NORM_MISTAKES["detached"][0], x, G, gamma, beta, eps, dout), 1e-8)
                raise CheckFailed(f"{name}에 대한 기울기가 기준과 다릅니다 · the gradient with respect to {name} "
                                  f"differs from torch's (relative difference > 1e-8): "
                                  + (GROUP_NORM_MISTAKES["detached"][1] if hit else NO_MATCH))
    small = [t.clone().requires_grad_() for t in (torch.randn(2, 4, 2, 2, generator=rng, dtype=torch.float64),
                                                  torch.randn(4, generator=rng, dtype=torch.float64),
                                                  torch.randn(4, generator=rng, dtype=torch.float64))]
    if not torch.autograd.gradcheck(lambda x, g, b: fn(x, 2, g, b, 1e-5), small, raise_exception=False):
        raise CheckFailed("torch.autograd.gradcheck가 실패했습니다 · torch.autograd.gradcheck failed: the analytic "
                          "gradient disagrees with the numerical one on a (2, 4, 2, 2) input")
    return (f"통과 · passed: {len(cases)} inputs (one with a variance near eps): the output within 1e-8 of "
            f"torch.nn.functional.group_norm, the gradients for x, gamma and beta within 1e-8, and "
            f"torch.autograd.gradcheck")
