"""bnlib.layers.BatchNorm1d/2d against torch.nn.BatchNorm1d/2d (the oracle), in float64 unless stated.

Checklist: /work/shared/reference/reliability.md section 6 (items in brackets).
"""
import copy
import itertools
import zlib

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck

from bnlib import layers

F64 = torch.float64
KINDS = {  # name: (ours, torch's, input rank)
    "1d-NC": (layers.BatchNorm1d, nn.BatchNorm1d, 2),
    "1d-NCL": (layers.BatchNorm1d, nn.BatchNorm1d, 3),
    "2d": (layers.BatchNorm2d, nn.BatchNorm2d, 4),
}


def random_shape(rank, gen):
    sizes = torch.randint(2, 7, (rank,), generator=gen).tolist()  # every dim in [2, 6]
    return tuple(sizes)


def pair(kind, C, **kwargs):
    """Our module and torch's, float64, with the same random gamma and beta."""
    ours_cls, torch_cls, _ = KINDS[kind]
    ours, ref = ours_cls(C, dtype=F64, **kwargs), torch_cls(C, dtype=F64, **kwargs)
    if ours.affine:
        with torch.no_grad():
            ours.weight.normal_()
            ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def step(ours, ref, x, dout):
    """Forward and backward through both; returns (ours, torch's) outputs and grads."""
    results = []
    for module in (ours, ref):
        xi = x.clone().requires_grad_()
        out = module(xi)
        out.backward(dout)
        grads = [xi.grad] + [p.grad.clone() for p in module.parameters()]
        module.zero_grad()
        results.append([out.detach()] + grads)
    return results


def assert_buffers_equal(ours, ref, atol=1e-10):
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    assert list(ours_state) == list(ref_state)
    for key in ref_state:
        assert ours_state[key].dtype == ref_state[key].dtype, key
        torch.testing.assert_close(ours_state[key], ref_state[key], atol=atol, rtol=0, msg=key)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_matches_torch(kind, momentum, affine, track):
    """Outputs, input/weight/bias grads and every buffer agree to 1e-10 over train, eval, train steps."""
    gen = torch.Generator().manual_seed(zlib.crc32(repr((kind, momentum, affine, track)).encode()))  # stable seed
    rank = KINDS[kind][2]
    shape = random_shape(rank, gen)
    ours, ref = pair(kind, shape[1], momentum=momentum, affine=affine, track_running_stats=track)
    for mode in ["train", "train", "train", "eval", "eval", "train"]:
        ours.train(mode == "train")
        ref.train(mode == "train")
        shape = (int(torch.randint(2, 9, (1,), generator=gen)),) + shape[1:]  # a new batch size each step
        x = 3 * torch.randn(shape, generator=gen, dtype=F64) + 2
        dout = torch.randn(shape, generator=gen, dtype=F64)
        for a, b in zip(*step(ours, ref, x, dout)):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
        assert_buffers_equal(ours, ref)


@pytest.mark.parametrize("kind", KINDS)
def test_load_state_dict_both_ways(kind):
    C = 5
    shape = (4, C, 3, 3)[: KINDS[kind][2]]
    ours, ref = pair(kind, C)
    ref(torch.randn(shape, dtype=F64))  # non-trivial running statistics in torch's module
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_buffers_equal(ours, ref, atol=0)
    ours(torch.randn(shape, dtype=F64))  # and in ours
    ref.load_state_dict(ours.state_dict(), strict=True)
    assert_buffers_equal(ours, ref, atol=0)
    ours.eval(), ref.eval()
    x = torch.randn(shape, dtype=F64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=0)
    ours.num_batches_tracked.fill_(10)
    ours.load_state_dict({}, strict=False)  # a non-strict load without the key keeps the count [13]
    assert ours.num_batches_tracked.item() == 10


