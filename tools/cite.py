"""Turn the prose's plain author-year citations into sphinxcontrib-bibtex roles (references.bib).

    python tools/cite.py chapters/bn_algorithm.ipynb            # dry run: prints each change
    python tools/cite.py --write chapters/*.ipynb glossary.md   # writes the files

In markdown cells (both languages) and .md pages, outside headings, code and math:

  (Ioffe & Szegedy, 2015)  (He 외, 2015)  (Li et al., 2016)  -> {cite:p}`key`
  Ioffe와 Szegedy(2015)  Yang 외(2019)  Wu & He (2018)      -> {cite:t}`key`   (textual)
  (AdaBN, Li et al., 2016)  (Wu & He, 2018의 정리)           -> ({cite:alp}`key`...)  (inside a bracket)
  - He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep ...   -> - {cite:t}`key`. Deep ...  (reference lists)

The key is found from the first author's surname and the year (a second surname, a letter after the
year or, in reference lists, the title decide between two works). A plain citation it cannot
resolve is printed as "UNRESOLVED" and left alone: add the work to references.bib or edit by hand.
`plain_citations(text)` lists what is left (tests/test_citations.py).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))

NAME = r"[A-Z][A-Za-z\u0105\-]+"
JOIN = r"(?:\s?(?:,|&|and|와|과)\s?)"
AUTH = rf"(?P<auth>{NAME}(?:{JOIN}{NAME})*(?:\s?(?:et\sal\.|외|등))?)"
YEAR = r"(?P<year>(?:19|20)\d\d)(?P<letter>[a-z]?)"
# "Wu & He (2018)", "Ioffe와 Szegedy(2015)", "Yang 외(2019)": textual
TEXTUAL = re.compile(rf"{AUTH}\s?\({YEAR}\)")
# "(Ioffe & Szegedy, 2015)": the whole bracket is the citation
PAREN = re.compile(rf"\({AUTH},\s{YEAR}\)")
# "Li et al., 2016" inside a bracket that holds more ("(AdaBN, Li et al., 2016)")
INNER = re.compile(rf"{AUTH},\s{YEAR}(?=[),;의])")
# a reference-list item: "- He, K., Zhang, X. & Sun, J. (2016). Title. *Venue*."
ITEM = re.compile(r"^- (?P<auth>[A-Z][^()\n]*?)\s\((?P<year>(?:19|20)\d\d)(?P<letter>[a-z]?)\)\.\s(?P<rest>.*)$", re.M)
# left for a hand edit (plain_citations reports them): "Wu & He's (2018)", "Madry (2018, "Title")"
BY_HAND = [re.compile(rf"{AUTH}'s\s\({YEAR}\)"), re.compile(rf"{AUTH}\s?\({YEAR},")]
ROLE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
PROTECT = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|^#{1,6} [^\n]*$", re.S | re.M)


def load_works(bib: Path = ROOT / "references.bib") -> dict:
    """{key: (surnames, year, title)} from the .bib file, plus the letter bibstyle gives the year."""
    import pybtex.database
    from bibstyle import year_suffixes

    entries = pybtex.database.parse_file(str(bib)).entries
    letters = year_suffixes(entries)
    out = {}
    for key, e in entries.items():
        names = tuple(p.last_names[-1] if p.last_names else str(p) for p in e.persons.get("author", []))
        names = tuple(re.sub(r"[{}\\]|\\k|'", "", n).replace("\\k{a}", "a") for n in names)
        title = re.sub(r"[{}]", "", e.fields.get("title", ""))
        out[key] = (names, e.fields.get("year", ""), title, letters.get(key, ""))
    return out


def _surnames(auth: str) -> list[str]:
    auth = re.sub(r"\s?(et\sal\.|외|등)$", "", auth.strip())
    return [s for s in re.split(r"\s?(?:,|&|\band\b|와|과)\s?", auth) if s]


def _ascii(s: str) -> str:
    return s.replace("ą", "a").lower()


def resolve(works: dict, auth: str, year: str, letter: str = "", title: str = "") -> str | None:
    """The key of the work by these authors in this year, or None (unknown or ambiguous)."""
    names = [_ascii(n) for n in _surnames(auth)]
    if not names:
        return None
    found = [k for k, (sn, y, _, _) in works.items() if y == year and sn and _ascii(sn[0]) == names[0]]
    if len(found) > 1 and len(names) > 1:
        found = [k for k in found if len(works[k][0]) > 1 and _ascii(works[k][0][1]) == names[1]]
    if len(found) > 1 and title:
        found = [k for k in found if _norm(works[k][2]).split()[:3] == _norm(title).split()[:3]]
    if len(found) > 1:  # "He et al., 2016" is the 2016a, "2016b" the other
        found = [k for k in found if works[k][3] == (letter or "a")]
    return found[0] if len(found) == 1 else None


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def _outside(text: str, fn) -> str:
    """Apply fn to the text between protected spans (code, math, headings)."""
    out, last = [], 0
    for m in PROTECT.finditer(text):
        out += [fn(text[last:m.start()]), m.group(0)]
        last = m.end()
    return "".join(out + [fn(text[last:])])


def _resolve_span(works: dict, m, kind: str):
    """(text before the citation inside the match, key) or (None, None): the authors may start
    after a word the pattern took for a name ("(AdaBN, Li et al., 2016)")."""
    auth, offset = m.group("auth"), m.start("auth") - m.start()
    if kind == "item":
        return "", resolve(works, auth.split(",")[0], m.group("year"), m.group("letter"), m.group("rest"))
    for name in re.finditer(NAME, auth):
        key = resolve(works, auth[name.start():], m.group("year"), m.group("letter"))
        if key:
            return m.group(0)[:offset + name.start()], key
    return None, None


def convert_text(text: str, works: dict) -> tuple[str, list[str]]:
    """(new text, ["UNRESOLVED ..."]) with every plain citation it can resolve made a role."""
    problems = []

    def sub(kind, role):
        def repl(m):
            before, key = _resolve_span(works, m, kind)
            if key is None:
                problems.append(f"UNRESOLVED {kind}: {m.group(0)!r}")
                return m.group(0)
            if kind == "item":
                return f"- {{cite:t}}`{key}`. {m.group('rest')}"
            if kind == "paren" and before != "(":  # "(AdaBN, Li et al., 2016)": the bracket holds more
                return f"{before}{{cite:alp}}`{key}`)"
            return f"{{cite:{role}}}`{key}`" if kind == "paren" else f"{before}{{cite:{role}}}`{key}`"
        return repl

    def fn(chunk):
        chunk = ITEM.sub(sub("item", "t"), chunk)
        chunk = PAREN.sub(sub("paren", "p"), chunk)
        chunk = TEXTUAL.sub(sub("textual", "t"), chunk)
        return INNER.sub(sub("inner", "alp"), chunk)

    return _outside(text, fn), problems


def plain_citations(text: str) -> list[str]:
    """The author-year citations left in plain text (outside headings, code and math)."""
    found = []

    def fn(chunk):
        chunk = ROLE.sub("", chunk)
        for rx in (ITEM, PAREN, TEXTUAL, INNER, *BY_HAND):  # each span once: "(A, 2015)", not also "A, 2015"
            found.extend(m.group(0) for m in rx.finditer(chunk))
            chunk = rx.sub(" ", chunk)
        return chunk

    _outside(text, fn)
    return found


def cited_keys(text: str) -> list[str]:
    """Every key of every {cite...} role, in order."""
    return [k.strip() for group in ROLE.findall(text) for k in group.split(",")]


def _cells(path: Path):
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return nb, [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    return None, None


def convert_file(path: Path, works: dict, write: bool) -> int:
    """Print the changes (and problems) for one file; write it when asked. Returns the problem count."""
    nb, cells = _cells(path)
    sources = ["".join(c["source"]) for c in cells] if nb else [path.read_text(encoding="utf-8")]
    problems, changed = 0, []
    for i, src in enumerate(sources):
        new, probs = convert_text(src, works)
        for p in probs:
            print(f"{path.name}: {p}")
        problems += len(probs)
        if new != src:
            for a, b in zip(src.splitlines(), new.splitlines()):
                if a != b:
                    print(f"{path.name}:\n  - {a}\n  + {b}")
            changed.append((i, new))
    if write and changed:
        if nb:
            for i, new in changed:
                cells[i]["source"] = new.splitlines(keepends=True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            path.write_text(changed[0][1], encoding="utf-8")
    print(f"[cite] {path}: {len(changed)} cell(s) changed, {problems} unresolved{'' if write else ' (dry run)'}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--write", action="store_true", help="write the files (default: print the changes only)")
    args = ap.parse_args(argv)
    works = load_works()
    return 1 if sum(convert_file(p, works, args.write) for p in args.files) else 0


if __name__ == "__main__":
    sys.exit(main())
