"""bnlib.models: mlp shapes, norm placement, bias off before a norm, initializations."""
import math

import pytest
import torch
from torch import nn

from bnlib import layers, models


def test_mlp_shapes_and_names():
    model = models.mlp([784, 100, 100, 100, 10], "sigmoid", generator=torch.Generator().manual_seed(0))
    assert list(dict(model.named_children())) == [
        "flatten", "fc1", "act1", "fc2", "act2", "fc3", "act3", "out"]
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)  # images are flattened
    assert all(isinstance(m, nn.Sigmoid) for m in models.hidden_layers(model, "act").values())
    assert all(m.bias is not None for m in model if isinstance(m, nn.Linear))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_norm_goes_before_the_activation_and_drops_the_bias():
    model = models.mlp([6, 5, 4, 3], "relu", norm=nn.BatchNorm1d)
    names = list(dict(model.named_children()))
    assert names == ["flatten", "fc1", "norm1", "act1", "fc2", "norm2", "act2", "out"]
    assert model.fc1.bias is None and model.fc2.bias is None
    assert model.out.bias is not None  # no norm after the output layer
    assert model.norm1.num_features == 5 and model.norm2.num_features == 4
    assert models.preactivations(model) == {"1": model.norm1, "2": model.norm2}
    assert isinstance(models.preactivations(models.mlp([6, 5, 3]))["1"], nn.Linear)
    model.train()
    h = model.norm1(model.fc1(torch.randn(32, 6)))  # BN output: per-feature mean 0, variance 1
    torch.testing.assert_close(h.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(h.var(0, correction=0), torch.ones(5), atol=1e-3, rtol=0)


def test_norm_factory_may_be_bnlibs_own_layer():
    model = models.mlp([6, 5, 3], "tanh", norm=layers.BatchNorm1d)
    assert isinstance(model.norm1, layers.BatchNorm1d) and model.fc1.bias is None
    assert model(torch.randn(4, 6)).shape == (4, 3)


def test_activation_by_name_or_factory_and_errors():
    assert isinstance(models.mlp([3, 2, 1], nn.Tanh).act1, nn.Tanh)
    assert isinstance(models.mlp([3, 2, 1], "relu").act1, nn.ReLU)
    assert len(models.mlp([3, 2])) == 2  # no hidden layer: flatten and the output layer
    with pytest.raises(ValueError, match="expected an activation"):
        models.mlp([3, 2, 1], "swishy")
    with pytest.raises(ValueError, match="expected at least two"):
        models.mlp([3])
    with pytest.raises(ValueError, match="expected init"):
        models.mlp([3, 2, 1], init="orthogonal")
    with pytest.raises(ValueError, match="positive standard deviation"):
        models.mlp([3, 2, 1], init=-0.1)
    with pytest.raises(ValueError, match="expected kind"):
        models.hidden_layers(models.mlp([3, 2, 1]), "conv")


@pytest.mark.parametrize("init, std", [
    ("xavier", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
    ("he", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
    (0.05, lambda fan_in, fan_out: 0.05),
])
def test_initializations_have_the_documented_scale(init, std):
    model = models.mlp([1000, 400, 10], "relu", init=init, generator=torch.Generator().manual_seed(0))
    for layer, (fan_in, fan_out) in ((model.fc1, (1000, 400)), (model.out, (400, 10))):
        assert layer.weight.std().item() == pytest.approx(std(fan_in, fan_out), rel=0.05)
        assert abs(layer.weight.mean().item()) < 0.1 * std(fan_in, fan_out)
        assert torch.count_nonzero(layer.bias) == 0


def test_default_init_is_pytorchs_and_the_generator_makes_it_reproducible():
    a = models.mlp([50, 20, 3], generator=torch.Generator().manual_seed(7))
    b = models.mlp([50, 20, 3], generator=torch.Generator().manual_seed(7))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=sqrt(5)) gives weights and biases in ±1/sqrt(fan_in)
    assert a.fc1.weight.abs().max() <= bound and a.fc1.bias.abs().max() <= bound
    assert a.fc1.weight.abs().max() > 0.9 * bound
    state = torch.random.get_rng_state()
    models.mlp([50, 20, 3], init="he", generator=torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is not touched
