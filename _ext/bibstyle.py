"""bibstyle — the course's author-year citations (sphinxcontrib-bibtex), one style per edition.

``bibtex_reference_style: course`` in _config.yml picks it. In the edition set by ``bilingual_lang``:

  en  {cite:t}`ioffe2015batch` -> Ioffe and Szegedy (2015)    {cite:p}`...` -> (Ioffe and Szegedy, 2015)
      three or more authors -> Santurkar et al. (2018)
  ko  {cite:t}`ioffe2015batch` -> Ioffe & Szegedy(2015)       {cite:p}`...` -> (Ioffe & Szegedy, 2015)
      three or more authors -> Santurkar 외(2018): a Korean particle follows the bracket
      ("Ioffe & Szegedy(2015)는"), the way the Korean text wrote its citations before the roles.

Both: round brackets, "; " between several works in one citation, and a letter after the year where
the same authors have two works in one year (He et al. 2016a, 2016b), in the text and in the list.
``bibtex_default_style: course`` lists the references sorted by author and year, labelled the same
way ("He et al. 2016a"), so the label the reader clicked is the one they find.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes

import pybtex.database
import pybtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import node
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle, PersonStyle, basic_author_year, extra_year
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

NAMES = {  # how author lists read in each edition
    "en": {"sep": ", ", "sep2": " and ", "last_sep": ", and ", "other": " et al.", "text_sep": " "},
    "ko": {"sep": ", ", "sep2": " & ", "last_sep": " & ", "other": " 외", "text_sep": ""},
}
SUFFIX: dict[str, str] = {}  # entry key -> "a", "b", ... where authors and year repeat
_LANG = {"lang": "en"}


def _surnames(entry) -> tuple:
    return tuple(p.last_names[-1] if p.last_names else str(p) for p in entry.persons.get("author", []))


def _short_authors(entry, lang: str) -> str:
    names, n = _surnames(entry), NAMES[lang]
    if len(names) >= 3 or (len(names) == 2 and "others" in names[1].lower()):
        return names[0] + n["other"]
    return n["sep2"].join(names) if len(names) == 2 else (names[0] if names else entry.fields.get("title", "?"))


def year_suffixes(entries) -> dict[str, str]:
    """{key: letter} for every work whose first-author surnames and year another work shares."""
    groups = defaultdict(list)
    for key, entry in entries.items():
        surnames = _surnames(entry)
        groups[(surnames[:1] if len(surnames) >= 3 else surnames, entry.fields.get("year", ""))].append(key)
    return {key: "abcdefghij"[i] for keys in groups.values() if len(keys) > 1
            for i, key in enumerate(sorted(keys, key=lambda k: entries[k].fields.get("title", "")))}


@node
def _year(children, data):
    """The year, with its letter where the authors have two works in it (replaces the stock year node)."""
    assert not children
    entry = data["entry"]
    return Text(entry.fields.get("year", "n.d.") + SUFFIX.get(entry.key, ""))


class CourseLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            year = entry.fields.get("year", "n.d.") + SUFFIX.get(entry.key, "")
            yield f"{_short_authors(entry, _LANG['lang'])} {year}"


class CourseStyle(UnsrtStyle):
    default_label_style = CourseLabels
    default_sorting_style = "author_year_title"


def _reference_style(lang: str):
    n = NAMES[lang]

    @dataclass
    class CourseReferenceStyle(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = field(default_factory=lambda: BracketStyle("(", ")", "; "))
        bracket_textual: BracketStyle = field(default_factory=lambda: BracketStyle("(", ")", "; "))
        bracket_year: BracketStyle = field(default_factory=lambda: BracketStyle("(", ")", "; "))
        bracket_author: BracketStyle = field(default_factory=lambda: BracketStyle("(", ")", "; "))
        person: PersonStyle = field(default_factory=lambda: PersonStyle(
            sep=n["sep"], sep2=n["sep2"], last_sep=n["last_sep"], other=n["other"]))
        text_reference_sep: str = n["text_sep"]

    return CourseReferenceStyle


def _config_inited(app, config):
    lang = config.bilingual_lang
    if lang not in NAMES:
        raise ValueError(f"expected bilingual_lang in {sorted(NAMES)} (got {lang!r})")
    _LANG["lang"] = lang
    entries = {}
    for bib in config.bibtex_bibfiles or []:
        entries.update(pybtex.database.parse_file(str(Path(app.confdir) / bib)).entries)
    SUFFIX.clear()
    SUFFIX.update(year_suffixes(entries))
    # the stock author-year templates look `year` up when they format, so this adds the letters there
    basic_author_year.year = extra_year.year = _year
    register_plugin("sphinxcontrib.bibtex.style.referencing", "course", _reference_style(lang), force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "course", CourseStyle, force=True)


TOOLTIP = {"ko": "참고 문헌: ", "en": ""}  # the hover text of a citation: the whole entry, named in the edition


def _tooltips(app, doctree, docname):
    """Prefix each citation's tooltip (the full entry, English as the works are) with the edition's
    word for it, so a Korean reader's tooltip says what it is (tools/browser_check.py checks titles)."""
    prefix = TOOLTIP[app.config.bilingual_lang]
    for cite in doctree.findall(lambda n: isinstance(n, nodes.inline) and "bibtex-citation" in n["classes"]):
        for ref in cite.findall(nodes.reference):
            if prefix and ref.get("reftitle") and not ref["reftitle"].startswith(prefix):
                ref["reftitle"] = prefix + ref["reftitle"]


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("doctree-resolved", _tooltips)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
