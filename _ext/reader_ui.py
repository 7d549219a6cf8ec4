"""reader_ui — the reader's interface: theme strings in the edition's language, each script once.

* Translations. ``locale/<lang>/LC_MESSAGES/reader_ui.po`` holds the interface strings that
  Sphinx, pydata-sphinx-theme, sphinx-book-theme, myst-nb, sphinx-copybutton and
  sphinx-togglebutton leave in English for that language (pydata-sphinx-theme has no Korean
  catalog; sphinx-book-theme's is incomplete). The .po file is read with babel at build time
  (no compiled .mo is kept) and put *in front of* the ``sphinx`` and ``booktheme`` gettext
  catalogs, so the themes' own ``_()`` calls find these strings first. For the English edition
  there is no such file and nothing changes.
* Strings the upstream code writes without gettext go through the same catalog:
  myst-nb's folded-cell labels (its HTML visitor is replaced by one that translates them),
  sphinx-book-theme's hard-coded ``aria-label``/``title`` attributes (replaced in the written
  pages), and the search box text (a theme option). The strings that only JavaScript writes
  (sphinx-copybutton, sphinx-togglebutton) are handed to ``_static/bilingual.js`` as
  ``window.BILINGUAL_UI``.
* Scripts once: Sphinx 7.4 keeps an inline script added after the builder started twice (the
  registry's copy has filename ``''``, the builder's ``None``), so sphinx-thebe's ``const
  THEBE_JS_URL`` was declared twice on every page (a SyntaxError). Each page's assets are
  de-duplicated here.
"""
from __future__ import annotations

import gettext
import html
import io
import json
from pathlib import Path

from sphinx import locale
from sphinx.util import logging

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CATALOG = "reader_ui"
DOMAINS = ("sphinx", "booktheme")              # the gettext catalogs the templates use
# written into sphinx-book-theme's templates without gettext: (attribute, English text)
HARDCODED = [("aria-label", "Main"), ("aria-label", "Page"),
             ("title", "Toggle primary sidebar"), ("title", "Toggle secondary sidebar")]
# written by JavaScript only (sphinx-copybutton, sphinx-togglebutton): see _static/bilingual.js
JS_STRINGS = ["Copy", "Copy to clipboard", "Copied!", "Failed to copy", "Toggle hidden content"]


def po_path(lang: str) -> Path:
    return HERE / "locale" / lang / "LC_MESSAGES" / f"{CATALOG}.po"


def read_catalog(lang: str) -> dict[str, str]:
    """msgid -> msgstr of the edition's .po file ({} when there is none, e.g. English)."""
    path = po_path(lang)
    if not path.is_file():
        return {}
    from babel.messages.pofile import read_po
    with path.open("rb") as f:
        cat = read_po(f, locale=lang)
    return {m.id: m.string for m in cat if m.id and m.string}


def _translations(lang: str) -> gettext.GNUTranslations | None:
    path = po_path(lang)
    if not path.is_file():
        return None
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    with path.open("rb") as f:
        cat = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, cat)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _config_inited(app, config):
    lang = config.language or "en"
    for domain in DOMAINS:                     # one object per domain: fallbacks chain per object
        first = _translations(lang)
        if first is None:
            return
        old = locale.translators.get(("general", domain))
        if old is not None:
            first.add_fallback(old)
        locale.translators[("general", domain)] = first
        if domain == "sphinx":
            app.translator = first             # what the builder installs into Jinja (after this event)
    _ = locale.get_translation("sphinx")
    opts = dict(config.html_theme_options or {})
    opts["search_bar_text"] = str(_(opts.get("search_bar_text") or "Search this book..."))
    config.html_theme_options = opts
    ui = {s: str(_(s)) for s in JS_STRINGS}
    app.add_js_file(None, body=f"window.BILINGUAL_UI = {json.dumps(ui, ensure_ascii=False)};", priority=100)


def _visit_hide_cell(self, node):
    """myst-nb's HideCodeCellNode visitor, with its labels translated."""
    _ = locale.get_translation("sphinx")
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n')
    self.body.append(f'<summary aria-label="{html.escape(str(_("Toggle hidden content")))}">\n')
    self.body.append(f'<p class="collapsed admonition-title">{html.escape(str(_(node["prompt_show"])))}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{html.escape(str(_(node["prompt_hide"])))}</p>\n')
    self.body.append("</summary>\n")


def _depart_hide_cell(self, node):
    self.body.append("</details>\n")


def _dedupe_assets(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        files = context.get(key)
        if not isinstance(files, list):
            continue
        seen, keep = set(), []
        for asset in files:
            ident = (str(getattr(asset, "filename", asset) or ""),
                     tuple(sorted((getattr(asset, "attributes", None) or {}).items())))
            if ident not in seen:
                seen.add(ident)
                keep.append(asset)
        files[:] = keep


def _translate_hardcoded(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    _ = locale.get_translation("sphinx")
    pairs = [(f'{attr}="{text}"', f'{attr}="{html.escape(str(_(text)))}"') for attr, text in HARDCODED]
    pairs = [(a, b) for a, b in pairs if a != b]
    if not pairs:
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = text
        for a, b in pairs:
            new = new.replace(a, b)
        if new != text:
            page.write_text(new, encoding="utf-8")


def setup(app):
    from myst_nb.sphinx_ import HideCodeCellNode
    app.add_node(HideCodeCellNode, override=True, html=(_visit_hide_cell, _depart_hide_cell))
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _dedupe_assets, priority=900)
    app.connect("build-finished", _translate_hardcoded)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
