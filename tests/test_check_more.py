"""bnlib.check's running statistics, whitening, ICS and group norm checkers: the reference passes, each
listed wrong answer is rejected and named, shapes and non-differentiable outputs get clear messages."""
import copy

import pytest
import torch
import torch.nn.functional as F

from bnlib import check
from bnlib.check import _groupnorm, _ics, _running, _whitening
from bnlib.check._common import NOT_DIFFERENTIABLE


def reader_update(running_mean, running_var, x, momentum):  # as nn.BatchNorm does: in place, outside autograd
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(momentum * x.mean(0))
        running_var.mul_(1 - momentum).add_(momentum * x.var(0))
    return running_mean, running_var


def reader_zca(x, eps):
    xc = x - x.mean(0)
    lam, vec = torch.linalg.eigh(torch.cov(xc.T, correction=0))
    w = vec @ torch.diag((lam + eps).rsqrt()) @ vec.T
    return xc @ w, w


def reader_ics(model, name, x, y, lr):
    twin = copy.deepcopy(model)
    twin.zero_grad()
    params = dict(twin.named_parameters())
    F.cross_entropy(twin(x), y).backward()
    G = params[name].grad.clone()
    with torch.no_grad():
        for n, p in params.items():
            if n == name:
                break
            p -= lr * p.grad
    twin.zero_grad()
    F.cross_entropy(twin(x), y).backward()
    G2 = params[name].grad
    return (G - G2).norm(), F.cosine_similarity(G.flatten(), G2.flatten(), 0)  # 0-d tensors are fine too


def reader_group_norm(x, num_groups, gamma, beta, eps):
    N, C, H, W = x.shape
    xg = x.view(N, num_groups, -1)
    x_hat = (xg - xg.mean(2, keepdim=True)) / torch.sqrt(xg.var(2, unbiased=False, keepdim=True) + eps)
    return x_hat.view(N, C, H, W) * gamma[:, None, None] + beta[:, None, None]


CHECKERS = {  # checker: (its mistakes, the reference solution, a reader's solution written differently)
    "running_stats": (check.RUNNING_MISTAKES, _running._rule, reader_update),
    "whitening": (check.WHITENING_MISTAKES, _whitening._whiten, reader_zca),
    "ics": (check.ICS_MISTAKES, _ics._variant, reader_ics),
    "group_norm": (check.GROUP_NORM_MISTAKES, _groupnorm._gn, reader_group_norm),
}
CASES = [(c, name) for c, (mistakes, _, _) in CHECKERS.items() for name in mistakes]


@pytest.mark.parametrize("checker", CHECKERS)
def test_the_reference_and_a_reader_solution_pass_with_a_message_free_of_measured_numbers(checker):
    _, reference, reader = CHECKERS[checker]
    run = getattr(check, checker)
    passed = run(reference)
    assert passed.startswith("통과 · passed: ") and run(reader) == passed
    assert run(reader, seed=1) == passed  # other random cases, the same words and bounds


@pytest.mark.parametrize("checker, name", CASES, ids=[f"{c}-{n}" for c, n in CASES])
def test_each_usual_mistake_is_caught_and_named(checker, name):
    wrong, why = CHECKERS[checker][0][name]
    with pytest.raises(check.CheckFailed) as err:
        getattr(check, checker)(wrong)
    assert why in str(err.value)
    assert sum(other in str(err.value) for _, other in CHECKERS[checker][0].values()) == 1  # named alone


def test_the_mistake_lists_cover_the_usual_kinds():
    assert {"biased", "momentum_reversed", "autograd", "axis"} <= set(check.RUNNING_MISTAKES)
    assert {"pca", "no_centre", "unbiased", "eps_outside", "columns", "transposed", "correlation",
            "detached"} <= set(check.WHITENING_MISTAKES)
    assert {"swapped", "own_update", "not_restored", "running_stats", "no_zero_grad",
            "eval_mode"} <= set(check.ICS_MISTAKES)
    assert {"bn_axes", "layer_norm", "interleaved", "unbiased", "eps_outside", "affine_per_group",
            "detached"} <= set(check.GROUP_NORM_MISTAKES)


