"""bnlib.plot helpers of the covariate-shift chapter: they take data and an optional ax and return it."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bnlib import plot  # noqa: E402


def test_helpers_draw_on_the_given_axes_and_return_them():
    fig, axes = plt.subplots(1, 4)
    steps = np.arange(1, 6)
    assert plot.percentile_lines(steps, torch.randn(5, 3), ax=axes[0]) is axes[0]
    assert len(axes[0].lines) == 3
    assert plot.histograms({"a": torch.rand(100), "b": np.random.rand(50)}, ax=axes[1]) is axes[1]
    assert plot.per_layer({"x": [1e-3, 1e-1, 1.0]}, ax=axes[2], logy=True) is axes[2]
    assert axes[2].get_yscale() == "log"
    w1, w2 = torch.linspace(-1, 1, 7), torch.linspace(-2, 2, 5)
    loss = w2[:, None] ** 2 + w1[None, :] ** 2  # (5, 7)
    assert plot.contour_paths(w1, w2, loss, {"gd": torch.zeros(3, 2)}, ax=axes[3]) is axes[3]
    plt.close(fig)
    ax = plot.histograms({"same": torch.ones(10)})  # a constant sample still gets bins
    plt.close(ax.figure)


def test_helpers_reject_wrong_shapes():
    with pytest.raises(ValueError, match="expected values of shape"):
        plot.percentile_lines(np.arange(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="expected loss of shape"):
        plot.contour_paths(np.arange(3), np.arange(4), np.zeros((3, 4)))
    plt.close("all")
