"""bnlib.norms' LayerNorm, GroupNorm, InstanceNorm1d/2d and RMSNorm against their torch.nn twins.

Float64 unless stated: outputs, input and parameter gradients and every buffer over a sequence of
train and eval steps; state dicts in both directions; the same defaults, names and repr.
"""
import inspect
import zlib

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck

from bnlib import norms

F64 = torch.float64
KINDS = {  # name: (family, ours, torch's, constructor args, input shape)
    "ln-last": ("ln", norms.LayerNorm, nn.LayerNorm, (6,), (4, 3, 6)),
    "ln-chw": ("ln", norms.LayerNorm, nn.LayerNorm, ((3, 4, 5),), (2, 3, 4, 5)),
    "gn": ("gn", norms.GroupNorm, nn.GroupNorm, (2, 6), (3, 6, 4, 5)),
    "gn-1d": ("gn", norms.GroupNorm, nn.GroupNorm, (3, 6), (3, 6, 7)),
    "gn-NC": ("gn", norms.GroupNorm, nn.GroupNorm, (2, 6), (5, 6)),
    "in1d": ("in", norms.InstanceNorm1d, nn.InstanceNorm1d, (4,), (3, 4, 7)),
    "in2d": ("in", norms.InstanceNorm2d, nn.InstanceNorm2d, (4,), (3, 4, 5, 6)),
    "rms-last": ("rms", norms.RMSNorm, nn.RMSNorm, (6,), (4, 3, 6)),
    "rms-hw": ("rms", norms.RMSNorm, nn.RMSNorm, ((4, 5),), (2, 3, 4, 5)),
}
OPTIONS = {  # constructor keyword sets per family (every one torch accepts)
    "ln": [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-3}],
    "gn": [{}, {"affine": False}, {"bias": False}, {"eps": 1e-3}],
    "in": [{}, {"affine": True}, {"track_running_stats": True}, {"affine": True, "track_running_stats": True},
           {"affine": True, "track_running_stats": True, "momentum": 0.5},
           {"track_running_stats": True, "momentum": None}, {"affine": True, "bias": False}],
    "rms": [{}, {"eps": 1e-6}, {"elementwise_affine": False}],
}
CASES = [(kind, kwargs) for kind, (fam, *_) in KINDS.items() for kwargs in OPTIONS[fam]]


def pair(kind, **kwargs):
    """Ours and torch's, float64, with the same random parameters."""
    _, ours_cls, torch_cls, args, _ = KINDS[kind]
    ours, ref = ours_cls(*args, dtype=F64, **kwargs), torch_cls(*args, dtype=F64, **kwargs)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def step(module, x, dout):
    x = x.clone().requires_grad_()
    out = module(x)
    out.backward(dout)
    grads = [x.grad] + [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    return [out.detach()] + grads


def assert_state_equal(ours, ref, atol=1e-12):
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b)
    for key in b:
        assert a[key].dtype == b[key].dtype, key
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


