"""figures — every captioned figure numbered, captioned and described in the edition's language.

Notebook convention (tests/test_figures.py checks it; CONTRIBUTING.md, "Figures"): the code cell
whose output holds the figure carries in its cell metadata ::

    "figure": {"name": "fig-<chapter-prefix>-<short-ascii>",
               "ko": {"caption": "<Korean caption, MyST>", "alt": "<Korean plain-text description>"},
               "en": {"caption": "...", "alt": "..."}}

and a cell with several PNG outputs a list of such objects, one per image, in order. JupyterLab,
Colab and nbval ignore the key; myst-nb reads only ``mystnb`` cell metadata, not ``figure``.

How (myst-nb's own ``mystnb: {figure: ..., image: {alt: ...}}`` would give every output of a cell the
same caption, name and alt, so it cannot caption a cell with two images):
  * ``source-read`` (after _ext/bilingual.py and _ext/solutions.py) puts after such a cell one marker
    markdown cell per image, a ``{course-figure} K NAME`` directive with the edition's caption as its
    content (parsed as MyST, like the rest of the page: math, roles) and its alt text (percent-encoded);
  * the directive makes a ``figure`` node with that caption, named NAME (a label ``{numref}`` can
    point at); a transform moves the cell's K-th image output into it, in place in the output area,
    and sets the image's alt text;
  * Sphinx numbers the figures (numfig); here the numbers restart on every page (``(N,)`` in page
    order) and read "그림 N." / "Figure N." (``numfig_format``). The HTML is Sphinx's
    ``<figure><img alt=...><figcaption><span class="caption-number">그림 1. </span>...``.
_static/figures.js opens a figure's image at its natural size in a dialog (click, or Enter on the
focused image); _static/figures.css styles it (not printed). Cells without the key are left alone.
"""
from __future__ import annotations

import json
import re
import urllib.parse

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import locale
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
LANGS = ("ko", "en")
KEY = "figure"
NAME = re.compile(r"^fig-[a-z0-9]+(-[a-z0-9]+)+$")
NUMBER = {"ko": "그림 %s.", "en": "Figure %s."}
JS_STRINGS = ["Close", "Enlarge the figure", "Enlarged figure"]   # _static/figures.js; ko: reader_ui.po
HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
PATH_LIKE = re.compile(r"(^|[\s/])[\w.-]*\.(png|jpe?g|svg|gif)\b|^\.{0,2}/|_images/", re.I)


def png_outputs(cell) -> int:
    """How many of the cell's outputs hold a PNG image."""
    return sum("image/png" in (o.get("data") or {}) for o in cell.get("outputs", []) or [])


def figure_entries(cell) -> list[dict]:
    """The cell's figure metadata as a list (one entry per PNG output); [] without the key.
    Raises ValueError, saying what was expected, on anything that does not follow the schema."""
    meta = (cell.get("metadata") or {}).get(KEY)
    if meta is None:
        return []
    if cell.get("cell_type") != "code":
        raise ValueError(f"expected {KEY!r} metadata on a code cell (got it on a {cell.get('cell_type')} cell)")
    entries = meta if isinstance(meta, list) else [meta]
    n_png = png_outputs(cell)
    if len(entries) != n_png:
        raise ValueError(f"expected one {KEY!r} entry per PNG output ({n_png}) (got {len(entries)}): "
                         "a cell with several images carries a list, in output order")
    for e in entries:
        if not isinstance(e, dict) or set(e) != {"name", *LANGS}:
            raise ValueError(f"expected keys name, ko, en in a {KEY!r} entry "
                             f"(got {sorted(e) if isinstance(e, dict) else type(e).__name__})")
        if not isinstance(e["name"], str) or not NAME.match(e["name"]):
            raise ValueError(f"expected a name like fig-<chapter-prefix>-<short> in a-z, 0-9, - (got {e['name']!r})")
        for lang in LANGS:
            part = e[lang]
            if not isinstance(part, dict) or set(part) != {"caption", "alt"}:
                raise ValueError(f"{e['name']}: expected {lang} to hold caption and alt "
                                 f"(got {sorted(part) if isinstance(part, dict) else part!r})")
            for k in ("caption", "alt"):
                if not isinstance(part[k], str) or not part[k].strip():
                    raise ValueError(f"{e['name']}: expected a non-empty {lang} {k} (got {part[k]!r})")
            if PATH_LIKE.search(part["alt"]):
                raise ValueError(f"{e['name']}: expected the {lang} alt to describe the image (got a file path: {part['alt']!r})")
        for k in ("caption", "alt"):
            if not HANGUL.search(e["ko"][k]):
                raise ValueError(f"{e['name']}: expected Korean in the ko {k} (got {e['ko'][k]!r})")
        if HANGUL.search(e["en"]["caption"]) or HANGUL.search(e["en"]["alt"]):
            raise ValueError(f"{e['name']}: expected no Hangul in the en caption and alt (got {e['en']!r})")
    return entries


