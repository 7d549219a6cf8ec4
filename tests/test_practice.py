"""bnlib.resnet and bnlib.practice: the BN-in-practice chapters' network, checks and adaptation tools."""
import copy

import pytest
import torch
from torch import nn

from bnlib import norms, practice, resnet

SMALL = resnet.ResNetConfig(widths=(4, 8), blocks=1, image_size=7, train_size=64, test_size=32, batch_size=16,
                            epochs=0.5)


def _data(n=64, size=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size, size, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return {"train": (x, y), "test": (x[:32], y[:32])}


@pytest.mark.parametrize("block", ["post", "pre"])
@pytest.mark.parametrize("norm, init", [("bn", "default"), ("bn", "zero_gamma"), ("none", "default"),
                                        ("none", "skipinit"), ("none", "fixup")])
def test_resnet_shapes_and_identity_inits(block, norm, init):
    cfg = resnet.ResNetConfig(**{**SMALL.to_dict(), "block": block, "widths": (4,), "blocks": 3})
    model = resnet.resnet(cfg, norm, init, generator=torch.Generator().manual_seed(0)).train()
    x = torch.randn(8, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    assert model(x).shape == (8, 10)
    v = resnet.residual_stream_variance(model, x)
    assert len(v) == 4
    if init != "default":  # every block starts as the identity: the stream keeps its variance
        assert max(abs(a / v[0] - 1) for a in v) < 1e-5


def test_residual_stream_variance_restores_buffers():
    model = resnet.resnet(SMALL, "bn").train()
    before = copy.deepcopy(model.state_dict())
    resnet.residual_stream_variance(model, torch.randn(8, 1, 7, 7))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bias_only_without_bn_and_zero_gamma_on_last_bn():
    with_bn = resnet.resnet(SMALL, "bn", "zero_gamma")
    assert all(m.bias is None for m in with_bn.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    blocks = [m for m in with_bn if isinstance(m, resnet.Block)]
    assert all(float(b.bn2.weight.detach().abs().max()) == 0 and float(b.bn1.weight.detach().min()) == 1 for b in blocks)
    without = resnet.resnet(SMALL, "none")
    assert all(m.bias is not None for m in without.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("kwargs, match", [(dict(norm="gn"), "expected norm"), (dict(init="he"), "expected init"),
                                           (dict(norm="bn", init="fixup"), "norm='none'"),
                                           (dict(norm="none", init="zero_gamma"), "norm='bn'")])
def test_resnet_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resnet.resnet(SMALL, **kwargs)


def test_lr_schedule_warms_up_and_ends_at_zero():
    cfg = resnet.ResNetConfig(train_size=1000, batch_size=10, epochs=1.0, lr=0.2)  # 100 steps
    lrs = [resnet.lr_at(s, cfg) for s in range(1, cfg.steps + 1)]
    assert max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == 9 and lrs[-1] == 0.0


def test_run_is_deterministic_and_workers_match():
    data = _data()
    a = resnet.run(data, SMALL, "bn", seed=3)
    b = resnet.run_many(data, SMALL, [dict(norm="bn", seed=3)], workers=1)[0]
    assert a["loss"] == b["loss"] and a["test_acc"] == b["test_acc"]
    assert len(a["loss"]) == SMALL.steps and not a["diverged"]


def test_freeze_and_check_bn_mode_catch_train_after_freeze():
    model = resnet.resnet(SMALL, "bn")
    names = practice.freeze_bn(model)
    assert names == list(practice.bn_layers(model))
    assert practice.check_bn_mode(model, frozen=True).startswith("ok")
    model.train()  # the classic bug
    with pytest.raises(practice.BNModeError, match="model.train\\(\\) called after freeze_bn"):
        practice.check_bn_mode(model, frozen=True)
    model.eval()
    for p in model[1].parameters():
        p.requires_grad_(True)
    with pytest.raises(practice.BNModeError, match="still require grad"):
        practice.check_bn_mode(model, frozen=True)


def test_check_bn_mode_follows_model_and_knows_bnlib_layers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), norms.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
    assert len(practice.bn_layers(model)) == 2
    model.train()
    assert practice.check_bn_mode(model, frozen=False).startswith("ok")
    model[4].eval()
    with pytest.raises(practice.BNModeError, match="4: .*eval mode while the model is in training mode"):
        practice.check_bn_mode(model, frozen=False)


def test_watch_buffers_names_changed_statistics_and_keeps_them():
    model = resnet.resnet(SMALL, "bn").eval()
    x = torch.randn(8, 1, 7, 7)
    with practice.watch_buffers(model):
        model(x)  # eval mode: nothing changes
    model.train()
    with pytest.raises(practice.BNModeError, match="running_mean \\(training mode\\)"):
        with practice.watch_buffers(model):
            model(x)
    assert int(model[1].num_batches_tracked) == 1  # the changed values are kept, not hidden


@pytest.mark.parametrize("kind", practice.CORRUPTIONS)
def test_corrupt_stays_in_pixel_range_and_grows_with_severity(kind):
    from bnlib.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD
    pixels = torch.rand(16, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    x = (pixels - FASHION_MNIST_MEAN[0]) / FASHION_MNIST_STD[0]
    gaps = []
    for sev in (1, 3, 5):
        out = practice.corrupt(x, kind, sev, generator=torch.Generator().manual_seed(1))
        p = out * FASHION_MNIST_STD[0] + FASHION_MNIST_MEAN[0]
        assert out.shape == x.shape and p.min() > -1e-6 and p.max() < 1 + 1e-6
        gaps.append(float((out - x).abs().mean()))
    assert gaps[0] < gaps[1] < gaps[2]


@pytest.mark.parametrize("kwargs, match", [(dict(kind="fog"), "expected kind"), (dict(severity=0), "severity 1..5"),
                                           (dict(x=torch.zeros(2, 3, 8, 8)), "shape \\(N, 1, H, W\\)")])
def test_corrupt_errors(kwargs, match):
    args = dict(x=torch.zeros(2, 1, 8, 8), kind="noise", severity=2) | kwargs
    with pytest.raises(ValueError, match=match):
        practice.corrupt(**args)


def test_adabn_equals_population_statistics_of_target():
    bn = nn.BatchNorm2d(3, momentum=0.1)
    model = nn.Sequential(bn).eval()
    x = 2 + 3 * torch.randn(40, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    practice.adabn(model, x, batch_size=10)
    means = torch.stack([x[i:i + 10].mean((0, 2, 3)) for i in range(0, 40, 10)]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5) and bn.momentum == 0.1 and not model.training
    with pytest.raises(ValueError, match="with BN layers"):
        practice.adabn(nn.Sequential(nn.Linear(2, 2)), torch.zeros(4, 2))


def test_tent_changes_only_gamma_beta():
    model = resnet.resnet(SMALL, "bn", generator=torch.Generator().manual_seed(0)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = _data()
    acc = practice.tent(model, *data["test"], batch_size=16)
    assert 0 <= acc <= 1
    after = model.state_dict()
    for k, v in before.items():
        if k.endswith(("weight", "bias")) and k in after:
            is_bn = any(k.startswith(n + ".") for n in practice.bn_layers(model))
            assert torch.equal(v, after[k]) != is_bn, k


def test_finetune_frozen_keeps_statistics_and_bn_parameters():
    model = resnet.resnet(SMALL, "bn", generator=torch.Generator().manual_seed(0)).eval()
    before = copy.deepcopy(model.state_dict())
    x, y = _data()["train"]
    practice.finetune(model, x, y, bn="frozen", steps=3, batch_size=8)
    bn_keys = [k for k in before if any(k.startswith(n + ".") for n in practice.bn_layers(model))]
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in bn_keys)
    assert not torch.equal(before["0.weight"], model.state_dict()["0.weight"])
    with pytest.raises(ValueError, match="expected bn 'train' or 'frozen'"):
        practice.finetune(model, x, y, bn="eval")


def test_adapted_accuracies_match_one_process_and_check_arguments():
    import functools
    make_model = functools.partial(resnet.resnet, SMALL, "bn")
    state = make_model(generator=torch.Generator().manual_seed(0)).state_dict()
    (x, y), target = _data()["test"], _data(seed=1)["train"]
    jobs = [dict(make_model=make_model, state=state, x=x, y=y, method=m, target=target,
                 **(dict(steps=2, batch_size=4) if "finetune" in m else {})) for m in practice.METHODS]
    one = practice.adapted_accuracies(jobs, workers=1)
    assert one == practice.adapted_accuracies(jobs, workers=2)
    assert all(0 <= a <= 1 for a in one)
    with pytest.raises(ValueError, match="expected target"):
        practice.adapted_accuracy(make_model, state, x, y, method="finetune_train")
    with pytest.raises(ValueError, match="expected method"):
        practice.adapted_accuracy(make_model, state, x, y, method="bn")
