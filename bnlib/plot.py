"""Plot helpers. Each takes data and an optional ``ax`` and returns the ``Axes``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager

HANGUL_FONT = "NanumGothic"


def _hangul_font_files() -> list[Path]:
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "fonts"
    return sorted(folder.glob("NanumGothic*.ttf"))


def set_style() -> None:
    """Readable defaults and a Hangul font (NanumGothic, from koreanize-matplotlib).

    Raises RuntimeError with the install command when the font is missing, instead of
    drawing empty boxes for every Korean glyph.
    """
    files = _hangul_font_files()
    if not files:
        raise RuntimeError(
            "expected the NanumGothic font from the 'koreanize-matplotlib' package (got none): "
            "run `python -m pip install koreanize-matplotlib` (it is in requirements.txt)"
        )
    known = {f.fname for f in font_manager.fontManager.ttflist}
    for f in files:
        if str(f) not in known:
            font_manager.fontManager.addfont(str(f))
    matplotlib.rcParams.update({
        "font.family": [HANGUL_FONT, "DejaVu Sans"],
        "axes.unicode_minus": False,  # NanumGothic has no U+2212 minus sign
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.constrained_layout.use": True,
    })


def show_images(images, labels=None, ncols: int = 10, scale: float = 1.1, cmap: str | None = None):
    """Grid of images. ``images``: (N, H, W) or (N, H, W, C) uint8 or float in [0, 1].

    Returns the figure. ``labels``: N strings shown as titles.
    """
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        img = img.numpy() if hasattr(img, "numpy") else img
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype.kind == "u" else 1)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=8)
    return fig


def bar(names, values, ax=None, **kwargs):
    """Bar chart of ``values`` against ``names``; returns the Axes."""
    ax = ax or plt.subplots(figsize=(6, 2.5))[1]
    ax.bar(range(len(values)), values, **kwargs)
    ax.set_xticks(range(len(values)), [str(n) for n in names], rotation=45, ha="right")
    return ax


def matrix(m, ax=None, title: str | None = None, vmax: float | None = None, cmap: str = "RdBu_r"):
    """Heatmap of a matrix (a covariance, a correlation) on a colour scale symmetric about 0.

    ``vmax``: the end of the colour scale (default: the largest absolute entry). Returns the Axes.
    """
    m = m.detach().cpu().numpy() if hasattr(m, "detach") else m
    ax = ax or plt.subplots(figsize=(3.2, 3))[1]
    vmax = float(abs(m).max()) if vmax is None else vmax
    image = ax.imshow(m, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def spread(x, runs, ax=None, label: str | None = None, color=None):
    """Several runs of one curve: their mean as a line and their min–max as a band.

    ``runs``: (runs, len(x)) array-like, one row per seed. Returns the Axes.
    """
    import numpy as np

    runs = np.asarray(runs, dtype=float)  # (runs, T)
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    (line,) = ax.plot(x, runs.mean(0), label=label, color=color)
    ax.fill_between(x, runs.min(0), runs.max(0), color=line.get_color(), alpha=0.2, linewidth=0)
    return ax


# --- helpers for training curves, distributions and per-layer statistics --------------------------

def _ax(ax, figsize=(5, 3)):
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def percentile_lines(steps, values, q=(15, 50, 85), ax=None, color="tab:blue", label=None):
    """Percentile traces of one unit over training, as in Ioffe & Szegedy's Figure 1(b, c): the
    median as a solid line, the other percentiles as thinner lines.

    steps: (T,); values: (T, len(q)) percentiles at each step. Returns the Axes.
    """
    ax = _ax(ax)
    steps, values = _np(steps), _np(values)
    if values.shape != (len(steps), len(q)):
        raise ValueError(f"expected values of shape ({len(steps)}, {len(q)}) (got {values.shape})")
    mid = len(q) // 2
    for j, qj in enumerate(q):
        ax.plot(steps, values[:, j], color=color, linewidth=2.0 if j == mid else 1.0,
                alpha=1.0 if j == mid else 0.7, label=label if j == mid else None)
        ax.annotate(f"{qj:g}%", (steps[-1], values[-1, j]), xytext=(3, 0), textcoords="offset points",
                    fontsize=8, color=color, va="center")
    return ax


def histograms(samples, ax=None, bins=50, limits=None, colors=None, density=True):
    """Overlaid step histograms of several samples; ``samples``: {label: values} (flattened);
    ``limits``: (low, high) of the bins, by default the range of all samples. Returns the Axes."""
    ax = _ax(ax)
    arrays = {k: _np(v).ravel() for k, v in samples.items()}
    if limits is None:
        lo = min(a.min() for a in arrays.values())
        hi = max(a.max() for a in arrays.values())
        limits = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    cmap = plt.get_cmap("viridis")
    for i, (name, a) in enumerate(arrays.items()):
        color = colors[i] if colors is not None else cmap(i / max(len(arrays) - 1, 1))
        ax.hist(a, bins=bins, range=limits, histtype="step", density=density, linewidth=1.5,
                color=color, label=str(name))
    return ax


def per_layer(rows, ax=None, logy=False, styles=None, marker="o"):
    """Lines over layer index: ``rows`` = {label: values for layers 1..L}. ``styles``: {label: dict of
    plot keyword arguments}. Returns the Axes."""
    ax = _ax(ax)
    for name, values in rows.items():
        values = _np(values)
        ax.plot(np.arange(1, len(values) + 1), values, marker=marker, markersize=3, label=str(name),
                **(styles or {}).get(name, {}))
    if logy:
        ax.set_yscale("log")
        plain_log_ticks(ax, "y")
    return ax


def contour_paths(w1, w2, loss, paths=None, ax=None, levels=20, colors=None):
    """Contours of a loss over a 2D grid of weights, with optimization paths drawn on top.

    w1: (A,), w2: (B,) grid coordinates; loss: (B, A) values; paths: {label: (steps, 2) points}.
    Returns the Axes.
    """
    ax = _ax(ax)
    w1, w2, loss = _np(w1), _np(w2), _np(loss)
    if loss.shape != (len(w2), len(w1)):
        raise ValueError(f"expected loss of shape ({len(w2)}, {len(w1)}) (got {loss.shape})")
    ax.contour(w1, w2, loss, levels=levels, cmap="Greys_r", linewidths=0.8)
    for i, (name, path) in enumerate((paths or {}).items()):
        path = _np(path)
        color = colors[i] if colors is not None else f"C{i}"
        ax.plot(path[:, 0], path[:, 1], ".-", color=color, markersize=3, linewidth=1, label=str(name))
        ax.plot(*path[-1], "*", color=color, markersize=10)
    ax.set_xlim(w1.min(), w1.max())
    ax.set_ylim(w2.min(), w2.max())
    return ax


def seed_bars(names, values, ax=None, colors=None, width=0.8, offset=0.0, label=None):
    """Bars of the mean over seeds, a whisker of ± one standard deviation, and each seed as a dot.

    names: G group labels; values: G arrays of per-seed values (or a (G, seeds) array).
    ``offset`` and ``width`` place several bar series side by side. Returns the Axes.
    """
    ax = _ax(ax)
    pos = np.arange(len(names)) + offset
    for i, v in enumerate(values):
        v = _np(v).ravel()
        color = colors[i] if colors is not None else f"C{i}"
        std = v.std(ddof=1) if len(v) > 1 else 0.0
        ax.bar(pos[i], v.mean(), width=width, color=color, alpha=0.6,
               label=label if i == 0 else None)
        ax.errorbar(pos[i], v.mean(), yerr=std, color="black", capsize=3, linewidth=1)
        ax.plot(np.full(len(v), pos[i]) + np.linspace(-width / 4, width / 4, len(v)), v, "o",
                color="black", markersize=3)
    ax.set_xticks(np.arange(len(names)), [str(n) for n in names])
    return ax


def seed_points(x, values, ax=None, label=None, color=None, marker="o", **kwargs):
    """A sweep over several seeds: the mean as a line with ± one standard deviation whiskers,
    each seed as a small dot. x: (K,) positions; values: (seeds, K). Returns the Axes."""
    ax = _ax(ax)
    x, values = _np(x), np.atleast_2d(_np(values))
    if values.shape[1] != len(x):
        raise ValueError(f"expected values of shape (seeds, {len(x)}) (got {values.shape})")
    std = values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(x))
    line = ax.errorbar(x, values.mean(0), yerr=std, marker=marker, capsize=3, label=label,
                       color=color, **kwargs)
    for row in values:
        ax.plot(x, row, ".", color=line[0].get_color(), alpha=0.5, markersize=4)
    return ax


def plain_log_ticks(ax, axis: str = "both"):
    """Label log-scaled axes with plain numbers ("0.001", "1e-08") instead of mathtext powers of ten,
    whose minus sign NanumGothic lacks (it would be drawn as a box). Returns the Axes."""
    from matplotlib import ticker

    fmt = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for a in ([ax.xaxis, ax.yaxis] if axis == "both" else [getattr(ax, axis + "axis")]):
        a.set_major_formatter(fmt)
        a.set_minor_formatter(ticker.NullFormatter())
    return ax


def log_ticks(ax, ticks, axis: str = "x"):
    """A log-scale axis labelled at ``ticks`` only, as plain numbers (4, 16, 0.1): no 10^k minor
    labels, no mathtext minus signs. Returns the Axes."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter, NullLocator

    which = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    which.set_major_locator(FixedLocator(list(ticks)))
    which.set_major_formatter(FormatStrFormatter("%g"))
    which.set_minor_locator(NullLocator())
    which.set_minor_formatter(NullFormatter())
    return ax


