"""bnlib.models: the Santurkar et al. builders (VGG-style CIFAR networks, the deep linear network),
make_norm, weight_layers and relu_inputs."""
import math

import pytest
import torch
from torch import nn

from bnlib import layers, lpnorm, models

NORMS = (nn.modules.batchnorm._BatchNorm, layers._BatchNormBase, lpnorm._LpNormBase)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def is_norm(m):
    return isinstance(m, NORMS)


@pytest.mark.parametrize("config, image_size", [("tiny", 16), ("small", 32), ([4, "M", 8], 8)])
@pytest.mark.parametrize("norm", [None, "bn"])
def test_output_shape(config, image_size, norm):
    model = models.vgg(config, norm, num_classes=7, fc_width=12, generator=gen(), image_size=image_size)
    assert model(torch.randn(3, 3, image_size, image_size)).shape == (3, 7)


def test_flatten_width_follows_image_size():
    """tiny has 3 max-pools: 16 px -> 2x2 maps of 64 channels, 32 px -> 4x4."""
    for size, side in ((16, 2), (32, 4)):
        model = models.vgg("tiny", fc_width=5, generator=gen(), image_size=size)
        assert models.weight_layers(model)[5].in_features == 64 * side * side


@pytest.mark.parametrize("config, count", [("tiny", 8), ("small", 9), ("vgg11", 11), ("vgg16", 16)])
def test_number_of_weight_layers(config, count):
    model = models.vgg(config, fc_width=4, generator=gen())
    weights = models.weight_layers(model)
    assert len(weights) == count
    n_conv = sum(isinstance(v, int) for v in models.VGG_CONFIGS[config])
    assert [isinstance(m, nn.Conv2d) for m in weights] == [True] * n_conv + [False] * 3  # 2 hidden FC + output
    assert weights[-1].out_features == 10 and weights[-2].out_features == 4


@pytest.mark.parametrize("norm", ["bn", "torch_bn", "noisy_bn", "l2"])
def test_norm_before_relu_and_no_bias_before_a_norm(norm):
    model = models.vgg("tiny", norm, fc_width=6, generator=gen(), noise_generator=gen(1), image_size=16)
    children = list(model.children())
    weights = models.weight_layers(model)
    for k, layer in enumerate(weights, start=1):
        i = children.index(layer)
        if k < len(weights):
            assert is_norm(children[i + 1]) and isinstance(children[i + 2], nn.ReLU), k
            assert layer.bias is None, k
            width = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            assert children[i + 1].num_features == width
        else:  # the output layer: no norm, no ReLU, a bias
            assert i == len(children) - 1 and layer.bias is not None
    assert sum(map(is_norm, children)) == len(weights) - 1
    for m in children:  # every norm is directly followed by a ReLU
        if is_norm(m):
            assert isinstance(children[children.index(m) + 1], nn.ReLU)


def test_without_norm_every_layer_has_a_bias_and_feeds_a_relu():
    model = models.vgg("tiny", None, fc_width=6, generator=gen(), image_size=16)
    children = list(model.children())
    assert not any(map(is_norm, children))
    weights = models.weight_layers(model)
    assert all(m.bias is not None for m in weights)
    for layer in weights[:-1]:
        assert isinstance(children[children.index(layer) + 1], nn.ReLU)
    assert models.vgg("tiny", "none", fc_width=6, image_size=16)[1].__class__ is nn.ReLU  # "none" = None


@pytest.mark.parametrize("norm", [None, "bn", "noisy_bn"])
def test_relu_inputs_are_the_normalized_outputs_of_layer_k(norm):
    model = models.vgg("tiny", norm, fc_width=6, generator=gen(), image_size=16)
    weights, pre = models.weight_layers(model), models.relu_inputs(model)
    children = list(model.children())
    assert len(pre) == len(weights) - 1  # every layer but the output one feeds a ReLU
    for k in range(1, len(weights)):
        expected = children[children.index(weights[k - 1]) + 1] if norm else weights[k - 1]
        assert pre[k - 1] is expected, k
        if norm:
            assert is_norm(pre[k - 1])


