"""Figures (_ext/figures.py): the "figure" cell metadata of every chapter, and the extension on a
small synthetic notebook. The rendered figures are checked in a browser by tools/browser_figures.py.

A chapter with no "figure" metadata yet is skipped (listed in the skip message) while captions are
being written; set STRICT = True to require a caption on every figure of every chapter in _toc.yml.
"""
import base64
import collections
import io
import re
import subprocess
import sys

import pytest

from tools.book import ROOT, cell_source, read_notebook, toc_notebooks

sys.path.insert(0, str(ROOT / "_ext"))
from figures import figure_entries, mark_figures, png_outputs  # noqa: E402

STRICT = True           # every chapter's every figure must be captioned (no skips)
LABEL = re.compile(r"^\(([a-z0-9-]+)\)=", re.M)
CHAPTERS = toc_notebooks()


def chapter_prefix(nb) -> str:
    """The first part of the chapter's section labels (``bn`` of ``bn-alg-fold``)."""
    labels = [lab for c in nb["cells"] if c["cell_type"] == "markdown" for lab in LABEL.findall(cell_source(c))]
    counts = collections.Counter(lab.split("-")[0] for lab in labels[1:] or labels)
    return counts.most_common(1)[0][0] if counts else ""


def _entries(path):
    nb = read_notebook(path)
    return nb, [(i, c, figure_entries(c)) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figure_metadata_follows_the_schema(path):
    nb = read_notebook(path)
    for i, cell in enumerate(nb["cells"]):
        try:
            figure_entries(cell)
        except ValueError as exc:
            pytest.fail(f"{path.name} cell {i}: {exc}")


def test_figure_names_unique_and_prefixed_like_the_chapters_labels():
    seen = {}
    for path in CHAPTERS:
        nb, cells = _entries(path)
        prefix = chapter_prefix(nb)
        for i, _cell, entries in cells:
            for e in entries:
                assert e["name"] not in seen, (f"{path.name} cell {i}: figure name {e['name']!r} is already used "
                                                f"in {seen[e['name']]}: expected names unique in the book")
                seen[e["name"]] = path.name
                assert e["name"].startswith(f"fig-{prefix}-"), (
                    f"{path.name} cell {i}: expected the figure name to start with fig-{prefix}- "
                    f"(the chapter's label prefix) (got {e['name']!r})")


def test_every_figure_of_a_captioned_chapter_has_a_caption():
    uncaptioned = []
    for path in CHAPTERS:
        _nb, cells = _entries(path)
        with_png = [(i, c) for i, c, _e in cells if png_outputs(c)]
        if not with_png:
            continue
        if not any(e for _i, _c, e in cells) and not STRICT:
            uncaptioned.append(f"{path.stem} ({len(with_png)})")
            continue
        missing = [i for i, c in with_png if not figure_entries(c)]
        assert not missing, (f"{path.name}: expected \"figure\" metadata on every code cell with an image "
                             f"(got none on cells {missing}); see CONTRIBUTING.md, Figures")
    if uncaptioned:
        pytest.skip("chapters with no figure captions yet (figure cells): " + ", ".join(uncaptioned))


def _entry(name="fig-x-a", ko="그림 설명", en="A caption", alt_ko="막대그래프", alt_en="A bar chart"):
    return {"name": name, "ko": {"caption": ko, "alt": alt_ko}, "en": {"caption": en, "alt": alt_en}}


def _cell(meta, n_png=1):
    outs = [{"output_type": "display_data", "metadata": {}, "data": {"image/png": "", "text/plain": "<Figure>"}}
            for _ in range(n_png)]
    return {"cell_type": "code", "metadata": {"figure": meta}, "source": "plot()", "outputs": outs, "execution_count": 1}


@pytest.mark.parametrize("meta, n_png, needle", [
    (_entry(), 2, "one 'figure' entry per PNG output (2)"),
    ([_entry(), _entry("fig-x-b")], 1, "(got 2)"),
    ({**_entry(), "fr": {}}, 1, "expected keys name, ko, en"),
    (_entry(name="fig_x"), 1, "expected a name like"),
    (_entry(ko=" "), 1, "non-empty ko caption"),
    (_entry(ko="A caption in English"), 1, "expected Korean in the ko caption"),
    (_entry(en="영어 캡션"), 1, "no Hangul in the en caption"),
    (_entry(alt_ko="../_images/0bf60d.png"), 1, "file path"),
    (_entry(alt_en="figure_3.png"), 1, "file path"),
])
def test_schema_checker_rejects(meta, n_png, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        figure_entries(_cell(meta, n_png))


def test_schema_checker_accepts_one_entry_or_a_list():
    assert figure_entries(_cell(_entry())) == [_entry()]
    assert [e["name"] for e in figure_entries(_cell([_entry(), _entry("fig-x-b")], 2))] == ["fig-x-a", "fig-x-b"]
    assert figure_entries({"cell_type": "code", "metadata": {}, "outputs": []}) == []


def _png(width):
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (width, 10), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_extension_numbers_captions_and_describes_two_images_of_one_cell(tmp_path):
    """A tiny Sphinx build: a cell with two PNG outputs, both captioned (math, a role), per edition."""
    meta = [_entry("fig-t-one", "첫 그림: $x^2$ 곡선", "First: the $x^2$ curve", "빨간 띠 하나", "One red band"),
            _entry("fig-t-two", "둘째 그림, {ref}`t-top` 참고", "Second, see {ref}`t-top`", "빨간 띠 둘", "Two red bands")]
    cell = _cell(meta, 2)
    for out, w in zip(cell["outputs"], (40, 60)):
        out["data"] = {"image/png": _png(w), "text/plain": "<Figure>"}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "P"},
                                                   "language_info": {"name": "python"}},
          "cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "(t-top)=\n# Top\n\ntext"},
                    {**cell, "id": "c1"},
                    {"cell_type": "code", "id": "c2", "metadata": {}, "source": "plot()", "execution_count": 2,
                     "outputs": [{"output_type": "display_data", "metadata": {},
                                  "data": {"image/png": _png(30), "text/plain": "<Figure>"}}]}]}
    import json
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "src" / "conf.py").write_text(
        f"import sys; sys.path.insert(0, {str(ROOT / '_ext')!r})\n"
        "extensions = ['myst_nb', 'bilingual', 'solutions', 'figures']\n"
        "nb_execution_mode = 'off'\nmyst_enable_extensions = ['dollarmath']\n", encoding="utf-8")
    for lang, number, alts in (("ko", "그림", ["빨간 띠 하나", "빨간 띠 둘"]), ("en", "Figure", ["One red band", "Two red bands"])):
        out = tmp_path / f"out-{lang}"
        run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", "-E", "-D", f"bilingual_lang={lang}",
                              str(tmp_path / "src"), str(out)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and not run.stderr.strip(), run.stderr
        page = (out / "index.html").read_text(encoding="utf-8")
        assert re.findall(r'<span class="caption-number">([^<]*)</span>', page) == [f"{number} 1. ", f"{number} 2. "]
        assert re.findall(r'id="(fig-t-[a-z]+)"', page) == ["fig-t-one", "fig-t-two"]
        assert [a for a in re.findall(r'<img alt="([^"]*)"', page)][:2] == alts
        assert page.count('class="math notranslate nohighlight"') == 1 and 'href="#t-top"' in page
        assert len(re.findall(r"<img ", page)) == 3 and page.count("<figure") == 2   # the uncaptioned image stays