def test_wrong_shapes_get_clear_messages():
    with pytest.raises(check.CheckFailed, match=r"expected \(new_mean, new_var\) of shape \(6,\) each"):
        check.running_stats(lambda m, v, x, k: (m[:2], v))
    with pytest.raises(check.CheckFailed, match=r"expected \(x_white, W\) of shapes \(40, 4\) and \(4, 4\)"):
        check.whitening(lambda x, eps: (x, torch.eye(3)))
    with pytest.raises(check.CheckFailed, match=r"expected two numbers"):
        check.ics(lambda model, name, x, y, lr: (1.0, 2.0, 3.0))
    with pytest.raises(check.CheckFailed, match=r"expected an output of shape \(2, 6, 3, 3\).*reshape back"):
        check.group_norm(lambda x, G, g, b, eps: _groupnorm._gn(x, G, g, b, eps).reshape(x.shape[0], G, -1))


def test_an_unknown_mistake_says_so():
    with pytest.raises(check.CheckFailed, match="none of the usual mistakes"):
        check.running_stats(lambda m, v, x, k: tuple(t + 0.1 for t in _running._rule(m, v, x, k)))
    with pytest.raises(check.CheckFailed, match="none of the usual mistakes"):
        check.whitening(lambda x, eps: tuple(2 * t for t in _whitening._whiten(x, eps)))
    with pytest.raises(check.CheckFailed, match="none of the usual mistakes"):
        check.ics(lambda *a: (_ics._variant(*a)[0] * 1.5, _ics._variant(*a)[1]))
    with pytest.raises(check.CheckFailed, match="none of the usual mistakes"):
        check.group_norm(lambda x, G, g, b, eps: _groupnorm._gn(x, G, g, b, eps) + 0.1)


def test_outputs_outside_autograd_are_named():
    with pytest.raises(check.CheckFailed) as err:
        check.whitening(lambda x, eps: tuple(t.detach() for t in _whitening._whiten(x, eps)))
    assert NOT_DIFFERENTIABLE in str(err.value)
    with pytest.raises(check.CheckFailed) as err:
        check.group_norm(lambda x, G, g, b, eps: _groupnorm._gn(x, G, g, b, eps).detach())
    assert NOT_DIFFERENTIABLE in str(err.value)


def test_the_pca_mistake_is_named_whatever_the_order_and_signs_of_its_rows():
    def pca_descending(x, eps):
        _, w = _whitening._whiten(x, eps, rotate_back=False)
        w = -w.flip(0)  # rows by decreasing eigenvalue, signs flipped: still PCA
        return (x - x.mean(0)) @ w.T, w
    with pytest.raises(check.CheckFailed, match="PCA"):
        check.whitening(pca_descending)


def test_any_per_group_gamma_and_beta_are_named():
    def group_means(x, G, gamma, beta, eps):
        per = x.shape[1] // G
        return _groupnorm._gn(x, G, gamma.view(G, per).mean(1).repeat_interleave(per),
                              beta.view(G, per)[:, -1].repeat_interleave(per), eps)
    with pytest.raises(check.CheckFailed) as err:
        check.group_norm(group_means)
    assert check.GROUP_NORM_MISTAKES["affine_per_group"][1] in str(err.value)


def test_the_ics_checker_leaves_the_global_random_state_alone():
    state = torch.get_rng_state()
    check.ics(reader_ics)
    assert torch.equal(state, torch.get_rng_state())


def test_a_running_update_with_state_outside_the_function_fails_on_the_stream():
    calls = []

    def counting(m, v, x, k):
        calls.append(1)
        new = _running._rule(m, v, x, k)
        return new if len(calls) < 6 else tuple(t + 1 for t in new)
    with pytest.raises(check.CheckFailed, match="running statistics differ"):
        check.running_stats(counting)