@pytest.mark.parametrize("kind, kwargs", CASES, ids=[f"{k}-{sorted(kw.items())}" for k, kw in CASES])
def test_matches_torch_over_train_and_eval_steps(kind, kwargs):
    gen = torch.Generator().manual_seed(zlib.crc32(repr((kind, sorted(kwargs.items()))).encode()))
    ours, ref = pair(kind, **kwargs)
    shape = KINDS[kind][4]
    for mode in ["train", "train", "eval", "train", "eval"]:
        ours.train(mode == "train"), ref.train(mode == "train")
        x = 3 * torch.randn(shape, generator=gen, dtype=F64) + 2  # not centred
        dout = torch.randn(shape, generator=gen, dtype=F64)
        for a, b in zip(step(ours, x, dout), step(ref, x, dout)):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
        assert_state_equal(ours, ref)


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_keys_repr_and_load_both_ways(kind):
    kwargs = {"affine": True, "track_running_stats": True} if kind.startswith("in") else {}
    ours, ref = pair(kind, **kwargs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert repr(ours) == repr(ref)
    x = torch.randn(KINDS[kind][4], dtype=F64)
    ref(x)  # non-trivial running statistics in torch's InstanceNorm
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_state_equal(ours, ref, atol=0)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(1)
    ours(x)
    ref.load_state_dict(ours.state_dict(), strict=True)
    assert_state_equal(ours, ref, atol=0)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("ours, ref", [(norms.LayerNorm, nn.LayerNorm), (norms.GroupNorm, nn.GroupNorm),
                                       (norms.InstanceNorm1d, nn.InstanceNorm1d),
                                       (norms.InstanceNorm2d, nn.InstanceNorm2d), (norms.RMSNorm, nn.RMSNorm)])
def test_same_constructor_arguments_and_defaults_as_torch(ours, ref):
    def params(cls):
        return [(p.name, p.default, p.kind) for p in inspect.signature(cls.__init__).parameters.values()]
    assert params(ours) == params(ref)


@pytest.mark.parametrize("kind", ["ln-chw", "gn", "rms-hw"])
def test_no_running_statistics_train_equals_eval_and_a_batch_of_one_is_fine(kind):
    ours, _ = pair(kind)
    assert not list(ours.buffers())
    x = torch.randn((1,) + KINDS[kind][4][1:], dtype=F64)
    torch.testing.assert_close(ours.train()(x), ours.eval()(x), atol=0, rtol=0)


def test_instance_norm_defaults_and_eval_behaviour():
    """affine=False, track_running_stats=False (pytorch #22755); with tracking, eval mode is BN's (#58843)."""
    m = norms.InstanceNorm2d(3)
    assert m.weight is None and m.bias is None and m.running_mean is None and not m.state_dict()
    x = 5 * torch.randn(4, 3, 6, 6, dtype=F64) + 3
    m = norms.InstanceNorm2d(3, track_running_stats=True, dtype=F64)
    per_image = m.eval()(x)
    assert (per_image.mean((2, 3)).abs() > 0.5).any()  # running stats (0, 1) leave each image's mean in
    bn = norms.BatchNorm2d(3, affine=False, dtype=F64).eval()
    torch.testing.assert_close(per_image, bn(x), atol=0, rtol=0)
    assert m.num_batches_tracked.item() == 0
    m.train()(x)
    assert m.num_batches_tracked.item() == 0  # torch never counts InstanceNorm's batches
    torch.testing.assert_close(m.running_mean, 0.1 * x.mean((2, 3)).mean(0), atol=1e-12, rtol=0)


@pytest.mark.parametrize("cls, shape", [(norms.InstanceNorm1d, (4, 7)), (norms.InstanceNorm2d, (4, 5, 6))])
def test_instance_norm_without_batch_dim(cls, shape):
    ours, ref = cls(4, affine=True, dtype=F64), getattr(nn, cls.__name__)(4, affine=True, dtype=F64)
    x = torch.randn(shape, dtype=F64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=0)
    torch.testing.assert_close(ours(x), ours(x.unsqueeze(0)).squeeze(0), atol=0, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_and_gradgradcheck(kind):
    kwargs = {"affine": True} if kind.startswith("in") else {}
    ours, _ = pair(kind, **kwargs)
    shape = (2,) + KINDS[kind][4][1:]
    x = torch.randn(shape, dtype=F64, requires_grad=True)
    names = [n for n, _ in ours.named_parameters()]

    def f(x, *p):  # the module as a function of its input and parameters
        return torch.func.functional_call(ours, dict(zip(names, p)), (x,))

    inputs = (x,) + tuple(p.detach().clone().requires_grad_() for p in ours.parameters())
    assert gradcheck(f, inputs) and gradgradcheck(f, inputs)


def test_rms_norm_eps_none_is_the_dtype_epsilon_as_torch():
    for dtype in (torch.float32, F64):
        x = 1e-5 * torch.randn(3, 4, dtype=dtype)  # mean(x^2) ~ 1e-10: eps matters
        torch.testing.assert_close(norms.RMSNorm(4, dtype=dtype)(x), nn.RMSNorm(4, dtype=dtype)(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["ln-chw", "gn", "in2d", "rms-hw"])
def test_low_precision_input_matches_torch(kind, dtype):
    """Statistics in float32, the output in the input's dtype, as torch does on CPU."""
    _, ours_cls, torch_cls, args, shape = KINDS[kind]
    ours, ref = ours_cls(*args).to(dtype), torch_cls(*args).to(dtype)
    x = (30 * torch.randn(shape) + 200).to(dtype)  # x^2 ~ 5e4: sums of squares overflow float16
    out = ours(x)
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref(x).float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("kind", ["ln-last", "gn", "in1d", "rms-last"])
def test_empty_batch(kind):
    _, ours_cls, torch_cls, args, shape = KINDS[kind]
    x = torch.randn((0,) + shape[1:])
    assert ours_cls(*args)(x).shape == torch_cls(*args)(x).shape == x.shape



def test_group_norm_spans_layer_norm_and_instance_norm():
    """G = 1: LayerNorm over (C, H, W); G = C: InstanceNorm (Wu & He, Fig. 2)."""
    x = 3 * torch.randn(4, 6, 5, 5, dtype=F64) + 1
    one_group = norms.GroupNorm(1, 6, affine=False, dtype=F64)(x)
    torch.testing.assert_close(one_group, norms.LayerNorm((6, 5, 5), elementwise_affine=False, dtype=F64)(x),
                               atol=1e-12, rtol=0)
    per_channel = norms.GroupNorm(6, 6, affine=False, dtype=F64)(x)
    torch.testing.assert_close(per_channel, norms.InstanceNorm2d(6, dtype=F64)(x), atol=1e-12, rtol=0)
