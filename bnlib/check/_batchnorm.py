"""BN forward and backward (bn_algorithm, exercise 5): is your batch norm right, and which usual mistake?

    check.batchnorm_forward(my_forward)                  # -> "통과 · passed: ..." or CheckFailed
    check.batchnorm_backward(my_forward, my_backward)

The reader's functions follow ``bnlib.manual``'s CS231n contract: ``forward(x, gamma, beta, eps)
-> (out, cache)`` for x of shape (N, D), and ``backward(dout, cache) -> (dx, dgamma, dbeta)``. Each
checker compares with the reference on random shapes in float64, including a batch whose variance
is close to eps (where "eps outside the square root" shows). On a mismatch it tries the usual wrong
answers (``FORWARD_MISTAKES``, ``BACKWARD_MISTAKES``) and, when one reproduces the reader's output,
names it in Korean and English.
"""
from __future__ import annotations

import numpy as np

from .. import manual
from ._common import CheckFailed

__all__ = ["FORWARD_MISTAKES", "BACKWARD_MISTAKES", "batchnorm_forward", "batchnorm_backward"]


def _bn(x, gamma, beta, eps, axis=0, ddof=0, eps_inside=True, affine=True):
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, ddof=ddof, keepdims=True)
    x_hat = (x - mu) / (np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps)
    return gamma * x_hat + beta if affine else x_hat


FORWARD_MISTAKES = {  # name: (wrong forward, the explanation: Korean · English)
    "axis": (lambda x, g, b, eps: _bn(x, g, b, eps, axis=1),
             "통계를 특성 축(axis=1)으로 구했습니다. BN은 특성마다, 배치 축(axis=0)으로 평균과 분산을 구합니다. · "
             "the statistics were taken over the features (axis=1); BN takes them per feature, over the batch (axis=0)."),
    "unbiased": (lambda x, g, b, eps: _bn(x, g, b, eps, ddof=1),
                 "분산을 N-1로 나눴습니다(불편 분산). 정규화에는 N으로 나눈 분산을 씁니다. · "
                 "the variance was divided by N-1 (unbiased); normalization uses the variance divided by N."),
    "eps_outside": (lambda x, g, b, eps: _bn(x, g, b, eps, eps_inside=False),
                    "ε을 제곱근 밖에 더했습니다. sqrt(var + eps)여야 합니다. · "
                    "eps was added outside the square root; it must be sqrt(var + eps)."),
    "no_affine": (lambda x, g, b, eps: _bn(x, g, b, eps, affine=False),
                  "γ와 β를 적용하지 않았습니다. out = gamma * x_hat + beta입니다. · "
                  "gamma and beta were not applied: out = gamma * x_hat + beta."),
    "var_not_std": (lambda x, g, b, eps: g * (x - x.mean(0)) / (x.var(0) + eps) + b,
                    "분산으로 나눴습니다. 표준편차 sqrt(var + eps)로 나눠야 합니다. · "
                    "divided by the variance; divide by the standard deviation sqrt(var + eps)."),
}


def _cases(seed: int = 0):
    """(x, gamma, beta, eps) in float64: ordinary shapes, and one batch with variance near eps."""
    rng = np.random.default_rng(seed)
    for n, d, scale in ((8, 5, 3.0), (17, 3, 0.5), (4, 7, 2e-3)):  # 2e-3: var ~ 4e-6, close to eps
        x = scale * rng.standard_normal((n, d)) + rng.standard_normal(d)
        yield x, rng.standard_normal(d) + 1.0, rng.standard_normal(d), 1e-5


def _output(fn, *args):
    res = fn(*args)
    return res[0] if isinstance(res, tuple) else res


def _explain(mistakes, reader_outputs, cases) -> str:
    for name, (wrong, why) in mistakes.items():
        if all(np.allclose(out, _output(wrong, *case), rtol=1e-7, atol=1e-9)
               for out, case in zip(reader_outputs, cases)):
            return why
    return "알려진 실수와도 맞지 않습니다. 한 줄씩 reference와 비교해 보세요. · it matches none of the usual mistakes either: compare line by line with the reference."


