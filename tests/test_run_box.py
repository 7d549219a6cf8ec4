""""Run this chapter" (_ext/run_box.py) and the edition notebooks (_ext/edition_notebook.py).

The built pages are checked in a browser by tools/browser_run_box.py (via tools/browser_check.py);
these tests cover the parts that need no build: which cells an edition keeps, and that the box
links to a repository only when its address is set."""
import json
import re
import sys
from types import SimpleNamespace

import pytest

from tools.book import ROOT, read_notebook, toc_notebooks

sys.path.insert(0, str(ROOT / "_ext"))
from edition_notebook import cell_langs, dumps, edition_notebook, write_edition  # noqa: E402
from run_box import TEXT, _config_inited, box_html, repository_url  # noqa: E402

CHAPTER = ROOT / "chapters" / "bn_algorithm.ipynb"
URL = "https://github.com/example-org/bn-course"          # a test value, never written to _config.yml


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_edition_keeps_its_prose_and_every_code_cell(lang):
    src = read_notebook(CHAPTER)
    nb = edition_notebook(src, lang)
    prose = [c for c in nb["cells"] if c["cell_type"] == "markdown" and cell_langs(c)]
    assert prose and all(cell_langs(c) == [lang] for c in prose)
    assert len(prose) == sum(1 for c in src["cells"] if lang in cell_langs(c))
    code = [c for c in src["cells"] if c["cell_type"] == "code"]
    assert [c for c in nb["cells"] if c["cell_type"] == "code"] == code      # sources, outputs, metadata
    assert nb["metadata"]["edition"] == lang and "edition" not in src["metadata"]   # source untouched


def test_every_chapter_has_prose_in_both_editions():
    for path in toc_notebooks():
        if path.parent.name == "chapters":
            nb = read_notebook(path)
            for lang in ("ko", "en"):
                assert any(cell_langs(c) == [lang] for c in edition_notebook(nb, lang)["cells"]), (path.name, lang)


def test_edition_notebook_is_valid_and_in_the_repository_format(tmp_path):
    import nbformat
    out = write_edition(CHAPTER, "ko", tmp_path / "x" / "bn_algorithm.ko.ipynb")
    text = out.read_text(encoding="utf-8")
    nbformat.validate(nbformat.reads(text, as_version=4))
    assert text == dumps(json.loads(text)) and text.endswith("}\n")


def test_unknown_edition_is_an_error():
    with pytest.raises(ValueError, match=r"expected lang in \('ko', 'en'\) \(got 'de'\)"):
        edition_notebook({"cells": []}, "de")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_box_links_to_a_repository_only_when_one_is_set(lang):
    empty = box_html(lang, "chapters/data", "../_notebooks/chapters/data.ko.ipynb")
    assert "http" not in empty and "git clone" not in empty and 'data-run-box="repository"' not in empty
    assert TEXT[lang]["title"] in empty and 'download="data.ko.ipynb"' in empty
    for cmd in ("python -m pip install -r requirements.txt", "jupyter lab chapters/data.ipynb",
                "python -m pytest chapters/data.ipynb"):
        assert cmd in empty
    full = box_html(lang, "chapters/data", "../_notebooks/chapters/data.ko.ipynb", URL, "main")
    assert f"git clone {URL}" in full and f'href="{URL}"' in full
    assert f'href="{URL}/blob/main/chapters/data.ipynb"' in full


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_box_text_is_in_the_editions_language(lang):
    text = re.sub(r"<pre.*?</pre>|<code>.*?</code>|<[^>]+>", " ", box_html(lang, "chapters/data", "x.ipynb"))
    hangul = bool(re.search(r"[\uac00-\ud7a3]", text))
    assert hangul == (lang == "ko"), text


def test_launch_and_repository_buttons_follow_the_one_setting():
    for url, on in (("", False), (URL + "/", True)):
        config = SimpleNamespace(html_theme_options={"repository_url": url, "launch_buttons": {"colab_url": "x"}})
        _config_inited(None, config)
        opts = config.html_theme_options
        assert opts["use_repository_button"] is on
        assert bool(opts["launch_buttons"]["binderhub_url"]) is on and not opts["launch_buttons"]["colab_url"]
        assert repository_url(config) == (URL if on else "")
