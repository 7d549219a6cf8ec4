"""Citations: every {cite} key is in references.bib, twins cite the same works, no plain "(Author, 2015)"
is left in the prose, and every entry of references.bib is cited somewhere (tools/cite.py converts)."""
import re
import sys

import pybtex.database
import pytest

from tools.book import ROOT, cell_source, cell_tags, read_notebook, toc_files, toc_notebooks
from tools.cite import cited_keys, convert_text, load_works, plain_citations

sys.path.insert(0, str(ROOT / "_ext"))
import bibstyle  # noqa: E402

ENTRIES = pybtex.database.parse_file(str(ROOT / "references.bib")).entries
NOTEBOOKS = toc_notebooks()
PAGES = [(ROOT / f).with_suffix(".md") for f in toc_files() if (ROOT / f).with_suffix(".md").is_file()]
# Chapters being written whose plain citations tools/cite.py has not converted yet: their citations must
# resolve to entries of references.bib. Run `python tools/cite.py --write chapters/NAME.ipynb`, then
# drop the name from here.
# The works such a chapter cites: listed in references.bib already, in the book once it is converted.
PENDING: dict[str, set[str]] = {}
BLOCK = re.compile(r"^::::\{lang\} (ko|en)\n(.*?)^::::$", re.S | re.M)


def prose(path):
    """[(language or None, text)] of a notebook's markdown cells or of a .md page's lang blocks."""
    if path.suffix == ".ipynb":
        out = []
        for c in read_notebook(path)["cells"]:
            if c["cell_type"] == "markdown":
                langs = [t[5:] for t in cell_tags(c) if t in ("lang-ko", "lang-en")]
                out.append((langs[0] if langs else None, cell_source(c)))
        return out
    text = path.read_text(encoding="utf-8")
    return [(lang, body) for lang, body in BLOCK.findall(text)] + [(None, BLOCK.sub("", text))]


def built():
    return [p for p in NOTEBOOKS if p.stem not in PENDING] + PAGES


@pytest.mark.parametrize("path", built(), ids=[p.stem for p in built()])
def test_every_cited_key_is_in_references_bib(path):
    for _, text in prose(path):
        missing = [k for k in cited_keys(text) if k not in ENTRIES]
        assert not missing, f"expected keys of references.bib (got {missing}): add the work there or fix the key"


@pytest.mark.parametrize("path", built(), ids=[p.stem for p in built()])
def test_twins_cite_the_same_works(path):
    parts = prose(path)
    if path.suffix == ".ipynb":
        pairs = [(a[1], b[1]) for a, b in zip(parts, parts[1:]) if a[0] == "ko" and b[0] == "en"]
    else:
        ko = "".join(t for lang, t in parts if lang == "ko")
        en = "".join(t for lang, t in parts if lang == "en")
        pairs = [(ko, en)]
    for ko, en in pairs:
        assert sorted(cited_keys(ko)) == sorted(cited_keys(en)), \
            f"expected the same citations in both languages (got {cited_keys(ko)} vs {cited_keys(en)}):\n{ko[:120]}"


@pytest.mark.parametrize("path", built(), ids=[p.stem for p in built()])
def test_no_plain_citation_is_left(path):
    for _, text in prose(path):
        left = plain_citations(text)
        assert not left, (f"expected {{cite:t}}/{{cite:p}} roles (got plain citations {left}): "
                          f"run python tools/cite.py --write {path.relative_to(ROOT)}, or edit by hand")


def test_pending_chapters_cite_only_known_works():
    works = load_works()
    for name in PENDING:
        path = ROOT / "chapters" / f"{name}.ipynb"
        if path.is_file():
            for _, text in prose(path):
                assert not convert_text(text, works)[1], f"{name}: a citation references.bib cannot resolve"


def test_every_entry_is_cited():
    """Cited in the book (references.md cites the works only bnlib's docstrings rely on), or by a
    pending chapter (which must cite them, once converted)."""
    works, cited = load_works(), set()
    for path in built():
        cited.update(k for _, text in prose(path) for k in cited_keys(text))
    for name, keys in PENDING.items():
        path = ROOT / "chapters" / f"{name}.ipynb"
        if path.is_file():
            would = {k for _, text in prose(path) for k in cited_keys(convert_text(text, works)[0])}
            assert keys <= would, f"{name}: expected it to cite {sorted(keys - would)} (got {sorted(would)})"
        cited |= keys
    assert set(ENTRIES) - cited == set(), "entries nobody cites: cite them or remove them from references.bib"


def test_entries_are_complete():
    for key, e in ENTRIES.items():
        assert e.persons.get("author") and e.fields.get("title") and re.fullmatch(r"(19|20)\d\d", e.fields.get("year", "")), key
        venue = e.fields.get("booktitle") or e.fields.get("journal") or e.fields.get("publisher") \
            or e.fields.get("institution") or e.fields.get("eprint") or e.fields.get("note")
        assert venue, f"{key}: expected a venue, publisher or arXiv id (got none)"


def test_references_and_notation_pages_are_in_the_book():
    files = toc_files()
    assert "references" in files and "notation" in files
    assert "{bibliography}" in (ROOT / "references.md").read_text(encoding="utf-8")


def test_same_authors_same_year_get_letters():
    suffixes = bibstyle.year_suffixes(ENTRIES)
    assert suffixes["he2016deep"] == "a" and suffixes["he2016identity"] == "b"
    assert "zhang2019root" not in suffixes and "zhang2019fixup" not in suffixes  # different authors


def test_short_author_lists_per_edition():
    e = ENTRIES
    assert bibstyle._short_authors(e["ioffe2015batch"], "en") == "Ioffe and Szegedy"
    assert bibstyle._short_authors(e["ioffe2015batch"], "ko") == "Ioffe & Szegedy"
    assert bibstyle._short_authors(e["santurkar2018how"], "ko") == "Santurkar 외"
    assert bibstyle._short_authors(e["peng2018megdet"], "en") == "Peng et al."


@pytest.mark.parametrize("plain, role", [
    ("원 논문(Ioffe & Szegedy, 2015)은", "원 논문{cite:p}`ioffe2015batch`은"),
    ("Ioffe와 Szegedy(2015)의 알고리즘 1", "{cite:t}`ioffe2015batch`의 알고리즘 1"),
    ("as Santurkar et al.\n(2018) show", "as {cite:t}`santurkar2018how` show"),
    ("(AdaBN, Li et al., 2016)", "(AdaBN, {cite:alp}`li2016revisiting`)"),
    ("(Wu & Johnson, 2021의 PreciseBN)", "({cite:alp}`wu2021rethinking`의 PreciseBN)"),
    ("blocks (He et al., 2016b)", "blocks {cite:p}`he2016identity`"),
    ("- He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep Residual Learning. *CVPR*.",
     "- {cite:t}`he2016deep`. Deep Residual Learning. *CVPR*."),
])
def test_converter(plain, role):
    new, problems = convert_text(plain, load_works())
    assert (new, problems) == (role, [])
    assert plain_citations(new) == []


def test_converter_leaves_headings_code_and_unknown_works():
    works = load_works()
    text = "# Santurkar et al. (2018) I\n\n`f(Ioffe & Szegedy, 2015)` and (Nobody, 1999)."
    new, problems = convert_text(text, works)
    assert new == text and problems[0] == "UNRESOLVED paren: '(Nobody, 1999)'"
    assert plain_citations(new) == ["(Nobody, 1999)"]
    assert plain_citations("Wu & He's (2018) measurements") == ["Wu & He's (2018)"]
