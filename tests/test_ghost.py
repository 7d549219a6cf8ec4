"""bnlib.ghost.GhostBatchNorm1d/2d against the reference BN run on each virtual batch separately.

The oracle is torch.nn.BatchNorm1d/2d called once per virtual batch, in order: outputs, input and
parameter gradients, and every buffer must agree (float64, 1e-10).
"""
import zlib

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from bnlib import ghost, layers

F64 = torch.float64
KINDS = {  # name: (ghost class, torch's class, parent bnlib class, shape after the batch dim)
    "1d-NC": (ghost.GhostBatchNorm1d, nn.BatchNorm1d, layers.BatchNorm1d, (5,)),
    "1d-NCL": (ghost.GhostBatchNorm1d, nn.BatchNorm1d, layers.BatchNorm1d, (5, 3)),
    "2d": (ghost.GhostBatchNorm2d, nn.BatchNorm2d, layers.BatchNorm2d, (5, 3, 2)),
}


def pair(kind, v, **kwargs):
    """A ghost module and a torch reference with the same random gamma and beta, float64."""
    ghost_cls, torch_cls, _, rest = KINDS[kind]
    ours = ghost_cls(rest[0], virtual_batch_size=v, dtype=F64, **kwargs)
    ref = torch_cls(rest[0], dtype=F64, **kwargs)
    if ours.affine:
        with torch.no_grad():
            ours.weight.normal_()
            ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def run(module, x, dout, v=None):
    """Forward (whole batch, or one call per virtual batch of v when v is given) and backward."""
    xi = x.clone().requires_grad_()
    out = module(xi) if v is None else torch.cat([module(c) for c in xi.split(v)])
    out.backward(dout)
    grads = [xi.grad] + [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    return [out.detach()] + grads


def assert_same_state(ours, ref, atol=1e-10):
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b)
    for key in b:
        assert a[key].dtype == b[key].dtype, key
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v", [2, 3])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_matches_reference_bn_per_virtual_batch(kind, v, momentum, affine, track):
    """Train, train, eval, eval, train: outputs, grads and buffers as the per-virtual-batch oracle."""
    gen = torch.Generator().manual_seed(zlib.crc32(repr((kind, v, momentum, affine, track)).encode()))
    ours, ref = pair(kind, v, momentum=momentum, affine=affine, track_running_stats=track)
    rest = KINDS[kind][3]
    for step, mode in enumerate(["train", "train", "eval", "eval", "train"]):
        ours.train(mode == "train")
        ref.train(mode == "train")
        n = v * (step + 1)  # 1 to 5 virtual batches
        x = 3 * torch.randn((n, *rest), generator=gen, dtype=F64) + 2
        dout = torch.randn((n, *rest), generator=gen, dtype=F64)
        per_virtual_batch = mode == "train" or not track  # when batch statistics are used
        expected = run(ref, x, dout, v if per_virtual_batch else None)
        for a, b in zip(run(ours, x, dout), expected):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
        assert_same_state(ours, ref)
    if track:  # 1 + 2 + 5 virtual batches were tracked in training mode
        assert ours.num_batches_tracked.item() == 8


