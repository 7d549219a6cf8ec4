"""bilingual — one source, two editions (Korean and English) of a Jupyter Book 1 book.

Adapted from ../shared/reference/bilingual-prototype (its "split" mode).

Authoring convention (works unchanged in JupyterLab, Colab and nbval):
  * A markdown cell tagged ``lang-ko`` or ``lang-en`` belongs to that edition only; every
    ``lang-ko`` cell is followed by its ``lang-en`` twin (tests/test_bilingual.py checks it).
    Untagged cells (code, equations, figures) are shared.
  * A heading goes on the first line(s) of a tagged cell, with the same MyST label line
    (``(bn-algorithm)=``) in both languages, so ``{ref}`` and ``#anchors`` work in both.
  * In ``.md`` pages: ``::::{lang} ko`` … ``::::`` blocks and ``{ko}`…` {en}`…``` roles.

The Sphinx config value ``bilingual_lang`` (``ko`` or ``en``) picks the edition; the markdown
cells of the other language are dropped from the notebook JSON in ``source-read``, before
myst-nb parses it, so headings, navigation, search and ``<html lang>`` are single-language.
Code cells are never touched.
"""
from __future__ import annotations

import json

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

LANGS = ("ko", "en")


def cell_langs(cell):
    tags = cell.get("metadata", {}).get("tags", []) or []
    return [t[5:] for t in tags if t.startswith("lang-") and t[5:] in LANGS]


def transform_notebook_json(text: str, lang: str) -> str:
    nb = json.loads(text)
    nb["cells"] = [c for c in nb.get("cells", [])
                   if c.get("cell_type") != "markdown" or not cell_langs(c) or lang in cell_langs(c)]
    return json.dumps(nb, ensure_ascii=False)


def _source_read(app, docname, source):
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = transform_notebook_json(source[0], app.config.bilingual_lang)


def _make_role(lang):
    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        mode = inliner.document.settings.env.config.bilingual_lang
        return ([nodes.Text(text)] if mode == lang else []), []
    return role


class LangDirective(SphinxDirective):
    """``{lang} ko`` block directive for .md pages."""
    required_arguments = 1
    has_content = True

    def run(self):
        if self.arguments[0].strip() != self.config.bilingual_lang:
            return []
        box = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, box)
        return box.children


def _config_inited(app, config):
    lang = config.bilingual_lang
    if lang not in LANGS:
        raise ValueError(f"expected bilingual_lang in {LANGS} (got {lang!r})")
    config.language = lang                                  # <html lang>, search language
    titles = config.bilingual_titles or {}
    if lang in titles:                                      # per-edition book title
        config.html_title = config.project = titles[lang]
    app.add_js_file(None, body=f"window.BILINGUAL_MODE = {json.dumps(lang)};", priority=100)


def setup(app):
    app.add_config_value("bilingual_lang", "ko", "env")
    app.add_config_value("bilingual_titles", {}, "html")
    app.connect("config-inited", _config_inited)
    app.connect("source-read", _source_read)
    app.add_directive("lang", LangDirective)
    for lang in LANGS:
        app.add_role(lang, _make_role(lang))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2"}
