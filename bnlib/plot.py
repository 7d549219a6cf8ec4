"""Plot helpers. Each takes data and an optional ``ax`` and returns the ``Axes``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
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
