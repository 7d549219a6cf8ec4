"""bilingual — one source, two editions (Korean and English) of a Jupyter Book 1 book.

Adapted from ../shared/reference/bilingual-prototype (its "split" mode).

Authoring convention (works unchanged in JupyterLab, Colab and nbval):
  * A markdown cell tagged ``lang-ko`` or ``lang-en`` belongs to that edition only; every
    ``lang-ko`` cell is followed by its ``lang-en`` twin (tests/test_bilingual.py checks it).
    Untagged cells (code, equations, figures) are shared.
  * Every heading goes on the first line(s) of a tagged cell, after an explicit MyST label line
    (``(bn-alg-forward)=``: ASCII, unique in the book, the chapter's prefix first) that is the same in
    both languages, so ``{ref}``, ``#anchors`` and the switch work in both (tests/test_bilingual.py).
  * Exercise solutions: cells tagged ``solution-N`` (see _ext/solutions.py).
  * In ``.md`` pages: ``::::{lang} ko`` … ``::::`` blocks and ``{ko}`…` {en}`…``` roles.

The Sphinx config value ``bilingual_lang`` (``ko`` or ``en``) picks the edition; the markdown
cells of the other language are dropped from the notebook JSON in ``source-read``, before
myst-nb parses it, so headings, navigation, search and ``<html lang>`` are single-language.
Code cells are never touched.

The 한국어 | English switch (_static/bilingual.js) keeps the reader's place: each page lists its
explicit labels, in document order, in ``<meta name="bilingual-labels">``, and a section's explicit
label is made its first id (``<section id="whitening-zca">``, the heading's # link and the page's
table of contents), so the switch can link to the twin page at the section the reader is in.
"""
from __future__ import annotations

import json

from docutils import nodes
from sphinx.transforms import SphinxTransform
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


class ExplicitLabelFirst(SphinxTransform):
    """A section's explicit label becomes its first id: the HTML id of <section>, of its heading's
    # link and of the in-page table of contents, the same in both editions (the heading's own
    slug stays as a second id, so old #links keep working)."""
    default_priority = 600                                  # after docutils' PropagateTargets (260)

    def apply(self, **kwargs):
        doc = self.document
        explicit = {i for name, i in doc.nameids.items() if i and doc.nametypes.get(name)}
        for sec in doc.findall(nodes.section):
            labels = [i for i in sec["ids"] if i in explicit]
            if labels and sec["ids"][0] not in explicit:
                sec["ids"] = labels + [i for i in sec["ids"] if i not in labels]


def page_labels(app, pagename, doctree) -> list[str]:
    """The ids of the page's explicit labels (MyST ``(label)=``, ``:name:``), in document order."""
    std = app.env.get_domain("std")
    mine = {labelid for docname, labelid in std.anonlabels.values() if docname == pagename}
    order = []
    for node in doctree.findall(nodes.Element):
        order += [i for i in node.get("ids", []) if i in mine and i not in order]
    return order


def _page_context(app, pagename, templatename, context, doctree):
    if doctree is not None:
        labels = " ".join(page_labels(app, pagename, doctree))
        context["metatags"] = context.get("metatags", "") + f'\n<meta name="bilingual-labels" content="{labels}" />'


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
    app.connect("html-page-context", _page_context)
    app.add_transform(ExplicitLabelFirst)
    app.add_directive("lang", LangDirective)
    for lang in LANGS:
        app.add_role(lang, _make_role(lang))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2"}