def ridge(steps, values, ax=None, color="tab:blue", bins=25, limits=None, overlap=2.0, label=None):
    """Stacked histograms of one unit's values over training (Santurkar et al., Figs 1c, 2):
    one filled density per recorded step, later steps drawn higher up.

    steps: (T,); values: (T, samples); limits: (low, high) of the bins, by default the 1st–99th
    percentile of all values. The y axis shows the step. Returns the Axes.
    """
    ax = _ax(ax, figsize=(4, 4))
    steps, values = _np(steps), _np(values)
    if values.ndim != 2 or len(values) != len(steps):
        raise ValueError(f"expected values of shape ({len(steps)}, samples) (got {values.shape})")
    lo, hi = limits if limits is not None else np.percentile(values, [1, 99])
    edges = np.linspace(lo, hi, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    dens = np.stack([np.histogram(np.clip(v, lo, hi), edges, density=True)[0] for v in values])
    gap = (steps[-1] - steps[0]) / max(len(steps) - 1, 1) if len(steps) > 1 else 1.0
    height = overlap * gap / max(dens.max(), 1e-12)
    for t, d in reversed(list(zip(steps, dens))):  # draw later steps first, earlier ones in front
        ax.fill_between(centers, t, t + d * height, color=color, alpha=0.35, linewidth=0)
        ax.plot(centers, t + d * height, color=color, linewidth=0.8)
    if label is not None:
        ax.plot([], [], color=color, label=label)
    ax.set_ylabel("step")
    return ax


def band(x, lo, hi, ax=None, color=None, label=None, alpha=0.3):
    """A shaded min–max band between ``lo`` and ``hi`` over ``x`` (Santurkar et al., Fig 4a, b)."""
    ax = _ax(ax)
    x, lo, hi = _np(x), _np(lo), _np(hi)
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, label=label, linewidth=0)
    return ax
