"""bnlib.train.fit(on_nonfinite=...): stop and record the step, or raise a clear error (toy tensors)."""
import math

import pytest
import torch
from torch import nn

from bnlib import train


def toy_problem(n=240, d=5, seed=0):
    """A linearly separable toy problem (a toy, labelled as one)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


class BlowsUp(nn.Module):
    """A linear model whose training-mode output becomes `value` (inf or nan) at forward pass `at`."""

    def __init__(self, at, value=math.inf):
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.at, self.value, self.passes = nn.Linear(5, 2), at, value, 0

    def forward(self, x):
        out = self.linear(x)
        if self.training:
            self.passes += 1
            if self.passes >= self.at:
                out = out * self.value
        return out


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_stop_records_the_step_and_ends_training(value):
    model = BlowsUp(at=4, value=value)
    seen = []
    x, y = toy_problem()
    h = train.fit(model, (x, y), (x, y), train.TrainConfig(steps=10, batch_size=8, lr=0.1, eval_every=2),
                  on_step=[lambda step, *rest: seen.append(step)], on_nonfinite="stop")
    assert h.diverged_at == 4 and model.passes == 4  # no training pass after the bad one
    assert len(h.loss) == len(h.acc) == 3 and all(math.isfinite(v) for v in h.loss)
    assert seen == [1, 2, 3]  # hooks do not see the non-finite step
    assert h.eval_step == [2]  # no evaluation after the stop
    assert model.training


def test_stop_leaves_the_weights_of_the_last_finite_step():
    x, y = toy_problem()
    cfg = train.TrainConfig(steps=3, batch_size=8, lr=0.1)
    reference = BlowsUp(at=100)
    train.fit(reference, (x, y), None, cfg)
    model = BlowsUp(at=4)
    h = train.fit(model, (x, y), None, train.TrainConfig(steps=10, batch_size=8, lr=0.1), on_nonfinite="stop")
    assert h.diverged_at == 4
    for p, q in zip(model.parameters(), reference.parameters()):
        assert torch.equal(p, q)  # the bad step took no optimizer step


def test_stop_on_a_real_divergence_with_a_huge_learning_rate():
    x, y = toy_problem()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    h = train.fit(model, (x, y), None, train.TrainConfig(steps=50, batch_size=8, lr=1e4), on_nonfinite="stop")
    assert h.diverged_at is not None and 1 < h.diverged_at <= 50
    assert len(h.loss) == h.diverged_at - 1 and h.loss[-1] > 1e6


def test_a_finite_run_has_no_divergence_step():
    x, y = toy_problem()
    h = train.fit(nn.Linear(5, 2), (x, y), None, train.TrainConfig(steps=5, batch_size=8), on_nonfinite="stop")
    assert h.diverged_at is None and len(h.loss) == 5


def test_raise_is_the_default_and_says_to_lower_the_learning_rate():
    x, y = toy_problem()
    cfg = train.TrainConfig(steps=10, batch_size=8)
    for kwargs in ({}, {"on_nonfinite": "raise"}):
        with pytest.raises(ValueError, match=r"expected a finite loss \(got (nan|inf) at step 3\): "
                                             r"lower the learning rate"):
            train.fit(BlowsUp(at=3), (x, y), None, cfg, **kwargs)
    with pytest.raises(ValueError, match=r"\(got nan at step 2\): lower the learning rate"):
        train.fit(BlowsUp(at=2, value=math.nan), (x, y), None, cfg)


def test_bad_on_nonfinite_value():
    x, y = toy_problem()
    model = BlowsUp(at=100)
    with pytest.raises(ValueError, match="expected on_nonfinite 'raise' or 'stop' \\(got 'ignore'\\)"):
        train.fit(model, (x, y), None, train.TrainConfig(steps=2, batch_size=8), on_nonfinite="ignore")
    assert model.passes == 0  # checked before training