def test_same_seed_same_weights_and_the_global_rng_is_untouched():
    state = torch.random.get_rng_state()
    a = models.vgg("tiny", "bn", fc_width=16, init="xavier", generator=gen(3), image_size=16)
    b = models.vgg("tiny", "bn", fc_width=16, init="xavier", generator=gen(3), image_size=16)
    assert torch.equal(state, torch.random.get_rng_state())
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    c = models.vgg("tiny", "bn", fc_width=16, generator=gen(4), image_size=16)
    assert not torch.equal(models.weight_layers(a)[0].weight, models.weight_layers(c)[0].weight)
    for layer in models.weight_layers(a):
        assert layer.bias is None or torch.count_nonzero(layer.bias) == 0  # xavier: zero biases


def test_default_init_is_pytorchs_from_the_global_rng():
    torch.manual_seed(5)
    a = models.vgg("tiny", fc_width=16, init="default", image_size=16)
    torch.manual_seed(5)
    b = models.vgg("tiny", fc_width=16, init="default", image_size=16)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    fc = models.weight_layers(a)[-2]  # Linear(16, 16): weights and biases uniform in +-1/sqrt(16)
    assert fc.weight.abs().max() <= 0.25 and fc.bias.abs().max() <= 0.25 and torch.count_nonzero(fc.bias) > 0


def test_glorot_std_for_big_layers():
    model = models.vgg("tiny", "bn", fc_width=512, generator=gen(), image_size=16)
    weights = models.weight_layers(model)
    conv, fc = weights[4], weights[6]  # Conv2d(32, 64, 3): 18,432 weights; Linear(512, 512)
    for layer, fan_in, fan_out in ((conv, 32 * 9, 64 * 9), (fc, 512, 512)):
        w = layer.weight.detach()
        std = math.sqrt(2 / (fan_in + fan_out))
        assert w.std().item() == pytest.approx(std, rel=0.03)
        assert abs(w.mean().item()) < 0.05 * std


def test_vgg_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"expected config in \[.*'tiny'.*\] or a list of widths and 'M' "
                                         r"\(got 'vgg19'\)"):
        models.vgg("vgg19")
    with pytest.raises(ValueError, match="expected norm None, a factory, or one of .*'batchnorm'"):
        models.vgg("tiny", "batchnorm", image_size=16)
    with pytest.raises(ValueError, match=r"expected image_size divisible by 2\*\*3 for 3 max-pools \(got 12\)"):
        models.vgg("tiny", image_size=12)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*5 .*\(got 16\)"):
        models.vgg("vgg11", image_size=16)
    with pytest.raises(ValueError, match="expected init 'xavier' or 'default' \\(got 'he'\\)"):
        models.vgg("tiny", init="he", image_size=16)


def test_make_norm_names_none_and_factories():
    assert models.make_norm(None, 4, 2) is None and models.make_norm("none", 4, 1) is None
    assert type(models.make_norm("bn", 4, 1)) is layers.BatchNorm1d
    assert type(models.make_norm("bn", 4, 2)) is layers.BatchNorm2d
    assert type(models.make_norm("torch_bn", 4, 1)) is nn.BatchNorm1d
    assert type(models.make_norm("torch_bn", 4, 2)) is nn.BatchNorm2d
    g = gen(9)
    noisy = models.make_norm("noisy_bn", 4, 2, generator=g)
    assert type(noisy) is layers.NoisyBatchNorm2d and noisy.generator is g
    assert type(models.make_norm("noisy_bn", 4, 1)) is layers.NoisyBatchNorm1d
    for name, p in (("l1", 1), ("l2", 2), ("linf", math.inf)):
        m = models.make_norm(name, 4, 2)
        assert isinstance(m, lpnorm.LpNorm2d) and m.p == p
    assert all(m.num_features == 4 for m in (models.make_norm(n, 4, 1) for n in ("bn", "torch_bn", "noisy_bn")))
    calls = []

    def factory(num_features, ndim):
        calls.append((num_features, ndim))
        return nn.Identity()

    assert isinstance(models.make_norm(factory, 6, 2), nn.Identity) and calls == [(6, 2)]
    model = models.vgg([4, "M"], factory, fc_width=3, image_size=4)
    assert calls[1:] == [(4, 2), (3, 1), (3, 1)]  # one conv, two hidden FC layers
    assert models.weight_layers(model)[0].bias is None  # a factory's module counts as a norm
    with pytest.raises(ValueError, match=r"expected norm None, a factory, or one of "
                                         r"\[.*'bn'.*'noisy_bn'.*'torch_bn'.*\] \(got 'group'\)"):
        models.make_norm("group", 4, 2)


