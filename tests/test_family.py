"""bnlib.family: the normalization family chapter's testbed.

What the chapter reads off these functions: which inputs each layer's statistics use
(``shared_with``), the network's shapes and its contrast invariance with instance normalization,
the non-i.i.d. sampler, and that ``run`` is reproducible and ``run_many`` equals one process.
"""
import pytest
import torch

from bnlib import family, norms
from bnlib.train import TrainConfig, fit

SHAPE = (3, 4, 2, 2)  # (N, C, H, W)
INDEX = (1, 2, 0, 1)


@pytest.mark.parametrize("layer, expected", [
    (norms.BatchNorm2d(4), lambda m: m[:, 2].all() and m.sum() == 3 * 2 * 2),       # channel c over N, H, W
    (norms.GroupNorm(1, 4), lambda m: m[1].all() and m.sum() == 4 * 2 * 2),        # example n over C, H, W
    (norms.GroupNorm(2, 4), lambda m: m[1, 2:].all() and m.sum() == 2 * 2 * 2),    # example n, channels 2-3
    (norms.InstanceNorm2d(4), lambda m: m[1, 2].all() and m.sum() == 2 * 2),       # example n, channel c
])
def test_shared_with_is_the_statistics_set(layer, expected):
    mask = family.shared_with(layer.train(), SHAPE, INDEX)
    assert mask.shape == SHAPE and mask.dtype == torch.bool
    assert expected(mask)


def test_shared_with_rejects_other_ranks():
    with pytest.raises(ValueError, match="expected a 4-D shape"):
        family.shared_with(norms.BatchNorm2d(4), (3, 4), (0, 0))


@pytest.mark.parametrize("norm", family.NORMS)
@pytest.mark.parametrize("size", [1, 2, 7])
def test_family_cnn_shapes(norm, size):
    if norm == "in" and size == 1:
        with pytest.raises(ValueError, match="expected size >= 2"):
            family.family_cnn(norm, size)
        return
    model = family.family_cnn(norm, size, width=8, groups=4)
    assert model(torch.randn(2, 1, 14, 14)).shape == (2, 10)
    normalized = [m for m in model.modules() if not isinstance(m, torch.nn.Identity)
                  and m.__class__.__module__.startswith("bnlib.norms")]
    assert len(normalized) == (0 if norm == "none" else 3)
    biased = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None]
    assert len(biased) == (3 if norm in ("none", "dyt") else 0)  # a norm layer's mean removes a bias


def test_weight_norm_init_from_data():
    """After wn_init each weight-normalized conv's output on that batch has zero mean, unit variance."""
    model = family.family_cnn("none", 7, width=8, wn=True)
    x = torch.randn(64, 1, 14, 14)
    family.wn_init(model, x)
    outs = []
    hooks = [m.register_forward_hook(lambda mod, i, o: outs.append(o.detach()))
             for m in model.modules() if isinstance(m, norms.WNConv2d)]
    model(x)
    for h in hooks:
        h.remove()
    assert len(outs) == 2
    for o in outs:
        mean, var = o.mean(dim=(0, 2, 3)), o.var(dim=(0, 2, 3), correction=0)  # (C,)
        assert mean.abs().max() < 1e-4 and (var - 1).abs().max() < 1e-3
    with pytest.raises(ValueError, match="at most one of ws and wn"):
        family.family_cnn("none", 7, ws=True, wn=True)


def test_bad_norm_is_a_clear_error():
    with pytest.raises(ValueError, match="expected norm in"):
        family.make_norm2d("batch", 8)
    with pytest.raises(ValueError, match="divisible by groups"):
        family.make_norm2d("gn", 6, groups=4)


def test_instance_norm_network_ignores_contrast():
    """a * x + b per image, a > 0: the same logits, up to eps (1e-5 against variances ~0.1-1)."""
    torch.manual_seed(0)
    model = family.family_cnn("in", 7, width=8).double().eval()
    x = torch.rand(4, 1, 14, 14, dtype=torch.float64)
    for scale, shift in ((0.5, 0.0), (2.0, 0.3), (1.0, -1.0)):
        diff = (model(family.contrast(x, scale, shift)) - model(x)).abs().max()
        assert diff < 1e-3, (scale, shift, diff)
    bn = family.family_cnn("bn", 7, width=8).double().eval()  # running statistics: no such invariance
    assert (bn(family.contrast(x, 0.5)) - bn(x)).abs().max() > 1e-2


def test_contrast_keeps_each_image_mean():
    x = torch.rand(3, 1, 5, 5)
    y = family.contrast(x, 0.25)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    assert torch.allclose(y.std(dim=(1, 2, 3)), 0.25 * x.std(dim=(1, 2, 3)), rtol=1e-5)


def test_two_class_batches():
    y = torch.arange(10).repeat(20)  # 200 labels, 20 per class
    sampler = family.TwoClassBatches(y)
    for idx in sampler(len(y), 8, 50, torch.Generator().manual_seed(0)):
        classes = y[idx]
        assert len(idx) == 8 and len(classes.unique()) == 2
        assert (classes == classes[0]).sum() == 4
    with pytest.raises(ValueError, match="even batch"):
        next(sampler(len(y), 7, 1, torch.Generator()))


def test_fit_uses_the_sampler():
    x, y = torch.randn(40, 3), torch.arange(4).repeat(10)
    seen = []
    model = torch.nn.Linear(3, 4)
    fit(model, (x, y), None, TrainConfig(steps=5, batch_size=4, eval_every=5),
        on_step=[lambda step, m, xb, yb, loss: seen.append(yb.unique().numel())],
        sampler=family.TwoClassBatches(y))
    assert seen == [2] * 5


def small_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 14, 14, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    return {"train": (x, y), "test": (x[:16], y[:16])}


def test_run_is_reproducible_and_run_many_matches_one_process():
    from dataclasses import replace
    cfg = replace(family.FamilyConfig(), width=8, examples=64)
    data = small_data()
    jobs = [dict(norm="brn", batch_size=8, size=2, seed=0), dict(norm="gn", batch_size=4, size=2, seed=1, ws=True)]
    one = family.run_many(data, cfg, jobs, workers=1)
    again = family.run_many(data, cfg, jobs, workers=2)
    for a, b in zip(one, again):
        assert a["test_acc"] == b["test_acc"] and a["train_acc"] == b["train_acc"]
    model = family.family_cnn("gn", 2, width=8, ws=True)
    model.load_state_dict(again[1]["state"])  # the trained network comes back from a worker
    assert set(one[0]) >= {"test_acc", "train_acc", "eval_train_acc", "contrast_acc", "seconds_per_step"}
