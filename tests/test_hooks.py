"""bnlib.hooks: hooks always removed, statistics equal to a manual computation, percentiles as numpy's."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import hooks, models, train


def small_net(seed=0, norm=None):
    generator = torch.Generator().manual_seed(seed)
    return models.mlp([6, 5, 4, 3], "tanh", norm=norm, init="xavier", generator=generator)


def toy_batch(n=16, seed=0):
    """A toy batch (random tensors, a toy, labelled as one)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def n_hooks(module):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in module.modules())


def test_hooks_are_removed_at_the_end_of_the_block_and_on_errors():
    model = small_net()
    seen = []
    with hooks.Hooks({"fc1": model.fc1, "fc2": model.fc2}, lambda name, m, i, o: seen.append(name)) as h:
        assert len(h) == 2 and n_hooks(model) == 2
        model(torch.randn(2, 6))
    assert seen == ["fc1", "fc2"] and n_hooks(model) == 0
    with pytest.raises(RuntimeError, match="boom"):
        with hooks.Hooks([model.fc1], lambda *a: None), hooks.Hooks([model.fc2], lambda *a: None, kind="backward"):
            assert n_hooks(model) == 2
            raise RuntimeError("boom")
    assert n_hooks(model) == 0


def test_a_hook_that_raises_is_removed_too():
    model = small_net()

    def broken(name, module, inputs, output):
        raise ValueError("broken hook")

    with pytest.raises(ValueError, match="broken hook"):
        with hooks.Hooks([model.act1], broken):
            model(torch.randn(2, 6))
    assert n_hooks(model) == 0
    model(torch.randn(2, 6))  # runs normally again


def test_remove_is_idempotent_and_bad_arguments_register_nothing():
    model = small_net()
    h = hooks.Hooks(model.fc1, lambda *a: None)
    h.remove()
    h.remove()
    assert n_hooks(model) == 0
    with pytest.raises(ValueError, match="expected nn.Module"):
        hooks.Hooks({"fc1": model.fc1, "bad": "not a module"}, lambda *a: None)
    with pytest.raises(ValueError, match="expected kind"):
        hooks.Hooks(model.fc1, lambda *a: None, kind="sideways")
    assert n_hooks(model) == 0


def test_capture_matches_a_manual_forward_and_autograd():
    torch.manual_seed(0)
    model = small_net().double()
    x, y = toy_batch()
    cap = hooks.capture(model, models.hidden_layers(model, "act"), x, y)
    assert n_hooks(model) == 0
    # manual forward, keeping the intermediate tensors
    a1 = torch.tanh(model.fc1(x))
    a2 = torch.tanh(model.fc2(a1))
    loss = F.cross_entropy(model.out(a2), y)
    da1, da2 = torch.autograd.grad(loss, [a1, a2])
    torch.testing.assert_close(cap.acts["1"], a1)
    torch.testing.assert_close(cap.acts["2"], a2)
    torch.testing.assert_close(cap.grads["1"], da1)
    torch.testing.assert_close(cap.grads["2"], da2)
    assert cap.loss == pytest.approx(loss.item())
    assert model.fc1.weight.grad is not None  # the backward pass ran on the model


def test_capture_without_labels_is_forward_only():
    model = small_net().double()
    x, _ = toy_batch()
    cap = hooks.capture(model, {"a": model.act1}, x)
    assert set(cap.acts) == {"a"} and cap.grads == {} and cap.loss is None
    assert model.fc1.weight.grad is None


def test_layer_stats_and_grad_data_ratio_match_manual_values():
    model = small_net().double()
    x, y = toy_batch()
    cap = hooks.capture(model, {"a1": model.act1}, x, y)
    a, g = cap.acts["a1"], cap.grads["a1"]
    row = hooks.layer_stats(cap, "tanh")["a1"]
    assert row["mean"] == pytest.approx(a.mean().item())
    assert row["std"] == pytest.approx(np.std(a.numpy()))
    assert row["saturated"] == pytest.approx((a.abs() > 0.97).double().mean().item())
    assert row["grad_std"] == pytest.approx(np.std(g.numpy()))
    ratio = hooks.grad_data_ratio({"fc1": model.fc1})["fc1"]
    w = model.fc1.weight
    assert ratio == pytest.approx(np.std(w.grad.numpy()) / np.std(w.detach().numpy()))
    with pytest.raises(ValueError, match="expected a gradient"):
        hooks.grad_data_ratio({"fresh": nn.Linear(2, 2)})


def test_saturated():
    a = torch.tensor([-1.0, -0.98, 0.0, 0.5, 0.99])
    assert hooks.saturated(a, "tanh").tolist() == [True, True, False, False, True]
    assert hooks.saturated(torch.tensor([0.01, 0.5, 0.98]), "sigmoid").tolist() == [True, False, True]
    assert hooks.saturated(torch.tensor([0.0, 1.0]), "relu").tolist() == [True, False]
    with pytest.raises(ValueError, match="expected activation"):
        hooks.saturated(a, "gelu")


def test_percentiles_equal_numpy():
    x = torch.randn(101, 4, generator=torch.Generator().manual_seed(1))
    q = (15, 50, 85)
    expected = np.percentile(x.numpy(), q, axis=0)  # (3, 4)
    np.testing.assert_allclose(hooks.percentiles(x, q).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="between 0 and 100"):
        hooks.percentiles(x, (50, 101))
    with pytest.raises(ValueError, match="expected a 2D"):
        hooks.percentiles(x[:, 0], q)


def test_per_unit_treats_positions_as_samples():
    x = torch.arange(2 * 3 * 4, dtype=torch.float).reshape(2, 3, 4)  # (N, C, L)
    v = hooks.per_unit(x)
    assert v.shape == (8, 3)
    assert torch.equal(v[:, 1].sort().values, x[:, 1].flatten().sort().values)


def test_percentile_trace_pools_training_batches_and_skips_eval():
    model = small_net()
    x, y = toy_batch(n=60)
    x = x.float()
    trace = hooks.PercentileTrace(model.fc2, q=(15, 50, 85), every=3)
    outputs = []
    with hooks.Hooks(model.fc2, lambda name, m, i, o: outputs.append(o.detach().clone()) if m.training else None):
        with trace:
            train.fit(model, (x, y), (x, y), train.TrainConfig(steps=7, batch_size=10, eval_every=2))
    assert n_hooks(model) == 0
    assert trace.steps == [3, 6]  # 7 training passes: two full pools; evaluations are not counted
    assert trace.values.shape == (2, 3, 4)
    pooled = torch.cat(outputs[3:6]).numpy()  # the second pool: training passes 4, 5, 6
    np.testing.assert_allclose(trace.values[1].numpy(), np.percentile(pooled, (15, 50, 85), axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="every >= 1"):
        hooks.PercentileTrace(model.fc2, every=0)


def test_percentile_trace_removes_its_hook_on_errors():
    model = small_net()
    trace = hooks.PercentileTrace(model.fc1, every=1)
    with pytest.raises(RuntimeError):
        with trace:
            model(torch.randn(4, 6))
            raise RuntimeError("stop")
    assert n_hooks(model) == 0 and trace.steps == [1]
    assert hooks.PercentileTrace(model.fc1).values.shape == (0, 3, 0)