@pytest.mark.parametrize("affine, track, bias", list(itertools.product([True, False], [True, False], [True, False])))
def test_state_dict_keys_repr_and_types(affine, track, bias):
    ours = layers.BatchNorm2d(7, momentum=None, affine=affine, track_running_stats=track, bias=bias)
    ref = nn.BatchNorm2d(7, momentum=None, affine=affine, track_running_stats=track, bias=bias)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert repr(ours) == repr(ref)
    if track:
        assert ours.num_batches_tracked.dtype == torch.long


def test_gradcheck_and_gradgradcheck():
    """float64, input, weight and bias jointly then each alone, train and eval [16]; PyTorch's own input [15]."""
    x = torch.arange(4 * 3 * 5, dtype=F64).view(4, 3, 5).requires_grad_()  # large, not centred
    gamma = torch.arange(1.0, 4.0, dtype=F64, requires_grad=True)
    beta = torch.arange(3.0, dtype=F64, requires_grad=True)
    running_mean, running_var = 1 - torch.arange(3.0, dtype=F64), 2 * torch.arange(3.0, dtype=F64)  # var has a 0
    for mean, var in [(None, None), (running_mean, running_var)]:
        def f(x, gamma, beta):
            return layers.BatchNormFunction.apply(x, gamma, beta, mean, var, 1e-4)[0]

        inputs = (x, gamma, beta)
        assert gradcheck(f, inputs) and gradgradcheck(f, inputs)
        for i in range(3):  # each partial derivative alone
            alone = tuple(t.detach().requires_grad_(j == i) for j, t in enumerate(inputs))
            assert gradcheck(f, alone) and gradgradcheck(f, alone)


def test_gradcheck_module_train_mode_restores_buffers():
    """gradcheck through a training-mode module; buffers snapshotted and restored per call [18]."""
    bn = layers.BatchNorm2d(3, dtype=F64)
    before = {name: b.clone() for name, b in bn.named_buffers()}

    def restore():
        for name, b in bn.named_buffers():
            b.copy_(before[name])

    def f(x):
        restore()  # every f(x +- h) starts from the same buffers
        return bn(x)

    x = torch.randn(2, 3, 2, 2, dtype=F64, requires_grad=True)
    assert gradcheck(f, (x,)) and gradgradcheck(f, (x,))
    assert bn.num_batches_tracked.item() > 0  # f really did update the buffers
    restore()
    assert all(torch.equal(b, before[name]) for name, b in bn.named_buffers())


def test_create_graph_backward_matches_first_order():
    bn, ref = pair("2d", 4)
    x = torch.randn(3, 4, 2, 5, dtype=F64, requires_grad=True)
    grads = torch.autograd.grad(bn(x).pow(3).sum(), [x, bn.weight, bn.bias], create_graph=True)
    ref_grads = torch.autograd.grad(ref(x).pow(3).sum(), [x, ref.weight, ref.bias])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("shape", [(1, 4), (1, 4, 1), (1, 4, 1, 1)])
