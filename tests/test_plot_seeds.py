"""bnlib.plot helpers of the regularization chapter: results over seeds, log axes with plain ticks."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bnlib import plot  # noqa: E402


def test_seed_bars_and_points_draw_on_the_given_axes():
    fig, axes = plt.subplots(1, 2)
    values = [np.array([0.3, 0.32, 0.31]), np.array([0.5, 0.52, 0.49])]
    assert plot.seed_bars(["a", "b"], values, ax=axes[0]) is axes[0]
    heights = [p.get_height() for p in axes[0].patches]
    np.testing.assert_allclose(heights, [v.mean() for v in values])
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["a", "b"]
    assert plot.seed_points([2, 5, 10], np.random.rand(3, 3), ax=axes[1], label="x") is axes[1]
    assert len(axes[1].lines) >= 3  # the mean line and one row of dots per seed
    plt.close(fig)


def test_log_ticks_are_plain_numbers():
    fig, ax = plt.subplots()
    ax.plot([4, 16, 64], [0.5, 0.25, 0.125])
    assert plot.log_ticks(ax, [4, 16, 64], "x") is ax
    plot.log_ticks(ax, [0.1, 0.3], "y")
    fig.canvas.draw()
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16", "64"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.1", "0.3"]
    plt.close(fig)


def test_seed_points_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"expected values of shape \(seeds, 3\)"):
        plot.seed_points([1, 2, 3], np.zeros((2, 4)))
