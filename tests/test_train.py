"""bnlib.train: the plain loop (toy tensors, no downloads)."""
import pytest
import torch
from torch import nn

from bnlib import train


def toy_problem(n=240, d=5, seed=0):
    """A linearly separable toy problem (a toy, labelled as one)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def test_batches_cover_each_epoch_once():
    gen = torch.Generator().manual_seed(0)
    idx = list(train.batches(10, 3, steps=6, generator=gen))
    assert len(idx) == 6 and all(len(i) == 3 for i in idx)
    first_epoch = torch.cat(idx[:3])
    assert len(set(first_epoch.tolist())) == 9  # 3 full batches of 10, the last partial one dropped
    with pytest.raises(ValueError, match="expected 0 < batch_size <= 10"):
        next(train.batches(10, 11, 1, gen))


def test_fit_learns_and_is_reproducible():
    x, y = toy_problem()
    cfg = train.TrainConfig(steps=60, batch_size=20, lr=0.5, eval_every=20)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(5, 2)
        runs.append(train.fit(model, (x, y), (x, y), cfg))
    a, b = runs
    assert a.loss == b.loss and a.test_acc == b.test_acc
    assert a.eval_step == [20, 40, 60] and len(a.loss) == 60
    assert a.test_acc[-1] > 0.9 and a.loss[-1] < a.loss[0]


def test_evaluate_restores_mode_and_hooks_see_gradients():
    x, y = toy_problem()
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    seen = []
    train.fit(model, (x, y), None, train.TrainConfig(steps=3, batch_size=8),
              on_step=[lambda step, m, xb, yb, loss: seen.append(m[0].weight.grad is not None)])
    assert seen == [True, True, True] and model.training
    train.evaluate(model, x, y)
    assert model.training


def test_divergence_is_a_clear_error():
    x, y = toy_problem()
    model = nn.Linear(5, 2)
    with pytest.raises(ValueError, match="expected a finite loss"):
        train.fit(model, (x * 1e30, y), None, train.TrainConfig(steps=5, batch_size=8, lr=1e30))


def test_smoothed_is_a_moving_average():
    h = train.History(config={}, loss=[1.0, 3.0, 5.0, 7.0])
    assert h.smoothed("loss", window=2).tolist() == [1.0, 2.0, 4.0, 6.0]
