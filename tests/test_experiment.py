"""bnlib.experiment: runs over seeds and their summaries (plain numbers, no training)."""
import numpy as np
import pytest

from bnlib import experiment


def test_over_seeds_stacks_in_seed_order():
    calls = []

    def fn(seed):
        calls.append(seed)
        rng = np.random.default_rng(seed)
        return {"acc": 0.5 + seed / 10, "curve": rng.normal(size=4), "n": 3}

    out = experiment.over_seeds(fn, [2, 0, 1])
    assert calls == [2, 0, 1]
    assert set(out) == {"acc", "curve", "n"}
    assert out["acc"].shape == (3,) and out["curve"].shape == (3, 4) and out["acc"].dtype == np.float64
    np.testing.assert_allclose(out["acc"], [0.7, 0.5, 0.6])
    np.testing.assert_array_equal(out["curve"][1], np.random.default_rng(0).normal(size=4))


def test_over_seeds_is_a_function_of_the_seeds():
    def fn(seed):
        return {"x": np.random.default_rng(seed).normal(size=3)}

    a, b = experiment.over_seeds(fn, range(3)), experiment.over_seeds(fn, range(3))
    np.testing.assert_array_equal(a["x"], b["x"])


def test_over_seeds_errors():
    with pytest.raises(ValueError, match="expected at least one seed"):
        experiment.over_seeds(lambda s: {"a": 1}, [])
    with pytest.raises(TypeError, match=r"expected fn\(seed\) to return a dict \(got float"):
        experiment.over_seeds(lambda s: 1.0, [0])
    with pytest.raises(ValueError, match="expected the same keys for every seed"):
        experiment.over_seeds(lambda s: {"a": 1} if s == 0 else {"b": 1}, [0, 1])
    with pytest.raises(ValueError, match="expected one shape for 'a' across seeds"):
        experiment.over_seeds(lambda s: {"a": np.zeros(s + 1)}, [0, 1])


def test_summarize_matches_numpy():
    v = np.array([0.30, 0.34, 0.31, 0.29])
    mean, std, lo, hi = experiment.summarize(v)
    assert all(isinstance(t, float) for t in (mean, std, lo, hi))
    assert mean == pytest.approx(v.mean()) and std == pytest.approx(v.std(ddof=1))
    assert (lo, hi) == (0.29, 0.34)
    assert experiment.summarize([0.4]) == (0.4, 0.0, 0.4, 0.4)  # one seed: no spread


def test_summarize_over_an_axis():
    a = np.arange(12.0).reshape(3, 4)  # 3 seeds, 4 values each
    mean, std, lo, hi = experiment.summarize(a)
    np.testing.assert_allclose(mean, a.mean(0))
    np.testing.assert_allclose(std, a.std(0, ddof=1))
    np.testing.assert_array_equal(lo, a[0]) and np.testing.assert_array_equal(hi, a[2])
    np.testing.assert_allclose(experiment.summarize(a, axis=1)[0], a.mean(1))
    with pytest.raises(ValueError, match="expected at least one value"):
        experiment.summarize([])


def test_describe():
    assert experiment.describe([0.3, 0.32, 0.34]) == "0.320 ± 0.020 [0.300, 0.340] (n=3)"
    assert experiment.describe([0.3, 0.32, 0.34], digits=1, scale=100) == "32.0 ± 2.0 [30.0, 34.0] (n=3)"
    with pytest.raises(ValueError, match=r"expected a 1-D array of per-seed values \(got shape \(2, 2\)\)"):
        experiment.describe(np.zeros((2, 2)))
