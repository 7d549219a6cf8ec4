"""bnlib.setup(): the one call at the top of every chapter."""
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import bnlib
from bnlib import plot


def test_setup_is_deterministic():
    bnlib.setup(seed=3)
    a = (torch.randn(4), np.random.rand(3))
    gen = bnlib.setup(seed=3)
    b = (torch.randn(4), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert gen.initial_seed() == 3
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()


def test_progress_is_quiet_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert bnlib.progress(range(3)).disable
    monkeypatch.setenv("CI", "")
    monkeypatch.setenv("BNLIB_PROGRESS", "0")
    assert bnlib.progress(range(3)).disable
    monkeypatch.setenv("BNLIB_PROGRESS", "1")
    assert not bnlib.progress(range(3), file=open("/dev/null", "w")).disable


def test_hangul_renders_without_missing_glyphs():
    plot.set_style()
    fig, ax = plt.subplots()
    ax.set_title("배치 정규화 · 내부 공변량 변화 −1")
    ax.set_xlabel("학습 스텝")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" would raise here
        fig.canvas.draw()
    used = matplotlib.font_manager.findfont(matplotlib.font_manager.FontProperties(family=matplotlib.rcParams["font.family"]))
    assert "NanumGothic" in used
    plt.close(fig)


def test_rel_error():
    assert bnlib.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert abs(bnlib.rel_error([1.0], [1.0 + 1e-6]) - 5e-7) < 1e-12


def test_below_prints_the_bound_and_checks_it():
    import math

    from bnlib import below

    assert below(4.4e-16, 1e-12) == "< 1e-12" and below(-4.3e-13, 1e-12) == "< 1e-12"
    with pytest.raises(AssertionError, match=r"expected a value below 1e-12 \(got 2e-12\)"):
        below(2e-12, 1e-12)
    with pytest.raises(AssertionError, match="got nan"):
        below(math.nan, 1.0)
