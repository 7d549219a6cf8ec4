"""bnlib.measure.ICSTrace: internal_covariate_shift at step 1 and every `every` steps of train.fit
(tiny MLPs on random tensors: a toy, labelled as one)."""
import pytest
import torch
from torch import nn

from bnlib import layers, measure, train


def toy_problem(n=96, d=6, seed=0):
    """Random inputs and labels (a toy, labelled as one)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, 3, (n,), generator=g)


def tiny_mlp(norm=True, seed=0):
    torch.manual_seed(seed)
    if norm:
        return nn.Sequential(nn.Linear(6, 8, bias=False), layers.BatchNorm1d(8), nn.ReLU(),
                             nn.Linear(8, 8, bias=False), layers.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("norm", [False, True])
def test_measures_at_step_one_and_every_every_steps_as_a_direct_call(norm):
    model = tiny_mlp(norm)
    lr = 0.2
    chosen = {"#2": model[3] if norm else model[2], "#3": model[6] if norm else model[4]}
    trace = measure.ICSTrace(chosen, lr, every=3)
    direct, seen = {}, []

    def by_hand(step, m, xb, yb, loss):  # runs after the trace, before the optimizer step
        seen.append(step)
        if step == 1 or step % 3 == 0:
            direct[step] = measure.internal_covariate_shift(m, chosen, xb, yb, lr)

    train.fit(model, toy_problem(), None, train.TrainConfig(steps=7, batch_size=16, lr=lr),
              on_step=[trace, by_hand])
    assert seen == list(range(1, 8)) and trace.steps == [1, 3, 6] == sorted(direct)
    for label in chosen:
        assert trace.l2[label] == [direct[s][label]["l2"] for s in trace.steps]
        assert trace.cosine[label] == [direct[s][label]["cosine"] for s in trace.steps]
        assert all(v > 0 for v in trace.l2[label]) and all(-1 <= c <= 1 + 1e-6 for c in trace.cosine[label])
    assert len(set(trace.l2["#2"])) == 3  # a fresh measurement each time: the model trains in between


def test_result_layout_and_every_one():
    model = tiny_mlp(norm=False)
    trace = measure.ICSTrace({"a": model[2]}, lr=0.1, every=1)
    assert trace.result() == {"steps": [], "l2": {"a": []}, "cosine": {"a": []}}
    train.fit(model, toy_problem(), None, train.TrainConfig(steps=3, batch_size=16, lr=0.1), on_step=[trace])
    out = trace.result()
    assert set(out) == {"steps", "l2", "cosine"} and out["steps"] == [1, 2, 3]
    assert set(out["l2"]) == set(out["cosine"]) == {"a"}
    assert len(out["l2"]["a"]) == len(out["cosine"]["a"]) == 3
    assert all(isinstance(v, float) for v in out["l2"]["a"] + out["cosine"]["a"])


def test_the_first_layer_has_no_ics_and_custom_losses_are_used():
    model = tiny_mlp(norm=False)
    x, y = toy_problem()
    targets = torch.randn(len(x), 3, generator=torch.Generator().manual_seed(1))
    mse = lambda out, t: ((out - t) ** 2).sum()  # noqa: E731
    trace = measure.ICSTrace({"first": model[0], "last": model[4]}, lr=0.01, every=2, loss_fn=mse)
    trace(1, model, x[:16], targets[:16])
    trace(2, model, x[:16], targets[:16])
    trace(3, model, x[:16], targets[:16])  # not a measured step
    assert trace.steps == [1, 2]
    assert trace.l2["first"] == [0.0, 0.0] and trace.cosine["first"] == [pytest.approx(1.0)] * 2
    want = measure.internal_covariate_shift(model, {"last": model[4]}, x[:16], targets[:16], 0.01, mse)["last"]
    assert trace.l2["last"][0] == want["l2"] and trace.cosine["last"][0] == want["cosine"]
    ce = measure.internal_covariate_shift(model, {"last": model[4]}, x[:16], y[:16], 0.01)["last"]
    assert ce["l2"] != want["l2"]  # the loss_fn mattered


def test_the_trace_leaves_training_unchanged():
    x, y = toy_problem()
    cfg = train.TrainConfig(steps=5, batch_size=16, lr=0.1)
    plain = train.fit(tiny_mlp(), (x, y), None, cfg)
    model = tiny_mlp()
    traced = train.fit(model, (x, y), None, cfg, on_step=[measure.ICSTrace({"a": model[3]}, 0.1, every=1)])
    assert plain.loss == traced.loss


def test_bad_every():
    with pytest.raises(ValueError, match="expected every >= 1 \\(got 0\\)"):
        measure.ICSTrace({}, lr=0.1, every=0)
