"""bnlib.hooks.ActivationTrace: one unit per module, mean/var per train-mode pass equal to a manual
computation, eval passes and deep copies skipped, samples at pass 1 and every `every` passes."""
import copy

import pytest
import torch
from torch import nn

from bnlib import hooks


def n_hooks(module):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in module.modules())


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 6), nn.ReLU(), nn.Linear(6, 2))


def toy_images(n=8, seed=0):
    """Random tensors (a toy, labelled as one): (n, 3, 5, 5)."""
    return torch.randn(n, 3, 5, 5, generator=torch.Generator().manual_seed(seed))


def test_mean_and_var_per_pass_equal_a_manual_computation():
    model = small_cnn()
    kept = {"conv": [], "fc": []}
    trace = hooks.ActivationTrace({"conv": model[0], "fc": model[4]}, {"conv": 2, "fc": 5}, every=2, samples=50)
    with hooks.Hooks({"conv": model[0], "fc": model[4]}, lambda n, m, i, o: kept[n].append(o.detach().clone())):
        with trace:
            for seed in range(3):
                model(toy_images(seed=seed))
    for label, unit, dims in (("conv", 2, (0, 2, 3)), ("fc", 5, (0,))):
        assert len(trace.mean[label]) == len(trace.var[label]) == 3
        for t, out in enumerate(kept[label]):
            v = out[:, unit].double()  # conv: over N*H*W = 8*5*5 values; linear: over N = 8
            assert trace.mean[label][t] == pytest.approx(v.mean().item(), rel=1e-12, abs=1e-12)
            assert trace.var[label][t] == pytest.approx(v.var(unbiased=False).item(), rel=1e-12)
            assert v.numel() == (200 if label == "conv" else 8)
            other = out.double().mean(dims)  # the other units differ: the right one was picked
            assert trace.mean[label][t] == pytest.approx(other[unit].item(), rel=1e-9)
    assert n_hooks(model) == 0


def test_eval_mode_passes_and_deep_copies_are_skipped():
    model = small_cnn()
    trace = hooks.ActivationTrace({"bn": model[1]}, {"bn": 0}, every=1)
    with trace:
        model(toy_images())
        model.eval()
        model(toy_images(seed=1))  # eval mode: not recorded
        model.train()
        twin = copy.deepcopy(model)  # deepcopy copies the hook too ...
        assert n_hooks(twin) == 1
        twin(toy_images(seed=2))  # ... but the twin's passes are not the traced module's
        model(toy_images(seed=3))
    assert len(trace.mean["bn"]) == 2 and trace.steps["bn"] == [1, 2]
    expected = model[1](model[0](toy_images(seed=3)))[:, 0]  # train mode again: batch statistics
    assert trace.mean["bn"][1] == pytest.approx(expected.double().mean().item(), abs=1e-6)
    assert trace.var["bn"][1] == pytest.approx(expected.double().var(unbiased=False).item(), rel=1e-5)


def test_samples_are_kept_at_pass_one_and_every_every_passes():
    layer = nn.Linear(3, 4)
    trace = hooks.ActivationTrace({"a": layer}, {"a": 1}, every=3, samples=5)
    xs = [torch.randn(20, 3, generator=torch.Generator().manual_seed(s)) for s in range(8)]
    with trace:
        outs = [layer(x).detach() for x in xs]
    assert trace.steps["a"] == [1, 3, 6]
    vals = trace.values("a")
    assert vals.shape == (3, 5) and vals.dtype == torch.float32
    for row, n in zip(vals, trace.steps["a"]):
        torch.testing.assert_close(row, outs[n - 1][::4, 1])  # 20 values, 5 samples: stride 4


def test_samples_of_a_conv_unit_are_strided_over_batch_and_positions():
    conv = nn.Conv2d(3, 2, 3, padding=1)
    trace = hooks.ActivationTrace({"c": conv}, {"c": 1}, every=1, samples=10)
    x = toy_images(n=4)
    with trace:
        out = conv(x).detach()  # (4, 2, 5, 5): 100 values of unit 1
    flat = out[:, 1].reshape(-1)  # (N, H, W) -> (N*H*W,), sample-major
    torch.testing.assert_close(trace.values("c"), flat[::10][None])


def test_values_before_any_pass_and_hooks_removed_after_the_block():
    model = small_cnn()
    trace = hooks.ActivationTrace({"conv": model[0]}, {"conv": 0}, samples=7)
    assert trace.values("conv").shape == (0, 7)
    with pytest.raises(RuntimeError, match="stop"):
        with trace:
            assert n_hooks(model) == 1
            model(toy_images())
            raise RuntimeError("stop")
    assert n_hooks(model) == 0
    model(toy_images())  # no longer recorded
    assert len(trace.mean["conv"]) == 1 and trace.values("conv").shape == (1, 7)


def test_bad_arguments_say_what_was_expected():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"expected one unit per module \(got units for \['b'\], modules \['a'\]\)"):
        hooks.ActivationTrace({"a": layer}, {"b": 0})
    with pytest.raises(ValueError, match="expected one unit per module"):
        hooks.ActivationTrace({"a": layer, "c": layer}, {"a": 0})
    with pytest.raises(ValueError, match="expected every >= 1 and samples >= 1 \\(got every=0, samples=256\\)"):
        hooks.ActivationTrace({"a": layer}, {"a": 0}, every=0)
    with pytest.raises(ValueError, match="samples=0"):
        hooks.ActivationTrace({"a": layer}, {"a": 0}, samples=0)


def test_samples_span_the_whole_batch():
    trace = hooks.ActivationTrace({"id": nn.Identity()}, {"id": 0}, every=1, samples=256)
    x = torch.arange(500.0)[:, None]  # (500, 1): each value is its own position in the batch
    with trace:
        trace.modules["id"](x)
    kept = trace.values("id")[0]
    assert len(kept) == 256
    assert kept.max().item() >= 500 - 2 * 500 / 256  # the last kept value lies near the end of the batch


def test_fewer_values_than_samples_keeps_them_all():
    layer = nn.Linear(3, 2)
    trace = hooks.ActivationTrace({"fc": layer}, {"fc": 1}, every=1, samples=256)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    with trace:
        out = layer(x).detach()
    torch.testing.assert_close(trace.values("fc"), out[None, :, 1])  # (1, 8): the batch is smaller than samples