@pytest.mark.parametrize("kind", KINDS)
def test_whole_batch_virtual_batch_is_plain_bn(kind):
    _, _, parent_cls, rest = KINDS[kind]
    n = 6
    ours = KINDS[kind][0](rest[0], virtual_batch_size=n, dtype=F64)
    plain = parent_cls(rest[0], dtype=F64)
    x, dout = torch.randn((n, *rest), dtype=F64), torch.randn((n, *rest), dtype=F64)
    for a, b in zip(run(ours, x, dout), run(plain, x, dout)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert_same_state(ours, plain, atol=0)


def test_each_virtual_batch_is_standardized():
    bn = ghost.GhostBatchNorm1d(4, virtual_batch_size=8, dtype=F64)
    x = 5 * torch.randn(32, 4, dtype=F64) + 3
    out = bn(x).view(4, 8, 4)  # (N, C) -> (N / v, v, C)
    torch.testing.assert_close(out.mean(1), torch.zeros(4, 4, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(out.var(1, correction=0), torch.ones(4, 4, dtype=F64), atol=1e-5, rtol=0)
    assert bn.num_batches_tracked.item() == 4  # one running update per virtual batch


def test_eval_mode_with_running_stats_accepts_any_batch():
    bn = ghost.GhostBatchNorm2d(3, virtual_batch_size=4, dtype=F64)
    bn(torch.randn(8, 3, 2, 2, dtype=F64))
    ref = nn.BatchNorm2d(3, dtype=F64)
    ref.load_state_dict(bn.state_dict())
    bn.eval(), ref.eval()
    x = torch.randn(5, 3, 2, 2, dtype=F64)  # 5 is not a multiple of 4: fine with running statistics
    torch.testing.assert_close(bn(x), ref(x), atol=1e-12, rtol=0)


def test_gradcheck():
    bn = ghost.GhostBatchNorm1d(3, virtual_batch_size=3, dtype=F64, track_running_stats=False)
    with torch.no_grad():
        bn.weight.normal_()
    x = torch.randn(9, 3, dtype=F64, requires_grad=True)
    assert gradcheck(bn, (x,))


def test_batch_not_divisible_raises():
    bn = ghost.GhostBatchNorm1d(4, virtual_batch_size=4)
    with pytest.raises(ValueError, match=r"expected a batch size divisible by virtual_batch_size=4 \(got a batch of 6\)"):
        bn(torch.randn(6, 4))
    with pytest.raises(ValueError, match=r"divisible by virtual_batch_size=4 \(got a batch of 2\)"):
        bn(torch.randn(2, 4))
    bn.eval()(torch.randn(6, 4))  # eval mode with running statistics does not split
    no_stats = ghost.GhostBatchNorm1d(4, virtual_batch_size=4, track_running_stats=False).eval()
    with pytest.raises(ValueError, match="divisible"):  # batch statistics in eval mode: split
        no_stats(torch.randn(6, 4))


@pytest.mark.parametrize("cls, shape", [(ghost.GhostBatchNorm1d, (4, 3)), (ghost.GhostBatchNorm1d, (4, 3, 1)),
                                        (ghost.GhostBatchNorm2d, (4, 3, 1, 1))])
def test_one_value_per_channel_in_a_virtual_batch_raises(cls, shape):
    bn = cls(3, virtual_batch_size=1)
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel in each virtual batch "
                                         r"\(got virtual batches of shape \(1, 3"):
        bn(torch.randn(shape))
    bn.eval()(torch.randn(shape))  # fine with running statistics


def test_one_image_per_virtual_batch_is_fine_with_spatial_dims():
    bn = ghost.GhostBatchNorm2d(3, virtual_batch_size=1)
    out = bn(torch.randn(4, 3, 5, 5))
    assert torch.isfinite(out).all() and bn.num_batches_tracked.item() == 4


def test_arguments_repr_state_dict_and_type():
    for bad in [0, -2, 2.0, True, None]:
        with pytest.raises(ValueError, match=r"expected virtual_batch_size to be a positive int \(got"):
            ghost.GhostBatchNorm1d(3, virtual_batch_size=bad)
    with pytest.raises(TypeError):
        ghost.GhostBatchNorm1d(3)  # virtual_batch_size is required
    bn = ghost.GhostBatchNorm2d(7, momentum=None, virtual_batch_size=16, bias=False)
    assert repr(bn) == "Ghost" + repr(nn.BatchNorm2d(7, momentum=None, bias=False))[:-1] + ", virtual_batch_size=16)"
    assert isinstance(bn, layers.BatchNorm2d) and bn.bias is None
    assert list(bn.state_dict()) == list(nn.BatchNorm2d(7, momentum=None, bias=False).state_dict())
    with pytest.raises(ValueError, match=r"expected input with 7 channels"):
        bn(torch.randn(32, 6, 2, 2))
    with pytest.raises(ValueError, match=r"expected 4D input"):
        bn(torch.randn(32, 7))


@pytest.mark.parametrize("momentum", [0.1, 0.0, 1.0, None])
def test_many_virtual_batches_closed_form_running_update(momentum):
    """64 virtual batches in one call leave the buffers as 64 separate calls of torch's BN."""
    gen = torch.Generator().manual_seed(1)
    ours, ref = pair("2d", 2, momentum=momentum)
    for _ in range(3):
        x = torch.randn((128, *KINDS["2d"][3]), generator=gen, dtype=F64) * 2 + 1
        ours(x)
        for chunk in x.split(2):
            ref(chunk)
        assert_same_state(ours, ref, atol=1e-12)


def test_low_precision_input_is_computed_in_float32():
    bn = ghost.GhostBatchNorm1d(3, virtual_batch_size=4)
    ref = nn.BatchNorm1d(3)
    x = torch.randn(16, 3) * 3 + 5
    out = bn(x.bfloat16())
    assert out.dtype == torch.bfloat16
    expected = torch.cat([ref(c) for c in x.bfloat16().float().split(4)])
    torch.testing.assert_close(out.float(), expected, atol=0.05, rtol=0)
    torch.testing.assert_close(bn.running_mean, ref.running_mean, atol=1e-5, rtol=0)