def test_noise_generator_drives_noisy_bn():
    def run(seed):
        model = models.vgg("tiny", "noisy_bn", fc_width=8, generator=gen(), noise_generator=gen(seed),
                           image_size=16)
        return model(torch.ones(2, 3, 16, 16) + torch.arange(2.0).view(2, 1, 1, 1))

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


# --- the deep linear network --------------------------------------------------------------------

def test_dln_structure():
    model = models.deep_linear_network(25, 10, norm="bn", generator=gen())
    weights = models.weight_layers(model)
    assert len(weights) == 25
    assert all(isinstance(m, nn.Linear) and m.weight.shape == (10, 10) and m.bias is None for m in weights)
    children = list(model.children())
    norms = [m for m in children if is_norm(m)]
    assert len(norms) == 24 and all(type(m) is layers.BatchNorm1d and m.num_features == 10 for m in norms)
    for i, m in enumerate(children[:-1]):  # Linear, norm, Linear, norm, ..., Linear
        assert isinstance(m, nn.Linear) if i % 2 == 0 else is_norm(m)
    assert isinstance(children[-1], nn.Linear) and len(children) == 49
    assert not any(isinstance(m, nn.ReLU) for m in children) and models.relu_inputs(model) == []
    assert model(torch.randn(8, 10)).shape == (8, 10)
    plain = models.deep_linear_network(25, 10)
    assert len(list(plain.children())) == 25 and not any(map(is_norm, plain.children()))
    assert type(models.deep_linear_network(3, 4, "torch_bn")[1]) is nn.BatchNorm1d


def test_dln_without_norm_is_the_product_of_its_matrices():
    model = models.deep_linear_network(25, 10, generator=gen(2)).double()
    x = torch.randn(7, 10, generator=gen(3), dtype=torch.float64)
    product = torch.eye(10, dtype=torch.float64)
    for layer in models.weight_layers(model):  # W25 ... W2 W1, built from the left
        product = layer.weight.detach() @ product
    torch.testing.assert_close(model(x), x @ product.T, rtol=1e-10, atol=1e-12)


def test_dln_glorot_init_from_the_generator():
    state = torch.random.get_rng_state()
    a = models.deep_linear_network(25, 10, generator=gen(1))
    b = models.deep_linear_network(25, 10, generator=gen(1))
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))
    w = torch.cat([m.weight.detach().flatten() for m in models.weight_layers(a)])  # 2,500 weights
    assert w.std().item() == pytest.approx(math.sqrt(2 / 20), rel=0.05)


@pytest.mark.parametrize("depth, width", [(0, 10), (5, 0), (-1, 3)])
def test_dln_errors(depth, width):
    with pytest.raises(ValueError, match=f"expected depth >= 1 and width >= 1 \\(got depth={depth}, width={width}\\)"):
        models.deep_linear_network(depth, width)


def test_dln_of_depth_one_has_no_norm():
    model = models.deep_linear_network(1, 3, norm="bn")
    assert len(model) == 1 and isinstance(model[0], nn.Linear)
