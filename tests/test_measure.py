"""bnlib.measure.internal_covariate_shift: cases with a known answer; the model is left untouched."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import measure
from bnlib.layers import BatchNorm1d, NoisyBatchNorm1d


def mse(out, y):
    return 0.5 * ((out - y) ** 2).sum()


def test_two_layer_linear_network_by_hand():
    """L = 0.5 ||W2 W1 x - y||^2. G = r (W1 x)^T with r = W2 W1 x - y; G' uses W1' = W1 - lr dW1."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False)).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    W1, W2, lr = model[0].weight.detach(), model[1].weight.detach(), 0.05
    r = x @ W1.T @ W2.T - y  # (N, 2)
    G = r.T @ (x @ W1.T)  # dL/dW2 = sum_n r_n (W1 x_n)^T
    dW1 = (r @ W2).T @ x  # dL/dW1 = sum_n W2^T r_n x_n^T
    W1_new = W1 - lr * dW1
    G2 = (x @ W1_new.T @ W2.T - y).T @ (x @ W1_new.T)
    got = measure.internal_covariate_shift(model, ["1"], x, y, lr, loss_fn=mse)["1"]
    assert got["l2"] == pytest.approx((G - G2).norm().item(), rel=1e-12)
    assert got["cosine"] == pytest.approx(F.cosine_similarity(G.flatten(), G2.flatten(), 0).item(), rel=1e-12)
    assert got["l2"] > 0


def test_no_ics_when_earlier_layers_do_not_move():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for lr, layer in [(0.0, "5"), (0.1, "0")]:  # lr 0, or the first layer (nothing before it)
        got = measure.internal_covariate_shift(model, [layer], x, y, lr)[layer]
        assert got["l2"] == 0.0 and got["cosine"] == pytest.approx(1.0)


def test_model_buffers_grads_and_rng_are_left_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8),
                          NoisyBatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    F.cross_entropy(model(x), y).backward()
    state = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    got = measure.internal_covariate_shift(model, {"#4": model[3], "#7": model[6]}, x, y, lr=0.1)
    assert set(got) == {"#4", "#7"} and all(v["l2"] > 0 for v in got.values())
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


def test_noise_is_the_same_in_both_gradients():
    """With lr = 0 the two passes must agree exactly even though the layer draws noise."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), NoisyBatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    assert measure.internal_covariate_shift(model, ["3"], x, y, lr=0.0)["3"]["l2"] == 0.0


def test_bad_layer_names_say_what_was_expected():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match="expected layer names from model.named_modules"):
        measure.internal_covariate_shift(model, ["7"], torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), 0.1)
    with pytest.raises(ValueError, match="expected a layer with a weight"):
        measure.internal_covariate_shift(model, ["1"], torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), 0.1)