def _marker(k: int, entry: dict, lang: str, cell_id: str) -> dict:
    caption, alt = entry[lang]["caption"].strip(), entry[lang]["alt"].strip()
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", caption)), default=0))
    text = (f"{fence}{{course-figure}} {k} {entry['name']}\n:alt: {urllib.parse.quote(alt, safe='')}\n\n"
            f"{caption}\n{fence}")
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def mark_figures(nb: dict, lang: str) -> dict:
    """After each cell with figure metadata, one marker cell per image (see the module docstring)."""
    out = []
    for cell in nb.get("cells", []):
        out.append(cell)
        for k, entry in enumerate(figure_entries(cell)):
            out.append(_marker(k, entry, lang, f"course-figure-{entry['name']}"))
    nb["cells"] = out
    return nb


class CourseFigure(SphinxDirective):
    """``{course-figure} K NAME`` with ``:alt:`` and the caption as content: a captioned, named
    figure, still without its image (the transform below moves the cell's K-th image into it)."""
    required_arguments = 2
    has_content = True
    option_spec = {"alt": directives.unchanged}

    def run(self):
        fig = nodes.figure(course_figure=int(self.arguments[0]),
                           course_alt=urllib.parse.unquote(self.options.get("alt", "")),
                           classes=["course-figure"])
        self.set_source_info(fig)
        fig["names"].append(nodes.fully_normalize_name(self.arguments[1]))
        self.state.document.note_explicit_target(fig, fig)
        box = nodes.Element()
        self.state.nested_parse(self.content, self.content_offset, box)
        first, rest = (box.children[0], box.children[1:]) if box.children else (None, [])
        if not isinstance(first, nodes.paragraph):
            return [self.state.document.reporter.warning(
                f"figure {self.arguments[1]}: expected its caption to start with a paragraph (got {first!r})",
                line=self.lineno)]
        fig += nodes.caption(first.rawsource, "", *first.children)
        if rest:
            fig += nodes.legend("", *rest)
        return [fig]


def _image_bundles(cell) -> list[nodes.Element]:
    """The cell's output bundles that hold a PNG image, in order."""
    return [b for b in cell.findall(nodes.container) if b.get("nb_element") == "mime_bundle"
            and any(c.get("mime_type") == "image/png" for c in b.children)]


class PlaceFigures(SphinxTransform):
    """Move the K-th image output of the code cell before each course figure into it."""
    default_priority = 190                                  # before _ext/solutions.py's WrapSolutions

    def apply(self, **kwargs):
        for fig in list(self.document.findall(nodes.figure)):
            if "course_figure" not in fig or fig.parent is None:
                continue
            parent = fig.parent
            i = parent.index(fig) - 1
            while i >= 0 and isinstance(parent[i], nodes.figure) and "course_figure" in parent[i]:
                i -= 1
            cell = parent[i] if i >= 0 else None
            bundles = _image_bundles(cell) if isinstance(cell, nodes.container) else []
            k = fig["course_figure"]
            if k >= len(bundles):
                logger.warning(f"figure {fig['names']}: expected image output {k + 1} in the code cell "
                               f"before it (got {len(bundles)} image outputs)", location=fig)
                parent.remove(fig)
                continue
            bundle = bundles[k]
            for img in bundle.findall(nodes.image):
                img["alt"] = fig["course_alt"]
            parent.remove(fig)
            bundle.replace_self(fig)
            fig.insert(0, bundle)
            del fig["course_figure"], fig["course_alt"]


def _number_per_page(app, env):
    """Sphinx counts figures across the book when chapters are not numbered; count them per page."""
    for figs in env.toc_fignumbers.values():
        if "figure" in figs:
            figs["figure"] = {fid: (n,) for n, fid in enumerate(figs["figure"], start=1)}
    return []


def _source_read(app, docname, source):
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        nb = json.loads(source[0])
        try:
            if any(figure_entries(c) for c in nb.get("cells", [])):
                source[0] = json.dumps(mark_figures(nb, app.config.bilingual_lang), ensure_ascii=False)
        except ValueError as exc:
            logger.warning(f"{docname}: {exc}", location=docname)


def _config_inited(app, config):
    lang = getattr(config, "bilingual_lang", None) or "en"
    config.numfig = True
    config.numfig_format = {**(config.numfig_format or {}), "figure": NUMBER.get(lang, NUMBER["en"])}
    _ = locale.get_translation("sphinx")
    ui = {s: str(_(s)) for s in JS_STRINGS}
    app.add_js_file(None, body=f"window.COURSE_FIGURES_UI = {json.dumps(ui, ensure_ascii=False)};", priority=100)


def setup(app):
    app.add_directive("course-figure", CourseFigure)
    app.add_transform(PlaceFigures)
    app.connect("config-inited", _config_inited, priority=700)   # after reader_ui's catalog (500)
    app.connect("source-read", _source_read, priority=700)       # after bilingual (500), solutions (600)
    app.connect("env-get-updated", _number_per_page, priority=900)   # after Sphinx numbers them (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
