"""Layers that normalize the weight or need no statistics: WSConv2d, WNLinear/WNConv2d with mean-only BN, DyT.

Torch has none of them as a module except weight normalization (torch.nn.utils.weight_norm and
its parametrizations successor), so most tests check the defining formula and invariances.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

from bnlib import norms

F64 = torch.float64


def test_ws_conv_is_a_conv_with_the_standardized_weight():
    conv = norms.WSConv2d(3, 4, 3, padding=1, groups=1, dtype=F64)
    x = torch.randn(2, 3, 6, 6, dtype=F64)
    w = conv.weight
    mu = w.mean((1, 2, 3), keepdim=True)
    var = ((w - mu) ** 2).sum((1, 2, 3), keepdim=True) / (3 * 3 * 3)  # 1/I, I = C_in * kH * kW
    w_hat = (w - mu) / torch.sqrt(var + conv.eps)
    torch.testing.assert_close(conv(x), F.conv2d(x, w_hat, conv.bias, padding=1), atol=1e-12, rtol=0)
    ref = nn.Conv2d(3, 4, 3, padding=1, dtype=F64)  # same parameter names: loads both ways
    ref.load_state_dict(conv.state_dict()), conv.load_state_dict(ref.state_dict())
    assert list(conv.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("groups", [1, 2])
def test_ws_invariant_to_a_per_filter_scale_and_shift_of_the_weight(groups):
    conv = norms.WSConv2d(4, 6, 3, groups=groups, eps=0.0, dtype=F64)
    x = torch.randn(2, 4, 5, 5, dtype=F64)
    out = conv(x)
    a = torch.rand(6, 1, 1, 1, dtype=F64) * 10 + 0.1  # a_i > 0
    c = torch.randn(6, 1, 1, 1, dtype=F64) * 5  # c_i
    with torch.no_grad():
        conv.weight.mul_(a).add_(c)
    torch.testing.assert_close(conv(x), out, atol=1e-10, rtol=0)


def test_ws_weight_has_mean_0_and_biased_variance_var_over_var_plus_eps():
    w = torch.randn(5, 3, 3, 3, dtype=F64) * 0.01  # var ~ 1e-4: eps = 1e-5 shows
    w_hat = norms.standardize_weight(w, eps=1e-5)
    var = w.var((1, 2, 3), correction=0)
    torch.testing.assert_close(w_hat.mean((1, 2, 3)), torch.zeros(5, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(w_hat.pow(2).mean((1, 2, 3)), var / (var + 1e-5), atol=1e-12, rtol=0)


def test_ws_gradcheck():
    conv = norms.WSConv2d(2, 3, 2, dtype=F64)
    x = torch.randn(2, 2, 3, 3, dtype=F64, requires_grad=True)
    w = conv.weight.detach().clone().requires_grad_()
    assert gradcheck(lambda x, w: torch.func.functional_call(conv, {"weight": w, "bias": conv.bias}, (x,)), (x, w))


def legacy_weight_norm(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in favour of parametrizations (pytorch #125064)
        return torch.nn.utils.weight_norm(module)


@pytest.mark.parametrize("ours_cls, torch_cls, args, shape", [
    (norms.WNLinear, nn.Linear, (5, 4), (6, 5)),
    (norms.WNConv2d, nn.Conv2d, (3, 4, 3), (2, 3, 6, 6))])
def test_weight_norm_matches_torch_and_loads_both_key_styles(ours_cls, torch_cls, args, shape):
    ours = ours_cls(*args, dtype=F64)
    legacy = legacy_weight_norm(torch_cls(*args, dtype=F64))
    assert list(ours.state_dict()) == list(legacy.state_dict()) == ["bias", "weight_g", "weight_v"]
    with torch.no_grad():
        ours.weight_g.normal_()
    legacy.load_state_dict(ours.state_dict())
    x = torch.randn(shape, dtype=F64)
    outs = []
    for m in (ours, legacy):
        xi = x.clone().requires_grad_()
        out = m(xi)
        out.backward(torch.ones_like(out))
        outs.append([out.detach(), xi.grad, m.weight_g.grad, m.weight_v.grad, m.bias.grad])
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    ours.load_state_dict(legacy.state_dict())
    param = torch.nn.utils.parametrizations.weight_norm(torch_cls(*args, dtype=F64))
    fresh = ours_cls(*args, dtype=F64)
    fresh.load_state_dict(param.state_dict())  # parametrizations.weight.original0/1 -> weight_g/v
    torch.testing.assert_close(fresh(x), param(x), atol=1e-12, rtol=0)
    back = {k.replace("weight_g", "parametrizations.weight.original0").replace("weight_v",
            "parametrizations.weight.original1"): v for k, v in ours.state_dict().items()}
    param.load_state_dict(back)
    torch.testing.assert_close(param(x), ours(x), atol=1e-12, rtol=0)


def test_weight_norm_formula_and_invariance_to_rescaling_v():
    layer = norms.WNConv2d(3, 4, 3, dtype=F64)
    with torch.no_grad():
        layer.weight_g.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64).view(4, 1, 1, 1))
    v, g = layer.weight_v, layer.weight_g
    w = g * v / v.pow(2).sum((1, 2, 3), keepdim=True).sqrt()  # w = g v / ||v||
    torch.testing.assert_close(layer.weight, w, atol=1e-12, rtol=0)
    torch.testing.assert_close(layer.weight.flatten(1).norm(dim=1), g.abs().view(-1), atol=1e-12, rtol=0)
    x = torch.randn(2, 3, 5, 5, dtype=F64)
    out = layer(x)
    with torch.no_grad():
        layer.weight_v.mul_(torch.tensor([7.0, 0.1, 3.0, 1e3], dtype=F64).view(4, 1, 1, 1))
    torch.testing.assert_close(layer(x), out, atol=1e-10, rtol=0)


def test_weight_norm_starts_with_the_parents_weight_and_resets_in_place():
    torch.manual_seed(0)
    plain = nn.Linear(5, 3)
    torch.manual_seed(0)
    wn = norms.WNLinear(5, 3)
    torch.testing.assert_close(wn.weight, plain.weight, atol=1e-6, rtol=0)
    params = list(wn.parameters())
    wn.reset_parameters()
    assert all(a is b for a, b in zip(params, wn.parameters()))  # the same tensors: optimizers keep working
    torch.testing.assert_close(wn.weight_g.view(-1), wn.weight_v.norm(dim=1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("layer, x, dims", [
    (norms.WNLinear(10, 4, dtype=F64), 3 * torch.randn(256, 10, dtype=F64) + 2, (0,)),
    (norms.WNLinear(10, 4, dtype=F64), torch.randn(16, 8, 10, dtype=F64) + 2, (0, 1)),
    (norms.WNConv2d(3, 5, 3, dtype=F64), torch.randn(8, 3, 7, 7, dtype=F64) - 1, (0, 2, 3))])
def test_data_dependent_init_gives_mean_0_std_init_scale_per_unit(layer, x, dims):
    out = layer.init_from_data(x, init_scale=0.5)
    torch.testing.assert_close(out, layer(x), atol=0, rtol=0)
    torch.testing.assert_close(out.mean(dims), torch.zeros(out.mean(dims).shape, dtype=F64), atol=1e-10, rtol=0)
    torch.testing.assert_close(out.std(dims, correction=0), torch.full(out.mean(dims).shape, 0.5, dtype=F64),
                               atol=1e-8, rtol=0)
    assert all(p.requires_grad and p.grad_fn is None for p in layer.parameters())  # still trainable leaves


def test_mean_only_batch_norm():
    """out = x - mu_B + beta in training (gradient through mu_B: dx = dout - mean(dout)); running mean in eval."""
    m = norms.MeanOnlyBatchNorm2d(3, momentum=0.5, dtype=F64)
    assert [n for n, _ in m.named_parameters()] == ["bias"] and list(m.state_dict()) == [
        "bias", "running_mean", "num_batches_tracked"]
    with torch.no_grad():
        m.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = (torch.randn(4, 3, 2, 2, dtype=F64) + 5).requires_grad_()
    out = m(x)
    mu = x.mean((0, 2, 3), keepdim=True)
    torch.testing.assert_close(out, x - mu + m.bias.view(1, 3, 1, 1), atol=1e-12, rtol=0)
    dout = torch.randn_like(out)
    out.backward(dout)
    torch.testing.assert_close(x.grad, dout - dout.mean((0, 2, 3), keepdim=True), atol=1e-12, rtol=0)
    torch.testing.assert_close(m.running_mean, 0.5 * mu.view(-1).detach(), atol=1e-12, rtol=0)
    assert m.num_batches_tracked.item() == 1 and m.running_mean.grad_fn is None
    x2 = torch.randn(2, 3, 2, 2, dtype=F64)
    torch.testing.assert_close(m.eval()(x2), x2 - m.running_mean.view(1, 3, 1, 1) + m.bias.view(1, 3, 1, 1),
                               atol=1e-12, rtol=0)


def test_dyt_formula_parameters_and_gradients():
    dyt = norms.DyT(4, dtype=F64)
    assert [n for n, _ in dyt.named_parameters()] == ["alpha", "weight", "bias"]  # the authors' DynamicTanh
    assert dyt.alpha.shape == (1,) and dyt.alpha.item() == 0.5
    with torch.no_grad():
        dyt.alpha.fill_(0.7), dyt.weight.normal_(), dyt.bias.normal_()
    x = (3 * torch.randn(2, 5, 4, dtype=F64)).requires_grad_()
    out = dyt(x)
    torch.testing.assert_close(out, dyt.weight * torch.tanh(0.7 * x) + dyt.bias, atol=0, rtol=0)
    out.sum().backward()
    sech2 = 1 - torch.tanh(0.7 * x.detach()) ** 2  # d tanh(u)/du
    torch.testing.assert_close(dyt.alpha.grad, (dyt.weight * sech2 * x.detach()).sum().view(1), atol=1e-10, rtol=0)
    torch.testing.assert_close(x.grad, (dyt.weight * sech2 * 0.7).detach(), atol=1e-12, rtol=0)
    assert gradcheck(lambda x: dyt(x), (torch.randn(3, 4, dtype=F64, requires_grad=True),))


def test_dyt_channels_first_and_no_statistics():
    dyt = norms.DyT(3, alpha_init=1.5, channels_last=False, dtype=F64)
    with torch.no_grad():
        dyt.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.randn(2, 3, 4, 4, dtype=F64)
    expected = torch.tanh(1.5 * x) * torch.tensor([1.0, 2.0, 3.0], dtype=F64).view(1, 3, 1, 1)
    torch.testing.assert_close(dyt(x), expected, atol=0, rtol=0)
    torch.testing.assert_close(dyt.eval()(x[:1]), dyt.train()(x)[:1], atol=0, rtol=0)  # no batch dependence


def test_data_dependent_init_leaves_the_layer_alone_on_bad_input():
    layer = norms.WNConv2d(3, 2, 3, dtype=F64)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(ValueError, match="expected more than 1 value per unit"):
        layer.init_from_data(torch.randn(1, 3, 3, 3, dtype=F64))  # one output position per unit
    assert all(torch.equal(v, before[k]) for k, v in layer.state_dict().items())