def test_one_value_per_channel_raises_when_training(shape):
    bn = (layers.BatchNorm2d if len(shape) == 4 else layers.BatchNorm1d)(4)
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel when training \(got input of shape"):
        bn(torch.randn(shape))
    bn.eval()(torch.randn(shape))  # fine in eval mode [27]


def test_one_sample_with_spatial_dims_is_fine_when_training():
    out = layers.BatchNorm2d(4)(torch.randn(1, 4, 4, 4))
    assert torch.isfinite(out).all()


def test_wrong_rank_and_channels():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        layers.BatchNorm1d(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        layers.BatchNorm2d(3)(torch.randn(2, 3, 4))
    for C in (9, 11):
        with pytest.raises(ValueError, match=rf"expected input with 10 channels \(got {C} channels\)"):
            layers.BatchNorm1d(10)(torch.randn(4, C))
        with pytest.raises(RuntimeError, match="size mismatch"):  # loading wrong-sized tensors [28]
            layers.BatchNorm1d(10).load_state_dict(nn.BatchNorm1d(C).state_dict())


def test_bad_arguments_and_dtypes():
    for kwargs in [{"num_features": 0}, {"num_features": 2.0}, {"num_features": 3, "eps": -1e-5},
                   {"num_features": 3, "momentum": -0.1}, {"num_features": 3, "momentum": 1.5}]:
        with pytest.raises(ValueError, match="expected"):
            layers.BatchNorm1d(**kwargs)
    layers.BatchNorm1d(3, momentum=0.0), layers.BatchNorm1d(3, momentum=1.0)  # boundaries accepted
    with pytest.raises(ValueError, match="expected eps > 0"):
        layers.BatchNorm1d(3, eps=0.0)(torch.randn(4, 3))
    with pytest.raises(TypeError, match=r"expected floating-point input \(got torch.int64 input\)"):
        layers.BatchNorm1d(3)(torch.randint(0, 5, (4, 3)))
    bad = nn.BatchNorm1d(3).state_dict()
    bad["running_var"] = torch.tensor([1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="expected a non-negative running_var"):
        layers.BatchNorm1d(3).load_state_dict(bad)


@pytest.mark.parametrize("value", [0.0, 1e4 + 0.1])
def test_constant_channel_is_finite(value):
    """float32 constant channel: output = beta, finite grads dx = gamma/sqrt(eps)*(dout - mean(dout)) [22]."""
    bn = layers.BatchNorm2d(2)
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([0.5, -2.0]))
    x = torch.randn(8, 2, 3, 3)
    x[:, 0] = value
    x.requires_grad_()
    out = bn(x)
    dout = torch.randn_like(out)
    out.backward(dout)
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    torch.testing.assert_close(out[:, 0], torch.full_like(out[:, 0], 0.5), atol=1e-3, rtol=0)
    expected = (dout[:, 0] - dout[:, 0].mean()) / 1e-5**0.5
    torch.testing.assert_close(x.grad[:, 0], expected, atol=1e-2, rtol=1e-4)


@pytest.mark.parametrize("mean, std", [(1e4, 1.0), (1e4, 0.01), (1e3, 0.01)])
def test_float32_large_mean_no_worse_than_torch(mean, std):
    """float32 output, dx and dgamma against a float64 reference on the same float32 input [21].

    Seen: output error ~1e-6 (torch: 1e-3 to 2e-2), relative dx error ~1e-7 (torch: 4e-6 to 9e-4).
    """
    gen = torch.Generator().manual_seed(0)
    x = (std * torch.randn(256, 4, 4, 4, generator=gen, dtype=F64) + mean).float()
    dout = torch.randn(x.shape, generator=gen)
    errors = {}
    reference = nn.BatchNorm2d(4, dtype=F64)
    ours = layers.BatchNorm2d(4, momentum=1.0)  # momentum 1: running_var is the batch's unbiased variance
    (ref_out, ref_dx, ref_dgamma, _), _ = step(reference, reference, x.double(), dout.double())
    for name, module in [("ours", ours), ("torch", nn.BatchNorm2d(4))]:
        (out, dx, dgamma, _), _ = step(module, module, x, dout)
        errors[name] = [(out.double() - ref_out).abs().max().item(),
                        (dx.double() - ref_dx).abs().max().item() / ref_dx.abs().max().item(),
                        (dgamma.double() - ref_dgamma).abs().max().item()]
    assert all(a <= b for a, b in zip(errors["ours"], errors["torch"])), errors
    assert errors["ours"][0] < 1e-4 and errors["ours"][1] < 1e-5, errors
    var = x.double().var((0, 2, 3))
    assert ((ours.running_var.double() - var) / var).abs().max() < 1e-4


def test_buffers_have_no_grad_fn_after_training_step():
    bn = layers.BatchNorm2d(3)
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    bn(x).sum().backward()
    for name, buffer in bn.named_buffers():
        assert buffer.grad_fn is None and not buffer.requires_grad, name


def test_eval_with_grad_enabled_uses_running_stats():
    ours, ref = pair("2d", 3)
    x_train = 5 + 2 * torch.randn(8, 3, 4, 4, dtype=F64)
    for module in (ours, ref):
        module(x_train)
        module.eval()
    before = copy.deepcopy(ours.state_dict())
    x = torch.randn(4, 3, 4, 4, dtype=F64, requires_grad=True)
    with torch.enable_grad():
        out = ours(x)
    expected = (x - ours.running_mean.view(1, 3, 1, 1)) / (ours.running_var.view(1, 3, 1, 1) + ours.eps).sqrt()
    expected = expected * ours.weight.view(1, 3, 1, 1) + ours.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(out, ref(x), atol=1e-12, rtol=0)
    assert all(torch.equal(ours.state_dict()[k], before[k]) for k in before)  # eval leaves buffers alone [9]
    torch.testing.assert_close(ours(x[1:2]), out[1:2], atol=1e-12, rtol=0)  # per-sample in eval [10]


def test_no_grad_in_train_mode_uses_batch_stats_and_updates_buffers():
    ours, ref = pair("1d-NC", 4)
    x = 3 * torch.randn(16, 4, dtype=F64) + 1
    with torch.no_grad():
        out, ref_out = ours(x), ref(x)
    assert out.grad_fn is None
    torch.testing.assert_close(out, ref_out, atol=1e-12, rtol=0)
    torch.testing.assert_close(out.mean(0), ours.bias.detach(), atol=1e-12, rtol=0)  # batch statistics
    assert ours.num_batches_tracked.item() == 1
    assert_buffers_equal(ours, ref)


def test_one_step_running_stats_formula():
    """From (0, 1), momentum m: running_mean = m mu_B, running_var = (1 - m) + m var_B n/(n-1); n = N*H*W [7]."""
    bn = layers.BatchNorm2d(3, momentum=0.3, dtype=F64)
    x = torch.randn(4, 3, 2, 5, dtype=F64)
    bn(x)
    torch.testing.assert_close(bn.running_mean, 0.3 * x.mean((0, 2, 3)))
    torch.testing.assert_close(bn.running_var, 0.7 + 0.3 * x.var((0, 2, 3), correction=1))
    assert bn.num_batches_tracked.item() == 1


def test_momentum_none_is_cumulative_average_and_reset():
    """[8] PyTorch's test_batchnorm_simple_average."""
    bn = layers.BatchNorm1d(3, momentum=None, dtype=F64)
    x1, x2 = torch.randn(4, 3, dtype=F64), torch.randn(4, 3, dtype=F64)
    stats = []
    for x in (x1, x2):
        bn.reset_running_stats()
        bn(x)
        stats.append((bn.running_mean.clone(), bn.running_var.clone()))
    bn.reset_running_stats()
    assert bn.running_mean.eq(0).all() and bn.running_var.eq(1).all() and bn.num_batches_tracked.item() == 0
    bn(x1), bn(x2)
    assert bn.num_batches_tracked.item() == 2
    torch.testing.assert_close(bn.running_mean, (stats[0][0] + stats[1][0]) / 2)
    torch.testing.assert_close(bn.running_var, (stats[0][1] + stats[1][1]) / 2)


def test_reset_parameters():
    bn = layers.BatchNorm2d(3)
    bn(torch.randn(4, 3, 2, 2))
    with torch.no_grad():
        bn.weight.fill_(3), bn.bias.fill_(2)
    bn.reset_parameters()
    assert bn.weight.eq(1).all() and bn.bias.eq(0).all()
    assert bn.running_mean.eq(0).all() and bn.running_var.eq(1).all() and bn.num_batches_tracked.item() == 0


def test_affine_false_equals_identity_affine():
    """[3] affine=False gives the same output and input grads as gamma = 1, beta = 0."""
    x = torch.randn(6, 3, 4, dtype=F64)
    dout = torch.randn_like(x)
    (a, *_), (b, *_) = step(layers.BatchNorm1d(3, affine=False, dtype=F64), layers.BatchNorm1d(3, dtype=F64), x, dout)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_track_running_stats_false():
    """[11] train and eval identical; a flag switched off after construction leaves buffers alone."""
    bn = layers.BatchNorm2d(3, track_running_stats=False, dtype=F64)
    x = torch.randn(4, 3, 2, 2, dtype=F64)
    torch.testing.assert_close(bn.train()(x), bn.eval()(x), atol=0, rtol=0)
    bn = layers.BatchNorm2d(3, dtype=F64)
    bn.track_running_stats = False
    before = copy.deepcopy(bn.state_dict())
    bn(x)
    assert all(torch.equal(bn.state_dict()[k], before[k]) for k in before)


def test_bn2d_equals_bn1d_on_flattened_channels():
    """[4] (N, C, H, W) equals (N*H*W, C): output, input grad and running stats (Bessel n = N*H*W)."""
    x = torch.randn(2, 3, 4, 5, dtype=F64)
    dout = torch.randn_like(x)
    bn2, bn1 = layers.BatchNorm2d(3, dtype=F64), layers.BatchNorm1d(3, dtype=F64)

    def flat(t):
        return t.permute(0, 2, 3, 1).reshape(-1, 3)  # (N, C, H, W) -> (N*H*W, C)

    (out2, dx2, *_), _ = step(bn2, bn2, x, dout)
    (out1, dx1, *_), _ = step(bn1, bn1, flat(x), flat(dout))
    torch.testing.assert_close(flat(out2), out1, atol=1e-12, rtol=0)
    torch.testing.assert_close(flat(dx2), dx1, atol=1e-12, rtol=0)
    assert_buffers_equal(bn2, bn1, atol=1e-12)


def test_noncontiguous_and_channels_last():
    """[6] transposed and channels_last inputs give the same output and grads as contiguous ones."""
    ours, ref = pair("2d", 3)
    base = torch.randn(4, 5, 3, 6, dtype=F64).transpose(1, 2)  # (4, 3, 5, 6), non-contiguous
    for x in (base, base.contiguous(memory_format=torch.channels_last)):
        dout = torch.randn(x.shape, dtype=F64)
        for a, b in zip(*step(ours, ref, x, dout)):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_empty_batch():
    """[26] (0, C, H, W): empty output, statistics untouched, zero weight and bias grads, like torch."""
    ours, ref = pair("2d", 3)
    x = torch.zeros(0, 3, 2, 2, dtype=F64)
    for a, b in zip(*step(ours, ref, x, torch.zeros_like(x))):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert_buffers_equal(ours, ref, atol=0)
    assert ours.running_mean.eq(0).all() and ours.running_var.eq(1).all()


def test_nan_stays_in_its_channel():
    """[24] a NaN spoils its own channel only."""
    x = torch.randn(4, 3, 2, 2)
    x[0, 1, 0, 0] = float("nan")
    out = layers.BatchNorm2d(3)(x)
    assert out[:, 1].isnan().all() and torch.isfinite(out[:, [0, 2]]).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input(dtype):
    """[25] statistics in float32: no overflow where sum(x^2) >> 65504; output keeps the input dtype."""
    x = torch.randn(4, 8, 64, 64)
    ours = layers.BatchNorm2d(8)
    out = ours(x.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all() and ours.running_var.dtype == torch.float32
    torch.testing.assert_close(out.float(), nn.BatchNorm2d(8)(x.to(dtype).float()), atol=1e-2, rtol=1e-2)
    half = layers.BatchNorm2d(8).to(dtype)  # module.half(): parameters and buffers in low precision too
    assert half(x.to(dtype)).dtype == dtype and half.running_var.dtype == dtype


def test_factory_kwargs_and_dtype_moves():
    bn = layers.BatchNorm2d(3, device="cpu", dtype=F64)
    assert all(t.dtype == F64 for t in [bn.weight, bn.bias, bn.running_mean, bn.running_var])
    assert bn.num_batches_tracked.dtype == torch.long
    bn = bn.float()
    assert all(t.dtype == torch.float32 for t in [bn.weight, bn.bias, bn.running_mean, bn.running_var])
    assert bn(torch.randn(2, 3, 2, 2)).dtype == torch.float32