def batchnorm_forward(fn) -> str:
    """Check ``fn(x, gamma, beta, eps) -> (out, cache)`` (or ``out``) against ``manual.batchnorm_forward``."""
    cases = list(_cases())
    outs = []
    for x, gamma, beta, eps in cases:
        out = np.asarray(_output(fn, x.copy(), gamma.copy(), beta.copy(), eps))
        if out.shape != x.shape:
            raise CheckFailed(f"출력의 모양이 다릅니다 · expected an output of shape {x.shape} (got {out.shape})")
        outs.append(out)
    worst = max(np.abs(o - manual.batchnorm_forward(*c)[0]).max() for o, c in zip(outs, cases))
    if worst > 1e-8:
        raise CheckFailed(f"출력이 기준과 다릅니다 · the output differs from the reference (max |difference| "
                          f"{worst:.2g} > 1e-8): " + _explain(FORWARD_MISTAKES, outs, cases))
    return f"통과 · passed: {len(cases)} batches, max |difference| < 1e-8"


BACKWARD_MISTAKES = {  # name: (wrong backward on the *reference* cache, the explanation)
    "no_batch_terms": (lambda dout, c: (dout * c[1] * c[9], (dout * c[10]).sum(0), dout.sum(0)),
                       "dx = dout * gamma / std 로만 구했습니다. 평균과 분산도 x에 의존하므로 그 두 경로의 기울기를 "
                       "빼야 합니다. · dx was taken as dout * gamma / std only; the mean and the variance depend on x "
                       "too, and their two paths must be subtracted."),
    "dgamma_axis": (lambda dout, c: (manual.batchnorm_backward_fused(dout, c)[0], (dout * c[10]).sum(1), dout.sum(0)),
                    "dgamma를 특성 축으로 더했습니다. 배치 축(axis=0)으로 더해야 (D,) 모양이 됩니다. · "
                    "dgamma was summed over the features; sum over the batch (axis=0) for shape (D,)."),
}


def _explain_backward(grads, dout, cache) -> str:
    for wrong, why in BACKWARD_MISTAKES.values():
        expected = wrong(dout, cache)
        if all(g.shape == e.shape and np.allclose(g, e, rtol=1e-7, atol=1e-10) for g, e in zip(grads, expected)):
            return why
    return "알려진 실수와 맞지 않습니다 · none of the usual mistakes; compare each line with manual.batchnorm_backward."


def batchnorm_backward(forward, backward, seed: int = 0) -> str:
    """Check ``backward(dout, cache) -> (dx, dgamma, dbeta)`` against the reference and a numerical
    gradient (centred differences, h = 1e-5: relative error ~1e-8 expected for a correct one)."""
    rng = np.random.default_rng(seed)
    for x, gamma, beta, eps in _cases(seed):
        dout = rng.standard_normal(x.shape)
        _, cache = forward(x.copy(), gamma.copy(), beta.copy(), eps)
        grads = [np.asarray(g) for g in backward(dout.copy(), cache)]
        _, ref_cache = manual.batchnorm_forward(x, gamma, beta, eps)
        ref = manual.batchnorm_backward_fused(dout, ref_cache)
        if [g.shape for g in grads] != [r.shape for r in ref]:
            raise CheckFailed(f"기울기의 모양이 다릅니다 · expected shapes {[r.shape for r in ref]} "
                              f"(got {[g.shape for g in grads]}): " + _explain_backward(grads, dout, ref_cache))
        num_dx = manual.numerical_gradient(lambda v: manual.batchnorm_forward(v, gamma, beta, eps)[0], x.copy(), dout)
        assert np.abs(ref[0] - num_dx).max() < 1e-5 * max(1.0, np.abs(num_dx).max())  # the reference itself
        for name, g, r in zip(("dx", "dgamma", "dbeta"), grads, ref):
            err = np.abs(g - r).max() / max(1e-12, np.abs(r).max())
            if err > 1e-7:
                raise CheckFailed(f"{name}이(가) 기준과 다릅니다 · {name} differs from the reference (relative "
                                  f"error {err:.2g} > 1e-7): " + _explain_backward(grads, dout, ref_cache))
    return f"통과 · passed: dx, dgamma, dbeta within relative error 1e-7 of the reference (checked by centred differences)"
