"""One edition's notebook: the chapter with only that edition's prose.

    python _ext/edition_notebook.py chapters/bn_algorithm.ipynb --lang ko -o /tmp/bn_algorithm.ko.ipynb

A chapter notebook holds both editions: markdown cells tagged ``lang-ko`` and ``lang-en`` (each ko
cell followed by its en twin), shared code cells with their stored outputs. The edition notebook
keeps every code cell (source, outputs, metadata) and every untagged markdown cell, and drops the
markdown cells of the other language, as the book build does (_ext/bilingual.py). The book offers
it for download on every chapter page (_ext/run_box.py); the bilingual source stays in the
repository (chapters/). Nothing else changes, so it runs exactly as the source does.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

LANGS = ("ko", "en")


def cell_langs(cell: dict) -> list[str]:
    """The editions a cell belongs to by its ``lang-XX`` tags ([] for a shared cell)."""
    tags = cell.get("metadata", {}).get("tags", []) or []
    return [t[5:] for t in tags if t.startswith("lang-") and t[5:] in LANGS]


def edition_notebook(nb: dict, lang: str) -> dict:
    """A copy of the notebook ``nb`` without the markdown cells of the language that is not ``lang``."""
    if lang not in LANGS:
        raise ValueError(f"expected lang in {LANGS} (got {lang!r})")
    out = copy.deepcopy(nb)
    out["cells"] = [c for c in out.get("cells", [])
                    if c.get("cell_type") != "markdown" or not cell_langs(c) or lang in cell_langs(c)]
    out.setdefault("metadata", {})["edition"] = lang
    return out


def dumps(nb: dict) -> str:
    """The repository's notebook format: indent 1, UTF-8 text, a trailing newline."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def write_edition(source: Path, lang: str, dest: Path) -> Path:
    """Write ``source``'s ``lang`` edition to ``dest`` (folders made as needed)."""
    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(dumps(edition_notebook(nb, lang)), encoding="utf-8")
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--lang", choices=LANGS, required=True)
    parser.add_argument("-o", "--output", type=Path, help="default: NAME.LANG.ipynb in the current folder")
    args = parser.parse_args()
    dest = args.output or Path(f"{args.notebook.stem}.{args.lang}.ipynb")
    print(write_edition(args.notebook, args.lang, dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
